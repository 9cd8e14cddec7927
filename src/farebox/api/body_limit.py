"""Pure ASGI middleware that refuses request bodies over the configured size with 413."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from farebox.errors import PayloadTooLarge

__all__ = ["BodySizeLimit", "ErrorShape"]

ErrorShape = Callable[[str, PayloadTooLarge], dict[str, object] | None]
"""`shape(path, error)`: the error body the clients of `path` expect, or None for the OpenAI envelope."""


class BodySizeLimit:
    """Answers 413, before the route runs, to a body larger than `max_bytes`, in the route's own error shape.

    A declared Content-Length is checked up front (the HTTP server holds the client to it). A body
    without one (chunked) is read here up to the limit and replayed to the route. The error is in the
    OpenAI envelope unless `shape` gives the route's own (the Anthropic and Gemini routes).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, shape: ErrorShape | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.shape = shape

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if length is not None:
            if length.isdigit() and int(length) > self.max_bytes:
                await self._refuse(scope["path"], send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope["path"], send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, path: str, send: Send) -> None:
        error = PayloadTooLarge(f"request body larger than {self.max_bytes} bytes")
        shaped = self.shape(path, error) if self.shape is not None else None
        body = orjson.dumps(error.body() if shaped is None else shaped)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
