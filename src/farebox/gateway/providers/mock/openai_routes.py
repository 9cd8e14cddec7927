"""The mock's OpenAI API: chat completions, responses, completions, embeddings, audio, images and models."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from types import MappingProxyType

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from farebox.gateway.providers import openai as wire
from farebox.gateway.providers.media import audio_seconds, parse_multipart
from farebox.gateway.providers.mock.answers import (
    json_response,
    read_json,
    sse_event,
    stream_response,
    wait_first_byte,
)
from farebox.gateway.providers.mock.behaviour import MockConfig, MockPlan, generated_words, new_id, now, plan_request
from farebox.gateway.providers.mock.media import (
    PNG_1X1,
    PNG_1X1_BASE64,
    embedding_vector,
    encode_embedding,
    mp3_silence,
    wav_silence,
)
from farebox.gateway.providers.mock.responses import MockResponse
from farebox.gateway.providers.payload import JSONObject, as_object, optional_count
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
        return plan_request(self._config, self._rng, headers=request.headers, model=model, max_tokens=max_tokens)

    @staticmethod
    def _error(
        status: int, message: str | None = None, *, code: str | None = None, param: str | None = None
    ) -> Response:
        text = message or _ERROR_MESSAGES.get(status, f"farebox mock answered {status}.")
        return json_response(wire.error_body(status, text, code=code, param=param), status=status)

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
        limit = optional_count(body, "max_completion_tokens") or optional_count(body, "max_tokens")
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

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"content": word}) for word in words]
        events.append(chunk({}, finish))
        if include_usage:
            events.append(sse_event({**base, "choices": [], "usage": usage}))
        events.append(b"data: [DONE]\n\n")
        return stream_response(plan, events)

    async def responses(self, request: Request) -> Response:
        """`POST /responses` (the Responses API), streaming or not; `max_output_tokens` as OpenAI checks it."""
        parsed = await self._request(request)
        if isinstance(parsed, Response):
            return parsed
        body, model = parsed
        refused = wire.count_error(
            body.get("max_output_tokens"), "max_output_tokens", minimum=wire.RESPONSES_MIN_OUTPUT_TOKENS
        )
        if refused is not None:
            return self._error(400, refused[1], code=refused[0], param="max_output_tokens")
        plan = self._plan(request, model, optional_count(body, "max_output_tokens"))
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
        plan = self._plan(request, model, optional_count(body, "max_tokens") or 16)
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
        events = []
        for index, word in enumerate(words):
            last = index == len(words) - 1
            choice = {"text": word, "index": 0, "logprobs": None, "finish_reason": finish if last else None}
            events.append(sse_event({**head, "choices": [choice]}))
        if include_usage:
            events.append(sse_event({**head, "choices": [], "usage": usage}))
        events.append(b"data: [DONE]\n\n")
        return stream_response(plan, events)

    async def embeddings(self, request: Request) -> Response:
        """`POST /embeddings`: deterministic unit vectors of `dimensions` (1536, 3072 for `-large`)."""
        parsed = await self._request(request)
        if isinstance(parsed, Response):
            return parsed
        body, model = parsed
        plan = self._plan(request, model)
        if plan.status is not None:
            return self._error(plan.status)
        await wait_first_byte(plan)
        raw = body.get("input")
        inputs: list[object] = raw if isinstance(raw, list) and not all(isinstance(x, int) for x in raw) else [raw]
        dimensions = optional_count(body, "dimensions") or (3072 if plan.model.endswith("-large") else 1536)
        encoding = "base64" if body.get("encoding_format") == "base64" else "float"
        data = []
        tokens = 0
        for index, item in enumerate(inputs):
            if isinstance(item, list):  # token ids
                text = " ".join(str(token) for token in item)
                tokens += len(item)
            else:
                text = item if isinstance(item, str) else ""
                tokens += self._tokenizer.count(text, model=plan.model)
            vector = encode_embedding(embedding_vector(text, dimensions), encoding_format=encoding)
            data.append({"object": "embedding", "index": index, "embedding": vector})
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return json_response({"object": "list", "data": data, "model": plan.model, "usage": usage})

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
        plan = self._plan(request, model)
        if plan.status is not None:
            return self._error(plan.status)
        await wait_first_byte(plan)
        duration = audio_seconds(fields["file"])
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
        await wait_first_byte(plan)
        n = optional_count(body, "n") or 1
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
