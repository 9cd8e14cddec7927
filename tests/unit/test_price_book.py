"""prices: the catalog via genai-prices, the overrides file, aliases, effective dates, the per-day cache."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import genai_prices
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farebox.core.money import to_nano
from farebox.core.pricing import Usage
from farebox.prices import (
    DEFAULT_OVERRIDES_PATH,
    PriceBook,
    PriceOverrides,
    PriceOverridesError,
    UnknownModelError,
)

D = Decimal
AT = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)
CHAT = "chat.completions"


def book_with(tmp_path: Path, toml: str) -> PriceBook:
    path = tmp_path / "prices.toml"
    path.write_text(toml)
    return PriceBook.load(path)


@pytest.fixture(scope="module")
def catalog_book() -> PriceBook:
    return PriceBook.load(None)


# --- the catalog ------------------------------------------------------------------------------------------------


def test_gpt_4o_from_the_catalog(catalog_book: PriceBook) -> None:
    priced = catalog_book.price(
        provider="openai", model="gpt-4o", operation=CHAT, usage=Usage(input_tokens=1000, output_tokens=100), at=AT
    )
    assert priced.priced
    assert priced.cost_nano == 3_500_000  # $0.0035
    assert priced.canonical_model == "gpt-4o"
    assert priced.provider == "openai"
    assert priced.unit_prices == {"input_mtok": "2.5", "cached_input_mtok": "1.25", "output_mtok": "10"}


@pytest.mark.parametrize(
    ("provider", "model", "want_provider", "want_model"),
    [
        pytest.param(None, "gpt-4o", "openai", "gpt-4o", id="bare"),
        pytest.param(None, "openai/gpt-4o", "openai", "gpt-4o", id="provider-prefix"),
        pytest.param("openai", "openai/gpt-4o", "openai", "gpt-4o", id="prefix-and-provider"),
        pytest.param(None, "gpt-4o-2024-08-06", "openai", "gpt-4o", id="dated-snapshot"),
        pytest.param(None, "GPT-4O", "openai", "gpt-4o", id="case"),
        pytest.param("azure", "gpt-4o", "azure", "gpt-4o", id="azure-falls-back-to-openai-prices"),
        pytest.param("mock", "gpt-4o", "mock", "gpt-4o", id="provider-unknown-to-the-catalog"),
        pytest.param("gemini", "gemini-2.5-flash", "google", "gemini-2.5-flash", id="provider-alias"),
        pytest.param("openrouter", "openai/gpt-4o", "openrouter", "openai/gpt-4o", id="openrouter-slash-id"),
        pytest.param(None, "anthropic/claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5", id="anthropic-prefix"),
    ],
)
def test_names_resolve_to_catalog_provider_and_canonical_model(
    catalog_book: PriceBook, provider: str | None, model: str, want_provider: str, want_model: str
) -> None:
    priced = catalog_book.price(provider=provider, model=model, operation=CHAT, usage=Usage(input_tokens=10), at=AT)
    assert (priced.priced, priced.provider, priced.canonical_model) == (True, want_provider, want_model)


@pytest.mark.parametrize(
    ("provider", "model", "want_provider"),
    [
        (None, "no-such-model", ""),
        ("openai", "no-such-model", "openai"),
        (None, "openai/no-such-model", "openai"),
        ("mock", "no-such-model", "mock"),
        (None, "", ""),
    ],
)
def test_unknown_model_is_unpriced_and_never_raises(
    catalog_book: PriceBook, provider: str | None, model: str, want_provider: str
) -> None:
    priced = catalog_book.price(
        provider=provider, model=model, operation=CHAT, usage=Usage(input_tokens=10, output_tokens=5), at=AT
    )
    assert (priced.priced, priced.cost_nano, priced.unit_prices) == (False, 0, {})
    assert priced.canonical_model == model
    assert priced.provider == want_provider


def test_tier_prices_charged_are_the_tier_applied(catalog_book: PriceBook) -> None:
    small = catalog_book.price(
        provider=None, model="claude-sonnet-4-5", operation=CHAT, usage=Usage(input_tokens=200_000), at=AT
    )
    large = catalog_book.price(
        provider=None, model="claude-sonnet-4-5", operation=CHAT, usage=Usage(input_tokens=200_001), at=AT
    )
    assert small.unit_prices["input_mtok"] == "3"
    assert small.cost_nano == 600_000_000
    assert large.unit_prices["input_mtok"] == "6"
    assert large.cost_nano == 1_200_006_000
    assert not any(">" in key for key in large.unit_prices)


def test_naive_and_offset_times_are_utc(catalog_book: PriceBook) -> None:
    usage = Usage(input_tokens=1000)
    naive = catalog_book.price(provider=None, model="gpt-4o", operation=CHAT, usage=usage, at=AT.replace(tzinfo=None))
    offset = catalog_book.price(
        provider=None, model="gpt-4o", operation=CHAT, usage=usage, at=AT.astimezone(timezone(timedelta(hours=-5)))
    )
    assert naive == offset


def test_catalog_off_peak_window_inside_a_day_matches_genai_prices(catalog_book: PriceBook) -> None:
    # deepseek-chat has a time-of-day price in the catalog: one cached day must still follow the clock.
    usage = Usage(input_tokens=100_000, output_tokens=10_000)
    day = datetime(2025, 9, 1, tzinfo=UTC)
    costs = set()
    for hour in (0, 1, 10, 16, 17, 23):
        at = day + timedelta(hours=hour)
        got = catalog_book.quote("deepseek-chat", usage=usage, at=at).cost
        want = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=100_000, output_tokens=10_000), "deepseek-chat", genai_request_timestamp=at
        ).total_price
        assert got == want, at
        costs.add(got)
    assert len(costs) == 2  # off-peak and standard, on one cached day


def test_show_and_quote(catalog_book: PriceBook) -> None:
    shown = catalog_book.show("openai/gpt-4o-2024-08-06", at=AT)
    assert (shown.provider, shown.canonical_model, shown.source, shown.override) == (
        "openai",
        "gpt-4o",
        "catalog",
        None,
    )
    assert shown.prices.as_dict()["output_mtok"] == "10"
    quote = catalog_book.quote("gpt-4o", usage=Usage(input_tokens=1000, output_tokens=100), at=AT)
    assert (quote.cost, quote.cost_nano) == (D("0.0035"), 3_500_000)
    assert catalog_book.show("gpt-4o").canonical_model == "gpt-4o"  # now
    with pytest.raises(UnknownModelError):
        catalog_book.show("no-such-model")
    with pytest.raises(UnknownModelError):
        catalog_book.quote("no-such-model", usage=Usage())


# --- overrides ----------------------------------------------------------------------------------------------------


def test_alias_collapses_to_the_canonical_model(tmp_path: Path) -> None:
    book = book_with(tmp_path, '[aliases]\n"my-fast-model" = "openai/gpt-4o-mini"\n"house" = "gpt-4o"\n')
    usage = Usage(input_tokens=1000, output_tokens=100)
    aliased = book.price(provider=None, model="my-fast-model", operation=CHAT, usage=usage, at=AT)
    direct = book.price(provider="openai", model="gpt-4o-mini", operation=CHAT, usage=usage, at=AT)
    assert aliased == direct
    assert (aliased.canonical_model, aliased.provider) == ("gpt-4o-mini", "openai")
    assert book.price(provider="azure", model="house", operation=CHAT, usage=usage, at=AT).provider == "azure"


def test_discount_only_entry_is_a_negotiated_rate_on_catalog_prices(tmp_path: Path) -> None:
    book = book_with(tmp_path, '[[prices]]\nmodel = "gpt-4o"\ndiscount = "0.20"\n')
    priced = book.price(
        provider="openai",
        model="gpt-4o-2024-08-06",
        operation=CHAT,
        usage=Usage(input_tokens=1000, output_tokens=100),
        at=AT,
    )
    assert priced.cost_nano == 2_800_000  # $0.0035 less 20%
    assert priced.unit_prices == {
        "input_mtok": "2.5",
        "cached_input_mtok": "1.25",
        "output_mtok": "10",
        "discount": "0.20",
    }
    shown = book.show("gpt-4o")
    assert shown.source == "catalog+override"
    assert shown.override == 'prices[0] (model "gpt-4o")'


def test_override_fields_replace_catalog_fields_one_by_one(tmp_path: Path) -> None:
    book = book_with(tmp_path, '[[prices]]\nmodel = "gpt-4o"\ninput_mtok = "2"\n')
    assert book.show("gpt-4o").prices.as_dict() == {"input_mtok": "2", "cached_input_mtok": "1.25", "output_mtok": "10"}


def test_entry_for_a_dated_name_applies_to_its_canonical_model(tmp_path: Path) -> None:
    book = book_with(tmp_path, '[[prices]]\nmodel = "openai/gpt-4o-2024-08-06"\ndiscount = "0.5"\n')
    priced = book.price(provider=None, model="gpt-4o", operation=CHAT, usage=Usage(input_tokens=1000), at=AT)
    assert priced.cost_nano == 1_250_000


def test_provider_specific_entry(tmp_path: Path) -> None:
    book = book_with(
        tmp_path,
        '[[prices]]\nmodel = "gpt-4o"\ndiscount = "0.1"\n\n'
        '[[prices]]\nmodel = "gpt-4o"\nprovider = "azure"\ndiscount = "0.3"\n',
    )
    usage = Usage(input_tokens=1_000_000)

    def cost_via(provider: str | None) -> int:
        return book.price(provider=provider, model="gpt-4o", operation=CHAT, usage=usage, at=AT).cost_nano

    assert cost_via("openai") == 2_250_000_000
    assert cost_via("azure") == 1_750_000_000
    assert cost_via(None) == 2_250_000_000  # resolved to openai by the catalog


def test_non_llm_meters_are_priced_per_operation(tmp_path: Path) -> None:
    book = book_with(
        tmp_path,
        """
