"""The mock provider's OpenAI API, driven by the official `openai` SDK and read back by farebox's adapter."""

from __future__ import annotations

import base64
import io
import time
import wave
from decimal import Decimal

import httpx
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam

from farebox.core.pricing import Usage
from farebox.gateway.providers import openai as wire
from farebox.gateway.providers.mock import MockStreamAborted, create_mock_app
from farebox.gateway.providers.mock.media import PNG_1X1, wav_silence
from farebox.gateway.tokens import count_message_tokens, count_tokens

pytestmark = pytest.mark.anyio

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello to the world."},
]
CHAT = {"model": "gpt-4o-mini", "messages": MESSAGES}


async def test_chat_completion(openai_client: openai.AsyncOpenAI) -> None:
    raw = await openai_client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].finish_reason == "stop"
    content = completion.choices[0].message.content or ""
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == count_message_tokens(MESSAGES)
    assert completion.usage.completion_tokens == count_tokens(content) == 20
    assert wire.usage_from_body(raw.http_response.content) == Usage(
        input_tokens=completion.usage.prompt_tokens, output_tokens=20
    )


async def test_chat_stream_with_include_usage(openai_client: openai.AsyncOpenAI, raw_client: httpx.AsyncClient) -> None:
    stream = await openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    sdk_text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)

    collector = wire.OpenAIUsageCollector()
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    async with raw_client.stream("POST", "/openai/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for chunk in response.aiter_raw():
            collector.feed(chunk)
    collector.close()
    assert collector.complete
    assert collector.text == sdk_text
    assert collector.usage == Usage(
        input_tokens=chunks[-1].usage.prompt_tokens, output_tokens=chunks[-1].usage.completion_tokens
    )


async def test_chat_stream_without_include_usage_has_no_usage(raw_client: httpx.AsyncClient) -> None:
    response = await raw_client.post("/openai/v1/chat/completions", json={**CHAT, "stream": True})
    assert b'"usage"' not in response.content
    assert response.content.endswith(b"data: [DONE]\n\n")


async def test_stream_usage_asked_by_farebox_is_dropped_for_the_client(raw_client: httpx.AsyncClient) -> None:
    body, asked = wire.with_stream_usage({**CHAT, "stream": True})
    assert not asked
    collector, chunk_filter = wire.OpenAIUsageCollector(), wire.UsageChunkFilter()
    forwarded = b""
    async with raw_client.stream("POST", "/openai/v1/chat/completions", json=body) as response:
        async for chunk in response.aiter_raw():
            collector.feed(chunk)
            forwarded += chunk_filter.feed(chunk)
    forwarded += chunk_filter.flush()
    assert collector.usage is not None
    assert collector.usage.output_tokens == 20
    events = [line for line in forwarded.split(b"\n\n") if line]
    assert not any(wire.is_usage_only_chunk(event) for event in events)
    assert events[-1] == b"data: [DONE]"


async def test_max_tokens_limits_the_output(openai_client: openai.AsyncOpenAI) -> None:
    completion = await openai_client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        max_completion_tokens=5,
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 5


async def test_cached_and_reasoning_tokens_on_request(openai_client: openai.AsyncOpenAI) -> None:
    raw = await openai_client.chat.completions.with_raw_response.create(
        model="o3-mini",
        messages=MESSAGES,
        extra_headers={"x-mock-cached-tokens": "10", "x-mock-reasoning-tokens": "30", "x-mock-output-tokens": "4"},
    )
    usage = raw.parse().usage
    assert usage is not None
    assert usage.completion_tokens == 34
    assert wire.usage_from_body(raw.http_response.content) == Usage(
        input_tokens=usage.prompt_tokens, output_tokens=34, cached_input_tokens=10, reasoning_tokens=30
    )


async def test_legacy_completions(openai_client: openai.AsyncOpenAI, raw_client: httpx.AsyncClient) -> None:
    completion = await openai_client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=7)
    assert completion.object == "text_completion"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (2, 7)
    stream = await openai_client.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt="Say hi",
        max_tokens=7,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(chunk.choices[0].text for chunk in chunks if chunk.choices) == completion.choices[0].text
    assert chunks[-1].usage == completion.usage
    collector = wire.OpenAIUsageCollector()
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi", "max_tokens": 7, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    collector.feed((await raw_client.post("/openai/v1/completions", json=body)).content)
    assert collector.usage == Usage(input_tokens=2, output_tokens=7)


async def test_embeddings(openai_client: openai.AsyncOpenAI, raw_client: httpx.AsyncClient) -> None:
    result = await openai_client.embeddings.create(model="text-embedding-3-small", input=["hello world", "hi"])
    assert [len(item.embedding) for item in result.data] == [1536, 1536]
    assert sum(value * value for value in result.data[0].embedding) == pytest.approx(1.0, rel=1e-4)
    assert result.usage.prompt_tokens == 3
    short = await openai_client.embeddings.create(
        model="text-embedding-3-small", input="hello world", dimensions=256, encoding_format="float"
    )
    assert len(short.data[0].embedding) == 256
    response = await raw_client.post(
        "/openai/v1/embeddings", json={"model": "text-embedding-3-large", "input": [[1, 2, 3]]}
    )
    assert len(response.json()["data"][0]["embedding"]) == 3072
    assert wire.usage_from_body(response.content) == Usage(input_tokens=3)


