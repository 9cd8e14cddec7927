"""The ingest endpoint's JSON reader: jiter's speed, Python's parser's answers, numbers exact."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.api.events import _load_json, _reject_constant


def python_parser(body: bytes) -> Any:
    return json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)


_number_text = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.from_regex(r"\A-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?\Z"),
)
_scalar_text = st.one_of(
    _number_text,
    st.text().map(lambda s: json.dumps(s, ensure_ascii=False)),
    st.text().map(json.dumps),
    st.sampled_from(["true", "false", "null"]),
)
_json_text = st.recursive(
    _scalar_text,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(st.text(max_size=8).map(json.dumps), inner), max_size=4).map(
            lambda pairs: "{" + ",".join(f"{k}: {v}" for k, v in pairs) + "}"
        ),
    ),
    max_leaves=12,
)


@given(_json_text)
def test_any_json_reads_exactly_as_pythons_parser_reads_it(text: str) -> None:
    body = text.encode()

    assert repr(_load_json(body)) == repr(python_parser(body))  # repr: Decimal('1.0') is not Decimal('1.00')


@pytest.mark.parametrize(
    "body",
    [b'\xef\xbb\xbf{"events": []}', b'{"id": "\\ud800"}', b'{"a": 1, "a": 2}'],
    ids=["byte-order-mark", "lone-surrogate", "repeated-key"],
)
def test_what_jiter_refuses_and_python_takes_is_taken(body: bytes) -> None:
    assert _load_json(body) == python_parser(body)


@pytest.mark.parametrize(
    "body", [b'{"seconds": NaN}', b"[Infinity]", b"[-Infinity]", b'{"a": 1', b"", b"[" * 100_000 + b"]" * 100_000]
)
def test_what_python_refuses_is_refused(body: bytes) -> None:
    with pytest.raises((ValueError, RecursionError)):
        python_parser(body)
    with pytest.raises((ValueError, RecursionError)):
        _load_json(body)