[[prices]]
model = "vm-small"
operation = "compute.vm.running"
per_hour = "0.05"

[[prices]]
model = "vm-small"
operation = "compute.vm.paused"
per_hour = "0.005"

[[prices]]
model = "eleven-turbo"
per_mchars = "30"
""",
    )
    hour = Usage(seconds=D(3600))
    running = book.price(provider="mycloud", model="vm-small", operation="compute.vm.running", usage=hour, at=AT)
    paused = book.price(provider="mycloud", model="vm-small", operation="compute.vm.paused", usage=hour, at=AT)
    other = book.price(provider="mycloud", model="vm-small", operation="compute.vm.stopped", usage=hour, at=AT)
    voice = book.price(
        provider=None, model="eleven-turbo", operation="audio.speech", usage=Usage(characters=1000), at=AT
    )
    assert (running.cost_nano, running.unit_prices, running.provider) == (50_000_000, {"per_hour": "0.05"}, "mycloud")
    assert paused.cost_nano == 5_000_000
    assert not other.priced
    assert voice.cost_nano == 30_000_000
    assert book.show("vm-small", operation="compute.vm.paused").source == "override"


@pytest.mark.parametrize("specific_first", [True, False])
def test_operation_specific_entry_beats_a_general_one(tmp_path: Path, specific_first: bool) -> None:
    general = '[[prices]]\nmodel = "gpt-4o"\ndiscount = "0.1"\n\n'
    specific = '[[prices]]\nmodel = "gpt-4o"\noperation = "batch"\ndiscount = "0.5"\n\n'
    book = book_with(tmp_path, specific + general if specific_first else general + specific)
    usage = Usage(input_tokens=1_000_000)
    assert book.price(provider=None, model="gpt-4o", operation="batch", usage=usage, at=AT).cost_nano == 1_250_000_000
    assert book.price(provider=None, model="gpt-4o", operation=CHAT, usage=usage, at=AT).cost_nano == 2_250_000_000


def test_event_without_provider_takes_the_first_matching_provider_entry(tmp_path: Path) -> None:
    book = book_with(
        tmp_path,
        '[[prices]]\nmodel = "tts-x"\nprovider = "a"\nper_mchars = "1"\n\n'
        '[[prices]]\nmodel = "tts-x"\nprovider = "b"\nper_mchars = "2"\n',
    )
    usage = Usage(characters=1_000_000)
    assert book.price(provider=None, model="tts-x", operation="x", usage=usage, at=AT).provider == "a"
    assert book.price(provider="b", model="tts-x", operation="x", usage=usage, at=AT).cost_nano == 2 * 10**9


def test_provider_prefix_declared_by_an_entry(tmp_path: Path) -> None:
    book = book_with(tmp_path, '[[prices]]\nmodel = "vm-small"\nprovider = "mycloud"\nper_hour = "1"\n')
    priced = book.price(provider=None, model="mycloud/vm-small", operation="x", usage=Usage(seconds=D(36)), at=AT)
    assert (priced.priced, priced.provider, priced.canonical_model, priced.cost_nano) == (
        True,
        "mycloud",
        "vm-small",
        10_000_000,
    )
    bare = book.price(provider=None, model="vm-small", operation="x", usage=Usage(seconds=D(36)), at=AT)
    assert (bare.priced, bare.provider) == (True, "mycloud")
    assert not book.price(provider="othercloud", model="vm-small", operation="x", usage=Usage(), at=AT).priced


def test_custom_model_with_tiers(tmp_path: Path) -> None:
    book = book_with(
        tmp_path,
        '[[prices]]\nmodel = "my-llm"\noutput_mtok = 15\n'
        'input_mtok = { base = "3", tiers = [{ start = 200000, price = "6" }, { start = 100000, price = "4" }] }\n',
    )

    def price(n: int) -> int:
        return book.price(provider=None, model="my-llm", operation=CHAT, usage=Usage(input_tokens=n), at=AT).cost_nano

    assert price(100_000) == 300_000_000
    assert price(100_001) == 400_004_000
    assert price(200_001) == 1_200_006_000
    assert book.show("my-llm").prices.as_dict() == {
        "input_mtok": "3",
        "input_mtok>100000": "4",
        "input_mtok>200000": "6",
        "output_mtok": "15",
    }


EFFECTIVE = """
[[prices]]
model = "gpu"
per_hour = "1"
effective_from = 2025-01-01

