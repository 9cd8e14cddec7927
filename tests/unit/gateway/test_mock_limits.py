"""The mock refuses what its providers document refusing, so the answer to one request is bounded as theirs is.

Driven by the official SDKs where they can send the request; raw HTTP where they refuse to send it themselves.
"""

from __future__ import annotations

import struct
from typing import Any

import anthropic
import httpx
import openai
import pytest
from anthropic.types import Message, MessageParam
from openai.types.chat import ChatCompletionMessageParam

from farebox.gateway.providers import gemini as gemini_wire
from farebox.gateway.providers.mock.limits import max_output_tokens
from farebox.gateway.tokens import count_tokens

pytestmark = pytest.mark.anyio

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Write."}]
CLAUDE: list[MessageParam] = [{"role": "user", "content": "Write."}]
CONTENTS = {"contents": [{"role": "user", "parts": [{"text": "Write."}]}]}


# --- OpenAI: output limits and choices ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_completion_tokens": 0}, "Invalid 'max_completion_tokens': integer below minimum value"),
        ({"max_tokens": 0}, "Invalid 'max_tokens': integer below minimum value"),
        ({"max_tokens": -3}, "Expected a value >= 1, but got -3 instead"),
        ({"max_completion_tokens": 16_385}, "max_completion_tokens is too large: 16385. This model supports at most"),
        ({"max_tokens": 10**9}, "max_tokens is too large: 1000000000. This model supports at most 16384"),
        ({"n": 129}, "Invalid 'n': integer above maximum value. Expected a value <= 128, but got 129 instead."),
        ({"n": 0}, "Invalid 'n': integer below minimum value"),
    ],
)
async def test_a_chat_limit_out_of_range_is_a_bad_request_naming_it(
    openai_client: openai.AsyncOpenAI, limits: dict[str, Any], message: str
) -> None:
    with pytest.raises(openai.BadRequestError, match=message.replace("(", r"\(")) as caught:
        await openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, **limits)
    assert caught.value.param == next(iter(limits))


async def test_a_limit_that_is_not_an_integer_is_refused(raw_client: httpx.AsyncClient) -> None:
    for path in ("/openai/v1/chat/completions", "/openai/v1/completions"):
        refused = await raw_client.post(path, json={"model": "gpt-4o", "messages": [], "prompt": "", "max_tokens": "9"})
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "invalid_type" and refused.json()["error"]["param"] == "max_tokens"


@pytest.mark.parametrize(
    ("model", "most"),
    [("gpt-4o-mini", 16_384), ("gpt-4.1-mini", 32_768), ("o3-mini", 100_000), ("gpt-5", 128_000), ("gpt-4", 8_192)],
)
async def test_each_model_takes_up_to_its_own_largest_output(
    openai_client: openai.AsyncOpenAI, model: str, most: int
) -> None:
    answer = await openai_client.chat.completions.create(model=model, messages=MESSAGES, max_completion_tokens=most)
    assert answer.usage is not None and answer.usage.completion_tokens == 20
    with pytest.raises(openai.BadRequestError, match=f"at most {most} completion tokens"):
        await openai_client.chat.completions.create(model=model, messages=MESSAGES, max_completion_tokens=most + 1)


async def test_an_answer_without_a_limit_stops_at_the_model_s_largest(openai_client: openai.AsyncOpenAI) -> None:
    answer = await openai_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, extra_headers={"x-mock-output-tokens": "100000"}
    )
    assert answer.usage is not None and answer.usage.completion_tokens == 16_384
    assert answer.choices[0].finish_reason == "length"


async def test_reasoning_is_spent_within_the_limit(openai_client: openai.AsyncOpenAI) -> None:
    answer = await openai_client.chat.completions.create(
        model="o3-mini", messages=MESSAGES, max_completion_tokens=10, extra_headers={"x-mock-reasoning-tokens": "900"}
    )
    assert answer.usage is not None and answer.usage.completion_tokens == 10
    assert answer.usage.completion_tokens_details is not None
    assert answer.usage.completion_tokens_details.reasoning_tokens == 10
    assert answer.choices[0].message.content == "" and answer.choices[0].finish_reason == "length"


