"""The built-in `mock` provider: answers offline in OpenAI's, Anthropic's and Gemini's real wire formats.

It is a provider like the others, reached over HTTP: serve `create_mock_app()` with uvicorn (or mount it
in farebox) and point a model's `base_url` at it:

| provider  | base URL (with the default `prefix="/mock"`) |
| --------- | -------------------------------------------- |
| OpenAI    | `http://HOST/mock/openai/v1`                 |
| Anthropic | `http://HOST/mock/anthropic` (SDK base URL; it appends `/v1/messages`) |
| Gemini    | `http://HOST/mock/gemini/v1beta`             |

Answers carry realistic usage: input tokens counted from the request text with the offline tokenizer,
output tokens as configured. Latency, token counts and errors are configurable per instance and per
request (see `farebox.gateway.providers.mock.behaviour`). Given a `key`, the mock answers only requests
that carry it (see `farebox.gateway.providers.mock.guard`); farebox mounts it so.
"""

from __future__ import annotations

import random

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.types import ASGIApp

from farebox.gateway.providers.mock.answers import MockStreamAborted
from farebox.gateway.providers.mock.anthropic_routes import AnthropicMock
from farebox.gateway.providers.mock.behaviour import MockConfig
from farebox.gateway.providers.mock.gemini_routes import GeminiMock
from farebox.gateway.providers.mock.guard import RequireKey
from farebox.gateway.providers.mock.openai_routes import OpenAIMock
from farebox.gateway.tokens import Tokenizer

__all__ = ["MockConfig", "MockStreamAborted", "create_mock_app"]


def create_mock_app(
    *,
    latency_ms: float = 0,
    chunk_delay_ms: float = 0,
    output_tokens: int | None = None,
    error_rate: float = 0.0,
    seed: int | None = None,
    prefix: str = "/mock",
    key: str | None = None,
) -> ASGIApp:
    """The mock provider as an ASGI app.

    Args:
        latency_ms: delay before the first byte of every answer.
        chunk_delay_ms: delay between stream chunks.
        output_tokens: output tokens per answer (default: `min(max_tokens, 20)`, or 20).
        error_rate: probability of answering a provider-shaped 429 or 500 instead of a result.
        seed: seeds the random source of the error rate, so tests see the same failures every run.
        prefix: where the provider paths start; use `""` when mounting the app under a prefix yourself.
        key: when given, every request but the image file must carry it in `x-farebox-mock-key` (else 401).

    Raises:
        ValueError: a setting out of range (see `MockConfig`).
    """
    config = MockConfig(
        latency_ms=latency_ms,
        chunk_delay_ms=chunk_delay_ms,
        output_tokens=output_tokens,
        error_rate=error_rate,
    )
    rng = random.Random(seed)
    tokenizer = Tokenizer()
    routes = [
        Mount(f"{prefix}/openai/v1", routes=OpenAIMock(config, rng, tokenizer).routes()),
        Mount(f"{prefix}/anthropic/v1", routes=AnthropicMock(config, rng, tokenizer).routes()),
        Mount(f"{prefix}/gemini/v1beta", routes=GeminiMock(config, rng, tokenizer).routes()),
    ]
    middleware = [Middleware(RequireKey, key=key)] if key is not None else []
    return Starlette(routes=routes, middleware=middleware)
