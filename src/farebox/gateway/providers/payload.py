"""Reading provider JSON payloads: parse once at the boundary, then typed, defensive field access.

Provider bodies are untrusted: a field may be missing, `null`, a string, a float or a bool where a count
is expected. These accessors turn anything that is not a non-negative integer into 0 (or `None` for the
optional forms), so a malformed usage block never raises on the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

import orjson

from farebox.core.pricing import Usage

__all__ = [
    "JSONObject",
    "as_object",
    "build_usage",
    "count",
    "load_json",
    "load_object",
    "optional_count",
    "seconds",
    "sub_object",
]

JSONObject = Mapping[str, object]
"""A decoded JSON object."""

_MICROSECOND = Decimal("0.000001")


def load_json(body: bytes | str) -> object | None:
    """The decoded JSON value of a body, or `None` when it is not JSON."""
    try:
        return orjson.loads(body)  # type: ignore[no-any-return]  # orjson returns Any; callers narrow it
    except orjson.JSONDecodeError:
        return None


def load_object(body: bytes | str | JSONObject) -> JSONObject | None:
    """A body as a JSON object: decoded when it is bytes or text, `None` when it is not an object."""
    if isinstance(body, Mapping):
        return body
    return as_object(load_json(body))


def as_object(value: object) -> JSONObject | None:
    """`value` when it is a JSON object, else `None`."""
    if type(value) is dict:  # what orjson decodes to: skips the slower ABC check on the hot path
        return value
    return value if isinstance(value, Mapping) else None


def sub_object(parent: JSONObject | None, key: str) -> JSONObject | None:
    """`parent[key]` when both exist and the value is a JSON object."""
    if parent is None:
        return None
    return as_object(parent.get(key))


def optional_count(parent: JSONObject | None, key: str) -> int | None:
    """`parent[key]` as a non-negative integer, or `None` when absent or not a count.

    Integral floats (`12.0`) are accepted, as some OpenAI-compatible servers send them; bools are not.
    """
    if parent is None:
        return None
    value = parent.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def count(parent: JSONObject | None, key: str) -> int:
    """`parent[key]` as a non-negative integer, 0 when absent or not a count."""
    value = optional_count(parent, key)
    return 0 if value is None else value


def seconds(value: object) -> Decimal | None:
    """A JSON number of seconds as an exact `Decimal` (to the microsecond), or `None`."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        result = Decimal(str(value)).quantize(_MICROSECOND)
    except InvalidOperation:
        return None
    return result if result.is_finite() and result >= 0 else None


def build_usage(
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cached_input_tokens: int = 0,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
    characters: int = 0,
    seconds: Decimal | None = None,
) -> Usage:
    """A `Usage` that cannot fail validation: parts are clamped to the totals that contain them.

    Providers occasionally report a part larger than its total (a cache count above the prompt count,
    say); the totals are what is billed, so they win and the parts are cut to fit.
    """
    cached = min(cached_input_tokens, input_tokens)
    cache_write = min(cache_write_tokens, input_tokens - cached)
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_input_tokens=cached,
        cache_write_tokens=cache_write,
        reasoning_tokens=min(reasoning_tokens, output_tokens),
        characters=characters,
        seconds=seconds if seconds is not None else Decimal(0),
    )
