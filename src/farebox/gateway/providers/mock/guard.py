"""Who may use a mock: with a key, only requests that carry it in `x-farebox-mock-key`.

farebox mounts its mock with a key it generates at start-up and sends on its own upstream requests only
(`farebox.gateway.upstream.MOCK_KEY_HEADER`), so the mounted mock is never an open route: anyone else is
answered 401 in the wire format of the path they called, as a provider answers a missing API key. The
image file that image answers link to stays public, as a real provider's image URLs are.
"""

from __future__ import annotations

import hmac

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from farebox.gateway.providers import anthropic, gemini, openai
from farebox.gateway.upstream import MOCK_KEY_HEADER

__all__ = ["RequireKey"]

_PUBLIC_SUFFIX = "/openai/v1/images/mock.png"
_MESSAGE = "farebox mock: this mock answers farebox's own gateway only (missing or wrong x-farebox-mock-key)."


def _refusal(path: str) -> bytes:
    if "/anthropic/" in path:
        return orjson.dumps(anthropic.error_body(401, _MESSAGE))
    if "/gemini/" in path:
        return orjson.dumps(gemini.error_body(401, _MESSAGE))
    return orjson.dumps(openai.error_body(401, _MESSAGE))


class RequireKey:
    """ASGI middleware: pass on HTTP requests that carry `key` in `x-farebox-mock-key`, refuse the rest (401).

    Args:
        app: the mock's routes.
        key: the key a request must carry.
    """

    def __init__(self, app: ASGIApp, *, key: str) -> None:
        self.app = app
        self._key = key.encode("latin-1")
        self._header = MOCK_KEY_HEADER.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        body = _refusal(scope["path"])
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _allowed(self, scope: Scope) -> bool:
        if scope["method"] == "GET" and scope["path"].endswith(_PUBLIC_SUFFIX):
            return True
        sent = next((value for name, value in scope["headers"] if name == self._header), b"")
        # Constant time: how much of a guess matched must not show in how long the refusal took.
        return hmac.compare_digest(sent, self._key)
