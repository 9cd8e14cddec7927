"""The mock's OpenAI API: chat completions, responses, completions, embeddings, audio, images and models."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType

import anyio
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from farebox.errors import InvalidRequest
from farebox.gateway.bounds import EmbeddingBounds, EmbeddingInput, embedding_inputs
from farebox.gateway.providers import openai as wire
from farebox.gateway.providers.media import audio_seconds, parse_multipart
from farebox.gateway.providers.mock.answers import (
    json_response,
    paced_response,
    read_json,
    sse_event,
    stream_response,
    wait_first_byte,
)
from farebox.gateway.providers.mock.behaviour import (
    MockConfig,
    MockPlan,
    generated_words,
    new_id,
    now,
    plan_request,
    split_model,
)
from farebox.gateway.providers.mock.limits import (
    MAX_AUDIO_BYTES,
    MAX_SPEECH_CHARACTERS,
    MAX_TRANSCRIBE_SECONDS,
    Refused,
    embedding_dimensions,
    max_output_tokens,
    openai_choices,
    openai_output_limit,
)
from farebox.gateway.providers.mock.media import (
    PNG_1X1,
    PNG_1X1_BASE64,
    embeddings_body,
    mp3_silence,
    wav_silence,
)
from farebox.gateway.providers.mock.responses import MockResponse
from farebox.gateway.providers.payload import JSONObject, as_object
from farebox.gateway.tokens import Tokenizer

__all__ = ["OpenAIMock"]

_ERROR_MESSAGES: Mapping[int, str] = MappingProxyType(
    {
        429: "Rate limit reached for requests (farebox mock).",
        500: "The server had an error while processing your request (farebox mock).",
    }
)
_MODELS = ("gpt-4o", "gpt-4o-mini", "text-embedding-3-small", "tts-1", "whisper-1", "gpt-image-1")
_CHARACTERS_PER_SECOND = 15
"""Roughly how fast text is spoken, for the length of generated speech."""
_WORDS_PER_SECOND = 2.5
"""Roughly how fast people speak, for the length of a generated transcription."""
_LEAST_AUDIO_BYTES_PER_SECOND = 1000
"""8 kbit/s, the lowest bitrate in use: no audio is read as lasting longer, whatever its header claims."""
_EMBEDDINGS = EmbeddingBounds()
"""OpenAI's documented bounds: 2048 inputs, 8192 tokens each, 300,000 in all."""
_INVALID_INPUT = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."


