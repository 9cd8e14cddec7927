"""The proxy's routes: OpenAI-compatible `/v1/...`, Anthropic's `/v1/messages`, Gemini's `/v1beta/models/...`.

They are plain Starlette routes whose endpoints are ASGI apps (`ProxyEndpoint`), so no framework
machinery (dependency injection, validation models) runs on the hot path. `create_app` adds them ahead of
the admin routes, and, when a route uses it, mounts the built-in mock provider at `/mock`.
"""

from __future__ import annotations

import time
import uuid

import orjson
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from farebox.core.keys import secret_from_headers
from farebox.errors import FareboxError
from farebox.gateway.operations import OPERATIONS
from farebox.gateway.proxy import ProxyEndpoint
from farebox.gateway.wire import headers_of, send_error
from farebox.gateway.wiring import Gateway

__all__ = ["ModelsEndpoint", "proxy_routes"]


class ModelsEndpoint:
    """`GET /v1/models`: the models the calling key may use, in OpenAI's list shape."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._created = int(time.time())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            key = await self.gateway.meter.authorize(secret_from_headers(headers_of(scope)))
        except FareboxError as exc:
            await send_error(send, "openai", exc.status, exc.message, code=exc.code, request_id=uuid.uuid4().hex)
            return
        data = [
            {
                "id": route.name,
                "object": "model",
                "created": self._created,
                "owned_by": self.gateway.price_target(route).provider or route.provider.value,
            }
            for route in self.gateway.routes.values()
            if key.allows_model(route.name)
        ]
        body = orjson.dumps({"object": "list", "data": data})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def proxy_routes(gateway: Gateway) -> list[BaseRoute]:
    """The proxy's routes, each an ASGI endpoint sharing `gateway`."""
    routes: list[BaseRoute] = [
        Route(operation.path, ProxyEndpoint(operation, gateway), methods=["POST"]) for operation in OPERATIONS
    ]
    routes.append(Route("/v1/models", ModelsEndpoint(gateway), methods=["GET"]))
    return routes
