"""The Anthropic Messages wire format: exact usage (cache tokens made part of the input), streams, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
import pytest

from farebox.core.pricing import Usage
from farebox.gateway.providers import anthropic as wire

FixtureBytes = Callable[[str], bytes]
ByteSplits = Callable[[bytes], Iterator[list[bytes]]]


def collect(chunks: list[bytes], *, close: bool = True) -> wire.AnthropicUsageCollector:
    collector = wire.AnthropicUsageCollector()
    for chunk in chunks:
        collector.feed(chunk)
    if close:
        collector.close()
    return collector


def test_message_body_input_is_made_total(fixture_bytes: FixtureBytes) -> None:
    # 2095 uncached + 2051 written to the cache + 2051 read from it
    assert wire.usage_from_body(fixture_bytes("anthropic_message.json")) == Usage(
        input_tokens=6197, output_tokens=503, cached_input_tokens=2051, cache_write_tokens=2051
    )


def test_message_body_without_cache_fields() -> None:
    body = {"type": "message", "usage": {"input_tokens": 10, "output_tokens": 25}}
    assert wire.usage_from_body(body) == Usage(input_tokens=10, output_tokens=25)
    assert wire.usage_from_body(orjson.dumps(body)) == Usage(input_tokens=10, output_tokens=25)


@pytest.mark.parametrize("body", [b"{}", b"nope", b'{"type": "error", "error": {"type": "overloaded_error"}}'])
def test_no_usage_is_none(body: bytes) -> None:
    assert wire.usage_from_body(body) is None


def test_sdk_basic_stream(fixture_bytes: FixtureBytes, byte_splits: ByteSplits) -> None:
    stream = fixture_bytes("anthropic_basic_stream.sse")
    for chunks in byte_splits(stream):
        collector = collect(chunks)
        # message_delta's output_tokens is cumulative: 6, not 1 + 6
        assert collector.usage == Usage(input_tokens=11, output_tokens=6)
        assert collector.text == "Hello there!"
        assert collector.complete


def test_last_event_without_blank_line_needs_close(fixture_bytes: FixtureBytes) -> None:
    collector = collect([fixture_bytes("anthropic_basic_stream.sse")], close=False)
    assert not collector.complete
    collector.close()
    assert collector.complete


def test_cumulative_input_and_cache_counts_in_message_delta(
    fixture_bytes: FixtureBytes, byte_splits: ByteSplits
) -> None:
    stream = fixture_bytes("anthropic_message_delta_fields_stream.sse")
    expected = Usage(input_tokens=59, output_tokens=8, cached_input_tokens=7, cache_write_tokens=12, reasoning_tokens=3)
    for chunks in byte_splits(stream):
        assert collect(chunks).usage == expected


def test_stream_cut_short_keeps_the_input_side(fixture_bytes: FixtureBytes) -> None:
    stream = fixture_bytes("anthropic_basic_stream.sse")
    collector = collect([stream[: stream.index(b"event: content_block_stop")]])
    assert collector.usage == Usage(input_tokens=11, output_tokens=1)
    assert collector.text == "Hello there!"
    assert not collector.complete


def test_stream_text_includes_thinking_and_tool_input(fixture_bytes: FixtureBytes) -> None:
    events = [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm "}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"a":1}'}},
    ]
    stream = b"".join(b"event: content_block_delta\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)
    collector = collect([stream])
    assert collector.text == 'hmm {"a":1}'
    assert collector.usage is None


def test_in_stream_error_event() -> None:
    stream = (
        b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    )
    collector = collect([stream])
    assert collector.error == {"type": "overloaded_error", "message": "Overloaded"}
    assert not collector.complete


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_envelope(status: int, error_type: str) -> None:
    assert wire.error_body(status, "boom") == {"type": "error", "error": {"type": error_type, "message": "boom"}}


def test_error_envelope_with_request_id_and_type() -> None:
    assert wire.error_body(401, "revoked", error_type="permission_error", request_id="req_1") == {
        "type": "error",
        "error": {"type": "permission_error", "message": "revoked"},
        "request_id": "req_1",
    }


def test_estimate_input_tokens() -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello world"}]}],
    }
    # messages: 3 primer + 3 framing + "user" 1 + "hello world" 2; system "Be brief." 3
    assert wire.estimate_input_tokens(body) == 12
    with_blocks = {**body, "system": [{"type": "text", "text": "Be brief."}]}
    assert wire.estimate_input_tokens(with_blocks) == 12
    assert wire.estimate_input_tokens({**body, "tools": [{"name": "f"}]}) > 12