class OpenAIMock:
    """Answers the OpenAI API offline, in its real wire format."""

    def __init__(self, config: MockConfig, rng: random.Random, tokenizer: Tokenizer) -> None:
        self._config = config
        self._rng = rng
        self._tokenizer = tokenizer

    def routes(self) -> list[Route]:
        """The routes, relative to the OpenAI base URL (`.../v1`)."""
        return [
            Route("/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/responses", self.responses, methods=["POST"]),
            Route("/completions", self.completions, methods=["POST"]),
            Route("/embeddings", self.embeddings, methods=["POST"]),
            Route("/audio/speech", self.speech, methods=["POST"]),
            Route("/audio/transcriptions", self.transcriptions, methods=["POST"]),
            Route("/images/generations", self.images, methods=["POST"]),
            Route("/images/mock.png", self.image_file, methods=["GET"], name="mock_openai_image"),
            Route("/models", self.models, methods=["GET"]),
        ]

    def _plan(self, request: Request, model: str, max_tokens: int | None = None) -> MockPlan:
        ceiling = max_output_tokens("openai", split_model(model)[0])
        return plan_request(
            self._config, self._rng, headers=request.headers, model=model, max_tokens=max_tokens, ceiling=ceiling
        )

    @staticmethod
    def _error(
        status: int, message: str | None = None, *, code: str | None = None, param: str | None = None
    ) -> Response:
        text = message or _ERROR_MESSAGES.get(status, f"farebox mock answered {status}.")
        return json_response(wire.error_body(status, text, code=code, param=param), status=status)

    def _refused(self, refusal: Refused) -> Response:
        return self._error(refusal.status, refusal.message, param=refusal.param, code=refusal.code)

    async def _request(self, request: Request) -> tuple[JSONObject, str] | Response:
        body = await read_json(request)
        if body is None:
            return self._error(400, "We could not parse the JSON body of your request.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return self._error(400, "you must provide a model parameter")
        return body, model

    def _usage(self, plan: MockPlan, input_tokens: int) -> dict[str, object]:
        output = plan.output_tokens + plan.reasoning_tokens
        return {
            "prompt_tokens": input_tokens,
            "completion_tokens": output,
            "total_tokens": input_tokens + output,
            "prompt_tokens_details": {"cached_tokens": min(plan.cached_tokens, input_tokens), "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": plan.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    async def chat_completions(self, request: Request) -> Response:
        """`POST /chat/completions`, streaming (with `stream_options.include_usage`) or not."""
        parsed = await self._request(request)
        if isinstance(parsed, Response):
            return parsed
        body, model = parsed
        try:
            limit = openai_output_limit(body, split_model(model)[0])
            openai_choices(body)
        except Refused as refusal:
            return self._refused(refusal)
        plan = self._plan(request, model, limit)
        if plan.status is not None:
            return self._error(plan.status)
        await wait_first_byte(plan)
        usage = self._usage(plan, wire.estimate_input_tokens(body, tokenizer=self._tokenizer))
        words = generated_words(plan.output_tokens)
        finish = "length" if plan.finish_length else "stop"
        head = {"id": new_id("chatcmpl-"), "created": now(), "model": plan.model}
        if body.get("stream") is not True:
            message: dict[str, object] = {"role": "assistant", "content": "".join(words), "refusal": None}
            message["annotations"] = []
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            completion = {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
            return json_response({**completion, "service_tier": "default", "system_fingerprint": "fp_mock"})
        options = as_object(body.get("stream_options"))
        include_usage = options is not None and options.get("include_usage") is True
        base: dict[str, object] = {**head, "object": "chat.completion.chunk", "service_tier": "default"}
        base["system_fingerprint"] = "fp_mock"
        if include_usage:
            base["usage"] = None

        def chunk(delta: dict[str, object], finish_reason: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return sse_event({**base, "choices": [choice]})

        def events() -> Iterator[bytes]:
            yield chunk({"role": "assistant", "content": "", "refusal": None})
            yield from (chunk({"content": word}) for word in words)
            yield chunk({}, finish)
            if include_usage:
                yield sse_event({**base, "choices": [], "usage": usage})
            yield b"data: [DONE]\n\n"

        return stream_response(plan, events())

    async def responses(self, request: Request) -> Response:
        """`POST /responses` (the Responses API), streaming or not; `max_output_tokens` as OpenAI checks it (16 to
        the model's largest output)."""
        parsed = await self._request(request)
        if isinstance(parsed, Response):
            return parsed
        body, model = parsed
        try:
            limit = openai_output_limit(
                body, split_model(model)[0], names=("max_output_tokens",), least=wire.RESPONSES_MIN_OUTPUT_TOKENS
            )
        except Refused as refusal:
            return self._refused(refusal)
        plan = self._plan(request, model, limit)
        if plan.status is not None:
            return self._error(plan.status)
        await wait_first_byte(plan)
        answer = MockResponse(plan, body, input_tokens=wire.estimate_input_tokens(body, tokenizer=self._tokenizer))
        if body.get("stream") is not True:
            return json_response(answer.body())
        return stream_response(plan, answer.events())

    async def completions(self, request: Request) -> Response:
        """`POST /completions` (legacy), streaming or not."""
        parsed = await self._request(request)
        if isinstance(parsed, Response):
            return parsed
        body, model = parsed
        try:
            limit = openai_output_limit(body, split_model(model)[0])
            openai_choices(body)
        except Refused as refusal:
            return self._refused(refusal)
        plan = self._plan(request, model, 16 if limit is None else limit)  # OpenAI's default for completions
        if plan.status is not None:
            return self._error(plan.status)
        await wait_first_byte(plan)
        usage = self._usage(plan, wire.estimate_input_tokens(body, tokenizer=self._tokenizer))
        del usage["prompt_tokens_details"], usage["completion_tokens_details"]
        words = generated_words(plan.output_tokens)
        finish = "length" if plan.finish_length else "stop"
        head = {"id": new_id("cmpl-"), "object": "text_completion", "created": now(), "model": plan.model}
        head["system_fingerprint"] = "fp_mock"
        if body.get("stream") is not True:
            choice = {"text": "".join(words), "index": 0, "logprobs": None, "finish_reason": finish}
            return json_response({**head, "choices": [choice], "usage": usage})
        options = as_object(body.get("stream_options"))
        include_usage = options is not None and options.get("include_usage") is True

        def events() -> Iterator[bytes]:
            for index, word in enumerate(words):
                last = index == len(words) - 1
                choice = {"text": word, "index": 0, "logprobs": None, "finish_reason": finish if last else None}
                yield sse_event({**head, "choices": [choice]})
            if include_usage:
                yield sse_event({**head, "choices": [], "usage": usage})
            yield b"data: [DONE]\n\n"

        return stream_response(plan, events())

    async def embeddings(self, request: Request) -> Response:
        """`POST /embeddings`: deterministic unit vectors of `dimensions` (1536, 3072 for `-large`).

        Within OpenAI's bounds (2048 inputs, 8192 tokens each, 300,000 in all); the answer is made and sent in
        pieces, so that even the largest (2048 vectors of 3072 values) never holds the event loop for long.
        """
        parsed = await self._request(request)
        if isinstance(parsed, Response):
            return parsed
        body, model = parsed
        plan = self._plan(request, model)
        if plan.status is not None:
            return self._error(plan.status)
        try:
            await _EMBEDDINGS.check(body, model=plan.model, tokenizer=self._tokenizer)
            dimensions = embedding_dimensions(body, plan.model)
        except InvalidRequest as error:
            return self._error(400, error.message, param="input", code=error.code)
        except Refused as refusal:
            return self._refused(refusal)
        inputs = embedding_inputs(body.get("input"))
        if not inputs or not all(inputs):  # none, or an empty text, or neither text nor token ids
            return self._error(400, _INVALID_INPUT, param="input", code="invalid_value")
        await wait_first_byte(plan)
        tokens = await anyio.to_thread.run_sync(self._count, inputs, plan.model, limiter=self._tokenizer.threads)
        encoding = "base64" if body.get("encoding_format") == "base64" else "float"
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        texts = [item if isinstance(item, str) else " ".join(str(token) for token in item or ()) for item in inputs]
        return paced_response(
            embeddings_body(texts, dimensions=dimensions, encoding=encoding, model=plan.model, usage=usage)
        )

    def _count(self, inputs: Sequence[EmbeddingInput | None], model: str) -> int:
        return sum(
            self._tokenizer.count(item, model=model) if isinstance(item, str) else len(item or ()) for item in inputs
        )

    async def speech(self, request: Request) -> Response:
        """`POST /audio/speech`: silence as long as the text would take to say (MP3 by default, or WAV)."""
        parsed = await self._request(request)
        if isinstance(parsed, Response):
            return parsed
        body, model = parsed
        plan = self._plan(request, model)
        if plan.status is not None:
            return self._error(plan.status)
        text = body.get("input")
        if not isinstance(text, str) or not text:
            return self._error(400, "input must be a non-empty string")
        if len(text) > MAX_SPEECH_CHARACTERS:
            return self._error(
                400,
                f"Invalid 'input': string too long. Expected a string with maximum length {MAX_SPEECH_CHARACTERS}, "
                f"but got a string with length {len(text)} instead.",
                param="input",
                code="string_above_max_length",
            )
        await wait_first_byte(plan)
        seconds = max(0.5, len(text) / _CHARACTERS_PER_SECOND)
        if body.get("response_format") == "wav":
            return Response(wav_silence(seconds), media_type="audio/wav")
        if body.get("response_format") == "pcm":
            return Response(bytes(int(seconds * 48000)), media_type="audio/pcm")
        return Response(mp3_silence(seconds), media_type="audio/mpeg")

    async def transcriptions(self, request: Request) -> Response:
        """`POST /audio/transcriptions` (multipart): text as long as the audio, usage by duration or tokens."""
        fields = parse_multipart(await request.body(), request.headers.get("content-type", ""))
        model = fields.get("model", b"").decode("utf-8", "replace")
        if "file" not in fields or not model:
            return self._error(400, "a multipart body with `file` and `model` is required")
        audio = fields["file"]
        if len(audio) > MAX_AUDIO_BYTES:
            message = f"Maximum content size limit ({MAX_AUDIO_BYTES}) exceeded ({len(audio)} bytes read)"
            return self._error(413, message, param="file", code="invalid_value")
        plan = self._plan(request, model)
        if plan.status is not None:
            return self._error(plan.status)
        duration = min(audio_seconds(audio), len(audio) / _LEAST_AUDIO_BYTES_PER_SECOND)
        if "transcribe" in plan.model and duration > MAX_TRANSCRIBE_SECONDS:
            message = (
                f"audio duration {duration} seconds is longer than {MAX_TRANSCRIBE_SECONDS} seconds which is the "
                "maximum for this model"
            )
            return self._error(400, message, code="invalid_value")
        await wait_first_byte(plan)
        words = generated_words(max(1, round(duration * _WORDS_PER_SECOND)))
        text = "".join(words)
        response_format = fields.get("response_format", b"json").decode("utf-8", "replace")
        if response_format in ("text", "srt", "vtt"):
            return PlainTextResponse(text)
        usage: dict[str, object]
        if "transcribe" in plan.model:
            audio_tokens = max(1, round(duration * 10))
            usage = {
                "type": "tokens",
                "input_tokens": audio_tokens,
                "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
                "output_tokens": len(words),
                "total_tokens": audio_tokens + len(words),
            }
        else:
            usage = {"type": "duration", "seconds": math.ceil(duration)}
        answer: dict[str, object] = {"text": text, "usage": usage}
        if response_format == "verbose_json":
            answer.update(task="transcribe", language="english", duration=round(duration, 2), segments=[])
        return json_response(answer)

    async def images(self, request: Request) -> Response:
        """`POST /images/generations`: a 1x1 PNG per image, as `b64_json` or a `url` to this mock."""
        parsed = await self._request(request)
        if isinstance(parsed, Response):
            return parsed
        body, model = parsed
        plan = self._plan(request, model)
        if plan.status is not None:
            return self._error(plan.status)
        try:
            n = openai_choices(body, images=True, model=plan.model)
        except Refused as refusal:
            return self._refused(refusal)
        await wait_first_byte(plan)
        token_metered = plan.model.startswith("gpt-image")
        as_url = body.get("response_format") == "url" or (not token_metered and body.get("response_format") is None)
        url = str(request.url_for("mock_openai_image")) if as_url else ""
        image = {"url": url} if as_url else {"b64_json": PNG_1X1_BASE64}
        answer: dict[str, object] = {"created": now(), "data": [dict(image) for _ in range(n)]}
        if token_metered:
            prompt = body.get("prompt")
            text_tokens = self._tokenizer.count(prompt if isinstance(prompt, str) else "")
            output = 1056 * n
            answer["usage"] = {
                "input_tokens": text_tokens,
                "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": 0},
                "output_tokens": output,
                "total_tokens": text_tokens + output,
            }
        return json_response(answer)

    async def image_file(self, request: Request) -> Response:
        """`GET /images/mock.png`: the image the `url` answers point at."""
        return Response(PNG_1X1, media_type="image/png")

    async def models(self, request: Request) -> Response:
        """`GET /models`: the models the mock answers for (it answers any name)."""
        created = now()
        data = [{"id": name, "object": "model", "created": created, "owned_by": "farebox-mock"} for name in _MODELS]
        return json_response({"object": "list", "data": data})
