"""Exact money: parsing, the one rounding rule, presentation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.money import (
    NANO_PER_USD,
    MoneyError,
    format_usd,
    nano_to_cents,
    nano_to_usd,
    parse_usd,
    to_nano,
    whole_cents,
)


@pytest.mark.parametrize(
    ("text", "nano"),
    [
        ("12.50", 12_500_000_000),
        ("0.000000001", 1),
        (" 3 ", 3 * NANO_PER_USD),
        (7, 7 * NANO_PER_USD),
        ("-1.5", -1_500_000_000),
    ],
)
def test_parse_usd_is_exact(text: str | int, nano: int) -> None:
    assert parse_usd(text) == nano


@pytest.mark.parametrize("bad", ["abc", "0.0000000001", "NaN", "Infinity", 1.5, True, ""])
def test_parse_usd_refuses_what_is_not_an_exact_amount(bad: object) -> None:
    with pytest.raises(MoneyError):
        parse_usd(bad)  # type: ignore[arg-type]  # deliberately wrong types


@pytest.mark.parametrize(
    ("usd", "nano"),
    [
        ("0.0000000005", 0),  # half to even: 0.5 nano -> 0
        ("0.0000000015", 2),  # 1.5 nano -> 2
        ("0.0000000025", 2),  # 2.5 nano -> 2
        ("0.00325", 3_250_000),
    ],
)
def test_to_nano_rounds_half_to_even(usd: str, nano: int) -> None:
    assert to_nano(Decimal(usd)) == nano


def test_to_nano_refuses_non_finite() -> None:
    with pytest.raises(MoneyError):
        to_nano(Decimal("NaN"))


@pytest.mark.parametrize(
    ("nano", "text"),
    [(50 * NANO_PER_USD, "50.00"), (123, "0.000000123"), (3_500_000, "0.0035"), (0, "0.00"), (-5, "-0.000000005")],
)
def test_format_usd(nano: int, text: str) -> None:
    assert format_usd(nano) == text


def test_cents_are_continuous_and_invoices_round_half_even() -> None:
    assert nano_to_cents(123) == Decimal("0.0000123")
    assert whole_cents(5_000_000) == 0  # half a cent -> even (0)
    assert whole_cents(15_000_000) == 2  # 1.5 cents -> 2
    assert whole_cents(12_345_678_901) == 1235


@given(st.integers(min_value=-(10**18), max_value=10**18))
def test_format_then_parse_round_trips(nano: int) -> None:
    assert parse_usd(format_usd(nano)) == nano
    assert nano_to_usd(nano) * NANO_PER_USD == nano


@given(st.decimals(min_value=Decimal(0), max_value=Decimal(10**6), places=15, allow_nan=False))
def test_rounding_error_is_at_most_half_a_nano(usd: Decimal) -> None:
    assert abs(Decimal(to_nano(usd)) - usd * NANO_PER_USD) <= Decimal("0.5")


@given(st.lists(st.integers(min_value=0, max_value=10**15), max_size=50))
def test_invoice_total_within_half_a_cent_per_line(lines: list[int]) -> None:
    exact = nano_to_cents(sum(lines))
    billed = sum(whole_cents(line) for line in lines)
    assert abs(billed - exact) <= Decimal("0.5") * len(lines)
