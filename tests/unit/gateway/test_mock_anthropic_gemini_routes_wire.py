"""The mock's Anthropic and Gemini routes: answers validate as the SDKs' types; limits, cache caps and errors."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from anthropic.types import Message, MessageTokensCount, RawMessageStreamEvent
from google.genai import types as genai
from pydantic import TypeAdapter

from farebox.core.pricing import Usage
from farebox.gateway.providers import anthropic as anthropic_wire
from farebox.gateway.providers import gemini as gemini_wire
from farebox.gateway.providers.mock import MockStreamAborted

pytestmark = pytest.mark.anyio

STREAM_EVENT = TypeAdapter(RawMessageStreamEvent)
MESSAGES = [{"role": "user", "content": "Say hello to the world."}]
REQUEST = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": MESSAGES}
CONTENTS = {"contents": [{"role": "user", "parts": [{"text": "Say hello to the world."}]}]}


def sse_events(body: bytes, line_end: bytes = b"\n") -> list[dict[str, Any]]:
    blocks = [block for block in body.split(line_end * 2) if block]
    return [orjson.loads(block.split(b"data: ", 1)[1]) for block in blocks]


async def test_a_message_with_thinking_reports_its_thinking_tokens(raw_client: httpx.AsyncClient) -> None:
    headers = {"x-mock-reasoning-tokens": "30", "x-mock-output-tokens": "5"}
    response = await raw_client.post("/anthropic/v1/messages", json=REQUEST, headers=headers)
    message = Message.model_validate_json(response.content)
    assert message.usage.output_tokens == 35
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens == 30
    total = anthropic_wire.estimate_input_tokens(REQUEST)
    assert anthropic_wire.usage_from_body(response.content) == Usage(
        input_tokens=total, output_tokens=35, reasoning_tokens=30
    )


async def test_every_stream_event_validates_and_the_stream_usage_equals_the_body_usage(
    raw_client: httpx.AsyncClient,
) -> None:
    headers = {"x-mock-cached-tokens": "5", "x-mock-cache-write-tokens": "3", "x-mock-reasoning-tokens": "4"}
    streamed = await raw_client.post("/anthropic/v1/messages", json={**REQUEST, "stream": True}, headers=headers)
    raw = sse_events(streamed.content)
    assert [event["type"] for event in raw].count("ping") == 1  # the SDK skips pings: not in its event union
    events = [STREAM_EVENT.validate_python(event) for event in raw if event["type"] != "ping"]
    assert [event.type for event in events[:2]] == ["message_start", "content_block_start"]
    assert events[-1].type == "message_stop"
    collector = anthropic_wire.AnthropicUsageCollector()
    collector.feed(streamed.content)
    collector.close()
    whole = await raw_client.post("/anthropic/v1/messages", json=REQUEST, headers=headers)
    assert collector.usage == anthropic_wire.usage_from_body(whole.content)
    assert collector.usage is not None and collector.usage.reasoning_tokens == 4
    assert collector.text == Message.model_validate_json(whole.content).content[0].text  # type: ignore[union-attr]


async def test_a_streamed_message_stops_at_max_tokens(raw_client: httpx.AsyncClient) -> None:
    body = {**REQUEST, "max_tokens": 2, "stream": True}
    events = sse_events((await raw_client.post("/anthropic/v1/messages", json=body)).content)
    delta = next(event for event in events if event["type"] == "message_delta")
    assert delta["delta"]["stop_reason"] == "max_tokens"
    assert delta["usage"]["output_tokens"] == 2
    start = events[0]["message"]
    assert start["usage"]["output_tokens"] == 1 and start["stop_reason"] is None and start["content"] == []


TOTAL = anthropic_wire.estimate_input_tokens(REQUEST)


@pytest.mark.parametrize(
    ("cached", "written", "expected_read", "expected_write"),
    [
        ("1000", "0", TOTAL, 0),  # a read larger than the prompt is the whole prompt
        ("0", "1000", 0, TOTAL),
        ("3", "1000", 3, TOTAL - 3),  # the write gets what the read left
        ("-1", "x", 0, 0),
    ],
)
async def test_cache_counts_are_capped_at_the_prompt(
    raw_client: httpx.AsyncClient, cached: str, written: str, expected_read: int, expected_write: int
) -> None:
    headers = {"x-mock-cached-tokens": cached, "x-mock-cache-write-tokens": written}
    usage = (await raw_client.post("/anthropic/v1/messages", json=REQUEST, headers=headers)).json()["usage"]
    assert (usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]) == (expected_read, expected_write)
    assert usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"] == TOTAL
    assert usage["cache_creation"]["ephemeral_5m_input_tokens"] == expected_write


async def test_count_tokens_counts_system_and_tools(raw_client: httpx.AsyncClient) -> None:
    body = {**REQUEST, "system": "Be terse.", "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}
    counted = MessageTokensCount.model_validate_json(
        (await raw_client.post("/anthropic/v1/messages/count_tokens", json=body)).content
    )
    plain = (await raw_client.post("/anthropic/v1/messages/count_tokens", json=REQUEST)).json()["input_tokens"]
    assert counted.input_tokens == anthropic_wire.estimate_input_tokens(body) > plain


@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        ("/messages", b"{oops", "There was an issue with your request body: it is not valid JSON."),
        ("/messages", b'{"max_tokens": 5, "messages": []}', "model: Field required"),
        ("/messages", b'{"model": "claude", "messages": []}', "max_tokens: Field required"),
        (
            "/messages",
            b'{"model": "claude", "max_tokens": -5, "messages": []}',
            "max_tokens: Input should be greater than or equal to 0",
        ),
        (
            "/messages",
            b'{"model": "claude", "max_tokens": "5", "messages": []}',
            "max_tokens: Input should be a valid integer",
        ),
        ("/messages/count_tokens", b"[]", "There was an issue with your request body: it is not valid JSON."),
        ("/messages/count_tokens", b'{"model": ""}', "model: Field required"),
    ],
)
async def test_bad_anthropic_requests(raw_client: httpx.AsyncClient, path: str, content: bytes, message: str) -> None:
    response = await raw_client.post("/anthropic/v1" + path, content=content)
    body = response.json()
    assert response.status_code == 400
    assert body["error"] == {"type": "invalid_request_error", "message": message}
    assert body["request_id"] == response.headers["request-id"] and body["request_id"].startswith("req_")


async def test_an_unlisted_forced_status_uses_the_default_message(raw_client: httpx.AsyncClient) -> None:
    response = await raw_client.post("/anthropic/v1/messages", json={**REQUEST, "model": "claude@402"})
    assert response.status_code == 402
    assert response.json()["error"] == {"type": "billing_error", "message": "farebox mock answered 402."}


async def test_an_aborted_anthropic_stream_raises_after_the_first_events(raw_client: httpx.AsyncClient) -> None:
    headers = {"x-mock-drop-after": "3", "x-mock-drop-mode": "abort"}
    with pytest.raises(MockStreamAborted, match="after 3 chunks"):
        await raw_client.post("/anthropic/v1/messages", json={**REQUEST, "stream": True}, headers=headers)


async def test_a_gemini_answer_validates_and_its_usage_adds_thoughts(raw_client: httpx.AsyncClient) -> None:
    headers = {"x-mock-reasoning-tokens": "7", "x-mock-cached-tokens": "2", "x-mock-output-tokens": "3"}
    response = await raw_client.post(
        "/gemini/v1beta/models/gemini-2.5-pro:generateContent", json=CONTENTS, headers=headers
    )
    answer = genai.GenerateContentResponse.model_validate_json(response.content)
    assert answer.model_version == "gemini-2.5-pro" and answer.text == "The quick brown"
    metadata = answer.usage_metadata
    assert metadata is not None and metadata.thoughts_token_count == 7
    prompt = gemini_wire.estimate_input_tokens(CONTENTS)
    assert (metadata.prompt_token_count, metadata.candidates_token_count, metadata.total_token_count) == (
        prompt,
        3,
        prompt + 10,
    )
    assert gemini_wire.usage_from_body(response.content) == Usage(
        input_tokens=prompt, output_tokens=10, cached_input_tokens=2, reasoning_tokens=7
    )


async def test_no_thoughts_or_cache_means_no_such_fields(raw_client: httpx.AsyncClient) -> None:
    metadata = (await raw_client.post("/gemini/v1beta/models/gemini-2.5-flash:generateContent", json=CONTENTS)).json()[
        "usageMetadata"
    ]
    assert "thoughtsTokenCount" not in metadata and "cachedContentTokenCount" not in metadata


async def test_zero_output_tokens_still_streams_one_finished_chunk(raw_client: httpx.AsyncClient) -> None:
    body = {**CONTENTS, "generationConfig": {"maxOutputTokens": 1}}
    response = await raw_client.post(
        "/gemini/v1beta/models/g:streamGenerateContent?alt=sse", json=body, headers={"x-mock-reasoning-tokens": "5"}
    )
    events = sse_events(response.content, b"\r\n")
    assert len(events) == 1  # the limit's one token went to thinking: no text at all
    only = genai.GenerateContentResponse.model_validate(events[0])
    assert only.candidates is not None and only.candidates[0].finish_reason == genai.FinishReason.MAX_TOKENS
    collector = gemini_wire.GeminiUsageCollector()
    collector.feed(response.content)
    prompt = gemini_wire.estimate_input_tokens(CONTENTS)
    assert collector.complete and collector.usage == Usage(input_tokens=prompt, output_tokens=1, reasoning_tokens=1)


async def test_the_json_array_stream_is_comma_separated_objects(raw_client: httpx.AsyncClient) -> None:
    response = await raw_client.post(
        "/gemini/v1beta/models/g:streamGenerateContent", json=CONTENTS, headers={"x-mock-output-tokens": "3"}
    )
    assert response.headers["content-type"] == "application/json"
    assert response.content.startswith(b"[{") and response.content.endswith(b"}]")
    assert response.content.count(b",\r\n{") == 2
    items = [genai.GenerateContentResponse.model_validate(item) for item in response.json()]
    assert [item.usage_metadata.candidates_token_count for item in items if item.usage_metadata] == [1, 2, 3]
    assert gemini_wire.response_text(response.content) == "The quick brown"


async def test_a_dropped_gemini_sse_stream_has_no_finish(raw_client: httpx.AsyncClient) -> None:
    response = await raw_client.post("/gemini/v1beta/models/g@drop2:streamGenerateContent?alt=sse", json=CONTENTS)
    collector = gemini_wire.GeminiUsageCollector()
    collector.feed(response.content)
    collector.close()
    assert not collector.complete
    assert collector.usage is not None and collector.usage.output_tokens == 2
    assert collector.text == "The quick"


@pytest.mark.parametrize(
    ("target", "status", "message"),
    [
        ("g:embedContent", 404, "Method embedContent is not found."),
        ("g", 404, "Method g is not found."),
        (":generateContent", 404, "Method generateContent is not found."),
        ("g@500:generateContent", 500, "An internal error has occurred. (farebox mock)"),
        ("g@503:streamGenerateContent", 503, "farebox mock answered 503."),
    ],
)
async def test_gemini_errors(raw_client: httpx.AsyncClient, target: str, status: int, message: str) -> None:
    response = await raw_client.post(f"/gemini/v1beta/models/{target}", json=CONTENTS)
    assert response.status_code == status
    assert response.json() == gemini_wire.error_body(status, message)


async def test_a_gemini_body_that_is_not_an_object(raw_client: httpx.AsyncClient) -> None:
    response = await raw_client.post("/gemini/v1beta/models/g:generateContent", content=b"[]")
    assert response.json() == {
        "error": {"code": 400, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT"}
    }