# --- OpenAI: embeddings, speech, images, transcriptions ---------------------------------------------------------------


async def test_embeddings_take_2048_inputs_and_refuse_more(openai_client: openai.AsyncOpenAI) -> None:
    served = await openai_client.embeddings.create(model="text-embedding-3-small", input=["a"] * 2048, dimensions=8)
    assert len(served.data) == 2048 and served.usage.prompt_tokens == 2048
    with pytest.raises(openai.BadRequestError, match="array too long. Expected an array with maximum length 2048"):
        await openai_client.embeddings.create(model="text-embedding-3-small", input=["a"] * 2049)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input": "a" * 8193 * 8}, r"Invalid 'input\[0\]': maximum context length is 8192 tokens."),
        ({"input": [[1] * 8000] * 38}, "Requested 304000 tokens, max 300000 tokens per request"),
        ({"input": "a", "dimensions": 1537}, "Expected a value <= 1536, but got 1537 instead."),
        ({"input": "a", "dimensions": 0}, "Expected a value >= 1, but got 0 instead."),
        ({"input": ""}, r"'\$.input' is invalid"),
        ({"input": ["a", ""]}, r"'\$.input' is invalid"),
        ({"input": []}, r"'\$.input' is invalid"),
    ],
)
async def test_embeddings_over_openai_s_bounds_are_refused(
    openai_client: openai.AsyncOpenAI, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(openai.BadRequestError, match=message):
        await openai_client.embeddings.create(model="text-embedding-3-small", **fields)


async def test_embedding_dimensions_follow_the_model(openai_client: openai.AsyncOpenAI) -> None:
    large = await openai_client.embeddings.create(model="text-embedding-3-large", input="a", dimensions=3072)
    assert len(large.data[0].embedding) == 3072
    with pytest.raises(openai.BadRequestError, match="does not support specifying dimensions"):
        await openai_client.embeddings.create(model="text-embedding-ada-002", input="a", dimensions=8)


async def test_speech_takes_at_most_4096_characters(openai_client: openai.AsyncOpenAI) -> None:
    spoken = await openai_client.audio.speech.create(model="tts-1", voice="alloy", input="a" * 4096)
    assert len(spoken.content) < 2_000_000  # 273 s of 32 kbit/s silence
    with pytest.raises(openai.BadRequestError, match="string too long. Expected a string with maximum length 4096"):
        await openai_client.audio.speech.create(model="tts-1", voice="alloy", input="a" * 4097)


@pytest.mark.parametrize(
    ("model", "n", "message"),
    [
        ("gpt-image-1", 11, "Expected a value <= 10, but got 11 instead."),
        ("dall-e-3", 2, "You must provide n=1 for this model."),
    ],
)
async def test_image_counts_are_bounded(openai_client: openai.AsyncOpenAI, model: str, n: int, message: str) -> None:
    with pytest.raises(openai.BadRequestError, match=message):
        await openai_client.images.generate(model=model, prompt="fox", n=n)
    assert len((await openai_client.images.generate(model=model, prompt="fox", n=n - 1)).data or []) == n - 1


def wav(*, byte_rate: int, data: bytes) -> bytes:
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, byte_rate, byte_rate, 1, 8)
    return b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + fmt + b"data" + struct.pack("<I", len(data)) + data


async def test_a_transcript_is_bounded_by_the_audio_s_bytes_whatever_its_header(
    openai_client: openai.AsyncOpenAI,
) -> None:
    # A header claiming 1 byte a second would make 100 KB last 28 hours: read at 8 kbit/s at most, it is 100 s.
    liar = wav(byte_rate=1, data=bytes(100_000))
    text = await openai_client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", liar), response_format="text"
    )
    assert count_tokens(str(text)) == 250  # 100 s at 2.5 words a second
    with pytest.raises(openai.BadRequestError, match="longer than 1400 seconds which is the maximum for this model"):
        await openai_client.audio.transcriptions.create(
            model="gpt-4o-transcribe", file=("a.wav", wav(byte_rate=8000, data=bytes(8000 * 1401)))
        )


async def test_audio_over_25_mb_is_too_large(openai_client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.APIStatusError, match="Maximum content size limit") as caught:
        await openai_client.audio.transcriptions.create(model="whisper-1", file=("a.mp3", bytes(25 * 1024 * 1024 + 1)))
    assert caught.value.status_code == 413


