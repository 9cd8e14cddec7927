"""prices.catalog and the book on top of it: provider names and canonical models from genai-prices, which
units a catalog entry is charged for, prices that change inside a UTC day, and models nobody prices."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from farebox.core.pricing import TieredPrice, Usage
from farebox.prices import Catalog, PriceBook, PriceOverrides, UnknownModelError
from farebox.prices.catalog import _utc_time

D = Decimal
AT = datetime(2025, 9, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


@pytest.mark.parametrize(
    ("name", "provider_id"),
    [
        ("openai", "openai"),
        ("OpenAI", "openai"),
        ("gemini", "google"),
        ("google", "google"),
        ("anthropic", "anthropic"),
    ],
)
def test_provider_names_map_to_catalog_ids(catalog: Catalog, name: str, provider_id: str) -> None:
    assert catalog.provider_id(name) == provider_id


@pytest.mark.parametrize("name", ["mock", "my-vllm", "acme-cloud"])
def test_providers_the_catalog_does_not_know_have_no_id(catalog: Catalog, name: str) -> None:
    assert catalog.provider_id(name) is None


@pytest.mark.parametrize(
    ("provider", "model", "want_provider", "want_model"),
    [
        ("openai", "gpt-4o-2024-08-06", "openai", "gpt-4o"),  # a dated snapshot is its model
        (None, "GPT-4O", "openai", "gpt-4o"),  # case-insensitive, provider found by model
        ("mock", "gpt-4o", "openai", "gpt-4o"),  # an unknown provider: looked up across all
        ("gemini", "gemini-2.5-flash", "google", "gemini-2.5-flash"),
    ],
)
def test_lookup_finds_the_canonical_model(
    catalog: Catalog, provider: str | None, model: str, want_provider: str, want_model: str
) -> None:
    found = catalog.lookup(provider=provider, model=model, at=AT)
    assert found is not None
    assert (found.provider, found.model) == (want_provider, want_model)


@pytest.mark.parametrize(("provider", "model"), [("openai", "no-such-model"), (None, "definitely-not-a-model-xyz")])
def test_lookup_of_an_unknown_model_is_none(catalog: Catalog, provider: str | None, model: str) -> None:
    assert catalog.lookup(provider=provider, model=model, at=AT) is None


def test_catalog_prices_are_exact_decimals_of_the_units_farebox_meters(catalog: Catalog) -> None:
    gpt = catalog.lookup(provider="openai", model="gpt-4o", at=AT)
    tts = catalog.lookup(provider="openai", model="tts-1", at=AT)
    whisper = catalog.lookup(provider="openai", model="whisper-1", at=AT)
    assert gpt is not None and tts is not None and whisper is not None
    assert gpt.prices.as_dict() == {"input_mtok": "2.5", "cached_input_mtok": "1.25", "output_mtok": "10"}
    assert isinstance(gpt.prices.input_mtok, Decimal)
    assert tts.prices.as_dict() == {"per_mchars": "15"}  # per million characters
    assert whisper.prices.as_dict() == {"per_hour": "0.36"}  # audio hours


def test_tiered_catalog_prices_become_cliff_tiers(catalog: Catalog) -> None:
    found = catalog.lookup(provider="anthropic", model="claude-sonnet-4-5", at=AT)
    assert found is not None
    assert found.prices.input_mtok == TieredPrice(base=D(3), tiers=((200_000, D(6)),))
    assert found.prices.tier_starts() == (200_000,)


def test_off_peak_windows_are_utc_times_of_day_sorted(catalog: Catalog) -> None:
    found = catalog.lookup(provider="deepseek", model="deepseek-chat", at=AT)
    assert found is not None
    assert found.changes_at == (time(0, 30), time(16, 30))
    gpt = catalog.lookup(provider="openai", model="gpt-4o", at=AT)
    assert gpt is not None and gpt.changes_at == ()


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        (time(16, 30), time(16, 30)),  # naive is UTC
        (time(0, 30, tzinfo=timezone(timedelta(hours=8))), time(16, 30)),  # wraps to the day before
        (time(23, 0, tzinfo=timezone(timedelta(hours=-2))), time(1, 0)),  # wraps to the day after
        (time(12, 15, tzinfo=UTC), time(12, 15)),
    ],
)
def test_times_of_day_are_read_as_utc(value: time, utc: time) -> None:
    assert _utc_time(value) == utc


# --- the book: prices that change within a day ------------------------------------------------------------------


def test_one_cached_day_follows_an_off_peak_window_to_the_microsecond() -> None:
    book = PriceBook()
    usage = Usage(input_tokens=1_000_000)

    def cost_at(hour: int, minute: int, micro: int = 0) -> int:
        at = datetime(2025, 9, 1, hour, minute, 0, micro, tzinfo=UTC)
        return book.price(provider="deepseek", model="deepseek-chat", operation="chat", usage=usage, at=at).cost_nano

    standard, off_peak = 270_000_000, 135_000_000
    assert cost_at(0, 29, 999_999) == off_peak
    assert cost_at(0, 30) == standard
    assert cost_at(16, 29, 999_999) == standard
    assert cost_at(16, 30) == off_peak
    assert book.cache_info().misses == 1, "one resolution of the day, split at the windows"


def test_an_override_taking_effect_mid_day_splits_the_day() -> None:
    overrides = PriceOverrides.parse(
        '[[prices]]\nmodel = "gpt-4o"\ndiscount = "0.5"\neffective_from = 2025-09-01T15:00:00+02:00\n', source="t"
    )
    book = PriceBook(overrides=overrides)
    usage = Usage(input_tokens=1_000_000)
    before = book.price(
        provider="openai", model="gpt-4o", operation="c", usage=usage, at=datetime(2025, 9, 1, 12, 59, tzinfo=UTC)
    )
    after = book.price(
        provider="openai", model="gpt-4o", operation="c", usage=usage, at=datetime(2025, 9, 1, 13, tzinfo=UTC)
    )
    assert (before.cost_nano, after.cost_nano) == (2_500_000_000, 1_250_000_000)
    assert after.unit_prices["discount"] == "0.5" and "discount" not in before.unit_prices
    assert book.show("gpt-4o", at=datetime(2025, 9, 1, 13, tzinfo=UTC)).source == "catalog+override"
    assert book.show("gpt-4o", at=datetime(2025, 9, 1, 12, tzinfo=UTC)).source == "catalog"


def test_unknown_models_cannot_be_shown_or_quoted_but_are_priced_at_zero() -> None:
    book = PriceBook()
    with pytest.raises(UnknownModelError, match="no price for model 'nobody-prices-this'"):
        book.show("nobody-prices-this", at=AT)
    with pytest.raises(UnknownModelError):
        book.quote("nobody-prices-this", usage=Usage(input_tokens=1), at=AT)
    priced = book.price(provider="acme", model="nobody-prices-this", operation="c", usage=Usage(input_tokens=9), at=AT)
    assert (priced.priced, priced.cost_nano, priced.unit_prices) == (False, 0, {})
    assert (priced.canonical_model, priced.provider) == ("nobody-prices-this", "acme")


def test_an_entry_that_only_discounts_an_unknown_model_prices_nothing() -> None:
    """A discount needs prices to discount: without a catalog entry the model stays unpriced."""
    book = PriceBook(overrides=PriceOverrides.parse('[[prices]]\nmodel = "mystery"\ndiscount = "0.1"\n', source="t"))
    assert not book.price(provider=None, model="mystery", operation="c", usage=Usage(input_tokens=5), at=AT).priced


def test_quote_is_exact_and_price_is_its_rounding() -> None:
    book = PriceBook()
    usage = Usage(input_tokens=1)  # 0.15 USD per million tokens: 150 nano-USD for one
    quote = book.quote("gpt-4o-mini", usage=usage, provider="openai", at=AT)
    priced = book.price(provider="openai", model="gpt-4o-mini", operation="c", usage=usage, at=AT)
    assert quote.cost == D("0.00000015")
    assert quote.cost_nano == priced.cost_nano == 150
    assert quote.unit_prices == priced.unit_prices
