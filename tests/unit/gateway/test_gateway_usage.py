"""Usage of a complete answer: the provider's report, the request's own measure, or an estimate, flagged."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from farebox.errors import InvalidRequest
from farebox.gateway.model_routes import ModelRoute, Provider
from farebox.gateway.operations import OPERATIONS, parse_request, upstream_body
from farebox.gateway.providers.mock.media import wav_silence
from farebox.gateway.tokens import Tokenizer
from farebox.gateway.usage import measure_answer, measure_body

pytestmark = pytest.mark.anyio
BY_PATH = {operation.path: operation for operation in OPERATIONS}
CHAT = BY_PATH["/v1/chat/completions"]
GENERATE = BY_PATH["/v1beta/models/{model}:generateContent"]
STREAM_GENERATE = BY_PATH["/v1beta/models/{model}:streamGenerateContent"]
GEMINI_BODY = b'{"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}'


async def test_reported_usage_is_taken_as_is() -> None:
    request = parse_request(CHAT, b'{"model": "gpt-4o", "messages": []}', content_type="application/json")
    answer = orjson.dumps({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}})
    measured = await measure_body(CHAT, request, answer, tokenizer=Tokenizer())
    assert (measured.usage.input_tokens, measured.usage.output_tokens, measured.estimated) == (7, 3, False)


async def test_no_usage_is_estimated_from_the_request_and_the_answer_text() -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello there"}]}
    request = parse_request(CHAT, orjson.dumps(body), content_type="application/json")
    answer = orjson.dumps({"choices": [{"message": {"role": "assistant", "content": "The quick brown fox"}}]})
    measured = await measure_body(CHAT, request, answer, tokenizer=Tokenizer())
    assert measured.estimated is True
    assert measured.usage.output_tokens == 4  # "The quick brown fox"
    assert measured.usage.input_tokens == Tokenizer().count_messages(body["messages"], model="gpt-4o")


async def test_anthropic_answer_without_usage_is_estimated() -> None:
    messages = BY_PATH["/v1/messages"]
    body = {"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    request = parse_request(messages, orjson.dumps(body), content_type="application/json")
    answer = orjson.dumps({"type": "message", "content": [{"type": "text", "text": "The quick"}]})
    measured = await measure_body(messages, request, answer, tokenizer=Tokenizer())
    assert (measured.usage.output_tokens, measured.estimated) == (2, True) and measured.usage.input_tokens > 0


async def test_speech_is_the_input_characters_and_a_text_transcription_the_audio_duration() -> None:
    speech = BY_PATH["/v1/audio/speech"]
    request = parse_request(speech, b'{"model": "tts-1", "input": "abc def", "voice": "x"}', content_type="")
    measured = await measure_body(speech, request, b"\xff\xfb audio", tokenizer=Tokenizer())
    assert (measured.usage.characters, measured.estimated) == (7, False)
    transcription = BY_PATH["/v1/audio/transcriptions"]
    form = (
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        + wav_silence(1.5)
        + b"\r\n--b--\r\n"
    )
    request = parse_request(transcription, form, content_type="multipart/form-data; boundary=b")
    assert request.model == "whisper-1"
    measured = await measure_body(transcription, request, b"some words", tokenizer=Tokenizer())
    assert (measured.usage.seconds, measured.estimated) == (Decimal("1.5"), False)


def test_the_body_goes_upstream_untouched_unless_it_must_change() -> None:
    route = ModelRoute(name="gpt-4o", provider=Provider.MOCK)
    raw = b'{"model":  "gpt-4o", "messages": []}'
    assert upstream_body(CHAT, parse_request(CHAT, raw, content_type=""), route) is raw
    streaming = parse_request(CHAT, b'{"model": "gpt-4o", "messages": [], "stream": true}', content_type="")
    assert orjson.loads(upstream_body(CHAT, streaming, route))["stream_options"] == {"include_usage": True}
    renamed = ModelRoute(name="gpt-4o", provider=Provider.MOCK, upstream_model="gpt-4o-2024-08-06")
    assert orjson.loads(upstream_body(CHAT, parse_request(CHAT, raw, content_type=""), renamed))["model"] == (
        "gpt-4o-2024-08-06"
    )


def test_a_renamed_model_is_rewritten_in_a_multipart_form() -> None:
    transcription = BY_PATH["/v1/audio/transcriptions"]
    form = (
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF...\r\n--b--\r\n'
    )
    request = parse_request(transcription, form, content_type="multipart/form-data; boundary=b")
    route = ModelRoute(name="whisper", provider=Provider.MOCK, upstream_model="whisper-1")
    rewritten = upstream_body(transcription, request, route)
    assert rewritten == form.replace(b"\r\n\r\nwhisper\r\n", b"\r\n\r\nwhisper-1\r\n")


async def test_gemini_reads_model_and_stream_from_the_path_and_estimates_without_usage_metadata() -> None:
    request = parse_request(GENERATE, GEMINI_BODY, content_type="application/json", path_model="gemini-2.5-flash")
    assert (request.model, request.stream) == ("gemini-2.5-flash", False)
    streaming = parse_request(STREAM_GENERATE, GEMINI_BODY, content_type="", path_model="gemini-2.5-flash")
    assert streaming.stream is True
    answer = orjson.dumps({"candidates": [{"content": {"parts": [{"text": "The quick brown"}]}}]})
    measured = await measure_body(GENERATE, request, answer, tokenizer=Tokenizer())
    assert (measured.usage.input_tokens, measured.usage.output_tokens, measured.estimated) == (2, 3, True)


def test_gemini_body_goes_upstream_untouched_when_the_model_is_renamed() -> None:
    request = parse_request(GENERATE, GEMINI_BODY, content_type="", path_model="flash")
    route = ModelRoute(name="flash", provider=Provider.MOCK, upstream_model="gemini-2.5-flash")
    assert upstream_body(GENERATE, request, route) is GEMINI_BODY


def test_a_gemini_request_needs_a_model_in_the_path_and_a_json_body() -> None:
    with pytest.raises(InvalidRequest) as no_model:
        parse_request(GENERATE, GEMINI_BODY, content_type="")
    assert no_model.value.code == "missing_model"
    with pytest.raises(InvalidRequest) as not_json:
        parse_request(GENERATE, b"[]", content_type="", path_model="flash")
    assert not_json.value.code == "invalid_json"


EMBEDDINGS = BY_PATH["/v1/embeddings"]


@pytest.mark.parametrize("cut", [1, 7, 4096, 70_000, 10**9])
async def test_an_answer_in_chunks_measures_as_the_whole_body(cut: int) -> None:
    request = parse_request(EMBEDDINGS, b'{"model": "e", "input": "hi"}', content_type="application/json")
    answer = orjson.dumps(
        {"object": "list", "data": [{"embedding": [0.5] * 20_000}], "usage": {"prompt_tokens": 2, "total_tokens": 2}}
    )
    chunks = [answer[start : start + cut] for start in range(0, len(answer), cut)]
    measured = await measure_answer(EMBEDDINGS, request, chunks, tokenizer=Tokenizer())
    assert measured == await measure_body(EMBEDDINGS, request, answer, tokenizer=Tokenizer())
    assert (measured.usage.input_tokens, measured.estimated) == (2, False)


async def test_an_answer_without_usage_at_its_end_is_measured_whole() -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello there"}]}
    request = parse_request(CHAT, orjson.dumps(body), content_type="application/json")
    answer = orjson.dumps({"choices": [{"message": {"content": "The quick brown fox"}}], "x": "y" * 100_000})
    chunks = [answer[:50], answer[50:]]
    measured = await measure_answer(CHAT, request, chunks, tokenizer=Tokenizer())
    assert measured.estimated and measured.usage.output_tokens == 4  # estimated from the whole answer's text
    speech = BY_PATH["/v1/audio/speech"]
    request = parse_request(speech, b'{"model": "tts-1", "input": "abc", "voice": "x"}', content_type="")
    audio = [b'\xff\xfb "usage": {"prompt_tokens": 9}}']  # audio bytes that happen to look like a usage
    assert (await measure_answer(speech, request, audio, tokenizer=Tokenizer())).usage.characters == 3
