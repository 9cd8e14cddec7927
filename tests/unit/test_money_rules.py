"""core.money beyond the basics: every accepted spelling of an amount, the refusals, and the invariants that
tie parsing, rounding and presentation together."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.money import (
    NANO_PER_CENT,
    NANO_PER_USD,
    MoneyError,
    format_usd,
    nano_to_cents,
    nano_to_usd,
    parse_usd,
    to_nano,
    whole_cents,
)

D = Decimal
_nano = st.integers(min_value=-(10**21), max_value=10**21)


def test_units_relate_as_dollars_cents_and_nanos() -> None:
    assert NANO_PER_USD == 10**9
    assert NANO_PER_CENT * 100 == NANO_PER_USD


# --- parse_usd: what a user may type ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "nano"),
    [
        pytest.param("0", 0, id="zero"),
        pytest.param("-0", 0, id="negative-zero"),
        pytest.param("0.10", 100_000_000, id="trailing-zero"),
        pytest.param("+5", 5 * NANO_PER_USD, id="explicit-plus"),
        pytest.param("1e-9", 1, id="exponent-one-nano"),
        pytest.param("1E2", 100 * NANO_PER_USD, id="exponent-hundred"),
        pytest.param("\t12.5\n", 12_500_000_000, id="blanks-around"),
        pytest.param("999999999.999999999", 999_999_999_999_999_999, id="nine-places-at-a-billion"),
        pytest.param("-0.000000001", -1, id="negative-one-nano"),
        pytest.param(D("1.5"), 1_500_000_000, id="decimal"),
        pytest.param(D("2.000000000000"), 2 * NANO_PER_USD, id="decimal-with-zeros-past-nine-places"),
        pytest.param(10**20, 10**29, id="large-int"),
        pytest.param(-3, -3 * NANO_PER_USD, id="negative-int"),
    ],
)
def test_parse_usd_accepts_every_exact_spelling(value: str | int | Decimal, nano: int) -> None:
    result = parse_usd(value)
    assert result == nano
    assert type(result) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("0x10", "not a decimal amount: '0x10'", id="hex"),
        pytest.param("1,5", "not a decimal amount: '1,5'", id="comma"),
        pytest.param("$5", "not a decimal amount", id="currency-sign"),
        pytest.param("   ", "not a decimal amount", id="blank"),
        pytest.param("1e-10", "more precise than one nano-USD (9 decimal places): '1e-10'", id="exponent-too-fine"),
        pytest.param("-0.0000000015", "more precise than one nano-USD", id="negative-too-fine"),
        pytest.param(D("0.0000000001"), "more precise than one nano-USD", id="decimal-too-fine"),
        pytest.param("inf", "not a finite amount: 'inf'", id="inf"),
        pytest.param("-Infinity", "not a finite amount", id="minus-infinity"),
        pytest.param("sNaN", "not a finite amount", id="signalling-nan"),
        pytest.param(D("NaN"), "not a finite amount", id="decimal-nan"),
        pytest.param(0.1, "never floats", id="float"),
        pytest.param(2.0, "never floats", id="whole-float"),
        pytest.param(False, "never floats", id="bool"),
    ],
)
def test_parse_usd_refusals_say_why(value: object, message: str) -> None:
    with pytest.raises(MoneyError, match=re.escape(message)):
        parse_usd(value)  # type: ignore[arg-type]  # deliberately wrong types among the rows


def test_money_error_is_a_value_error() -> None:
    """Callers that catch ValueError (pydantic validators, typer) see a bad amount as bad input."""
    with pytest.raises(ValueError):
        parse_usd("nope")


# --- to_nano: the one rounding rule -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usd", "nano"),
    [
        ("0.0000000035", 4),  # 3.5 -> 4 (even)
        ("0.0000000045", 4),  # 4.5 -> 4 (even)
        ("0.00000000450001", 5),  # just over half rounds up
        ("0.00000000449999", 4),  # just under half rounds down
        ("-0.0000000015", -2),  # symmetric for negatives
        ("-0.0000000025", -2),
        ("-0.0000000005", 0),
        ("123.456789", 123_456_789_000),
        ("1E+3", 1000 * NANO_PER_USD),
    ],
)
def test_to_nano_rounds_half_to_even_both_signs(usd: str, nano: int) -> None:
    assert to_nano(D(usd)) == nano


@pytest.mark.parametrize("bad", ["Infinity", "-Infinity", "NaN", "sNaN"])
def test_to_nano_refuses_every_non_finite_value(bad: str) -> None:
    with pytest.raises(MoneyError, match="not a finite amount"):
        to_nano(D(bad))


@given(_nano)
def test_to_nano_inverts_nano_to_usd(nano: int) -> None:
    assert to_nano(nano_to_usd(nano)) == nano


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**9), max_value=10**9, places=12))
def test_to_nano_is_odd_symmetric(usd: Decimal) -> None:
    """Half-to-even has no bias towards either sign: the rounding of -x is minus the rounding of x."""
    assert to_nano(-usd) == -to_nano(usd)


@given(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**6), max_value=10**6, places=12),
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**6), max_value=10**6, places=12),
)
def test_to_nano_never_reverses_an_order(a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    assert to_nano(low) <= to_nano(high)


# --- exact views of an amount -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nano", "usd", "cents"),
    [
        (0, "0", "0"),
        (1, "0.000000001", "0.0000001"),
        (NANO_PER_CENT, "0.01", "1"),
        (NANO_PER_USD, "1", "100"),
        (-12_345, "-0.000012345", "-0.0012345"),
    ],
)
def test_usd_and_cents_views_are_exact(nano: int, usd: str, cents: str) -> None:
    assert nano_to_usd(nano) == D(usd)
    assert nano_to_cents(nano) == D(cents)


@given(_nano)
def test_cents_are_a_hundred_times_dollars(nano: int) -> None:
    assert nano_to_cents(nano) == nano_to_usd(nano) * 100


@pytest.mark.parametrize(
    ("nano", "cents"),
    [
        (4_999_999, 0),  # just under half a cent
        (5_000_001, 1),  # just over half a cent
        (25_000_000, 2),  # 2.5 cents -> 2
        (35_000_000, 4),  # 3.5 cents -> 4
        (-15_000_000, -2),
        (-25_000_000, -2),
        (100 * NANO_PER_USD, 10_000),
    ],
)
def test_whole_cents_rounds_half_to_even(nano: int, cents: int) -> None:
    assert whole_cents(nano) == cents


@given(_nano)
def test_whole_cents_is_within_half_a_cent(nano: int) -> None:
    assert abs(D(whole_cents(nano)) - nano_to_cents(nano)) <= D("0.5")


# --- format_usd -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nano", "text"),
    [
        (1, "0.000000001"),
        (10_000_000, "0.01"),
        (100_000_000, "0.10"),
        (120_000_000, "0.12"),
        (123_000_000, "0.123"),
        (NANO_PER_USD, "1.00"),
        (-NANO_PER_USD, "-1.00"),
        (-123_456_789_012, "-123.456789012"),
        (10**18, "1000000000.00"),
    ],
)
def test_format_usd_keeps_two_places_and_drops_other_trailing_zeros(nano: int, text: str) -> None:
    assert format_usd(nano) == text


@given(_nano)
def test_format_usd_shape(nano: int) -> None:
    text = format_usd(nano)
    whole, _, frac = text.lstrip("-").partition(".")
    assert 2 <= len(frac) <= 9
    assert len(frac) == 2 or not frac.endswith("0")
    assert whole.isdigit() and (whole == "0" or not whole.startswith("0"))
    assert text.startswith("-") is (nano < 0)


@given(_nano)
def test_format_usd_is_the_exact_value(nano: int) -> None:
    assert D(format_usd(nano)) == nano_to_usd(nano)


@given(st.integers(min_value=1, max_value=10**21))
def test_format_usd_of_a_negative_is_the_positive_with_a_sign(nano: int) -> None:
    assert format_usd(-nano) == "-" + format_usd(nano)


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**9), max_value=10**9, places=9))
def test_nine_place_amounts_parse_and_print_back_to_the_same_value(usd: Decimal) -> None:
    nano = parse_usd(str(usd))
    assert D(format_usd(nano)) == usd
    assert parse_usd(format_usd(nano)) == nano
