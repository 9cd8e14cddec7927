"""prices.overrides: how an overrides file is read (amounts, tiers, effective dates), which entry applies to an
event, where an entry's prices replace the catalog's, and the instants inside a day where prices change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from farebox.core.pricing import TieredPrice, UnitPrices
from farebox.prices import OverrideEntry, PriceOverrides, PriceOverridesError

D = Decimal
AT = datetime(2025, 9, 1, 12, tzinfo=UTC)


def parse(toml: str) -> PriceOverrides:
    return PriceOverrides.parse(toml, source="prices.toml")


def entry(toml_fields: str) -> OverrideEntry:
    return parse(f'[[prices]]\nmodel = "m"\n{toml_fields}\n').entries[0]


# --- reading amounts --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "name", "value"),
    [
        ('input_mtok = "2.50"', "input_mtok", D("2.50")),
        ("input_mtok = 3", "input_mtok", D(3)),
        ('output_mtok = " 15 "', "output_mtok", D(15)),  # blanks around a string are dropped
        ('cached_input_mtok = "0.000001"', "cached_input_mtok", D("0.000001")),
        ('cache_write_mtok = "0"', "cache_write_mtok", D(0)),  # free is a price
        ('per_mchars = "15"', "per_mchars", D(15)),
        ('per_hour = "0.05"', "per_hour", D("0.05")),
        ('per_unit = "1e-3"', "per_unit", D("0.001")),
    ],
)
def test_amounts_are_read_exactly(fields: str, name: str, value: Decimal) -> None:
    prices = entry(fields).prices
    assert getattr(prices, name) == value
    assert isinstance(getattr(prices, name), Decimal)
    others = {
        "input_mtok",
        "cached_input_mtok",
        "cache_write_mtok",
        "output_mtok",
        "per_mchars",
        "per_hour",
        "per_unit",
    }
    assert all(getattr(prices, other) is None for other in others - {name})


@pytest.mark.parametrize(
    ("text", "discount"), [('"0"', D(0)), ('"0.2"', D("0.2")), ("1", D(1)), ('"0.125"', D("0.125"))]
)
def test_a_discount_is_kept_apart_from_the_prices(text: str, discount: Decimal) -> None:
    found = entry(f"discount = {text}")
    assert found.discount == discount
    assert found.prices.discount == 0, "the discount is laid over the catalog's prices, not stored in the entry's"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ('input_mtok = "-0.01"', "input_mtok: Input should be greater than or equal to 0"),
        ('per_unit = "Infinity"', "per_unit"),
        ("output_mtok = 15.0", 'output_mtok: write amounts as decimal strings ("15.0"), not TOML floats'),
        ("discount = 0.5", "discount: write amounts as decimal strings"),
        ('discount = "-0.1"', "discount: Input should be greater than or equal to 0"),
        ("per_hour = false", "per_hour: an amount is a decimal string, not a boolean"),
        ('input_mtok = { base = "1", tiers = [{ start = 10, price = 2.5 }] }', "tiers[0].price: write amounts"),
        ('input_mtok = { base = "1", tiers = [{ start = "10", price = "2" }] }', "tiers[0].start"),
        ('input_mtok = { base = "1", tiers = [{ start = 1.5, price = "2" }] }', "tiers[0].start"),
        ('input_mtok = { base = "1" }', "input_mtok.tiers: Field required"),
        ('input_mtok = { base = "1", tiers = [{ start = 1, price = "2" }], cap = "3" }', "input_mtok.cap: Extra"),
        ('per_hour = { base = "1", tiers = [{ start = 1, price = "2" }] }', "per_hour: Decimal input should be"),
        ('provider = ""\nper_unit = "1"', "provider: String should have at least 1 character"),
        ('operation = ""\nper_unit = "1"', "operation: String should have at least 1 character"),
    ],
)
def test_bad_amounts_are_refused_naming_entry_and_field(fields: str, message: str) -> None:
    with pytest.raises(PriceOverridesError) as caught:
        parse(f'[[prices]]\nmodel = "m"\n{fields}\n')
    text = str(caught.value)
    assert text.startswith('prices.toml: prices[0] (model "m").'), text
    assert message in text


def test_tiers_are_sorted_by_start_whatever_their_order_in_the_file() -> None:
    found = entry('input_mtok = { base = "1", tiers = [{ start = 500, price = "3" }, { start = 100, price = "2" }] }')
    assert found.prices.input_mtok == TieredPrice(base=D(1), tiers=((100, D(2)), (500, D(3))))


def test_an_entry_may_tier_one_kind_of_token_and_not_another() -> None:
    found = entry('input_mtok = { base = "3", tiers = [{ start = 200000, price = "6" }] }\noutput_mtok = "15"')
    assert isinstance(found.prices.input_mtok, TieredPrice)
    assert found.prices.output_mtok == D(15)
    assert found.prices.tier_starts() == (200_000,)


# --- effective dates --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2025-03-01", datetime(2025, 3, 1, tzinfo=UTC)),  # a date is midnight UTC
        ("2025-03-01T12:00:00Z", datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("2025-03-01T12:00:00", datetime(2025, 3, 1, 12, tzinfo=UTC)),  # no offset: UTC
        ("2025-03-01T12:00:00+05:30", datetime(2025, 3, 1, 6, 30, tzinfo=UTC)),
        ("2025-03-01T00:15:00-02:00", datetime(2025, 3, 1, 2, 15, tzinfo=UTC)),
        ('"2025-03-01"', datetime(2025, 3, 1, tzinfo=UTC)),  # a string in ISO form is read too
        ('"2025-03-01T12:00:00+01:00"', datetime(2025, 3, 1, 11, tzinfo=UTC)),
    ],
)
def test_effective_from_is_an_aware_utc_instant(text: str, instant: datetime) -> None:
    found = entry(f'per_unit = "1"\neffective_from = {text}')
    assert found.effective_from == instant
    assert found.effective_from is not None and found.effective_from.utcoffset() == timedelta(0)


def test_two_entries_for_one_model_need_different_effective_dates() -> None:
    overrides = parse(
        '[[prices]]\nmodel = "m"\nper_unit = "1"\n'
        '[[prices]]\nmodel = "m"\nper_unit = "2"\neffective_from = 2025-03-01\n'
        '[[prices]]\nmodel = "m"\nper_unit = "3"\neffective_from = 2025-03-01T00:00:01Z\n'
    )
    assert [e.index for e in overrides.entries] == [0, 1, 2]
    with pytest.raises(PriceOverridesError, match=r"prices\[1\] .*effective_from 2025-03-01T00:00:00\+00:00.* repeats"):
        parse(
            '[[prices]]\nmodel = "m"\nper_unit = "1"\neffective_from = 2025-03-01\n'
            '[[prices]]\nmodel = "m"\nper_unit = "2"\neffective_from = 2025-03-01T00:00:00Z\n'
        )


# --- describe and applied_to ------------------------------------------------------------------------------------


def test_describe_names_the_entry_by_what_sets_it_apart() -> None:
    overrides = parse(
        '[[prices]]\nmodel = "gpt-4o"\ndiscount = "0.2"\n'
        '[[prices]]\nmodel = "vm-small"\nprovider = "mycloud"\noperation = "compute.vm.running"\n'
        'per_hour = "0.05"\neffective_from = 2025-03-01T12:00:00Z\n'
    )
    assert [e.describe() for e in overrides.entries] == [
        'prices[0] (model "gpt-4o")',
        'prices[1] (model "vm-small", provider "mycloud", operation "compute.vm.running", '
        "effective_from 2025-03-01T12:00:00+00:00)",
    ]


CATALOG = UnitPrices(
    input_mtok=D("2.5"), cached_input_mtok=D("1.25"), output_mtok=D(10), per_hour=D("0.36"), discount=D("0.1")
)


def test_fields_left_out_keep_the_catalogs_and_fields_set_replace_them() -> None:
    applied = entry('output_mtok = "8"\nper_unit = "0.04"').applied_to(CATALOG)
    assert applied == UnitPrices(
        input_mtok=D("2.5"),
        cached_input_mtok=D("1.25"),
        output_mtok=D(8),
        per_hour=D("0.36"),
        per_unit=D("0.04"),
        discount=D("0.1"),
    )


def test_a_discount_replaces_the_base_discount_and_none_keeps_it() -> None:
    assert entry('discount = "0.3"').applied_to(CATALOG).discount == D("0.3")
    assert entry('discount = "0"').applied_to(CATALOG).discount == 0, "zero is a discount that removes one"
    assert entry('input_mtok = "1"').applied_to(CATALOG).discount == D("0.1")


def test_a_zero_price_replaces_the_catalogs() -> None:
    assert entry('input_mtok = "0"').applied_to(CATALOG).input_mtok == 0


def test_applied_to_nothing_is_the_entrys_own_prices() -> None:
    applied = entry('per_hour = "0.05"').applied_to(UnitPrices())
    assert applied == UnitPrices(per_hour=D("0.05"))


# --- which entry applies ----------------------------------------------------------------------------------------

RULES = PriceOverrides.parse(
    "\n".join(
        [
            '[[prices]]\nmodel = "m"\nper_unit = "1"',  # 0: general
            '[[prices]]\nmodel = "m"\nper_unit = "2"\neffective_from = 2025-06-01',  # 1: general, later
            '[[prices]]\nmodel = "m"\nprovider = "p"\nper_unit = "3"',  # 2: provider p
            '[[prices]]\nmodel = "m"\noperation = "op"\nper_unit = "4"',  # 3: operation op
            '[[prices]]\nmodel = "m"\nprovider = "p"\noperation = "op"\nper_unit = "5"',  # 4: both
            '[[prices]]\nmodel = "m"\nprovider = "q"\nper_unit = "6"\neffective_from = 2030-01-01',  # 5: future
            '[[prices]]\nmodel = "other"\nper_unit = "7"',  # 6: another model
        ]
    ),
    source="rules",
)


@pytest.mark.parametrize(
    ("model", "provider", "operation", "at", "index"),
    [
        pytest.param("m", "x", "chat", datetime(2025, 1, 1, tzinfo=UTC), 0, id="general-before-dated"),
        pytest.param("m", "x", "chat", datetime(2025, 6, 1, tzinfo=UTC), 1, id="dated-from-its-first-instant"),
        pytest.param(
            "m", "x", "chat", datetime(2025, 5, 31, 23, 59, 59, 999_999, tzinfo=UTC), 0, id="dated-not-before"
        ),
        pytest.param("m", "p", "chat", AT, 2, id="provider-beats-later-general"),
        pytest.param("m", "x", "op", AT, 3, id="operation-beats-general"),
        pytest.param("m", "p", "op", AT, 4, id="operation-and-provider-beat-all"),
        pytest.param("m", "q", "chat", AT, 1, id="future-provider-entry-not-yet"),
        pytest.param("m", "q", "chat", datetime(2030, 1, 1, tzinfo=UTC), 5, id="future-provider-entry-in-force"),
        pytest.param("m", "", "op", AT, 4, id="unknown-provider-matches-any"),
        pytest.param("other", "p", "op", AT, 6, id="other-model"),
        pytest.param("M", "p", "op", AT, None, id="model-is-case-sensitive"),
        pytest.param("nothing", "p", "op", AT, None, id="no-entry"),
    ],
)
def test_select_the_most_specific_then_latest_entry(
    model: str, provider: str, operation: str, at: datetime, index: int | None
) -> None:
    found = RULES.select(model=model, provider=provider, operation=operation, at=at)
    assert (found.index if found else None) == index


def test_operation_specificity_outranks_provider_specificity() -> None:
    overrides = parse(
        '[[prices]]\nmodel = "m"\nprovider = "p"\nper_unit = "1"\n'
        '[[prices]]\nmodel = "m"\noperation = "op"\nper_unit = "2"\n'
    )
    found = overrides.select(model="m", provider="p", operation="op", at=AT)
    assert found is not None and found.index == 1


def test_among_equally_specific_dated_entries_the_latest_started_wins_whatever_the_file_order() -> None:
    overrides = parse(
        '[[prices]]\nmodel = "m"\nper_unit = "2"\neffective_from = 2025-05-01\n'
        '[[prices]]\nmodel = "m"\nper_unit = "1"\neffective_from = 2025-01-01\n'
    )
    found = overrides.select(model="m", provider="", operation="", at=AT)
    assert found is not None and found.index == 0


def test_an_entry_with_a_provider_still_applies_when_the_event_names_none() -> None:
    """An event whose provider is unknown ("") is matched by model: the first provider entry in the file."""
    overrides = parse(
        '[[prices]]\nmodel = "m"\nprovider = "a"\nper_unit = "1"\n'
        '[[prices]]\nmodel = "m"\nprovider = "b"\nper_unit = "2"\n'
    )
    found = overrides.select(model="m", provider="", operation="", at=AT)
    assert found is not None and found.index == 0


# --- instants of change inside a day ----------------------------------------------------------------------------


def test_changes_on_lists_the_instants_strictly_inside_the_utc_day() -> None:
    overrides = parse(
        '[[prices]]\nmodel = "m"\nper_unit = "1"\n'
        '[[prices]]\nmodel = "m"\nper_unit = "2"\neffective_from = 2025-03-01\n'  # midnight: not inside
        '[[prices]]\nmodel = "m"\nper_unit = "3"\neffective_from = 2025-03-01T18:00:00Z\n'
        '[[prices]]\nmodel = "m"\nper_unit = "4"\neffective_from = 2025-03-01T06:00:00Z\n'
        '[[prices]]\nmodel = "m"\nprovider = "p"\nper_unit = "5"\neffective_from = 2025-03-01T06:00:00Z\n'
        '[[prices]]\nmodel = "m"\nper_unit = "6"\neffective_from = 2025-03-02T03:00:00+05:00\n'  # 1 March 22:00Z
        '[[prices]]\nmodel = "n"\nper_unit = "7"\neffective_from = 2025-03-01T09:00:00Z\n'
    )
    assert overrides.changes_on(model="m", day=date(2025, 3, 1)) == (
        datetime(2025, 3, 1, 6, tzinfo=UTC),  # once, though two entries start then
        datetime(2025, 3, 1, 18, tzinfo=UTC),
        datetime(2025, 3, 1, 22, tzinfo=UTC),
    )
    assert overrides.changes_on(model="m", day=date(2025, 3, 2)) == ()
    assert overrides.changes_on(model="n", day=date(2025, 3, 1)) == (datetime(2025, 3, 1, 9, tzinfo=UTC),)


# --- the file and its aliases -----------------------------------------------------------------------------------


def test_an_empty_file_has_no_entries_and_no_aliases() -> None:
    overrides = parse("")
    assert overrides.entries == () and dict(overrides.aliases) == {} and overrides.source == "prices.toml"


def test_aliases_are_kept_as_written_and_read_only() -> None:
    overrides = parse('[aliases]\n"fast" = "openai/gpt-4o-mini"\n"smart" = "claude-sonnet-4-5"\n')
    assert dict(overrides.aliases) == {"fast": "openai/gpt-4o-mini", "smart": "claude-sonnet-4-5"}
    with pytest.raises(TypeError):
        overrides.aliases["x"] = "y"  # type: ignore[index]  # read-only mapping


def test_an_alias_of_itself_is_refused() -> None:
    with pytest.raises(PriceOverridesError, match='aliases."loop": its target "loop" is itself an alias'):
        parse('[aliases]\n"loop" = "loop"\n')


def test_load_names_the_path_in_errors_and_as_source(tmp_path: Path) -> None:
    path = tmp_path / "rates.toml"
    path.write_text('[[prices]]\nmodel = "m"\nper_unit = "1"\n', encoding="utf-8")
    assert PriceOverrides.load(path).source == str(path)
    path.write_bytes(b'[[prices]]\nmodel = "m"\nper_unit = 1.5\n')
    with pytest.raises(PriceOverridesError, match=f"^{path}: prices\\[0\\]"):
        PriceOverrides.load(path)
    with pytest.raises(PriceOverridesError, match=f"^{tmp_path}: cannot read the price overrides file: "):
        PriceOverrides.load(tmp_path)  # a directory


def test_a_second_bad_field_is_counted_not_listed() -> None:
    with pytest.raises(PriceOverridesError) as caught:
        parse('[[prices]]\nmodel = "m"\nper_unit = 1.5\nper_hour = 2.5\noutput_mtok = 3.5\n')
    assert str(caught.value).endswith("(and 2 more)")


def test_an_error_in_a_later_entry_whose_model_is_not_text_is_located_by_index() -> None:
    with pytest.raises(PriceOverridesError, match=r"^prices.toml: prices\[1\]\.model: Input should be a valid string"):
        parse('[[prices]]\nmodel = "ok"\nper_unit = "1"\n[[prices]]\nmodel = 5\nper_unit = "1"\n')


def test_offsets_in_effective_from_are_compared_as_instants() -> None:
    overrides = parse('[[prices]]\nmodel = "m"\nper_unit = "1"\neffective_from = 2025-03-01T08:00:00+08:00\n')
    just_before = datetime(2025, 2, 28, 23, 59, 59, tzinfo=UTC)
    at_start = datetime(2025, 3, 1, 8, tzinfo=timezone(timedelta(hours=8)))
    assert overrides.select(model="m", provider="", operation="", at=just_before) is None
    assert overrides.select(model="m", provider="", operation="", at=at_start) is not None
