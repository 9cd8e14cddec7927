"""prices.alternatives: the shipped table held to the catalog (every family model is a catalog model, each sibling
cheaper than the ones before it, every routable provider a catalog provider), who sells a model, and what its
tokens cost through a batch API."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from farebox.core.pricing import TieredPrice, TokenPrice
from farebox.gateway.model_routes import Provider
from farebox.prices import Catalog, PriceBook, PriceOverrides
from farebox.prices.alternatives import ALTERNATIVES_PATH, Alternatives

AT = datetime(2026, 12, 5, 12, tzinfo=UTC)
BEFORE_BATCH_PRICES = datetime(2026, 3, 10, tzinfo=UTC)
"""The catalog's Anthropic batch prices start on 14 October 2026."""
TABLE = tomllib.loads(ALTERNATIVES_PATH.read_text())


@pytest.fixture(scope="module")
def alternatives() -> Alternatives:
    return Alternatives.load(PriceBook.load(None))


def _base(price: TokenPrice | None) -> Decimal:
    assert price is not None
    return price.base if isinstance(price, TieredPrice) else price


@pytest.mark.parametrize("family", TABLE["families"], ids=lambda family: family[0])
def test_each_family_is_catalog_models_each_cheaper_than_the_one_before(family: list[str]) -> None:
    catalog = Catalog()
    found = [catalog.lookup(provider=None, model=model, at=AT) for model in family]
    assert [entry.model if entry else None for entry in found] == family, "canonical catalog ids"
    assert len({entry.provider for entry in found if entry}) == 1, "one vendor"
    for larger, smaller in zip(found, found[1:], strict=False):
        assert larger is not None and smaller is not None
        assert _base(smaller.prices.input_mtok) < _base(larger.prices.input_mtok), smaller.model
        assert _base(smaller.prices.output_mtok) < _base(larger.prices.output_mtok), smaller.model


def test_the_routable_providers_are_catalog_providers_and_cover_the_native_routes() -> None:
    catalog = Catalog()
    routable = TABLE["routable_providers"]
    assert all(catalog.provider_id(name) == name for name in routable)
    native = {
        catalog.provider_id(provider.value) for provider in (Provider.OPENAI, Provider.ANTHROPIC, Provider.GEMINI)
    }
    assert native <= set(routable)


def test_siblings_are_the_cheaper_models_of_the_family_nearest_first(alternatives: Alternatives) -> None:
    assert alternatives.siblings("gpt-4.1") == ("gpt-4.1-mini", "gpt-4.1-nano")
    assert alternatives.siblings("gpt-4o") == ("gpt-4o-mini",)
    assert alternatives.siblings("gpt-4o-mini") == ()
    assert alternatives.siblings("my-finetune") == ()


def test_a_model_is_offered_only_by_the_providers_that_list_it(alternatives: Alternatives) -> None:
    qwen = dict(alternatives.offers("Qwen/Qwen3.5-9B", at=AT))
    assert set(qwen) == {"together", "openrouter"}
    assert (qwen["openrouter"].prices.input_mtok, qwen["together"].prices.input_mtok) == (
        Decimal("0.1"),
        Decimal("0.17"),
    )
    gpt = alternatives.offers("gpt-4o", at=AT)
    assert [provider for provider, _ in gpt] == ["openai"], "no other routable provider lists gpt-4o itself"
    assert [provider for provider, _ in alternatives.offers("Qwen/Qwen3.5-9B", at=AT, besides="together")] == [
        "openrouter"
    ]
    assert alternatives.offers("claude-sonnet-4-6", at=AT, besides="gemini") == alternatives.offers(
        "claude-sonnet-4-6", at=AT, besides="google"
    ), "the ledger's name of a provider, or the catalog's"


def test_an_override_naming_a_provider_makes_it_a_seller(tmp_path: Path) -> None:
    overrides = tmp_path / "prices.toml"
    overrides.write_text('[[prices]]\nmodel = "gpt-4o"\nprovider = "groq"\ninput_mtok = "1"\noutput_mtok = "4"\n')
    book = PriceBook(overrides=PriceOverrides.load(overrides))
    offers = dict(Alternatives.load(book).offers("gpt-4o", at=AT))
    assert set(offers) == {"openai", "groq"} and offers["groq"].prices.input_mtok == Decimal("1")


def test_batch_prices_come_from_the_catalog_else_the_table(alternatives: Alternatives) -> None:
    sonnet = alternatives.batch("claude-sonnet-4-6", provider="anthropic", at=AT)
    assert sonnet is not None and sonnet.provider == "anthropic" and sonnet.discount is None
    assert sonnet.prices is not None and sonnet.prices.input_mtok == Decimal("1.5")
    before = alternatives.batch("claude-sonnet-4-6", provider="mock", at=BEFORE_BATCH_PRICES)
    assert before is not None and (before.provider, before.prices, before.discount) == (
        "anthropic",
        None,
        Decimal("0.5"),
    )
    assert alternatives.batch("Qwen/Qwen3.5-9B", provider="together", at=AT) is None, "no batch price, no table entry"
    assert alternatives.batch("my-finetune", provider="openai", at=AT) is None


def test_a_table_that_contradicts_itself_is_refused(tmp_path: Path) -> None:
    book = PriceBook.load(None)
    with pytest.raises(ValueError, match="two families"):
        Alternatives(book, families=[["a", "b"], ["b", "c"]], routable_providers=["openai"], batch_discounts={})
    with pytest.raises(ValueError, match="between 0 and 1"):
        Alternatives(book, families=[], routable_providers=["openai"], batch_discounts={"openai": Decimal("1.5")})
    broken = tmp_path / "alternatives.toml"
    broken.write_text("families = []\nroutable_providers = []\n[batch_discounts]\n")
    with pytest.raises(ValueError, match=str(broken)):
        Alternatives.load(book, broken)
