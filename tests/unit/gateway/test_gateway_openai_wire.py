"""The OpenAI wire format: exact usage from recorded responses and streams, stream usage handling, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.pricing import Usage
from farebox.gateway.providers import openai as wire

FixtureBytes = Callable[[str], bytes]
ByteSplits = Callable[[bytes], Iterator[list[bytes]]]


def collect(chunks: list[bytes]) -> wire.OpenAIUsageCollector:
    collector = wire.OpenAIUsageCollector()
    for chunk in chunks:
        collector.feed(chunk)
    collector.close()
    return collector


def test_chat_completion_body_from_the_api_reference(fixture_bytes: FixtureBytes) -> None:
    assert wire.usage_from_body(fixture_bytes("openai_chat_completion.json")) == Usage(
        input_tokens=19, output_tokens=10
    )


def test_cached_and_reasoning_tokens_are_parts_of_the_totals() -> None:
    body = {
        "usage": {
            "prompt_tokens": 2006,
            "completion_tokens": 300,
            "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920, "cache_write_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 84},
        }
    }
    assert wire.usage_from_body(body) == Usage(
        input_tokens=2006, output_tokens=300, cached_input_tokens=1920, reasoning_tokens=84
    )
    assert wire.usage_from_body(orjson.dumps(body)) == wire.usage_from_body(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"object": "list", "usage": {"prompt_tokens": 8, "total_tokens": 8}}, Usage(input_tokens=8)),
        (
            {"object": "response", "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 20},
             "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 64}, "total_tokens": 123}},
            Usage(input_tokens=36, output_tokens=87, cached_input_tokens=20, reasoning_tokens=64),
        ),
        (
            {"type": "response.completed", "response": {"usage": {"input_tokens": 5, "output_tokens": 2}}},
            Usage(input_tokens=5, output_tokens=2),
        ),
        (
            {"created": 1, "data": [], "usage": {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210,
             "input_tokens_details": {"image_tokens": 40, "text_tokens": 10}}},
            Usage(input_tokens=50, output_tokens=4160),
        ),
        ({"text": "hi", "usage": {"type": "duration", "seconds": 3}}, Usage(seconds=Decimal(3))),
        ({"text": "hi", "usage": {"type": "duration", "seconds": 2.5}}, Usage(seconds=Decimal("2.5"))),
        (
            {"text": "hi", "usage": {"type": "tokens", "input_tokens": 14, "output_tokens": 45, "total_tokens": 59,
             "input_token_details": {"text_tokens": 0, "audio_tokens": 14}}},
            Usage(input_tokens=14, output_tokens=45),
        ),
    ],
    ids=["embeddings", "responses", "responses-event", "images", "transcription-seconds",
         "transcription-fractional-seconds", "transcription-tokens"],
)  # fmt: skip
def test_every_openai_usage_shape(body: dict[str, object], expected: Usage) -> None:
    assert wire.usage_from_body(body) == expected


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"text": "no usage"}', b'{"usage": null}', b'{"usage": {"type": "duration"}}'],
)
def test_no_usage_reported_is_none(body: bytes) -> None:
    assert wire.usage_from_body(body) is None


@pytest.mark.parametrize(
    "body",
    [
        {"data": [{"embedding": [0.1] * 4}], "usage": {"prompt_tokens": 8, "total_tokens": 8}},
        {"usage": {"prompt_tokens": 8}, "service_tier": "default", "system_fingerprint": "fp"},  # not quite last
        {"usage": {"prompt_tokens": 8}, "metadata": {"usage": {"prompt_tokens": 99}}},  # a nested one last
        {"usage": {"prompt_tokens": 8}, "choices": [{"message": {"content": 'say "usage": {"prompt_tokens": 1}}'}}]},
        {"usage": {"prompt_tokens": 8}, "note": "usage"},  # the word as a value
        {"usage": None, "response": {"usage": {"input_tokens": 5}}},
        {"response": {"usage": {"input_tokens": 5}}},
        {"usage": "many", "x": 1},
    ],
    ids=["last", "near-last", "nested-after", "in-a-string", "as-a-value", "null-then-response", "event", "not-object"],
)
def test_the_usage_read_from_the_end_is_the_usage_of_the_whole_body(body: dict[str, Any]) -> None:
    assert wire.usage_from_body(orjson.dumps(body)) == wire.usage_from_body(body)  # bytes: from the end; dict: whole


_JSON = st.recursive(
    st.none() | st.integers(0, 50) | st.text(alphabet='usage"\\:{}, '),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["usage", "prompt_tokens", "response", "x", 'us"age']), children, max_size=3)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.sampled_from(["usage", "response", "data", "x"]), _JSON, max_size=4))
def test_any_body_gives_the_same_usage_read_from_the_end_or_whole(body: dict[str, Any]) -> None:
    assert wire.usage_from_body(orjson.dumps(body)) == wire.usage_from_body(body)


def test_malformed_counts_are_zero_and_parts_never_exceed_totals() -> None:
    body = {
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": True,
            "prompt_tokens_details": {"cached_tokens": 50},
            "completion_tokens_details": {"reasoning_tokens": -3},
        }
    }
    assert wire.usage_from_body(body) == Usage(input_tokens=10, cached_input_tokens=10)
    assert wire.usage_from_body({"usage": {"prompt_tokens": 7.0, "completion_tokens": "3"}}) == Usage(input_tokens=7)


def test_recorded_stream_with_include_usage(fixture_bytes: FixtureBytes, byte_splits: ByteSplits) -> None:
    stream = fixture_bytes("openai_chat_stream.sse")
    expected = Usage(input_tokens=9, output_tokens=3)
    for chunks in byte_splits(stream):
        collector = collect(chunks)
        assert collector.usage == expected
        assert collector.text == "Hello!"
        assert collector.complete


def test_multibyte_text_survives_any_split(fixture_bytes: FixtureBytes, byte_splits: ByteSplits) -> None:
    stream = fixture_bytes("openai_chat_stream_cjk.sse")
    for chunks in byte_splits(stream):
        collector = collect(chunks)
        assert collector.usage == Usage(input_tokens=14, output_tokens=3)
        assert collector.text == "我是助手。"


def test_crlf_stream_gives_the_same_usage(fixture_bytes: FixtureBytes, byte_splits: ByteSplits) -> None:
    stream = fixture_bytes("openai_chat_stream.sse").replace(b"\n", b"\r\n")
    for chunks in byte_splits(stream):
        assert collect(chunks).usage == Usage(input_tokens=9, output_tokens=3)


def test_stream_cut_before_the_usage_chunk_reports_none(fixture_bytes: FixtureBytes) -> None:
    stream = fixture_bytes("openai_chat_stream.sse")
    cut = stream.index(b'"choices":[],"usage"')
    cut = stream.rindex(b"data: ", 0, cut)
    collector = collect([stream[:cut]])
    assert collector.usage is None
    assert not collector.complete
    assert collector.text == "Hello!"


def test_stream_text_includes_reasoning_refusals_and_tool_arguments() -> None:
    events = [
        {"choices": [{"index": 0, "delta": {"reasoning_content": "think "}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}}]},
        {"choices": [{"index": 0, "delta": {"refusal": " no"}}]},
        {"choices": [{"index": 0, "text": " legacy", "finish_reason": None}]},
    ]
    collector = collect([b"".join(b"data: " + orjson.dumps(event) + b"\n\n" for event in events)])
    assert collector.text == 'think {"a":1} no legacy'
    assert collector.usage is None


def test_text_keeps_its_order_when_deltas_are_parsed_late() -> None:
    # Text deltas (with the `"usage": null` OpenAI sends on every chunk) are parsed when the text is asked
    # for, or once they pass 64 KB; a tool call (it has a `type`) and the usage chunk are parsed at once.
    deltas = [{"choices": [{"index": 0, "delta": {"content": f"w{i} "}}], "usage": None} for i in range(3000)]
    call = {"index": 0, "type": "function", "function": {"arguments": "ARGS "}}
    typed = {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}], "usage": None}
    usage = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 3001}}
    events = [*deltas[:1500], typed, *deltas[1500:], usage]
    collector = collect([b"data: " + orjson.dumps(event) + b"\n\n" for event in events] + [b"data: [DONE]\n\n"])
    assert collector.usage == Usage(input_tokens=3, output_tokens=3001) and collector.complete
    words = [f"w{i} " for i in range(3000)]
    assert collector.text == "".join(words[:1500]) + "ARGS " + "".join(words[1500:])


def test_responses_api_stream() -> None:
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {"usage": None}},
        {"type": "response.output_text.delta", "delta": "Hi"},
        {"type": "response.output_text.delta", "delta": " there"},
        {"type": "response.completed", "response": {"usage": {"input_tokens": 12, "output_tokens": 2,
                                                               "input_tokens_details": {"cached_tokens": 4}}}},
    ]  # fmt: skip
    stream = b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)
    collector = collect([stream])
    assert collector.usage == Usage(input_tokens=12, output_tokens=2, cached_input_tokens=4)
    assert collector.text == "Hi there"
    assert collector.complete


def test_in_stream_error_is_kept() -> None:
    error = {"message": "server error", "type": "server_error", "param": None, "code": None}
    collector = collect([b"data: " + orjson.dumps({"error": error}) + b"\n\n"])
    assert collector.error == error
    assert collector.usage is None


def test_usage_only_chunk_detection(fixture_bytes: FixtureBytes) -> None:
    blocks = fixture_bytes("openai_chat_stream.sse").split(b"\n\n")[:-1]
    flags = [wire.is_usage_only_chunk(block + b"\n\n") for block in blocks]
    assert flags == [False, False, False, False, True, False]
    usage_json = blocks[4].removeprefix(b"data: ")
    assert wire.is_usage_only_chunk(usage_json)
    assert wire.is_usage_only_chunk(orjson.loads(usage_json))
    assert not wire.is_usage_only_chunk({"choices": [], "usage": None})
    assert not wire.is_usage_only_chunk({"choices": [{"index": 0, "delta": {}}], "usage": {"prompt_tokens": 1}})
    assert not wire.is_usage_only_chunk(b'data: {"usage": {"prompt_tokens": 1}, "choices": [')
    # With `include_usage` every chunk carries `"usage":null`; spaced-out JSON is read all the same.
    assert not wire.is_usage_only_chunk(b'data: {"choices":[{"delta":{"content":"a"}}],"usage":null}\n\n')
    assert not wire.is_usage_only_chunk(b'data: {"choices":[],"usage" : null}\n\n')
    assert wire.is_usage_only_chunk(b'data: {"choices": [], "usage" :\t{"prompt_tokens": 1}}\n\n')


def test_usage_chunk_filter_drops_only_the_usage_chunk(fixture_bytes: FixtureBytes, byte_splits: ByteSplits) -> None:
    for line_end in (b"\n", b"\r\n"):
        stream = fixture_bytes("openai_chat_stream.sse").replace(b"\n", line_end)
        blocks = stream.split(line_end * 2)
        expected = b"".join(block + line_end * 2 for index, block in enumerate(blocks[:-1]) if index != 4)
        for chunks in byte_splits(stream):
            chunk_filter = wire.UsageChunkFilter()
            forwarded = b"".join(chunk_filter.feed(chunk) for chunk in chunks) + chunk_filter.flush()
            assert forwarded.replace(b"\r\n\r\n", b"\n\n").replace(b"\r\n", b"\n") == expected.replace(line_end, b"\n")
            assert b'"choices":[],"usage"' not in forwarded


def test_usage_chunk_filter_forwards_complete_events_at_once() -> None:
    chunk_filter = wire.UsageChunkFilter()
    assert chunk_filter.feed(b'data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: {"cho') == (
        b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
    )
    assert chunk_filter.flush() == b'data: {"cho'


def test_with_stream_usage() -> None:
    body: dict[str, object] = {"model": "gpt-4o", "stream": True, "stream_options": {"include_obfuscation": False}}
    updated, asked = wire.with_stream_usage(body)
    assert not asked
    assert updated["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert body["stream_options"] == {"include_obfuscation": False}
    updated, asked = wire.with_stream_usage({"stream": True, "stream_options": {"include_usage": True}})
    assert asked
    assert updated == {"stream": True, "stream_options": {"include_usage": True}}
    assert wire.with_stream_usage({"stream": True})[0]["stream_options"] == {"include_usage": True}


def test_speech_is_metered_by_input_characters() -> None:
    assert wire.speech_usage(b'{"model": "tts-1", "input": "Hello, world!", "voice": "alloy"}') == Usage(characters=13)
    assert wire.speech_usage({"model": "tts-1"}) == Usage()


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [
        (400, "invalid_request_error", "invalid_request"),
        (401, "authentication_error", "invalid_api_key"),
        (402, "insufficient_quota", "budget_exceeded"),
        (403, "permission_error", "model_not_allowed"),
        (404, "not_found_error", "model_not_found"),
        (413, "invalid_request_error", "request_too_large"),
        (502, "api_error", "upstream_unreachable"),
        (504, "api_error", "upstream_timeout"),
        (418, "api_error", "error"),
    ],
)
def test_error_envelope(status: int, error_type: str, code: str) -> None:
    assert wire.error_body(status, "boom") == {
        "error": {"message": "boom", "type": error_type, "param": None, "code": code}
    }


def test_error_envelope_overrides() -> None:
    body = wire.error_body(401, "key revoked", code="key_revoked", error_type="invalid_request_error", param="key")
    assert body == {"error": {"message": "key revoked", "type": "invalid_request_error", "param": "key",
                              "code": "key_revoked"}}  # fmt: skip


def test_estimate_input_tokens() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello world"}]
    # 3 framing + "system" 1 + "Be brief." 3, 3 framing + "user" 1 + "hello world" 2, 3 reply primer
    assert wire.estimate_input_tokens({"model": "gpt-4o", "messages": messages}) == 16
    assert wire.estimate_input_tokens({"model": "text-embedding-3-small", "input": ["hello world", "hi"]}) == 3
    assert wire.estimate_input_tokens({"model": "text-embedding-3-small", "input": [1, 2, 3]}) == 3
    assert wire.estimate_input_tokens({"model": "gpt-3.5-turbo-instruct", "prompt": "hello world"}) == 2
    responses_input = {"model": "gpt-5", "instructions": "Be brief.", "input": [{"role": "user", "content": "hi"}]}
    assert wire.estimate_input_tokens(responses_input) == 4