async def test_speech_mp3_and_wav(openai_client: openai.AsyncOpenAI) -> None:
    text = "The quick brown fox jumps over the lazy dog, twice over."
    mp3 = await openai_client.audio.speech.create(model="tts-1", voice="alloy", input=text)
    assert mp3.response.headers["content-type"] == "audio/mpeg"
    assert mp3.content[:2] == b"\xff\xfb"
    wav = await openai_client.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="wav")
    assert wav.response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(wav.content)) as audio:
        assert audio.getnframes() / audio.getframerate() == pytest.approx(len(text) / 15, rel=0.01)
    assert wire.speech_usage({"input": text}) == Usage(characters=len(text))


async def test_transcriptions(openai_client: openai.AsyncOpenAI) -> None:
    audio = wav_silence(3.0)
    whisper = await openai_client.audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=("speech.wav", audio, "audio/wav")
    )
    assert whisper.parse().text
    assert wire.usage_from_body(whisper.http_response.content) == Usage(seconds=Decimal(3))
    tokens = await openai_client.audio.transcriptions.with_raw_response.create(
        model="gpt-4o-transcribe", file=("speech.wav", audio, "audio/wav")
    )
    usage = wire.usage_from_body(tokens.http_response.content)
    assert usage is not None
    assert usage.output_tokens == count_tokens(tokens.parse().text)
    text = await openai_client.audio.transcriptions.create(
        model="whisper-1", file=("speech.wav", audio, "audio/wav"), response_format="text"
    )
    assert isinstance(text, str)
    assert count_tokens(text) == 8  # 3 s at 2.5 words per second


async def test_images(openai_client: openai.AsyncOpenAI, raw_client: httpx.AsyncClient) -> None:
    raw = await openai_client.images.with_raw_response.generate(model="gpt-image-1", prompt="a red fox", n=2)
    images = raw.parse()
    assert images.data is not None
    assert [base64.b64decode(item.b64_json or "") for item in images.data] == [PNG_1X1, PNG_1X1]
    assert images.usage is not None
    assert wire.usage_from_body(raw.http_response.content) == Usage(
        input_tokens=images.usage.input_tokens, output_tokens=images.usage.output_tokens
    )
    dalle = await openai_client.images.generate(model="dall-e-3", prompt="a red fox")
    assert dalle.usage is None
    assert dalle.data is not None
    url = dalle.data[0].url or ""
    assert (await raw_client.get(url.removeprefix("http://mock/mock"))).content == PNG_1X1


async def test_models(openai_client: openai.AsyncOpenAI) -> None:
    names = [model.id async for model in openai_client.models.list()]
    assert "gpt-4o-mini" in names


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
async def test_forced_errors_reach_the_sdk_as_its_own_exceptions(
    openai_client: openai.AsyncOpenAI, status: int, exception: type[openai.APIStatusError]
) -> None:
    with pytest.raises(exception) as raised:
        await openai_client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            extra_headers={"x-mock-status": str(status)},
        )
    assert raised.value.status_code == status
    body = raised.value.body
    assert isinstance(body, dict)
    assert body == wire.error_body(status, body["message"])["error"]
    with pytest.raises(exception):
        await openai_client.embeddings.create(model=f"text-embedding-3-small@{status}", input="x")


async def test_malformed_request(raw_client: httpx.AsyncClient) -> None:
    response = await raw_client.post("/openai/v1/chat/completions", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert (await raw_client.post("/openai/v1/chat/completions", json={"messages": []})).status_code == 400


async def test_seeded_error_rate_is_repeatable() -> None:
    async def statuses(seed: int) -> list[int]:
        app = create_mock_app(error_rate=0.5, seed=seed)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock") as client:
            return [(await client.post("/mock/openai/v1/chat/completions", json=CHAT)).status_code for _ in range(20)]

    first = await statuses(3)
    assert first == await statuses(3)
    assert set(first) == {200, 429, 500}
    never = create_mock_app(error_rate=0.0, seed=3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=never), base_url="http://mock") as client:
        assert {(await client.post("/mock/openai/v1/chat/completions", json=CHAT)).status_code for _ in range(5)} == {
            200
        }


async def test_drop_after_ends_the_stream_without_usage(raw_client: httpx.AsyncClient) -> None:
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    for headers, model in (({"x-mock-drop-after": "4"}, "gpt-4o-mini"), ({}, "gpt-4o-mini@drop4")):
        collector = wire.OpenAIUsageCollector()
        response = await raw_client.post("/openai/v1/chat/completions", json={**body, "model": model}, headers=headers)
        collector.feed(response.content)
        collector.close()
        assert response.content.count(b"data: ") == 4
        assert collector.usage is None
        assert not collector.complete
        assert collector.text == "The quick brown"


async def test_drop_mode_abort_breaks_the_connection(raw_client: httpx.AsyncClient) -> None:
    headers = {"x-mock-drop-after": "2", "x-mock-drop-mode": "abort"}
    with pytest.raises(MockStreamAborted):
        await raw_client.post("/openai/v1/chat/completions", json={**CHAT, "stream": True}, headers=headers)


async def test_latency_and_output_tokens_settings() -> None:
    app = create_mock_app(latency_ms=60, output_tokens=3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock") as client:
        started = time.perf_counter()
        response = await client.post("/mock/openai/v1/chat/completions", json=CHAT)
        assert time.perf_counter() - started >= 0.06
    assert orjson.loads(response.content)["usage"]["completion_tokens"] == 3
    with pytest.raises(ValueError, match="error_rate"):
        create_mock_app(error_rate=1.5)
