"""Gemini `usageMetadata` and streams built with the official google-genai types (camelCase on the wire)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from google.genai import types
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.pricing import Usage
from farebox.gateway.providers import gemini as wire
from farebox.gateway.tokens import count_tokens


def wire_json(response: types.GenerateContentResponse) -> dict[str, Any]:
    """A response as the REST API sends it: camelCase names, absent fields left out."""
    return response.model_dump(mode="json", by_alias=True, exclude_none=True)


def response(*parts: types.Part, finish: str | None = None, **usage: int) -> types.GenerateContentResponse:
    candidate = types.Candidate(
        content=types.Content(role="model", parts=list(parts)),
        finish_reason=types.FinishReason(finish) if finish else None,
        index=0,
    )
    metadata = types.GenerateContentResponseUsageMetadata(**usage) if usage else None
    return types.GenerateContentResponse(candidates=[candidate], usage_metadata=metadata, model_version="gemini-2.5")


def sse(*responses: types.GenerateContentResponse) -> bytes:
    return b"".join(b"data: " + orjson.dumps(wire_json(item)) + b"\r\n\r\n" for item in responses)


def collect(data: bytes) -> wire.GeminiUsageCollector:
    collector = wire.GeminiUsageCollector()
    collector.feed(data)
    collector.close()
    return collector


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_token_count": 10, "candidates_token_count": 5, "total_token_count": 15},
         Usage(input_tokens=10, output_tokens=5)),
        ({"prompt_token_count": 10, "candidates_token_count": 5, "thoughts_token_count": 20, "total_token_count": 35},
         Usage(input_tokens=10, output_tokens=25, reasoning_tokens=20)),
        ({"prompt_token_count": 4000, "cached_content_token_count": 3000, "candidates_token_count": 1},
         Usage(input_tokens=4000, output_tokens=1, cached_input_tokens=3000)),
        ({"prompt_token_count": 100, "tool_use_prompt_token_count": 50, "candidates_token_count": 2},
         Usage(input_tokens=150, output_tokens=2)),
        ({"prompt_token_count": 12, "total_token_count": 12}, Usage(input_tokens=12)),  # e.g. blocked by safety
        ({"thoughts_token_count": 8}, Usage(output_tokens=8, reasoning_tokens=8)),
        ({"total_token_count": 0}, Usage()),
        ({"prompt_token_count": 10, "cached_content_token_count": 99}, Usage(input_tokens=10, cached_input_tokens=10)),
    ],
    ids=["plain", "thinking", "cached", "tool-use-prompt", "prompt-only", "thoughts-only", "zero", "cache-over-prompt"],
)  # fmt: skip
def test_usage_metadata_as_the_sdk_serialises_it(usage: dict[str, int], expected: Usage) -> None:
    body = wire_json(response(types.Part(text="x"), finish="STOP", **usage))
    assert wire.usage_from_body(orjson.dumps(body)) == expected
    assert wire.usage_from_body(body) == expected


def test_metadata_with_only_details_or_a_traffic_type_is_no_usage() -> None:
    metadata = {"promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}], "trafficType": "ON_DEMAND"}
    assert wire.usage_from_object(metadata) is None
    assert wire.usage_from_body({"usageMetadata": {}}) is None
    assert wire.usage_from_body({"usageMetadata": None}) is None


def test_snake_case_fields_are_not_the_rest_wire_format() -> None:
    # The REST API (and so the proxy) speaks camelCase; the Python SDK's attribute names never reach the wire.
    assert wire.usage_from_body({"usage_metadata": {"prompt_token_count": 9}}) is None


def test_a_streamed_answer_with_thoughts_and_a_function_call() -> None:
    stream = sse(
        response(
            types.Part(text="**Planning** the call", thought=True),
            prompt_token_count=60,
            thoughts_token_count=30,
            total_token_count=90,
        ),
        response(
            types.Part(function_call=types.FunctionCall(name="get_time", args={"tz": "UTC"})),
            prompt_token_count=60,
            candidates_token_count=12,
            thoughts_token_count=30,
            total_token_count=102,
        ),
        response(
            types.Part(text="It is noon."),
            finish="STOP",
            prompt_token_count=60,
            candidates_token_count=17,
            thoughts_token_count=30,
            total_token_count=107,
        ),
    )
    collector = collect(stream)
    assert collector.complete
    assert collector.usage == Usage(input_tokens=60, output_tokens=47, reasoning_tokens=30)
    assert collector.text == '**Planning** the call{"args":{"tz":"UTC"},"name":"get_time"}It is noon.'


@pytest.mark.parametrize("finish", ["STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "MALFORMED_FUNCTION_CALL"])
def test_any_finish_reason_completes_the_stream(finish: str) -> None:
    assert collect(sse(response(types.Part(text="a"), finish=finish, prompt_token_count=1))).complete


def test_a_stream_without_finish_reason_is_incomplete_and_keeps_the_last_usage() -> None:
    stream = sse(
        response(types.Part(text="a"), prompt_token_count=5, candidates_token_count=1),
        response(types.Part(text="b"), prompt_token_count=5, candidates_token_count=2),
        response(types.Part(text="c")),  # a chunk without metadata leaves the last report standing
    )
    collector = collect(stream)
    assert not collector.complete
    assert collector.usage == Usage(input_tokens=5, output_tokens=2)
    assert collector.text == "abc"


def test_an_error_mid_stream_is_kept_beside_the_usage_so_far() -> None:
    error = {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}
    stream = sse(response(types.Part(text="par"), prompt_token_count=7, candidates_token_count=1))
    stream += b"data: " + orjson.dumps({"error": error}) + b"\r\n\r\n"
    collector = collect(stream)
    assert collector.error == error
    assert collector.usage == Usage(input_tokens=7, output_tokens=1)
    assert not collector.complete


def test_malformed_candidates_and_parts_are_skipped() -> None:
    stream = (
        b'data: {"candidates": "x"}\r\n\r\n'
        b'data: {"candidates": [null, 3, {"content": "text"}, {"content": {"parts": "p"}}]}\r\n\r\n'
        b'data: {"candidates": [{"content": {"parts": [null, {"text": 5}, {"text": "ok"}]}}]}\r\n\r\n'
        b"data: not json\r\n\r\n"
        b'data: {"candidates": [{"finishReason": ""}]}\r\n\r\n'
    )
    collector = collect(stream)
    assert collector.text == "ok"
    assert not collector.complete  # an empty finishReason is no finish


@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1, max_size=5))
def test_the_last_cumulative_report_wins_in_sse_and_json_array_streams(counts: list[tuple[int, int]]) -> None:
    chunks = [
        response(types.Part(text="w"), prompt_token_count=prompt, candidates_token_count=candidates)
        for prompt, candidates in counts
    ]
    prompt, candidates = counts[-1]
    expected = Usage(input_tokens=prompt, output_tokens=candidates)
    assert collect(sse(*chunks)).usage == expected
    array = orjson.dumps([wire_json(chunk) for chunk in chunks])
    assert wire.usage_from_body(array) == expected


def test_a_json_array_whose_last_items_lack_metadata_keeps_the_earlier_report() -> None:
    items = [
        wire_json(response(types.Part(text="a"), prompt_token_count=3, candidates_token_count=1)),
        wire_json(response(types.Part(text="b"))),
        "garbage",
    ]
    assert wire.usage_from_body(orjson.dumps(items)) == Usage(input_tokens=3, output_tokens=1)
    assert wire.usage_from_body(items) == Usage(input_tokens=3, output_tokens=1)


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (wire_json(response(types.Part(text="Hello"), types.Part(text=" world"))), "Hello world"),
        ({"candidates": [{"content": {"parts": [{"text": "a"}]}}, {"content": {"parts": [{"text": "b"}]}}]}, "ab"),
        ({"candidates": [{"content": {"parts": [{"functionResponse": {"name": "f", "response": {"ok": 1}}}]}}]},
         '{"name":"f","response":{"ok":1}}'),
        ({"candidates": []}, ""),
        ({"promptFeedback": {"blockReason": "SAFETY"}}, ""),
        ([], ""),
        ("just a string", ""),
    ],
)  # fmt: skip
def test_response_text(body: object, text: str) -> None:
    assert wire.response_text(orjson.dumps(body)) == text


@pytest.mark.parametrize(
    ("body", "texts"),
    [
        ({"contents": [{"role": "user", "parts": [{"text": "hello world"}]}]}, ["hello world"]),
        ({"contents": [{"parts": [{"text": "hello"}, {"text": " world"}]}]}, ["hello world"]),
        ({"contents": [{"parts": [{"text": "hello"}]}, {"parts": [{"text": " world"}]}]}, ["hello", " world"]),
        ({"contents": [{"parts": [{"functionCall": {"name": "f", "args": {}}}]}]}, ['{"name":"f","args":{}}']),
        ({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBORw0"}}]}]}, []),
        ({"systemInstruction": {"parts": [{"text": "Be brief."}]}, "contents": "bad"}, ["Be brief."]),
        ({"contents": [None, {"parts": None}]}, []),
        ({}, []),
    ],
)
def test_estimate_input_tokens_counts_each_content_s_text(body: dict[str, Any], texts: list[str]) -> None:
    assert wire.estimate_input_tokens(body) == sum(count_tokens(text) for text in texts)
