"""Exact decimal numbers in JSON: what `GET /api/usage` writes its cents with."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from farebox.core.json_numbers import dumps_exact
from farebox.core.money import nano_to_cents


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (nano_to_cents(1), "0.0000001"),
        (nano_to_cents(0), "0"),
        (nano_to_cents(12_300_000), "1.23"),
        (nano_to_cents(-5 * 10**7), "-5"),
        (Decimal("1E+3"), "1000"),
        (Decimal("-0.000"), "0"),
        (nano_to_cents(9_223_372_036_854_775_807), "922337203685.4775807"),
        (Decimal("12345678901234567890123456789.123456789"), "12345678901234567890123456789.123456789"),
    ],
)
def test_a_decimal_is_the_json_number_it_is(value: Decimal, text: str) -> None:
    written = dumps_exact({"cents": value, "list": [value], "other": "x"})
    assert written == b'{"cents":' + text.encode() + b',"list":[' + text.encode() + b'],"other":"x"}'
    assert json.loads(written, parse_float=Decimal)["cents"] == value


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), 1.5j])
def test_what_json_cannot_hold_is_refused(value: object) -> None:
    with pytest.raises(TypeError):
        dumps_exact([value])
