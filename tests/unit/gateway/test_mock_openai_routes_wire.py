"""The mock's OpenAI routes: every answer validates as the SDK's own type, and its limits and errors hold."""

from __future__ import annotations

import base64
from array import array
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from openai.types import Completion, CreateEmbeddingResponse, ImagesResponse, Model
from openai.types.audio import Transcription, TranscriptionVerbose
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from farebox.core.pricing import Usage
from farebox.gateway.providers import openai as wire
from farebox.gateway.providers.media import audio_seconds
from farebox.gateway.providers.mock.media import wav_silence
from farebox.gateway.tokens import count_tokens

pytestmark = pytest.mark.anyio

MESSAGES = [{"role": "user", "content": "Say hello."}]


def events(body: bytes) -> list[bytes]:
    return [block.removeprefix(b"data: ") for block in body.split(b"\n\n") if block]


async def test_a_streamed_chat_validates_chunk_by_chunk(raw_client: httpx.AsyncClient) -> None:
    body = {"model": "gpt-4o", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    response = await raw_client.post("/openai/v1/chat/completions", json=body, headers={"x-mock-output-tokens": "3"})
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = events(response.content)
    assert blocks[-1] == b"[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(block) for block in blocks[:-1]]
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [chunk.choices[0].finish_reason for chunk in chunks[:-1]] == [None, None, None, None, "stop"]
    assert all(b'"usage":null' in block for block in blocks[:-2])  # `include_usage`: null until the last chunk
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


async def test_reasoning_and_cached_tokens_in_a_streamed_chat(raw_client: httpx.AsyncClient) -> None:
    body = {"model": "o3", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    headers = {"x-mock-reasoning-tokens": "40", "x-mock-cached-tokens": "500", "x-mock-output-tokens": "2"}
    response = await raw_client.post("/openai/v1/chat/completions", json=body, headers=headers)
    collector = wire.OpenAIUsageCollector()
    collector.feed(response.content)
    collector.close()
    prompt = wire.estimate_input_tokens(body)
    # The cache count is capped at the prompt it is part of; the reasoning comes on top of the visible text.
    assert collector.usage == Usage(
        input_tokens=prompt, output_tokens=42, cached_input_tokens=prompt, reasoning_tokens=40
    )
    assert collector.text == "The quick"


@pytest.mark.parametrize(
    ("limits", "output", "finish"),
    [
        ({"max_completion_tokens": 4, "max_tokens": 9}, 4, "length"),  # the newer limit wins
        ({"max_tokens": 9}, 9, "length"),
        ({"max_completion_tokens": 50}, 20, "stop"),
    ],
)
async def test_chat_limits(raw_client: httpx.AsyncClient, limits: dict[str, Any], output: int, finish: str) -> None:
    response = await raw_client.post("/openai/v1/chat/completions", json={"model": "m", "messages": [], **limits})
    completion = ChatCompletion.model_validate_json(response.content)
    assert completion.usage is not None and completion.usage.completion_tokens == output
    assert completion.choices[0].finish_reason == finish
    assert count_tokens(completion.choices[0].message.content or "") == output


async def test_legacy_completions_default_to_16_tokens_and_stream_usage_last(raw_client: httpx.AsyncClient) -> None:
    plain = Completion.model_validate_json(
        (
            await raw_client.post("/openai/v1/completions", json={"model": "gpt-3.5-turbo-instruct", "prompt": "Hi"})
        ).content
    )
    assert plain.usage is not None and plain.usage.completion_tokens == 16
    assert plain.choices[0].finish_reason == "length"  # OpenAI's default `max_tokens` for completions is 16
    body = {"model": "i", "prompt": "Hi", "max_tokens": 3, "stream": True, "stream_options": {"include_usage": True}}
    blocks = events((await raw_client.post("/openai/v1/completions", json=body)).content)
    chunks = [orjson.loads(block) for block in blocks[:-1]]  # the SDK builds stream chunks unvalidated
    assert {chunk["object"] for chunk in chunks} == {"text_completion"}
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks[:3]] == [None, None, "length"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert wire.is_usage_only_chunk(blocks[-2]) and not wire.is_usage_only_chunk(blocks[0])


async def test_embeddings_in_base64_and_by_token_ids(raw_client: httpx.AsyncClient) -> None:
    body = {"model": "text-embedding-3-small", "input": "hello world", "encoding_format": "base64", "dimensions": 4}
    # The SDK decodes base64 itself before validating, so the raw answer is checked field by field.
    result = (await raw_client.post("/openai/v1/embeddings", json=body)).json()
    encoded = result["data"][0]["embedding"]
    assert isinstance(encoded, str) and result["object"] == "list" and result["data"][0]["object"] == "embedding"
    vector = array("f")
    vector.frombytes(base64.b64decode(encoded))
    assert len(vector) == 4 and sum(value * value for value in vector) == pytest.approx(1.0, rel=1e-5)
    assert result["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    batch = {"model": "e", "input": [[1, 2, 3], [4, 5]]}
    by_ids = CreateEmbeddingResponse.model_validate_json(
        (await raw_client.post("/openai/v1/embeddings", json=batch)).content
    )
    assert [item.index for item in by_ids.data] == [0, 1]
    assert by_ids.usage.prompt_tokens == 5
    same = await raw_client.post("/openai/v1/embeddings", json={"model": "e", "input": "x", "dimensions": 8})
    again = await raw_client.post("/openai/v1/embeddings", json={"model": "e", "input": "x", "dimensions": 8})
    assert same.json()["data"] == again.json()["data"]


@pytest.mark.parametrize(
    ("response_format", "media_type", "seconds"),
    [(None, "audio/mpeg", 2.0), ("mp3", "audio/mpeg", 2.0), ("wav", "audio/wav", 2.0), ("pcm", "audio/pcm", None)],
)
async def test_speech_lasts_as_long_as_the_text_takes_to_say(
    raw_client: httpx.AsyncClient, response_format: str | None, media_type: str, seconds: float | None
) -> None:
    body: dict[str, Any] = {"model": "tts-1", "voice": "alloy", "input": "x" * 30}  # 30 characters at 15 a second
    if response_format is not None:
        body["response_format"] = response_format
    response = await raw_client.post("/openai/v1/audio/speech", json=body)
    assert response.headers["content-type"] == media_type
    if seconds is None:
        assert len(response.content) == 2 * 48000  # raw 24 kHz 16-bit PCM
    else:
        assert audio_seconds(response.content) == pytest.approx(seconds, abs=0.04)


@pytest.mark.parametrize("speech_input", ["", None, 7])
async def test_speech_needs_text(raw_client: httpx.AsyncClient, speech_input: object) -> None:
    response = await raw_client.post("/openai/v1/audio/speech", json={"model": "tts-1", "input": speech_input})
    assert response.status_code == 400
    assert response.json() == wire.error_body(400, "input must be a non-empty string")


def transcription_form(
    model: str | None, *, response_format: str | None = None, seconds: float = 2.0
) -> dict[str, Any]:
    data = {"model": model} if model is not None else {}
    if response_format is not None:
        data["response_format"] = response_format
    return {"files": {"file": ("a.wav", wav_silence(seconds), "audio/wav")}, "data": data}


async def test_verbose_transcription_and_token_metered_models(raw_client: httpx.AsyncClient) -> None:
    verbose = await raw_client.post(
        "/openai/v1/audio/transcriptions",
        **transcription_form("whisper-1", response_format="verbose_json", seconds=2.4),
    )
    parsed = TranscriptionVerbose.model_validate_json(verbose.content)
    assert parsed.duration == 2.4 and parsed.language == "english"
    assert count_tokens(parsed.text) == 6  # 2.4 s at 2.5 words a second
    assert wire.usage_from_body(verbose.content) == Usage(seconds=Decimal(3))  # whole seconds, rounded up
    tokens = await raw_client.post("/openai/v1/audio/transcriptions", **transcription_form("gpt-4o-mini-transcribe"))
    usage = Transcription.model_validate_json(tokens.content).usage
    assert usage is not None and usage.type == "tokens"
    assert wire.usage_from_body(tokens.content) == Usage(input_tokens=20, output_tokens=5)


@pytest.mark.parametrize("response_format", ["text", "srt", "vtt"])
async def test_plain_text_transcriptions(raw_client: httpx.AsyncClient, response_format: str) -> None:
    response = await raw_client.post(
        "/openai/v1/audio/transcriptions", **transcription_form("whisper-1", response_format=response_format)
    )
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "The quick brown fox jumps"


@pytest.mark.parametrize("form", [transcription_form(None), {"data": {"model": "whisper-1"}}, {"content": b"{}"}])
async def test_a_transcription_needs_a_file_and_a_model(raw_client: httpx.AsyncClient, form: dict[str, Any]) -> None:
    response = await raw_client.post("/openai/v1/audio/transcriptions", **form)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "as_url", "usage"),
    [
        ({"model": "dall-e-3", "prompt": "fox"}, True, None),
        ({"model": "dall-e-2", "prompt": "fox", "response_format": "b64_json"}, False, None),
        ({"model": "gpt-image-1", "prompt": "fox", "n": 3}, False, Usage(input_tokens=1, output_tokens=3168)),
        ({"model": "gpt-image-1", "prompt": "fox", "response_format": "url"}, True,
         Usage(input_tokens=1, output_tokens=1056)),
    ],
)  # fmt: skip
async def test_images(raw_client: httpx.AsyncClient, body: dict[str, Any], as_url: bool, usage: Usage | None) -> None:
    response = await raw_client.post("/openai/v1/images/generations", json=body)
    images = ImagesResponse.model_validate_json(response.content)
    assert images.data is not None and len(images.data) == body.get("n", 1)
    assert all((item.url is not None) is as_url and (item.b64_json is not None) is not as_url for item in images.data)
    assert wire.usage_from_body(response.content) == usage


async def test_models_validate_as_the_sdk_model_type(raw_client: httpx.AsyncClient) -> None:
    listing = (await raw_client.get("/openai/v1/models")).json()
    models = [Model.model_validate(item) for item in listing["data"]]
    assert listing["object"] == "list"
    assert {"gpt-4o", "text-embedding-3-small", "whisper-1", "tts-1", "gpt-image-1"} <= {model.id for model in models}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/openai/v1/chat/completions", {"model": "m@418", "messages": []}),
        ("/openai/v1/completions", {"model": "m@418", "prompt": "x"}),
        ("/openai/v1/embeddings", {"model": "m@418", "input": "x"}),
        ("/openai/v1/audio/speech", {"model": "m@418", "input": "x"}),
        ("/openai/v1/images/generations", {"model": "m@418", "prompt": "x"}),
    ],
)
async def test_a_forced_unusual_status_has_the_openai_envelope(
    raw_client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    response = await raw_client.post(path, json=body)
    assert response.status_code == 418
    assert response.json() == wire.error_body(418, "farebox mock answered 418.")


async def test_a_forced_status_on_a_transcription(raw_client: httpx.AsyncClient) -> None:
    response = await raw_client.post("/openai/v1/audio/transcriptions", **transcription_form("whisper-1@429"))
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[1, 2]", "We could not parse the JSON body of your request."),
        (b"", "We could not parse the JSON body of your request."),
        (b'{"model": ""}', "you must provide a model parameter"),
        (b'{"model": 4}', "you must provide a model parameter"),
    ],
)
async def test_bad_bodies(raw_client: httpx.AsyncClient, content: bytes, message: str) -> None:
    for path in ("/openai/v1/chat/completions", "/openai/v1/embeddings", "/openai/v1/images/generations"):
        response = await raw_client.post(path, content=content)
        assert (response.status_code, response.json()) == (400, wire.error_body(400, message))


async def test_a_dropped_chat_stream_validates_up_to_its_cut(raw_client: httpx.AsyncClient) -> None:
    body = {"model": "gpt-4o@drop2", "messages": MESSAGES, "stream": True}
    blocks = events((await raw_client.post("/openai/v1/chat/completions", json=body)).content)
    assert len(blocks) == 2 and b"[DONE]" not in blocks
    assert [ChatCompletionChunk.model_validate(orjson.loads(block)).object for block in blocks] == [
        "chat.completion.chunk"
    ] * 2
