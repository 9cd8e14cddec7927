"""The OpenAI-compatible routes with the official `openai` SDK (sync and async), over loopback HTTP.

After each call the ledger's event (read by the request id the response carries) must have exactly the
tokens the mock reported and cost exactly the catalog price (a table of the catalog's unit prices, in
nano-USD per token, character or second, kept here independently of the price book).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from openai import AsyncOpenAI, OpenAI

from farebox.core.money import format_usd
from farebox.gateway.providers.mock.media import wav_silence

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway

pytestmark = pytest.mark.anyio

GPT_4O_MINI = (150, 600)
"""gpt-4o-mini: $0.15 / $0.60 per million input / output tokens, in nano-USD per token."""
MESSAGES: list[Any] = [{"role": "user", "content": "Say hello to the ledger"}]


def client(gateway: Gateway, secret: str) -> OpenAI:
    return OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0)


def assert_llm_event(event: dict[str, Any], *, input_tokens: int, output_tokens: int, prices: tuple[int, int]) -> None:
    assert (event["input_tokens"], event["output_tokens"]) == (input_tokens, output_tokens)
    assert event["cost_usd"] == format_usd(input_tokens * prices[0] + output_tokens * prices[1])
    assert event["status"] == "ok" and event["http_status"] == 200
    assert event["estimated"] is False and event["priced"] is True


def test_chat_completion_is_recorded_with_exact_usage_and_cost(gateway: Gateway) -> None:
    secret, key = gateway.new_key(spend_cap="5.00", agent_id="agent-k", tags=["team-a"])
    with client(gateway, secret) as openai:
        raw = openai.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    completion = raw.parse()
    assert completion.usage is not None and completion.choices[0].message.content
    event = gateway.event(raw.headers["x-farebox-request-id"])  # committed before the body was sent
    usage = completion.usage
    assert_llm_event(event, input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens, prices=GPT_4O_MINI)
    cost = usage.prompt_tokens * 150 + usage.completion_tokens * 600
    assert raw.headers["x-farebox-cost-usd"] == format_usd(cost)
    assert raw.headers["x-credits-remaining"] == format_usd(5 * 10**9 - cost)
    assert event["key_id"] == key["id"] and event["account_id"] == key["account_id"]
    assert (event["agent_id"], event["tags"], event["streamed"]) == ("agent-k", ["team-a"], False)
    assert (event["operation"], event["axis"], event["provider"], event["model"]) == (
        "chat.completions",
        "llm",
        "mock",
        "gpt-4o-mini",
    )
    assert event["latency_ms"] is not None


async def test_async_chat_completion_and_attribution_headers(gateway: Gateway) -> None:
    secret, _ = gateway.new_key(app="from-key")
    async with AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0) as openai:
        raw = await openai.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            extra_headers={
                "x-farebox-agent": "planner",
                "x-farebox-app": "checkout",
                "x-farebox-tags": "a, b",
                "x-farebox-metadata": '{"run": 7}',
            },
        )
    usage = raw.parse().usage
    assert usage is not None
    event = await anyio.to_thread.run_sync(gateway.event, raw.headers["x-farebox-request-id"])
    assert_llm_event(event, input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens, prices=GPT_4O_MINI)
    assert (event["agent_id"], event["app"], event["tags"], event["metadata"]) == (
        "planner",
        "checkout",
        ["a", "b"],
        {"run": 7},
    )


def test_stream_without_include_usage_hides_the_usage_chunk_but_records_it(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    with client(gateway, secret) as openai:
        reference = openai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).usage
        with openai.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        ) as response:
            request_id = response.headers["x-farebox-request-id"]
            chunks = list(response.parse())
    assert reference is not None
    assert chunks and all(chunk.usage is None and chunk.choices for chunk in chunks)
    event = gateway.event(request_id)
    assert_llm_event(
        event, input_tokens=reference.prompt_tokens, output_tokens=reference.completion_tokens, prices=GPT_4O_MINI
    )
    assert event["streamed"] is True and event["ttft_ms"] is not None
    assert len(gateway.events_of(key["id"])) == 2


def test_request_ids_sort_in_the_order_the_requests_came(gateway: Gateway) -> None:
    secret, _ = gateway.new_key()
    with client(gateway, secret) as openai:
        ids = [
            openai.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES).headers[
                "x-farebox-request-id"
            ]
            for _ in range(5)
        ]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert all(len(request_id) == 32 and int(request_id, 16) for request_id in ids)
    assert all(gateway.event(request_id)["id"] == request_id for request_id in ids)


async def test_async_stream_with_include_usage_passes_the_usage_chunk(gateway: Gateway) -> None:
    secret, _ = gateway.new_key()
    async with AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0) as openai:
        async with openai.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        ) as response:
            request_id = response.headers["x-farebox-request-id"]
            chunks = [chunk async for chunk in await response.parse()]
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []
    event = await anyio.to_thread.run_sync(gateway.event, request_id)
    assert_llm_event(event, input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens, prices=GPT_4O_MINI)


def test_the_event_is_committed_before_the_stream_ends(gateway: Gateway) -> None:
    secret, _ = gateway.new_key()
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, headers=headers) as response:
        request_id = response.headers["x-farebox-request-id"]
        for line in response.iter_lines():
            if line == "data: [DONE]":
                # The final event has reached the client: the usage event must already be readable.
                assert gateway.event(request_id)["output_tokens"] == 20
                break
        else:
            pytest.fail("the stream ended without data: [DONE]")


def test_legacy_completions_streaming_and_not(gateway: Gateway) -> None:
    secret, _ = gateway.new_key()
    with client(gateway, secret) as openai:
        raw = openai.completions.with_raw_response.create(model="gpt-4o-mini", prompt="Once upon a time", max_tokens=5)
        with openai.completions.with_streaming_response.create(
            model="gpt-4o-mini", prompt="Once upon a time", max_tokens=5, stream=True
        ) as response:
            request_id = response.headers["x-farebox-request-id"]
            texts = [chunk.choices[0].text for chunk in response.parse()]
    usage = raw.parse().usage
    assert usage is not None and usage.completion_tokens == 5
    event = gateway.event(raw.headers["x-farebox-request-id"])
    assert_llm_event(event, input_tokens=usage.prompt_tokens, output_tokens=5, prices=GPT_4O_MINI)
    assert event["operation"] == "completions"
    assert len(texts) == 5
    assert_llm_event(gateway.event(request_id), input_tokens=usage.prompt_tokens, output_tokens=5, prices=GPT_4O_MINI)


def test_embeddings(gateway: Gateway) -> None:
    secret, _ = gateway.new_key()
    with client(gateway, secret) as openai:
        raw = openai.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input=["one line", "and another one"]
        )
    result = raw.parse()
    assert len(result.data) == 2 and result.usage.prompt_tokens > 0
    event = gateway.event(raw.headers["x-farebox-request-id"])
    assert_llm_event(event, input_tokens=result.usage.prompt_tokens, output_tokens=0, prices=(20, 0))
    assert event["operation"] == "embeddings"


def test_speech_is_metered_by_characters_on_the_voice_axis(gateway: Gateway) -> None:
    secret, _ = gateway.new_key()
    text = "The fare is collected on every ride."
    with (
        client(gateway, secret) as openai,
        openai.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input=text) as response,
    ):
        request_id = response.headers["x-farebox-request-id"]
        audio = response.read()
    assert audio[:2] == b"\xff\xfb"  # MP3 frames
    event = gateway.event(request_id)
    assert (event["axis"], event["operation"], event["characters"]) == ("voice", "audio.speech", len(text))
    assert event["cost_usd"] == format_usd(len(text) * 15_000)  # $15 per million characters


def test_transcription_is_metered_by_seconds(gateway: Gateway) -> None:
    secret, _ = gateway.new_key()
    with client(gateway, secret) as openai:
        raw = openai.audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=("speech.wav", wav_silence(2.0), "audio/wav")
        )
    assert raw.parse().text
    event = gateway.event(raw.headers["x-farebox-request-id"])
    assert (event["axis"], event["operation"], Decimal(event["seconds"])) == ("voice", "audio.transcriptions", 2)
    assert event["cost_usd"] == format_usd(2 * 100_000)  # $0.006 per minute
    assert event["estimated"] is False


def test_image_generation(gateway: Gateway) -> None:
    secret, _ = gateway.new_key()
    with client(gateway, secret) as openai:
        raw = openai.images.with_raw_response.generate(model="gpt-image-1", prompt="a ticket machine")
    image = raw.parse()
    assert image.data and image.usage is not None
    event = gateway.event(raw.headers["x-farebox-request-id"])
    usage = image.usage
    expected = usage.input_tokens * 5_000 + usage.output_tokens * 40_000  # $5 / $40 per million tokens
    assert (event["input_tokens"], event["output_tokens"]) == (usage.input_tokens, usage.output_tokens)
    assert event["cost_usd"] == raw.headers["x-farebox-cost-usd"] == format_usd(expected)


def test_models_lists_what_the_key_may_use(gateway: Gateway) -> None:
    secret, _ = gateway.new_key()
    limited, _ = gateway.new_key(allowed_models=["gpt-4o-mini", "tts-1"])
    with client(gateway, secret) as openai, client(gateway, limited) as restricted:
        every = {model.id for model in openai.models.list()}
        allowed = sorted(model.id for model in restricted.models.list())
    assert {"gpt-4o-mini", "claude-sonnet-4-6", "whisper-1"} <= every
    assert allowed == ["gpt-4o-mini", "tts-1"]
