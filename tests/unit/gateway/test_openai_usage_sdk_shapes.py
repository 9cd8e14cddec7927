"""OpenAI usage read from bodies built with the official SDK's own types, and the Responses API stream events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from openai.types import CompletionUsage
from openai.types.audio.transcription import UsageDuration, UsageTokens, UsageTokensInputTokenDetails
from openai.types.completion_usage import CompletionTokensDetails, PromptTokensDetails
from openai.types.responses import ResponseUsage
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from farebox.core.pricing import Usage
from farebox.gateway.providers import openai as wire


def sse(*events: dict[str, Any], named: bool = False) -> bytes:
    """SSE bytes for events; Responses API events also carry their `event:` line when `named`."""
    out = b""
    for event in events:
        head = b"event: " + event["type"].encode() + b"\n" if named else b""
        out += head + b"data: " + orjson.dumps(event) + b"\n\n"
    return out


def collect(data: bytes) -> wire.OpenAIUsageCollector:
    collector = wire.OpenAIUsageCollector()
    collector.feed(data)
    collector.close()
    return collector


def chat_usage(**details: Any) -> dict[str, Any]:
    return CompletionUsage(
        prompt_tokens=1200,
        completion_tokens=400,
        total_tokens=1600,
        prompt_tokens_details=PromptTokensDetails(**details.get("prompt", {})),
        completion_tokens_details=CompletionTokensDetails(**details.get("completion", {})),
    ).model_dump(mode="json")


def responses_usage(cached: int, cache_write: int, reasoning: int) -> dict[str, Any]:
    return ResponseUsage(
        input_tokens=900,
        input_tokens_details=InputTokensDetails(cached_tokens=cached, cache_write_tokens=cache_write),
        output_tokens=300,
        output_tokens_details=OutputTokensDetails(reasoning_tokens=reasoning),
        total_tokens=1200,
    ).model_dump(mode="json")


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (chat_usage(), Usage(input_tokens=1200, output_tokens=400)),
        (
            chat_usage(prompt={"cached_tokens": 1024, "audio_tokens": 0}, completion={"reasoning_tokens": 256}),
            Usage(input_tokens=1200, output_tokens=400, cached_input_tokens=1024, reasoning_tokens=256),
        ),
        (
            chat_usage(prompt={"cached_tokens": 100, "cache_write_tokens": 900}),
            Usage(input_tokens=1200, output_tokens=400, cached_input_tokens=100, cache_write_tokens=900),
        ),
        (
            # audio, prediction and image token details are parts of the totals, not extra usage
            chat_usage(
                prompt={"audio_tokens": 50, "image_tokens": 70},
                completion={"audio_tokens": 9, "accepted_prediction_tokens": 3, "rejected_prediction_tokens": 4},
            ),
            Usage(input_tokens=1200, output_tokens=400),
        ),
        (
            responses_usage(cached=512, cache_write=0, reasoning=128),
            Usage(input_tokens=900, output_tokens=300, cached_input_tokens=512, reasoning_tokens=128),
        ),
        (
            responses_usage(cached=0, cache_write=600, reasoning=0),
            Usage(input_tokens=900, output_tokens=300, cache_write_tokens=600),
        ),
        (
            UsageTokens(
                type="tokens",
                input_tokens=40,
                output_tokens=12,
                total_tokens=52,
                input_token_details=UsageTokensInputTokenDetails(audio_tokens=38, text_tokens=2),
            ).model_dump(mode="json"),
            Usage(input_tokens=40, output_tokens=12),
        ),
        (UsageDuration(type="duration", seconds=61.5).model_dump(mode="json"), Usage(seconds=Decimal("61.5"))),
        (UsageDuration(type="duration", seconds=0).model_dump(mode="json"), Usage()),
    ],
    ids=["chat-plain", "chat-cached-reasoning", "chat-cache-write", "chat-other-details", "responses",
         "responses-cache-write", "transcription-tokens", "transcription-duration", "transcription-zero"],
)  # fmt: skip
def test_usage_objects_as_the_sdk_types_serialise_them(usage: dict[str, Any], expected: Usage) -> None:
    assert wire.usage_from_object(usage) == expected
    assert wire.usage_from_body(orjson.dumps({"usage": usage})) == expected


@pytest.mark.parametrize(
    "usage",
    [
        {},
        {"total_tokens": 5},
        {"type": "duration"},
        {"type": "duration", "seconds": "soon"},
        {"type": "duration", "seconds": -2},
        {"type": "tokens"},  # a typed usage without counts reports nothing
    ],
)
def test_usage_objects_that_report_nothing(usage: dict[str, Any]) -> None:
    assert wire.usage_from_object(usage) is None


def test_chat_fields_win_over_responses_fields_in_one_object() -> None:
    mixed = {"prompt_tokens": 3, "completion_tokens": 4, "input_tokens": 300, "output_tokens": 400}
    assert wire.usage_from_object(mixed) == Usage(input_tokens=3, output_tokens=4)


def test_top_level_usage_wins_over_a_nested_response_usage() -> None:
    body = {"usage": {"prompt_tokens": 1, "completion_tokens": 2}, "response": {"usage": {"input_tokens": 9}}}
    assert wire.usage_from_body(body) == Usage(input_tokens=1, output_tokens=2)
    assert wire.usage_from_body({"usage": None, "response": {"usage": {"input_tokens": 9}}}) == Usage(input_tokens=9)


@pytest.mark.parametrize("final", ["response.completed", "response.incomplete", "response.failed"])
def test_every_final_responses_event_completes_the_stream_with_its_usage(final: str) -> None:
    usage = responses_usage(cached=100, cache_write=0, reasoning=50)
    stream = sse(
        {"type": "response.created", "sequence_number": 0, "response": {"status": "in_progress", "usage": None}},
        {"type": "response.in_progress", "sequence_number": 1, "response": {"usage": None}},
        {"type": final, "sequence_number": 2, "response": {"status": final.split(".")[1], "usage": usage}},
        named=True,
    )
    collector = collect(stream)
    assert collector.complete
    assert collector.usage == Usage(input_tokens=900, output_tokens=300, cached_input_tokens=100, reasoning_tokens=50)


def test_a_responses_stream_without_a_final_event_is_incomplete() -> None:
    collector = collect(
        sse(
            {"type": "response.created", "response": {"usage": None}},
            {"type": "response.output_text.delta", "item_id": "msg_1", "delta": "partial"},
            named=True,
        )
    )
    assert not collector.complete
    assert collector.usage is None
    assert collector.text == "partial"


@pytest.mark.parametrize(
    ("kind", "kept"),
    [
        ("response.output_text.delta", True),
        ("response.refusal.delta", True),
        ("response.reasoning_text.delta", True),
        ("response.reasoning_summary_text.delta", True),
        ("response.function_call_arguments.delta", True),
        ("response.output_text.done", False),  # the whole text again: counting it would double it
        ("response.audio.transcript.delta", False),
        ("response.output_item.added", False),
    ],
)
def test_which_responses_events_count_as_generated_text(kind: str, kept: bool) -> None:
    collector = collect(sse({"type": kind, "delta": "words", "text": "words"}, named=True))
    assert collector.text == ("words" if kept else "")


def test_the_responses_error_event_is_kept_whole() -> None:
    error = {"type": "error", "code": "server_error", "message": "The server had an error.", "param": None}
    collector = collect(sse({**error, "sequence_number": 4}))
    assert collector.error == {**error, "sequence_number": 4}
    assert not collector.complete


def test_a_chat_error_that_is_not_an_object_is_ignored() -> None:
    assert collect(b'data: {"error": "plain text"}\n\n').error is None
    assert collect(b'data: {"error": null}\n\n').error is None


@pytest.mark.parametrize(
    "marker",
    [b"data: [DONE]\n\n", b"data:[DONE]\n\n", b"data: [DONE]\r\n\r\n", b"data: [DONE]"],
    ids=["lf", "no-space", "crlf", "unterminated"],
)
def test_done_marker_completes_the_stream(marker: bytes) -> None:
    collector = collect(b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n' + marker)
    assert collector.complete
    assert collector.text == "x"


def test_usage_in_every_chunk_keeps_the_last_report() -> None:
    # vLLM's `continuous_usage_stats` sends a cumulative usage on every chunk, choices included.
    chunks = [
        {"choices": [{"index": 0, "delta": {"content": "a"}}], "usage": {"prompt_tokens": 5, "completion_tokens": 1}},
        {"choices": [{"index": 0, "delta": {"content": "b"}}], "usage": {"prompt_tokens": 5, "completion_tokens": 2}},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None},
    ]
    collector = collect(b"".join(sse(chunk) for chunk in chunks) + b"data: [DONE]\n\n")
    assert collector.usage == Usage(input_tokens=5, output_tokens=2)
    assert collector.text == "ab"


def test_malformed_events_are_skipped_and_the_rest_is_read() -> None:
    stream = (
        b"data: {not json\n\n"
        b"data: [1, 2, 3]\n\n"
        b'data: {"choices": "none"}\n\n'
        b'data: {"choices": [null, 7, {"index": 0, "delta": "x"}, {"index": 1, "delta": {"content": 5}}]}\n\n'
        b'data: {"choices": [{"index": 0, "delta": {"tool_calls": [null, {"function": "f"}, {"function": {}}]}}]}\n\n'
        b'data: {"choices": [{"index": 0, "delta": {"content": "ok"}}]}\n\n'
        b'data: {"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 1}}\n\n'
        b"data: [DONE]\n\n"
    )
    collector = collect(stream)
    assert collector.text == "ok"
    assert collector.usage == Usage(input_tokens=2, output_tokens=1)
    assert collector.complete and collector.error is None


def test_a_long_stream_keeps_its_text_in_order_past_the_deferral_threshold() -> None:
    # 70 KB of text deltas: kept as bytes until 64 KB, then parsed; the order of the text never changes.
    deltas = [{"choices": [{"index": 0, "delta": {"content": f"{i:05d}" + "x" * 60}}]} for i in range(1000)]
    collector = wire.OpenAIUsageCollector()
    for delta in deltas:
        collector.feed(sse(delta))
    assert collector.text == "".join(f"{i:05d}" + "x" * 60 for i in range(1000))
    collector.feed(sse({"choices": [{"index": 0, "delta": {"content": "!"}}]}))
    assert collector.text.endswith("x!")


@pytest.mark.parametrize(
    ("chunk", "usage_only"),
    [
        ({"choices": [], "usage": {"prompt_tokens": 1}}, True),
        ({"choices": [], "usage": {}}, True),
        ({"choices": [], "usage": None}, False),
        ({"choices": [], "usage": [1]}, False),
        ({"usage": {"prompt_tokens": 1}}, False),  # no choices at all: not the include_usage chunk
        ({"choices": None, "usage": {"prompt_tokens": 1}}, False),
        ({"choices": [{}], "usage": {"prompt_tokens": 1}}, False),
    ],
)
def test_usage_only_chunk_shapes(chunk: dict[str, Any], usage_only: bool) -> None:
    assert wire.is_usage_only_chunk(chunk) is usage_only
    assert wire.is_usage_only_chunk(orjson.dumps(chunk)) is usage_only
    assert wire.is_usage_only_chunk(sse(chunk)) is usage_only
    assert wire.is_usage_only_chunk(b": keep-alive\n" + sse(chunk).replace(b"\n", b"\r\n")) is usage_only


@pytest.mark.parametrize("raw", [b"", b"data: [DONE]\n\n", b': "usage": {}\n\n', b'data: "usage": {}\n\n'])
def test_blocks_that_only_mention_usage_are_not_usage_chunks(raw: bytes) -> None:
    assert wire.is_usage_only_chunk(raw) is False
