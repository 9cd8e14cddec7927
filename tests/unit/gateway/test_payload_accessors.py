"""Defensive reading of untrusted provider JSON: counts, durations, objects, and usage that cannot fail."""

from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.pricing import Usage
from farebox.gateway.providers.payload import (
    as_object,
    build_usage,
    count,
    load_json,
    load_object,
    optional_count,
    seconds,
    sub_object,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (12, 12),
        (2**40, 2**40),
        (12.0, 12),  # some OpenAI-compatible servers send integral floats
        (0.0, 0),
        (12.5, None),
        (-1, None),
        (-1.0, None),
        (True, None),  # bool is an int in Python, never a count on the wire
        (False, None),
        ("12", None),
        (None, None),
        ([3], None),
        ({"n": 3}, None),
        (float("nan"), None),
        (float("inf"), None),
    ],
)
def test_optional_count_and_count(value: object, expected: int | None) -> None:
    assert optional_count({"k": value}, "k") == expected
    assert count({"k": value}, "k") == (0 if expected is None else expected)


def test_counts_of_an_absent_key_or_parent() -> None:
    assert optional_count({}, "k") is None
    assert optional_count(None, "k") is None
    assert count({}, "k") == 0
    assert count(None, "k") == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, Decimal(3)),
        (0, Decimal(0)),
        (2.5, Decimal("2.5")),
        (0.1, Decimal("0.1")),  # from its shortest repr, not the binary float's expansion
        ("7.25", Decimal("7.25")),
        (1.0000004, Decimal("1.000000")),  # quantized to the microsecond
        (1.0000016, Decimal("1.000002")),
        ("-1", None),
        (-0.5, None),
        ("abc", None),
        ("", None),
        ("NaN", None),
        ("Infinity", None),
        (float("inf"), None),
        (float("nan"), None),
        (True, None),
        (None, None),
        ([1], None),
        ({"seconds": 1}, None),
        (1e30, None),  # more digits than a Decimal context holds once quantized: refused, not raised
    ],
)
def test_seconds(value: object, expected: Decimal | None) -> None:
    assert seconds(value) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a": 1}', {"a": 1}),
        ('{"a": 1}', {"a": 1}),
        (b"[1, 2]", [1, 2]),
        (b"null", None),
        (b"42", 42),
        (b"", None),
        (b"{", None),
        (b"\xff\xfe", None),
        (b'{"a": NaN}', None),  # not JSON
    ],
)
def test_load_json(body: bytes | str, expected: object) -> None:
    assert load_json(body) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a": 1}', {"a": 1}),
        (b"[]", None),
        (b'"text"', None),
        (b"not json", None),
    ],
)
def test_load_object(body: bytes, expected: object) -> None:
    assert load_object(body) == expected


def test_load_object_returns_a_mapping_as_is() -> None:
    document = MappingProxyType({"model": "m"})
    assert load_object(document) is document


@pytest.mark.parametrize(
    ("value", "is_object"),
    [({}, True), (OrderedDict(a=1), True), (MappingProxyType({}), True), ([], False), ("{}", False), (0, False)],
)
def test_as_object(value: object, is_object: bool) -> None:
    assert as_object(value) is (value if is_object else None)


def test_sub_object() -> None:
    parent = {"usage": {"n": 1}, "list": [1], "none": None}
    assert sub_object(parent, "usage") == {"n": 1}
    assert sub_object(parent, "list") is None
    assert sub_object(parent, "none") is None
    assert sub_object(parent, "missing") is None
    assert sub_object(None, "usage") is None


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ({"input_tokens": 10, "cached_input_tokens": 4, "cache_write_tokens": 3}, (10, 4, 3)),
        ({"input_tokens": 10, "cached_input_tokens": 50}, (10, 10, 0)),  # cache read cut to the input
        ({"input_tokens": 10, "cached_input_tokens": 8, "cache_write_tokens": 5}, (10, 8, 2)),  # write gets the rest
        ({"input_tokens": 0, "cached_input_tokens": 5, "cache_write_tokens": 5}, (0, 0, 0)),
    ],
)
def test_build_usage_cuts_cache_parts_to_the_input_total(parts: dict[str, int], expected: tuple[int, int, int]) -> None:
    usage = build_usage(**parts)
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_write_tokens) == expected


def test_build_usage_cuts_reasoning_to_the_output_and_keeps_other_meters() -> None:
    assert build_usage(output_tokens=5, reasoning_tokens=9) == Usage(output_tokens=5, reasoning_tokens=5)
    assert build_usage(characters=12, seconds=Decimal("1.5")) == Usage(characters=12, seconds=Decimal("1.5"))
    assert build_usage() == Usage()


_counts = st.integers(0, 10**9)


@given(_counts, _counts, _counts, _counts, _counts)
def test_build_usage_never_fails_and_never_exceeds_its_totals(
    input_tokens: int, output_tokens: int, cached: int, cache_write: int, reasoning: int
) -> None:
    usage = build_usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_input_tokens=cached,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
    )
    assert (usage.input_tokens, usage.output_tokens) == (input_tokens, output_tokens)  # totals are billed as sent
    assert usage.cached_input_tokens == min(cached, input_tokens)
    assert usage.cached_input_tokens + usage.cache_write_tokens <= usage.input_tokens
    assert usage.reasoning_tokens == min(reasoning, output_tokens)
    assert min(usage.cached_input_tokens, usage.cache_write_tokens, usage.reasoning_tokens) >= 0


_json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats() | st.text(max_size=5)


@given(st.dictionaries(st.sampled_from(["a", "b"]), _json_scalars | st.lists(_json_scalars, max_size=2)))
def test_count_of_any_json_value_is_a_non_negative_int(parent: dict[str, object]) -> None:
    for key in ("a", "b", "c"):
        value = count(parent, key)
        assert type(value) is int and value >= 0
