"""core.tax: the rates a user may type, how they are shown, and the tax of a billed line."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.tax import PPM, RATE_PATTERN, format_rate, parse_rate, tax_cents


@pytest.mark.parametrize(
    ("typed", "ppm"),
    [
        ("0", 0),
        ("0.0825", 82_500),
        ("0.2", 200_000),
        ("1", PPM),
        ("1.000000", PPM),
        ("0.000001", 1),
        (Decimal("0.19"), 190_000),
        (0, 0),
        (1, PPM),
    ],
)
def test_a_rate_is_read_exactly_in_parts_per_million(typed: str | Decimal | int, ppm: int) -> None:
    assert parse_rate(typed) == ppm


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("0.0000001", "at most six decimal places"),
        ("1.5", "from 0 to 1"),
        ("-0.1", "from 0 to 1"),
        ("NaN", "from 0 to 1"),
        ("eight", "not a decimal rate"),
        (0.2, "decimal string"),
        (True, "decimal string"),
    ],
)
def test_a_rate_outside_0_to_1_or_finer_than_a_millionth_is_refused(typed: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rate(typed)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=PPM))
def test_a_shown_rate_reads_back_as_itself_and_matches_the_documented_pattern(ppm: int) -> None:
    shown = format_rate(ppm)
    assert parse_rate(shown) == ppm
    assert re.match(RATE_PATTERN, shown)
    assert shown == "0" or not shown.endswith("0")


@pytest.mark.parametrize(
    ("cents", "ppm", "tax"),
    [
        (1_000, 82_500, 82),  # 82.5 -> 82 (half to even)
        (1_010, 82_500, 83),  # 83.325
        (1_001, 200_000, 200),  # 200.2
        (250, 100_000, 25),
        (5, 100_000, 0),  # 0.5 -> 0 (half to even)
        (15, 100_000, 2),  # 1.5 -> 2 (half to even)
        (12_345, 0, 0),
        (-1_000, 200_000, -200),
    ],
)
def test_a_lines_tax_is_its_cents_times_the_rate_rounded_half_to_even(cents: int, ppm: int, tax: int) -> None:
    assert tax_cents(cents, ppm) == tax
