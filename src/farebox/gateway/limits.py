"""The body size limit on `/v1/messages`, answered in Anthropic's error shape (pure ASGI middleware).

`farebox.api.limits.BodySizeLimit` refuses large bodies on every route in OpenAI's shape; the Anthropic SDK
expects its own envelope, so this middleware, placed outside it, answers a declared Content-Length over
the limit on `/v1/messages` first. (A chunked body without Content-Length still meets `BodySizeLimit`.)
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from farebox.gateway.providers import anthropic

__all__ = ["AnthropicBodyLimit"]

_MESSAGES_PATH = "/v1/messages"


class AnthropicBodyLimit:
    """Answers 413 in Anthropic's shape to a `/v1/messages` request declaring more than `max_bytes`."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == _MESSAGES_PATH:
            length = next((value for name, value in scope["headers"] if name == b"content-length"), None)
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                message = f"request body larger than {self.max_bytes} bytes"
                body = orjson.dumps(anthropic.error_body(413, message))
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 413, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