# --- Anthropic ------------------------------------------------------------------------------------------------


async def test_max_tokens_0_pre_warms_the_cache_and_generates_nothing(
    anthropic_client: anthropic.AsyncAnthropic,
) -> None:
    message = await anthropic_client.messages.create(model="claude-sonnet-4-6", max_tokens=0, messages=CLAUDE)
    assert message.content == [] and message.usage.output_tokens == 0 and message.usage.input_tokens > 0
    assert message.stop_reason == "max_tokens"
    with pytest.raises(anthropic.BadRequestError, match="cannot be streamed"):
        await anthropic_client.messages.create(model="claude-sonnet-4-6", max_tokens=0, messages=CLAUDE, stream=True)


@pytest.mark.parametrize(
    ("model", "most"),
    [("claude-sonnet-4-6", 64_000), ("claude-opus-4-1-20250805", 32_000), ("claude-3-5-haiku", 8_192)],
)
async def test_max_tokens_above_the_model_s_largest_output_is_refused(
    raw_client: httpx.AsyncClient, model: str, most: int
) -> None:
    # Raw HTTP: the SDK itself refuses to send a large max_tokens without streaming.
    answer = await raw_client.post(
        "/anthropic/v1/messages", json={"model": model, "max_tokens": most, "messages": CLAUDE}
    )
    assert Message.model_validate_json(answer.content).usage.output_tokens == 20
    refused = await raw_client.post(
        "/anthropic/v1/messages", json={"model": model, "max_tokens": most + 1, "messages": CLAUDE}
    )
    assert refused.status_code == 400 and refused.json()["error"] == {
        "type": "invalid_request_error",
        "message": f"max_tokens: {most + 1} > {most}, which is the maximum allowed number of output tokens for {model}",
    }


# --- Gemini ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"maxOutputTokens": 0}, "maxOutputTokens value of 0 but the supported range is from 1 (inclusive) to 65537"),
        ({"maxOutputTokens": 65_537}, "maxOutputTokens value of 65537 but the supported range"),
        ({"candidateCount": 9}, "candidateCount value of 9 but the supported range is from 1 (inclusive) to 9"),
        ({"maxOutputTokens": "many"}, "Invalid value at 'generation_config.maxOutputTokens' (TYPE_INT32), 'many'"),
    ],
)
async def test_gemini_refuses_a_config_out_of_range(
    raw_client: httpx.AsyncClient, config: dict[str, Any], message: str
) -> None:
    response = await raw_client.post(
        "/gemini/v1beta/models/gemini-2.5-flash:generateContent", json={**CONTENTS, "generationConfig": config}
    )
    assert response.status_code == 400 and response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert message in response.json()["error"]["message"]
    assert response.json() == gemini_wire.error_body(400, response.json()["error"]["message"])


async def test_gemini_takes_up_to_the_model_s_largest_output(raw_client: httpx.AsyncClient) -> None:
    body = {**CONTENTS, "generationConfig": {"maxOutputTokens": 8192, "candidateCount": 8}}
    assert (
        await raw_client.post("/gemini/v1beta/models/gemini-2.0-flash:generateContent", json=body)
    ).status_code == 200
    body["generationConfig"]["maxOutputTokens"] = 8193
    assert (
        await raw_client.post("/gemini/v1beta/models/gemini-2.0-flash:generateContent", json=body)
    ).status_code == 400


@pytest.mark.parametrize(
    ("family", "model", "most"),
    [
        ("openai", "openai/gpt-4o-2024-08-06", 16_384),
        ("openai", "some-local-model", 16_384),
        ("anthropic", "claude-3-haiku-20240307", 4_096),
        ("anthropic", "claude-opus-4-20250514", 32_000),
        ("anthropic", "claude-haiku-4-5", 64_000),
        ("gemini", "gemini-2.5-pro", 65_536),
        ("gemini", "gemini-1.5-flash", 8_192),
    ],
)
def test_largest_outputs_by_model(family: Any, model: str, most: int) -> None:
    assert max_output_tokens(family, model) == most
