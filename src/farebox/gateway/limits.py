"""The body size limit on the native non-OpenAI routes, answered in their own error shape (pure ASGI middleware).

`farebox.api.limits.BodySizeLimit` refuses large bodies on every route in OpenAI's shape; the Anthropic and
Gemini SDKs expect their own envelopes, so this middleware, placed outside it, answers a declared
Content-Length over the limit on `/v1/messages` (Anthropic) and `/v1beta/models/...` (Gemini) first. (A
chunked body without Content-Length still meets `BodySizeLimit`.)
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from farebox.gateway.formats import FORMATS, WireFormat

__all__ = ["NativeBodyLimit"]

_NATIVE_PATHS = (("/v1/messages", FORMATS["anthropic"]), ("/v1beta/models/", FORMATS["gemini"]))
"""(path, or path prefix ending in `/`) -> the wire format its clients expect errors in."""


def _native_format(path: str) -> WireFormat | None:
    for prefix, wire_format in _NATIVE_PATHS:
        if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            return wire_format
    return None


class NativeBodyLimit:
    """Answers 413 in the route's own error shape to a native-format request declaring more than `max_bytes`."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wire_format = _native_format(scope["path"]) if scope["type"] == "http" else None
        if wire_format is not None:
            length = next((value for name, value in scope["headers"] if name == b"content-length"), None)
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                message = f"request body larger than {self.max_bytes} bytes"
                error = wire_format.error_body(413, message, code="payload_too_large", request_id=None)
                body = orjson.dumps(error)
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 413, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
