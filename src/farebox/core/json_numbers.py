"""JSON with exact decimal numbers: a `Decimal` is written as the JSON number it is, digit for digit.

JSON numbers have no precision limit; it is Python's float that has one. Money shown as a number (the
`*Cents` fields of `GET /api/usage`) is computed in `Decimal` and written here without passing through a
float: `Decimal("0.0000001")` becomes `0.0000001`, never `1e-07`, and trailing zeros are dropped.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

__all__ = ["dumps_exact"]


def _exact(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal) and value.is_finite():
        text = format(value, "f")  # plain notation with every digit; `normalize()` would round to 28 digits
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return orjson.Fragment(b"0" if text == "-0" else text.encode())
    raise TypeError(f"not JSON: {type(value).__name__}")


def dumps_exact(value: Any) -> bytes:
    """`value` as JSON (what orjson writes), with every finite `Decimal` in it as an exact number in plain notation.

    Raises:
        TypeError: a value JSON cannot hold (a NaN or infinite `Decimal` among them).
    """
    return orjson.dumps(value, default=_exact)
