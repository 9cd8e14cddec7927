"""The mock provider's Anthropic (official SDK) and Gemini APIs, read back by farebox's adapters."""

from __future__ import annotations

import anthropic
import httpx
import orjson
import pytest
from anthropic.types import MessageParam, TextBlock

from farebox.core.pricing import Usage
from farebox.gateway.providers import anthropic as anthropic_wire
from farebox.gateway.providers import gemini as gemini_wire

pytestmark = pytest.mark.anyio

MESSAGES: list[MessageParam] = [{"role": "user", "content": "Say hello to the world."}]
MESSAGE_REQUEST = {"model": "claude-haiku-4-5", "max_tokens": 256, "messages": MESSAGES}
GEMINI_REQUEST = {
    "systemInstruction": {"parts": [{"text": "You are terse."}]},
    "contents": [{"role": "user", "parts": [{"text": "Say hello to the world."}]}],
}


async def test_message(anthropic_client: anthropic.AsyncAnthropic) -> None:
    raw = await anthropic_client.messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=256,
        messages=MESSAGES,
    )
    message = await raw.parse()
    assert message.type == "message"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == anthropic_wire.estimate_input_tokens(MESSAGE_REQUEST)
    assert anthropic_wire.usage_from_body(await raw.read()) == Usage(
        input_tokens=message.usage.input_tokens, output_tokens=message.usage.output_tokens
    )


async def test_message_with_cache_tokens(anthropic_client: anthropic.AsyncAnthropic) -> None:
    raw = await anthropic_client.messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=3,
        messages=MESSAGES,
        extra_headers={"x-mock-cached-tokens": "4", "x-mock-cache-write-tokens": "2"},
    )
    message = await raw.parse()
    assert message.stop_reason == "max_tokens"
    total = anthropic_wire.estimate_input_tokens(MESSAGE_REQUEST)
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (total - 6, 4)
    assert message.usage.cache_creation_input_tokens == 2
    assert anthropic_wire.usage_from_body(await raw.read()) == Usage(
        input_tokens=total, output_tokens=3, cached_input_tokens=4, cache_write_tokens=2
    )


async def test_stream_has_every_event_type_and_matches_the_sdk(
    anthropic_client: anthropic.AsyncAnthropic, raw_client: httpx.AsyncClient
) -> None:
    async with anthropic_client.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=256,
        messages=MESSAGES,
        extra_headers={"x-mock-cached-tokens": "3"},
    ) as stream:
        final = await stream.get_final_message()

    collector = anthropic_wire.AnthropicUsageCollector()
    events: list[bytes] = []
    async with raw_client.stream(
        "POST",
        "/anthropic/v1/messages",
        json={**MESSAGE_REQUEST, "stream": True},
        headers={"x-mock-cached-tokens": "3"},
    ) as response:
        async for chunk in response.aiter_raw():
            collector.feed(chunk)
            events.append(chunk)
    collector.close()
    names = [line.removeprefix(b"event: ") for line in b"".join(events).split(b"\n") if line.startswith(b"event: ")]
    assert names[:3] == [b"message_start", b"content_block_start", b"ping"]
    assert names[-3:] == [b"content_block_stop", b"message_delta", b"message_stop"]
    assert set(names[3:-3]) == {b"content_block_delta"}
    assert collector.complete
    block = final.content[0]
    assert isinstance(block, TextBlock)
    assert collector.text == block.text
    assert collector.usage == Usage(
        input_tokens=final.usage.input_tokens + 3, output_tokens=final.usage.output_tokens, cached_input_tokens=3
    )


async def test_count_tokens(anthropic_client: anthropic.AsyncAnthropic) -> None:
    counted = await anthropic_client.messages.count_tokens(model="claude-haiku-4-5", messages=MESSAGES)
    assert counted.input_tokens == anthropic_wire.estimate_input_tokens(MESSAGE_REQUEST)


