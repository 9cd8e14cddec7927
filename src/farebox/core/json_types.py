"""Field types for JSON request bodies that accept exactly what their JSON Schema says, no more and no less.

The OpenAPI document is read by people and by tools that generate requests from it, so a value a field's schema
allows must be accepted and one it refuses must be refused. Pydantic's lax mode takes more than JSON Schema
says (`"10"` or `true` for an integer, `0` for a boolean, a number for a time), and its strict mode less (`5.0`,
which JSON Schema counts as an integer); these types draw the line where JSON Schema does. Use `StrictBool`
for booleans and `StrictFloat` for numbers.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    GetJsonSchemaHandler,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from farebox.core.owners import timezone_names

__all__ = ["JSON_INTEGER", "LocalDate", "Time", "Timezone", "bounded_decimal", "exact_decimal"]

_PLAIN = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")
_TIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?$"
)


def _not_text(value: Any) -> Any:
    if isinstance(value, str | bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


JSON_INTEGER = BeforeValidator(_not_text)
"""Makes an `int` take what JSON Schema calls an integer: a number without a fraction (`5` or `5.0`), never a string
or a boolean. Put it after the `Field` constraints, `Annotated[int, Field(ge=1), JSON_INTEGER]`: pydantic renders
constraints given outside a validated type as unknown schema keywords."""


def _time_text(value: Any) -> Any:
    if not isinstance(value, str) or not _TIME.match(value):
        raise PydanticCustomError(
            "datetime_type", "must be an RFC 3339 time with a UTC offset, such as 2026-01-31T12:00:00Z"
        )
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 is in year 10000 in UTC, 0001-01-01T00:00:00+05:00 in year 0
        return (datetime.max if value.year == datetime.max.year else datetime.min).replace(tzinfo=UTC)


Time = Annotated[AwareDatetime, BeforeValidator(_time_text), AfterValidator(_in_utc)]
"""A time: an RFC 3339 string with an offset (JSON Schema's `format: date-time`), never a number. Read in UTC; one
that falls off the calendar there (hours past year 9999, or before year 1) is read as the calendar's end or start."""


def exact_decimal(pattern: str, number: dict[str, Any], description: str) -> tuple[Any, ...]:
    """The annotations of a bounded decimal read exactly, for `Annotated[Decimal, Field(...), *exact_decimal(...)]`.

    It is given as a JSON number (which arrives as a `Decimal`: the routes read JSON that way, and the field's
    `Field` constraints check its bounds and places) or as a string in plain notation matching `pattern`, which
    states the same bounds and places. It is answered as a string in plain notation (`"0.000000001"`, never
    `"1E-9"`). `number` holds the JSON Schema bounds of the number form.
    """
    compiled = re.compile(pattern)

    def text(value: object) -> object:
        if isinstance(value, bool) or (isinstance(value, str) and not compiled.match(value)):
            raise ValueError(f"must be {description}")
        return value

    string = {"type": "string", "pattern": pattern}
    accepted = {"description": description, "anyOf": [{"type": "number", **number}, string]}
    return (
        BeforeValidator(text),
        PlainSerializer(_plain, return_type=str),
        WithJsonSchema(accepted, mode="validation"),
        WithJsonSchema(string, mode="serialization"),
    )


def _plain(value: Decimal) -> str:
    return format(value, "f")


def bounded_decimal(*, places: int, limit: int) -> tuple[PlainValidator, WithJsonSchema]:
    """The annotations of a decimal from 0 to `limit` (a power of ten) with at most `places` decimal places, for
    `Annotated[Decimal, *bounded_decimal(...)]`.

    It is a JSON number (a `Decimal` when the body is read exactly) or a string of digits; zeros beyond the places
    are no places, and leading zeros are allowed. Each refusal says which bound it broke.
    """
    whole = len(str(limit)) - 1
    text = rf"^0*(?:[0-9]{{1,{whole}}}(?:\.[0-9]{{1,{places}}}0*)?|{limit}(?:\.0+)?)$"
    number = {"type": "number", "minimum": 0, "maximum": limit, "multipleOf": float(Decimal(1).scaleb(-places))}
    schema = {"anyOf": [number, {"type": "string", "pattern": text}]}
    return PlainValidator(partial(_bounded, places=places, limit=Decimal(limit))), WithJsonSchema(schema)


def _bounded(value: object, *, places: int, limit: Decimal) -> Decimal:
    try:
        if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
            raise InvalidOperation
        if isinstance(value, str) and not _PLAIN.match(value):
            raise InvalidOperation  # Decimal() also reads " 5", "+5", "1e3", ".5" and "1_000": no decimal strings
        number = Decimal(value)
    except InvalidOperation:
        raise PydanticCustomError("decimal_parsing", "must be a decimal number or a decimal string") from None
    if not number.is_finite():
        raise PydanticCustomError("finite_number", "must be a finite number")
    if number < 0:
        raise PydanticCustomError("greater_than_equal", "must not be negative")
    if number > limit:
        raise PydanticCustomError("less_than_equal", "must be at most {limit}", {"limit": str(limit)})
    _, digits, exponent = number.as_tuple()
    excess = -int(exponent) - places  # digits beyond the allowed places: all must be zeros
    if excess > 0 and any(digits[-excess:]):
        raise PydanticCustomError("decimal_max_places", "must have at most {places} decimal places", {"places": places})
    return number


_DATE = re.compile(r"^(?:19[7-9][0-9]|2[0-9]{3})-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])$")


def _date_text(value: Any) -> Any:
    if not isinstance(value, str) or not _DATE.match(value):
        raise PydanticCustomError("date_format", "must be a date like 2026-03-01, from 1970 to 2999")
    return value


LocalDate = Annotated[
    date,
    BeforeValidator(_date_text),
    WithJsonSchema({"type": "string", "format": "date", "pattern": _DATE.pattern}),
]
"""A calendar date written `YYYY-MM-DD` (RFC 3339's full-date) in the years 1970 to 2999, and nothing else: not a
number, not a time. Usage is never older than the epoch, and the bound keeps a day after the last within reach."""


class _KnownTimezones:
    """Adds the `enum` of the timezone names this machine knows to a schema, when the document is built."""

    @staticmethod
    def __get_pydantic_json_schema__(core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["enum"] = sorted(timezone_names())
        return schema


Timezone = Annotated[str, _KnownTimezones()]
"""An IANA timezone name (`check_timezone` checks it)."""
