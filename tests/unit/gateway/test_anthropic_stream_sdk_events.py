"""Anthropic Messages streams built from the official SDK's event types: cumulative usage, text, errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.types import (
    CacheCreation,
    InputJSONDelta,
    Message,
    MessageDeltaUsage,
    OutputTokensDetails,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    SignatureDelta,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolUseBlock,
)
from anthropic.types import Usage as AnthropicUsage
from anthropic.types.raw_message_delta_event import Delta
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from farebox.core.pricing import Usage
from farebox.gateway.providers import anthropic as wire


def sse(*events: BaseModel) -> bytes:
    """Events as Anthropic sends them: an `event:` line naming the type, then the JSON (nulls included)."""
    out = b""
    for model in events:
        document = model.model_dump(mode="json")
        out += b"event: " + document["type"].encode() + b"\ndata: " + orjson.dumps(document) + b"\n\n"
    return out


def collect(data: bytes) -> wire.AnthropicUsageCollector:
    collector = wire.AnthropicUsageCollector()
    collector.feed(data)
    collector.close()
    return collector


def start(**usage: Any) -> RawMessageStartEvent:
    message = Message(
        id="msg_01",
        type="message",
        role="assistant",
        model="claude-sonnet-4-5",
        content=[],
        stop_reason=None,
        stop_sequence=None,
        usage=AnthropicUsage(**usage),
    )
    return RawMessageStartEvent(type="message_start", message=message)


def delta(text: str, index: int = 0) -> RawContentBlockDeltaEvent:
    return RawContentBlockDeltaEvent(
        type="content_block_delta", index=index, delta=TextDelta(type="text_delta", text=text)
    )


def message_delta(**usage: Any) -> RawMessageDeltaEvent:
    return RawMessageDeltaEvent(
        type="message_delta",
        delta=Delta(stop_reason="end_turn", stop_sequence=None),
        usage=MessageDeltaUsage(**usage),
    )


STOP = RawMessageStopEvent(type="message_stop")


def test_a_cached_stream_from_sdk_events() -> None:
    stream = sse(
        start(
            input_tokens=20,
            cache_creation_input_tokens=1000,
            cache_read_input_tokens=3000,
            cache_creation=CacheCreation(ephemeral_5m_input_tokens=1000, ephemeral_1h_input_tokens=0),
            output_tokens=1,
        ),
        RawContentBlockStartEvent(type="content_block_start", index=0, content_block=TextBlock(type="text", text="")),
        delta("Hello"),
        delta(", world"),
        RawContentBlockStopEvent(type="content_block_stop", index=0),
        message_delta(output_tokens=42),  # the newer fields come as null: they must not erase message_start's
        STOP,
    )
    collector = collect(stream)
    assert collector.complete
    assert collector.text == "Hello, world"
    assert collector.usage == Usage(
        input_tokens=4020, output_tokens=42, cached_input_tokens=3000, cache_write_tokens=1000
    )


def test_message_delta_counts_replace_message_start_counts() -> None:
    stream = sse(
        start(input_tokens=5, cache_read_input_tokens=0, output_tokens=1),
        message_delta(input_tokens=7, cache_read_input_tokens=2, cache_creation_input_tokens=3, output_tokens=9),
        message_delta(output_tokens=11),
        STOP,
    )
    assert collect(stream).usage == Usage(
        input_tokens=12, output_tokens=11, cached_input_tokens=2, cache_write_tokens=3
    )


def test_thinking_tokens_become_reasoning_and_thinking_text_is_output() -> None:
    stream = sse(
        start(input_tokens=30, output_tokens=1),
        RawContentBlockStartEvent(
            type="content_block_start", index=0, content_block=ThinkingBlock(type="thinking", thinking="", signature="")
        ),
        RawContentBlockDeltaEvent(
            type="content_block_delta", index=0, delta=ThinkingDelta(type="thinking_delta", thinking="Let me see. ")
        ),
        RawContentBlockDeltaEvent(
            type="content_block_delta", index=0, delta=SignatureDelta(type="signature_delta", signature="EqQBCgIYAh")
        ),
        delta("42", index=1),
        message_delta(output_tokens=120, output_tokens_details=OutputTokensDetails(thinking_tokens=100)),
        STOP,
    )
    collector = collect(stream)
    assert collector.text == "Let me see. 42"  # the signature is not generated text
    assert collector.usage == Usage(input_tokens=30, output_tokens=120, reasoning_tokens=100)


def test_tool_use_input_is_counted_as_its_json() -> None:
    stream = sse(
        start(input_tokens=8, output_tokens=1),
        RawContentBlockStartEvent(
            type="content_block_start",
            index=0,
            content_block=ToolUseBlock(type="tool_use", id="toolu_1", name="get_weather", input={}),
        ),
        RawContentBlockDeltaEvent(
            type="content_block_delta",
            index=0,
            delta=InputJSONDelta(type="input_json_delta", partial_json='{"city": "Par'),
        ),
        RawContentBlockDeltaEvent(
            type="content_block_delta", index=0, delta=InputJSONDelta(type="input_json_delta", partial_json='is"}')
        ),
        message_delta(output_tokens=15),
        STOP,
    )
    assert collect(stream).text == '{"city": "Paris"}'


def test_the_text_of_a_content_block_start_counts() -> None:
    stream = sse(
        RawContentBlockStartEvent(
            type="content_block_start", index=0, content_block=TextBlock(type="text", text="Prefilled ")
        ),
        delta("answer"),
    )
    assert collect(stream).text == "Prefilled answer"


def test_usage_is_none_until_a_count_arrives_and_pings_change_nothing() -> None:
    collector = wire.AnthropicUsageCollector()
    collector.feed(b'event: ping\ndata: {"type": "ping"}\n\n')
    assert collector.usage is None
    collector.feed(sse(delta("x")))
    assert collector.usage is None
    collector.feed(sse(message_delta(output_tokens=3)))
    assert collector.usage == Usage(output_tokens=3)


@pytest.mark.parametrize(
    "error",
    [
        {"type": "overloaded_error", "message": "Overloaded"},
        {"type": "api_error", "message": "Internal server error"},
        {"type": "rate_limit_error", "message": "Number of request tokens has exceeded your rate limit"},
    ],
)
def test_an_error_mid_stream_keeps_the_usage_seen_before_it(error: dict[str, str]) -> None:
    stream = sse(start(input_tokens=50, output_tokens=1), delta("par")) + (
        b"event: error\ndata: " + orjson.dumps({"type": "error", "error": error}) + b"\n\n"
    )
    collector = collect(stream)
    assert collector.error == error
    assert not collector.complete
    assert collector.usage == Usage(input_tokens=50, output_tokens=1)
    assert collector.text == "par"


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'{"type": "message_start"}',
        b'{"type": "message_start", "message": null}',
        b'{"type": "message_start", "message": {"usage": "lots"}}',
        b'{"type": "message_delta", "usage": [1]}',
        b'{"type": "message_delta", "usage": {"output_tokens": -4, "input_tokens": "9"}}',
        b'{"type": "content_block_delta", "delta": null}',
        b'{"type": "content_block_delta", "delta": {"text": 12}}',
        b'{"type": "content_block_start", "content_block": "text"}',
        b'{"type": "unknown_future_event", "usage": {"output_tokens": 999}}',
        b'{"no_type": true}',
    ],
)
def test_malformed_or_unknown_events_are_ignored(data: bytes) -> None:
    stream = sse(start(input_tokens=4, output_tokens=1)) + b"data: " + data + b"\n\n" + sse(delta("ok"))
    collector = collect(stream)
    assert collector.usage == Usage(input_tokens=4, output_tokens=1)
    assert collector.text == "ok"
    assert collector.error is None and not collector.complete


def test_an_error_event_without_an_error_object_records_none() -> None:
    assert collect(b'event: error\ndata: {"type": "error", "error": "busy"}\n\n').error is None


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=6), st.integers(0, 10_000))
def test_output_is_the_last_cumulative_count(counts: list[int], input_tokens: int) -> None:
    stream = sse(start(input_tokens=input_tokens, output_tokens=1), *(message_delta(output_tokens=n) for n in counts))
    assert collect(stream).usage == Usage(input_tokens=input_tokens, output_tokens=counts[-1])


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"input_tokens": 0, "output_tokens": 0}, Usage()),
        ({"output_tokens": 7}, Usage(output_tokens=7)),
        ({"cache_read_input_tokens": 10}, Usage(input_tokens=10, cached_input_tokens=10)),
        (
            {"input_tokens": 1, "cache_creation_input_tokens": 2, "cache_read_input_tokens": 3, "output_tokens": 4,
             "server_tool_use": {"web_search_requests": 2}, "service_tier": "priority"},
            Usage(input_tokens=6, output_tokens=4, cached_input_tokens=3, cache_write_tokens=2),
        ),
        (
            {"input_tokens": 5, "output_tokens": 10, "output_tokens_details": {"thinking_tokens": 50}},
            Usage(input_tokens=5, output_tokens=10, reasoning_tokens=10),  # thinking cut to the output it is part of
        ),
        ({"input_tokens": None, "output_tokens": None}, Usage()),
        ({"service_tier": "standard"}, None),
        ({}, None),
    ],
)  # fmt: skip
def test_usage_objects(usage: dict[str, Any], expected: Usage | None) -> None:
    assert wire.usage_from_object(usage) == expected
    assert wire.usage_from_body({"type": "message", "usage": usage}) == expected


def test_usage_from_an_sdk_message_body() -> None:
    body = start(input_tokens=9, cache_read_input_tokens=4, output_tokens=17).message.model_dump_json().encode()
    assert wire.usage_from_body(body) == Usage(input_tokens=13, output_tokens=17, cached_input_tokens=4)
