"""An account's tax rate, and the tax of a billed line.

A rate is a fraction from 0 to 1 with at most six decimal places (`0.0825` is 8.25 %), kept as an integer of
parts per million. The tax of a line is its whole cents times the rate, rounded to whole cents by the one rounding
rule (`farebox.core.money`: half to even), so an invoice's tax is the sum of its lines' taxes.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

__all__ = ["PPM", "RATE_PATTERN", "format_rate", "parse_rate", "tax_cents"]

PPM = 1_000_000
"""Parts per million in a rate of 1 (100 %)."""
RATE_PATTERN = r"^(?:0(?:\.[0-9]{1,6})?|1(?:\.0{1,6})?)$"
"""A rate as a string: plain decimal notation from 0 to 1, at most six decimal places."""


def parse_rate(value: str | int | Decimal) -> int:
    """A rate typed by a user (`"0.0825"`) in parts per million.

    Raises:
        ValueError: not a decimal, a float, outside 0 to 1, or finer than six decimal places.
    """
    if isinstance(value, bool | float):
        raise ValueError('send a rate as a decimal string such as "0.0825"')
    try:
        rate = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal rate: {value!r}") from None
    if not rate.is_finite() or not 0 <= rate <= 1:
        raise ValueError("a tax rate is a fraction from 0 to 1, such as 0.0825 for 8.25 %")
    ppm = rate * PPM
    if ppm != ppm.to_integral_value():
        raise ValueError(f"a tax rate has at most six decimal places: {value!r}")
    return int(ppm)


def format_rate(ppm: int) -> str:
    """A rate as its shortest decimal string: `82500` is `"0.0825"`, `0` is `"0"`."""
    whole, fraction = divmod(ppm, PPM)
    digits = f"{fraction:06d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def tax_cents(cents: int, ppm: int) -> int:
    """The tax of a line of `cents` whole cents at `ppm`, in whole cents (half to even)."""
    return int((Decimal(cents) * ppm / PPM).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
