"""The mock provider's Responses API (`POST /responses`), driven by the official `openai` SDK and read back by
farebox's adapter: the answer, its typed event stream, `max_output_tokens`, and the `x-mock-*` controls."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest
from openai.types.responses import ResponseInputParam

from farebox.core.pricing import Usage
from farebox.gateway.providers import openai as wire
from farebox.gateway.providers.sse import SSEDecoder
from farebox.gateway.tokens import Tokenizer

pytestmark = pytest.mark.anyio

INPUT: ResponseInputParam = [{"role": "user", "content": "Say hello to the world."}]
TOKENS = Tokenizer()


async def test_a_response_with_cached_and_reasoning_tokens(openai_client: openai.AsyncOpenAI) -> None:
    headers = {"x-mock-cached-tokens": "3", "x-mock-reasoning-tokens": "12"}
    raw = await openai_client.responses.with_raw_response.create(
        model="gpt-4o-mini", instructions="Be terse.", input=INPUT, extra_headers=headers
    )
    answer = raw.parse()
    assert (answer.object, answer.status, answer.model, answer.incomplete_details) == (
        "response",
        "completed",
        "gpt-4o-mini",
        None,
    )
    assert [item.type for item in answer.output] == ["reasoning", "message"]
    assert TOKENS.count(answer.output_text) == 20
    usage = answer.usage
    assert usage is not None
    assert usage.input_tokens == TOKENS.count("Be terse.") + TOKENS.count("Say hello to the world.")
    assert (usage.output_tokens, usage.output_tokens_details.reasoning_tokens) == (32, 12)
    assert usage.input_tokens_details.cached_tokens == 3 and usage.total_tokens == usage.input_tokens + 32
    assert wire.usage_from_body(raw.http_response.content) == Usage(
        input_tokens=usage.input_tokens, output_tokens=32, cached_input_tokens=3, reasoning_tokens=12
    )


async def test_the_stream_is_openai_s_typed_events_ending_in_the_final_response(
    openai_client: openai.AsyncOpenAI, raw_client: httpx.AsyncClient
) -> None:
    headers = {"x-mock-output-tokens": "3", "x-mock-reasoning-tokens": "2"}
    stream = await openai_client.responses.create(model="gpt-4o-mini", input=INPUT, stream=True, extra_headers=headers)
    events = [event async for event in stream]
    assert [event.type for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",  # the reasoning item
        "response.output_item.done",
        "response.output_item.added",  # the message
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    final = events[-1].response  # type: ignore[union-attr]  # the last event is response.completed
    assert final.usage is not None and final.usage.output_tokens == 5
    assert final.output_text == "The quick brown"

    body = {"model": "gpt-4o-mini", "input": INPUT, "stream": True}
    response = await raw_client.post("/openai/v1/responses", json=body, headers=headers)
    assert response.headers["content-type"].startswith("text/event-stream")
    decoded = SSEDecoder().feed(response.content)
    assert all(event.event == orjson.loads(event.data)["type"] for event in decoded)  # `event:` names each one
    assert b"[DONE]" not in response.content
    collector = wire.OpenAIUsageCollector()
    collector.feed(response.content)
    assert collector.complete and collector.text == "The quick brown"
    assert collector.usage == Usage(input_tokens=final.usage.input_tokens, output_tokens=5, reasoning_tokens=2)


@pytest.mark.parametrize(("reasoning", "visible"), [(0, 16), (10, 6), (40, 0)])
async def test_max_output_tokens_bounds_reasoning_and_text_together(
    openai_client: openai.AsyncOpenAI, reasoning: int, visible: int
) -> None:
    headers = {"x-mock-output-tokens": "50", "x-mock-reasoning-tokens": str(reasoning)}
    answer = await openai_client.responses.create(
        model="gpt-4o-mini", input=INPUT, max_output_tokens=16, extra_headers=headers
    )
    assert answer.status == "incomplete" and answer.incomplete_details is not None
    assert answer.incomplete_details.reason == "max_output_tokens"
    assert answer.usage is not None and answer.usage.output_tokens == 16
    assert answer.usage.output_tokens_details.reasoning_tokens == 16 - visible
    assert TOKENS.count(answer.output_text) == visible
    stream = await openai_client.responses.create(
        model="gpt-4o-mini", input=INPUT, max_output_tokens=16, stream=True, extra_headers=headers
    )
    events = [event async for event in stream]
    assert events[-1].type == "response.incomplete"
    assert sum(event.type == "response.output_text.delta" for event in events) == visible


async def test_under_its_limit_a_response_completes(openai_client: openai.AsyncOpenAI) -> None:
    answer = await openai_client.responses.create(model="gpt-4o-mini", input="hi", max_output_tokens=64)
    assert answer.status == "completed" and answer.usage is not None and answer.usage.output_tokens == 20
    assert answer.max_output_tokens == 64


@pytest.mark.parametrize(
    ("limit", "code"), [(15, "integer_below_min_value"), (0, "integer_below_min_value"), ("16", "invalid_type")]
)
async def test_a_limit_openai_refuses_is_refused_in_its_shape(
    raw_client: httpx.AsyncClient, limit: object, code: str
) -> None:
    response = await raw_client.post(
        "/openai/v1/responses", json={"model": "gpt-4o-mini", "input": "hi", "max_output_tokens": limit}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, "max_output_tokens")


async def test_a_forced_error_status_in_openai_s_shape(openai_client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as raised:
        await openai_client.responses.create(model="gpt-4o-mini", input="hi", extra_headers={"x-mock-status": "429"})
    assert raised.value.type == "rate_limit_error" and raised.value.code == "rate_limit_exceeded"


async def test_a_dropped_stream_never_reports_usage(raw_client: httpx.AsyncClient) -> None:
    body = {"model": "gpt-4o-mini", "input": "hi", "stream": True}
    response = await raw_client.post("/openai/v1/responses", json=body, headers={"x-mock-drop-after": "8"})
    collector = wire.OpenAIUsageCollector()
    collector.feed(response.content)
    collector.close()
    assert len(SSEDecoder().feed(response.content)) == 8
    assert not collector.complete and collector.usage is None
    # 8 events: created, in_progress, the message's output_item.added and content_part.added, 4 deltas
    assert collector.text == "The quick brown fox"
