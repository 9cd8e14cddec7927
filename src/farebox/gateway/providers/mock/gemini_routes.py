"""The mock's Gemini API: `models/{model}:generateContent` and `:streamGenerateContent` (SSE or JSON array)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from types import MappingProxyType

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.gateway.providers import gemini as wire
from farebox.gateway.providers.mock.answers import json_response, read_json, sse_event, stream_response, wait_first_byte
from farebox.gateway.providers.mock.behaviour import (
    MockConfig,
    MockPlan,
    generated_words,
    new_id,
    plan_request,
    split_model,
)
from farebox.gateway.providers.mock.limits import Refused, gemini_output_limit, max_output_tokens
from farebox.gateway.providers.payload import sub_object
from farebox.gateway.tokens import Tokenizer

__all__ = ["GeminiMock"]

_ERROR_MESSAGES: Mapping[int, str] = MappingProxyType(
    {
        429: "Resource has been exhausted (e.g. check quota). (farebox mock)",
        500: "An internal error has occurred. (farebox mock)",
    }
)


class GeminiMock:
    """Answers the Gemini `generateContent` API offline, in its real wire format."""

    def __init__(self, config: MockConfig, rng: random.Random, tokenizer: Tokenizer) -> None:
        self._config = config
        self._rng = rng
        self._tokenizer = tokenizer

    def routes(self) -> list[Route]:
        """The routes, relative to the Gemini base URL (`.../v1beta`)."""
        return [Route("/models/{target}", self.generate, methods=["POST"])]

    @staticmethod
    def _error(status: int, message: str | None = None) -> Response:
        text = message or _ERROR_MESSAGES.get(status, f"farebox mock answered {status}.")
        return json_response(wire.error_body(status, text), status=status)

    @staticmethod
    def _usage(plan: MockPlan, input_tokens: int, candidates: int) -> dict[str, object]:
        usage: dict[str, object] = {
            "promptTokenCount": input_tokens,
            "candidatesTokenCount": candidates,
            "totalTokenCount": input_tokens + candidates + plan.reasoning_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": input_tokens}],
        }
        cached = min(plan.cached_tokens, input_tokens)
        if cached:
            usage["cachedContentTokenCount"] = cached
            usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
        if plan.reasoning_tokens:
            usage["thoughtsTokenCount"] = plan.reasoning_tokens
        return usage

    async def generate(self, request: Request) -> Response:
        """`POST /models/{model}:generateContent` or `:streamGenerateContent[?alt=sse]`."""
        model, _, action = request.path_params["target"].rpartition(":")
        if action not in ("generateContent", "streamGenerateContent") or not model:
            return self._error(404, f"Method {action or request.path_params['target']} is not found.")
        body = await read_json(request)
        if body is None:
            return self._error(400, "Invalid JSON payload received.")
        name = split_model(model)[0]
        try:
            limit = gemini_output_limit(sub_object(body, "generationConfig"), name)
        except Refused as refusal:
            return self._error(refusal.status, refusal.message)
        plan = plan_request(
            self._config,
            self._rng,
            headers=request.headers,
            model=model,
            max_tokens=limit,
            ceiling=max_output_tokens("gemini", name),
        )
        if plan.status is not None:
            return self._error(plan.status)
        await wait_first_byte(plan)
        input_tokens = wire.estimate_input_tokens(body, tokenizer=self._tokenizer)
        words = generated_words(plan.output_tokens)
        finish = "MAX_TOKENS" if plan.finish_length else "STOP"
        tail = {"modelVersion": plan.model, "responseId": new_id("")}

        def response(text: str, candidates: int, finish_reason: str | None) -> dict[str, object]:
            candidate: dict[str, object] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
            if finish_reason is not None:
                candidate["finishReason"] = finish_reason
            return {"candidates": [candidate], "usageMetadata": self._usage(plan, input_tokens, candidates), **tail}

        if action == "generateContent":
            return json_response(response("".join(words), len(words), finish))

        def chunks() -> Iterator[dict[str, object]]:
            if not words:
                yield response("", 0, finish)
            for index, word in enumerate(words):
                yield response(word, index + 1, finish if index == len(words) - 1 else None)

        if request.query_params.get("alt") == "sse":
            return stream_response(plan, (sse_event(chunk, line_end=b"\r\n") for chunk in chunks()))

        def pieces() -> Iterator[bytes]:
            held = b""  # the array's `]` closes the last chunk, not a chunk of its own
            for index, chunk in enumerate(chunks()):
                if held:
                    yield held
                held = (b"[" if index == 0 else b",\r\n") + orjson.dumps(chunk)
            yield held + b"]"

        return stream_response(plan, pieces(), media_type="application/json")