[[prices]]
model = "gpu"
per_hour = "2"
effective_from = 2025-06-01

[[prices]]
model = "gpu"
per_hour = "3"
effective_from = 2025-07-01T12:00:00Z

[[prices]]
model = "gpu"
per_hour = "4"
effective_from = 2025-07-01T15:30:00+02:00
"""


@pytest.mark.parametrize(
    ("at", "per_hour"),
    [
        (datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), None),
        (datetime(2025, 1, 1, tzinfo=UTC), "1"),
        (datetime(2025, 5, 31, 23, 59, 59, tzinfo=UTC), "1"),
        (datetime(2025, 6, 1, tzinfo=UTC), "2"),
        (datetime(2025, 7, 1, 11, 59, 59, 999999, tzinfo=UTC), "2"),
        (datetime(2025, 7, 1, 12, 0, tzinfo=UTC), "3"),
        (datetime(2025, 7, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))), "3"),  # 12:00 UTC
        (datetime(2025, 7, 1, 13, 29, 59, tzinfo=UTC), "3"),
        (datetime(2025, 7, 1, 13, 30, tzinfo=UTC), "4"),
        (datetime(2026, 1, 1, tzinfo=UTC), "4"),
    ],
)
def test_latest_entry_not_after_the_event_applies(tmp_path: Path, at: datetime, per_hour: str | None) -> None:
    book = book_with(tmp_path, EFFECTIVE)
    # Warm the day's cache from an earlier instant, so a later one must find its own segment.
    book.price(provider=None, model="gpu", operation="x", usage=Usage(), at=at.replace(hour=0, minute=0, second=0))
    priced = book.price(provider=None, model="gpu", operation="x", usage=Usage(seconds=D(3600)), at=at)
    assert priced.unit_prices.get("per_hour") == per_hour
    assert priced.priced is (per_hour is not None)


def test_override_effective_later_falls_back_to_catalog(tmp_path: Path) -> None:
    book = book_with(tmp_path, '[[prices]]\nmodel = "gpt-4o"\ninput_mtok = "1"\neffective_from = 2030-01-01\n')
    usage = Usage(input_tokens=1_000_000)
    assert book.price(provider=None, model="gpt-4o", operation=CHAT, usage=usage, at=AT).cost_nano == 2_500_000_000
    later = datetime(2030, 1, 1, tzinfo=UTC)
    assert book.price(provider=None, model="gpt-4o", operation=CHAT, usage=usage, at=later).cost_nano == 1_000_000_000


def test_shipped_example_overrides_parse_and_price() -> None:
    book = PriceBook.load(DEFAULT_OVERRIDES_PATH)
    hour = Usage(seconds=D(3600))
    assert (
        book.price(provider=None, model="vm-small", operation="compute.vm.running", usage=hour, at=AT).cost_nano
        == 50_000_000
    )
    voice = book.price(
        provider="elevenlabs", model="eleven-turbo", operation="audio.speech", usage=Usage(characters=1_000_000), at=AT
    )
    assert voice.cost_nano == 30 * 10**9


# --- bad overrides files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[[prices]]\nmodel = "x"\ninput_mtok = 2.5\n',
            'prices[0] (model "x").input_mtok: write amounts as decimal strings',
        ),
        (
            '[[prices]]\nmodel = "x"\nper_hour = "-1"\n',
            'prices[0] (model "x").per_hour: Input should be greater than or equal to 0',
        ),
        (
            '[[prices]]\nmodel = "x"\nper_hour = "abc"\n',
            'prices[0] (model "x").per_hour: Input should be a valid decimal',
        ),
        ('[[prices]]\nmodel = "x"\nper_hour = "NaN"\n', 'prices[0] (model "x").per_hour'),
        ('[[prices]]\nmodel = "x"\nper_hour = true\n', "not a boolean"),
        (
            '[[prices]]\nmodel = "x"\ndiscount = "1.5"\n',
            'prices[0] (model "x").discount: Input should be less than or equal to 1',
        ),
        ('[[prices]]\nmodel = "x"\nprice = "1"\n', 'prices[0] (model "x").price: Extra inputs are not permitted'),
        ('[[prices]]\nper_hour = "1"\n', "prices[0].model: Field required"),
        ('[[prices]]\nmodel = ""\nper_hour = "1"\n', "prices[0].model: String should have at least 1 character"),
        ('[[prices]]\nmodel = "x"\n', 'prices[0] (model "x"): sets no price'),
        ('[[prices]]\nmodel = "x"\nper_hour = "1"\neffective_from = 12:00:00\n', "effective_from must be a TOML date"),
        ('[[prices]]\nmodel = "x"\nper_hour = "1"\neffective_from = "soon"\n', "effective_from must be a TOML date"),
        (
            '[[prices]]\nmodel = "x"\ninput_mtok = { base = "1", tiers = [{ start = -1, price = "2" }] }\n',
            'prices[0] (model "x").input_mtok.tiers[0].start',
        ),
        (
            '[[prices]]\nmodel = "x"\ninput_mtok = { base = "1", tiers = [] }\n',
            "input_mtok.tiers: List should have at least 1",
        ),
        ('[[prices]]\nmodel = "x"\ninput_mtok = { base = 1.5, tiers = [] }\n', "input_mtok.base: write amounts"),
        (
            '[[prices]]\nmodel = "ok"\nper_hour = "1"\n[[prices]]\nmodel = "y"\nper_unit = 0.1\n',
            'prices[1] (model "y").per_unit',
        ),
        ("[prices]\nmodel = 1\n", "prices: Input should be a valid list"),
        ("[model]\n", "model: Extra inputs are not permitted"),
        ("prices = [1]\n", "prices[0]: Input should be a valid dictionary"),
        ('[[prices]]\nmodel = "x"\nper_hour = "1"\nper_unit = "x"\nper_mchars = "y"\n', "(and 1 more)"),
        ('[aliases]\n"a" = "b"\n"b" = "gpt-4o"\n', 'aliases."a": its target "b" is itself an alias'),
        ('[aliases]\n"a" = ""\n', "aliases.a: String should have at least 1 character"),
        (
            '[[prices]]\nmodel = "x"\nper_hour = "1"\n[[prices]]\nmodel = "x"\nper_hour = "2"\n',
            'prices[1] (model "x") repeats prices[0] (model "x")',
        ),
        (
            '[[prices]]\nmodel = "x"\nprovider = "p"\noperation = "o"\nper_hour = "1"\n'
            '[[prices]]\nmodel = "x"\nprovider = "p"\noperation = "o"\nper_hour = "2"\n',
            'prices[1] (model "x", provider "p", operation "o") repeats',
        ),
        ("[[prices]\n", "not valid TOML"),
    ],
)
def test_bad_overrides_file_names_file_and_entry(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(toml)
    with pytest.raises(PriceOverridesError) as caught:
        PriceBook.load(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_entries_that_collapse_to_one_canonical_model_are_refused(tmp_path: Path) -> None:
    toml = '[[prices]]\nmodel = "gpt-4o"\ndiscount = "0.1"\n[[prices]]\nmodel = "gpt-4o-2024-08-06"\ndiscount = "0.2"\n'
    with pytest.raises(PriceOverridesError, match=r'prices\[1\] \(model "gpt-4o"\) repeats prices\[0\]'):
        book_with(tmp_path, toml)


def test_missing_overrides_file(tmp_path: Path) -> None:
    with pytest.raises(PriceOverridesError, match="cannot read the price overrides file"):
        PriceBook.load(tmp_path / "missing.toml")


def test_overrides_parse_without_a_file() -> None:
    overrides = PriceOverrides.parse('[[prices]]\nmodel = "x"\nper_unit = 1\n', source="inline")
    assert overrides.entries[0].prices.per_unit == D(1)
    assert PriceOverrides().entries == ()
    with pytest.raises(PriceOverridesError, match="^inline: "):
        PriceOverrides.parse("model = 1", source="inline")


# --- the fast path equals genai-prices ------------------------------------------------------------------------


_GENAI_AT = datetime(2025, 9, 1, 12, tzinfo=UTC)
_tokens = st.integers(0, 400_000)


@st.composite
def _token_usage(draw: st.DrawFn, *, cache_write: bool = False) -> tuple[Usage, genai_prices.Usage]:
    cached, written, uncached, output = draw(_tokens), draw(_tokens) if cache_write else 0, draw(_tokens), draw(_tokens)
    total = cached + written + uncached
    ours = Usage(input_tokens=total, cached_input_tokens=cached, cache_write_tokens=written, output_tokens=output)
    theirs = genai_prices.Usage(
        input_tokens=total, cache_read_tokens=cached, cache_write_tokens=written, output_tokens=output
    )
    return ours, theirs


@st.composite
def _input_only(draw: st.DrawFn) -> tuple[Usage, genai_prices.Usage]:
    n = draw(st.integers(0, 10_000_000))
    return Usage(input_tokens=n), genai_prices.Usage(input_tokens=n)


@st.composite
def _characters(draw: st.DrawFn) -> tuple[Usage, genai_prices.Usage]:
    n = draw(st.integers(0, 10_000_000))
    return Usage(characters=n), genai_prices.Usage(input_characters=n)


@st.composite
def _seconds(draw: st.DrawFn) -> tuple[Usage, genai_prices.Usage]:
    s = draw(st.decimals(min_value=0, max_value=100_000, places=3))
    return Usage(seconds=s), genai_prices.Usage(audio_seconds=s)


_REAL_MODELS: list[tuple[str, str, Callable[[], st.SearchStrategy[tuple[Usage, genai_prices.Usage]]]]] = [
    ("openai", "gpt-4o", _token_usage),
    ("openai", "gpt-4o-mini", _token_usage),
    ("anthropic", "claude-sonnet-4-5", lambda: _token_usage(cache_write=True)),
    ("google", "gemini-2.5-flash", _token_usage),
    ("openai", "text-embedding-3-small", _input_only),
    ("openai", "tts-1", _characters),
    ("openai", "whisper-1", _seconds),
]


@pytest.mark.parametrize(("provider", "model", "usages"), _REAL_MODELS, ids=[m for _, m, _ in _REAL_MODELS])
def test_fast_path_equals_genai_prices(
    catalog_book: PriceBook,
    provider: str,
    model: str,
    usages: Callable[[], st.SearchStrategy[tuple[Usage, genai_prices.Usage]]],
) -> None:
    @settings(max_examples=150, deadline=None)
    @given(pair=usages())
    def check(pair: tuple[Usage, genai_prices.Usage]) -> None:
        ours, theirs = pair
        want = genai_prices.calc_price(
            theirs, model, provider_id=provider, genai_request_timestamp=_GENAI_AT
        ).total_price
        assert catalog_book.quote(model, usage=ours, provider=provider, at=_GENAI_AT).cost == want
        priced = catalog_book.price(provider=provider, model=model, operation=CHAT, usage=ours, at=_GENAI_AT)
        assert priced.cost_nano == to_nano(want)

    check()


def test_claude_tier_is_exercised_by_the_equality_property(catalog_book: PriceBook) -> None:
    usage = Usage(input_tokens=250_000, cached_input_tokens=30_000, cache_write_tokens=20_000, output_tokens=1000)
    theirs = genai_prices.Usage(
        input_tokens=250_000, cache_read_tokens=30_000, cache_write_tokens=20_000, output_tokens=1000
    )
    want = genai_prices.calc_price(theirs, "claude-sonnet-4-5", genai_request_timestamp=_GENAI_AT).total_price
    assert catalog_book.quote("claude-sonnet-4-5", usage=usage, at=_GENAI_AT).cost == want == D("1.3905")


def test_cache_is_per_day_and_bounded(tmp_path: Path) -> None:
    book = PriceBook(cache_size=2)
    for offset in range(5):
        at = datetime.combine(date(2025, 1, 1) + timedelta(days=offset), datetime.min.time(), tzinfo=UTC)
        assert book.price(provider=None, model="gpt-4o", operation=CHAT, usage=Usage(input_tokens=1), at=at).priced
    info = book.cache_info()
    assert (info.currsize, info.maxsize, info.misses) == (2, 2, 5)
