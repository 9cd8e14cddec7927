"""The mock's Anthropic Messages API: `/messages` (streaming or not) and `/messages/count_tokens`."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from types import MappingProxyType

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farebox.gateway.providers import anthropic as wire
from farebox.gateway.providers.mock.answers import json_response, read_json, sse_event, stream_response, wait_first_byte
from farebox.gateway.providers.mock.behaviour import (
    MockConfig,
    MockPlan,
    generated_words,
    new_id,
    plan_request,
    split_model,
)
from farebox.gateway.providers.mock.limits import Refused, anthropic_output_limit, max_output_tokens
from farebox.gateway.providers.payload import JSONObject
from farebox.gateway.tokens import Tokenizer

__all__ = ["AnthropicMock"]

_ERROR_MESSAGES: Mapping[int, str] = MappingProxyType(
    {
        429: "Number of request tokens has exceeded your per-minute rate limit (farebox mock).",
        500: "Internal server error (farebox mock).",
        529: "Overloaded (farebox mock).",
    }
)


class AnthropicMock:
    """Answers the Anthropic Messages API offline, in its real wire format (cache token fields included)."""

    def __init__(self, config: MockConfig, rng: random.Random, tokenizer: Tokenizer) -> None:
        self._config = config
        self._rng = rng
        self._tokenizer = tokenizer

    def routes(self) -> list[Route]:
        """The routes, relative to the Anthropic base URL's `/v1`."""
        return [
            Route("/messages", self.messages, methods=["POST"]),
            Route("/messages/count_tokens", self.count_tokens, methods=["POST"]),
        ]

    @staticmethod
    def _error(status: int, message: str | None = None) -> Response:
        request_id = new_id("req_")
        text = message or _ERROR_MESSAGES.get(status, f"farebox mock answered {status}.")
        body = wire.error_body(status, text, request_id=request_id)
        return json_response(body, status=status, headers={"request-id": request_id})

    async def _request(self, request: Request) -> tuple[JSONObject, str] | Response:
        body = await read_json(request)
        if body is None:
            return self._error(400, "There was an issue with your request body: it is not valid JSON.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return self._error(400, "model: Field required")
        return body, model

    async def count_tokens(self, request: Request) -> Response:
        """`POST /messages/count_tokens`: the request's input tokens, estimated offline."""
        parsed = await self._request(request)
        if isinstance(parsed, Response):
            return parsed
        body, _model = parsed
        return json_response({"input_tokens": wire.estimate_input_tokens(body, tokenizer=self._tokenizer)})

    def _usage(self, plan: MockPlan, body: JSONObject) -> dict[str, object]:
        total = wire.estimate_input_tokens(body, tokenizer=self._tokenizer)
        cache_read = min(plan.cached_tokens, total)
        cache_write = min(plan.cache_write_tokens, total - cache_read)
        usage: dict[str, object] = {
            "input_tokens": total - cache_read - cache_write,
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
            "cache_creation": {"ephemeral_5m_input_tokens": cache_write, "ephemeral_1h_input_tokens": 0},
            "output_tokens": plan.output_tokens + plan.reasoning_tokens,
            "service_tier": "standard",
        }
        if plan.reasoning_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": plan.reasoning_tokens}
        return usage

    async def messages(self, request: Request) -> Response:
        """`POST /messages`: a message, or its SSE stream with every Messages event type."""
        parsed = await self._request(request)
        if isinstance(parsed, Response):
            return parsed
        body, model = parsed
        name = split_model(model)[0]
        try:
            max_tokens = anthropic_output_limit(body, name)
        except Refused as refusal:
            return self._error(refusal.status, refusal.message)
        plan = plan_request(
            self._config,
            self._rng,
            headers=request.headers,
            model=model,
            max_tokens=max_tokens,
            ceiling=max_output_tokens("anthropic", name),
        )
        if plan.status is not None:
            return self._error(plan.status)
        await wait_first_byte(plan)
        usage = self._usage(plan, body)
        words = generated_words(plan.output_tokens)
        stop_reason = "max_tokens" if plan.finish_length else "end_turn"
        message: dict[str, object] = {"id": new_id("msg_"), "type": "message", "role": "assistant", "model": plan.model}
        if body.get("stream") is not True:
            message.update(
                # max_tokens 0 pre-warms the prompt cache: nothing is generated, not even an empty text block.
                content=[{"type": "text", "text": "".join(words)}] if max_tokens else [],
                stop_reason=stop_reason,
                stop_sequence=None,
                usage=usage,
            )
            return json_response(message)
        message.update(content=[], stop_reason=None, stop_sequence=None, usage={**usage, "output_tokens": 1})
        final_usage = {key: value for key, value in usage.items() if key not in ("cache_creation", "service_tier")}

        def events() -> Iterator[bytes]:
            yield sse_event({"type": "message_start", "message": message}, event="message_start")
            yield sse_event(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                event="content_block_start",
            )
            yield sse_event({"type": "ping"}, event="ping")
            for word in words:
                delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}}
                yield sse_event(delta, event="content_block_delta")
            yield sse_event({"type": "content_block_stop", "index": 0}, event="content_block_stop")
            message_delta = {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": final_usage,
            }
            yield sse_event(message_delta, event="message_delta")
            yield sse_event({"type": "message_stop"}, event="message_stop")

        return stream_response(plan, events())
