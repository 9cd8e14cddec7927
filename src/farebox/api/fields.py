"""Field types of the API's requests, each stating in its JSON Schema exactly what the server accepts.

The OpenAPI document is read by people and by tools that generate requests from it: a value its schema
allows must be accepted, and a value it refuses must be refused. Pydantic's own schemas say less than farebox
checks (a name must not be blank, a timezone must be one this machine knows, an amount has at most 9 decimal
places), so each type here states the whole rule, and validates with the same one (`farebox.core.owners`
holds the rules the CLI shares; their messages are kept).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, WithJsonSchema

from farebox.core.json_types import Timezone
from farebox.core.money import MoneyError, parse_usd
from farebox.core.owners import EMAIL_PATTERN, NAME_PATTERN
from farebox.core.tax import RATE_PATTERN, parse_rate

__all__ = ["USD_PATTERN", "Email", "Name", "TaxRate", "Timezone", "Usd"]

USD_PATTERN = r"^(?:[0-9]{1,9}(?:\.[0-9]{1,9})?|1000000000(?:\.0{1,9})?)$"
"""A USD amount as a string: plain decimal notation, at most 9 decimal places, at most a billion."""
_USD = re.compile(USD_PATTERN)
_TIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?$"
)


def _usd(value: object) -> int:
    if isinstance(value, float):
        raise ValueError('send amounts as decimal strings such as "12.50"')
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError('must be a USD amount such as "12.50"')
    if isinstance(value, str) and not _USD.match(value):
        raise ValueError('must be a USD amount such as "12.50": digits, at most 9 decimal places')
    try:
        nano = parse_usd(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None
    if nano < 0:
        raise ValueError("must not be negative")
    return nano


Usd = Annotated[
    int,
    BeforeValidator(_usd),
    WithJsonSchema(
        {
            "description": 'USD, from 0 to 1000000000, at most 9 decimal places: a string (`"50.00"`) or a '
            "JSON number, read exactly (never through a binary float).",
            "anyOf": [
                {"type": "string", "pattern": USD_PATTERN, "examples": ["50.00"]},
                {"type": "number", "minimum": 0, "maximum": 1_000_000_000, "multipleOf": 1e-9},
            ],
        }
    ),
]
"""A spend cap in a request (string, integer or exact JSON number), validated into nano-USD."""


def _rate(value: object) -> int:
    if isinstance(value, float):
        raise ValueError('send a rate as a decimal string such as "0.0825"')
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError('must be a tax rate such as "0.0825"')
    if isinstance(value, str) and not re.match(RATE_PATTERN, value):
        raise ValueError('must be a tax rate from 0 to 1 such as "0.0825": at most six decimal places')
    return parse_rate(value)


TaxRate = Annotated[
    int,
    BeforeValidator(_rate),
    WithJsonSchema(
        {
            "description": 'A fraction from 0 to 1, at most six decimal places (`"0.0825"` is 8.25 %): a string or a '
            "JSON number, read exactly.",
            "anyOf": [
                {"type": "string", "pattern": RATE_PATTERN, "examples": ["0.0825"]},
                {"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 1e-6},
            ],
        }
    ),
]
"""A tax rate in a request, validated into parts per million."""

Name = Annotated[str, Field(min_length=1, max_length=200, json_schema_extra={"pattern": NAME_PATTERN})]
"""A name, tag or model name: 1 to 200 characters, not all blank (`clean_name` and kin refuse that)."""

Email = Annotated[str, Field(min_length=3, max_length=320, json_schema_extra={"pattern": EMAIL_PATTERN})]
"""An e-mail address (`clean_email` checks it)."""
