"""Exact money.

Storage holds integers of nano-USD (10^-9 USD). Code does arithmetic in `Decimal` or integers, never
float. There is one rounding rule, `ROUND_HALF_EVEN` (banker's rounding), applied in exactly two
places: a computed cost is rounded to whole nano-USD when it is recorded (`to_nano`), and an invoice
line is rounded to whole cents when it is billed (`whole_cents`). Everything shown in between
(`*Cents` fields, USD strings) is exact.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

__all__ = [
    "NANO_PER_CENT",
    "NANO_PER_USD",
    "MoneyError",
    "format_usd",
    "nano_to_cents",
    "nano_to_usd",
    "parse_usd",
    "to_nano",
    "whole_cents",
]

NANO_PER_USD = 1_000_000_000
NANO_PER_CENT = 10_000_000
_ONE = Decimal(1)


class MoneyError(ValueError):
    """A value that is not an amount of money (not a number, infinite, NaN)."""


def to_nano(usd: Decimal) -> int:
    """Round an exact USD amount to whole nano-USD with the one rounding rule (half to even)."""
    if not usd.is_finite():
        raise MoneyError(f"not a finite amount: {usd}")
    return int((usd * NANO_PER_USD).quantize(_ONE, rounding=ROUND_HALF_EVEN))


def parse_usd(value: str | int | Decimal) -> int:
    """Parse a USD amount given by a user ("12.50", 12, Decimal) into nano-USD.

    Amounts finer than one nano-USD are refused rather than silently rounded: a user-typed amount
    is taken exactly or not at all.

    Raises:
        MoneyError: the value is not a number, is not finite, or has more than 9 decimal places.
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise MoneyError("amounts are decimal strings or integers, never floats")
    try:
        usd = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise MoneyError(f"not a decimal amount: {value!r}") from None
    if not usd.is_finite():
        raise MoneyError(f"not a finite amount: {value!r}")
    scaled = usd * NANO_PER_USD
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"more precise than one nano-USD (9 decimal places): {value!r}")
    return int(scaled)


def nano_to_usd(nano: int) -> Decimal:
    """Exact USD value of an integer nano-USD amount."""
    return Decimal(nano).scaleb(-9)


def nano_to_cents(nano: int) -> Decimal:
    """Exact, continuous cents (sub-cent precision kept, never floored)."""
    return Decimal(nano).scaleb(-7)


def whole_cents(nano: int) -> int:
    """Whole cents for an invoice or billing-export line (half to even)."""
    return int(nano_to_cents(nano).quantize(_ONE, rounding=ROUND_HALF_EVEN))


def format_usd(nano: int) -> str:
    """USD as a decimal string with at least two places and no trailing zeros beyond them.

    `format_usd(50 * NANO_PER_USD) == "50.00"`, `format_usd(123) == "0.000000123"`. Integer
    arithmetic only: it runs once per event in API answers.
    """
    whole, frac = divmod(abs(nano), NANO_PER_USD)
    sign = "-" if nano < 0 else ""
    digits = f"{frac:09d}".rstrip("0")
    return f"{sign}{whole}.{digits.ljust(2, '0')}"