@pytest.mark.parametrize(
    ("status", "exception", "error_type"),
    [
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (413, anthropic.RequestTooLargeError, "request_too_large"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
async def test_forced_errors_reach_the_sdk_as_its_own_exceptions(
    anthropic_client: anthropic.AsyncAnthropic, status: int, exception: type[anthropic.APIStatusError], error_type: str
) -> None:
    with pytest.raises(exception) as raised:
        await anthropic_client.messages.create(
            model=f"claude-haiku-4-5@{status}",
            max_tokens=10,
            messages=MESSAGES,
        )
    assert raised.value.status_code == status
    body = raised.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert raised.value.request_id == body["request_id"]


async def test_missing_max_tokens_is_a_bad_request(raw_client: httpx.AsyncClient) -> None:
    response = await raw_client.post("/anthropic/v1/messages", json={"model": "claude-haiku-4-5", "messages": []})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_anthropic_stream_dropped_mid_way(raw_client: httpx.AsyncClient) -> None:
    response = await raw_client.post(
        "/anthropic/v1/messages", json={**MESSAGE_REQUEST, "stream": True}, headers={"x-mock-drop-after": "5"}
    )
    collector = anthropic_wire.AnthropicUsageCollector()
    collector.feed(response.content)
    collector.close()
    assert not collector.complete
    assert collector.text == "The quick"
    usage = collector.usage
    assert usage is not None
    assert usage.output_tokens == 1  # message_start's provisional count; the estimate must cover the rest


async def test_gemini_generate_content(raw_client: httpx.AsyncClient) -> None:
    response = await raw_client.post(
        "/gemini/v1beta/models/gemini-2.5-flash:generateContent",
        json=GEMINI_REQUEST,
        headers={"x-mock-reasoning-tokens": "12", "x-mock-cached-tokens": "2"},
    )
    body = response.json()
    metadata = body["usageMetadata"]
    assert body["candidates"][0]["finishReason"] == "STOP"
    assert metadata["promptTokenCount"] == gemini_wire.estimate_input_tokens(GEMINI_REQUEST)
    assert metadata["totalTokenCount"] == metadata["promptTokenCount"] + 20 + 12
    assert gemini_wire.usage_from_body(response.content) == Usage(
        input_tokens=metadata["promptTokenCount"], output_tokens=32, cached_input_tokens=2, reasoning_tokens=12
    )


async def test_gemini_sse_stream(raw_client: httpx.AsyncClient) -> None:
    collector = gemini_wire.GeminiUsageCollector()
    async with raw_client.stream(
        "POST",
        "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        params={"alt": "sse"},
        json={**GEMINI_REQUEST, "generationConfig": {"maxOutputTokens": 6}},
    ) as response:
        raw = b""
        async for chunk in response.aiter_raw():
            raw += chunk
            collector.feed(chunk)
    collector.close()
    events = [orjson.loads(part.removeprefix(b"data: ")) for part in raw.split(b"\r\n\r\n") if part]
    assert len(events) == 6
    assert events[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert collector.complete
    assert collector.text == "The quick brown fox jumps over"
    assert collector.usage == gemini_wire.usage_from_object(events[-1]["usageMetadata"])
    assert collector.usage is not None
    assert collector.usage.output_tokens == 6


async def test_gemini_json_array_stream(raw_client: httpx.AsyncClient) -> None:
    response = await raw_client.post(
        "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        json=GEMINI_REQUEST,
        headers={"x-mock-output-tokens": "4"},
    )
    chunks = response.json()
    assert isinstance(chunks, list)
    assert len(chunks) == 4
    usage = gemini_wire.usage_from_body(response.content)
    assert usage is not None
    assert usage.output_tokens == 4


async def test_gemini_errors(raw_client: httpx.AsyncClient) -> None:
    response = await raw_client.post("/gemini/v1beta/models/gemini-2.5-flash@429:generateContent", json=GEMINI_REQUEST)
    assert response.status_code == 429
    assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert (await raw_client.post("/gemini/v1beta/models/gemini-2.5-flash:embed", json={})).status_code == 404
    assert (
        await raw_client.post("/gemini/v1beta/models/gemini-2.5-flash:generateContent", content=b"{")
    ).status_code == 400
