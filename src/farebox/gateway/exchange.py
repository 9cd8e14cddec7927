"""What every proxy route shares: the `Gateway` (routes, keys, upstream pool, meter), and request plumbing.

Headers, body reading, attribution from a key and the `x-farebox-*` request headers, and errors answered in
the client's own wire format (OpenAI's envelope, Anthropic's on `/v1/messages`, Gemini's on `/v1beta/...`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType

import orjson
from starlette.types import Receive, Scope, Send

from farebox.budgets import Budgets
from farebox.core.owners import VirtualKey
from farebox.errors import InvalidRequest
from farebox.gateway.auth import KeyCache
from farebox.gateway.formats import FORMATS
from farebox.gateway.model_routes import ModelRoute, Provider
from farebox.gateway.providers.payload import load_object, sub_object
from farebox.gateway.tokens import Tokenizer
from farebox.gateway.upstream import Upstream, Wire
from farebox.metering import Attribution, Meter, PriceTarget

__all__ = [
    "Gateway",
    "InFlight",
    "attribution_from",
    "error_message",
    "headers_of",
    "read_body",
    "upstream_error_type",
]

_CATALOG_PROVIDERS: Mapping[Provider, str] = MappingProxyType(
    {Provider.OPENAI: "openai", Provider.AZURE: "openai", Provider.ANTHROPIC: "anthropic", Provider.GEMINI: "google"}
)
_MESSAGES: Mapping[int, str] = MappingProxyType(
    {503: "the usage ledger could not record this request; nothing was charged, retry"}
)
_MAX_METADATA_BYTES = 4096


class InFlight:
    """Forwarded requests whose event is not recorded yet: shutdown waits for them before the ledger closes."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextmanager
    def track(self) -> Iterator[None]:
        self._count += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._count -= 1
            if not self._count:
                self._idle.set()

    async def drained(self, *, timeout: float) -> bool:
        """Wait until none is in flight (True), or `timeout` seconds (False)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


@dataclass(frozen=True, slots=True)
class Gateway:
    """Everything the proxy routes share, built once by `create_app`."""

    routes: Mapping[str, ModelRoute]
    """The routing table, by the model name clients send."""
    credentials: Mapping[str, str]
    """Provider credentials by route name, read from the environment at start-up."""
    keys: KeyCache
    upstream: Upstream
    meter: Meter
    budgets: Budgets
    tokenizer: Tokenizer
    mock_base_url: str
    default_output_tokens: int = 4096
    """The output a reservation assumes for a request that sets no output limit."""
    in_flight: InFlight = field(default_factory=InFlight)

    def price_target(self, route: ModelRoute) -> PriceTarget:
        """What a route's usage is priced as: its `price_as` (`provider/model` or `model`), else its upstream model."""
        if route.price_as is not None:
            provider, slash, model = route.price_as.partition("/")
            return PriceTarget(provider, model) if slash else PriceTarget(None, route.price_as)
        return PriceTarget(_CATALOG_PROVIDERS.get(route.provider, route.provider.value), route.upstream)

    async def send_error(
        self, send: Send, wire: Wire, status: int, message: str, *, code: str, request_id: str
    ) -> None:
        """Answer an error farebox decided itself, in the client's wire format."""
        body = orjson.dumps(FORMATS[wire].error_body(status, message, code=code, request_id=request_id))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-farebox-request-id", request_id.encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def headers_of(scope: Scope) -> dict[str, str]:
    """The request headers by lower-case name (the last one wins for a repeated name)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


async def read_body(receive: Receive) -> bytes:
    """The whole request body (its size is already bounded by the `BodySizeLimit` middleware)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def attribution_from(key: VirtualKey, headers: Mapping[str, str]) -> Attribution:
    """Attribution from the key, overridden by `x-farebox-agent`, `-app`, `-tags` (comma list) and `-metadata`.

    Raises:
        InvalidRequest: `x-farebox-metadata` is not a JSON object (or longer than 4 KiB).
    """
    tags = key.tags
    if "x-farebox-tags" in headers:
        tags = tuple(tag.strip() for tag in headers["x-farebox-tags"].split(",") if tag.strip())
    metadata: Mapping[str, object] = {}
    raw = headers.get("x-farebox-metadata")
    if raw is not None:
        parsed = load_object(raw) if len(raw) <= _MAX_METADATA_BYTES else None
        if parsed is None:
            raise InvalidRequest("x-farebox-metadata must be a JSON object of at most 4 KiB", code="invalid_metadata")
        metadata = parsed
    return Attribution(
        account_id=key.account_id,
        key_id=key.id,
        member_id=key.member_id,
        agent_id=headers.get("x-farebox-agent") or key.agent_id,
        app=headers.get("x-farebox-app") or key.app,
        tags=tags,
        metadata=metadata,
    )


def upstream_error_type(body: bytes, status: int) -> str:
    """The error type an upstream error body names (`error.type`, Gemini's `error.status`), else `http_<status>`."""
    error = sub_object(load_object(body), "error")
    kind = error.get("type") if error is not None else None
    if isinstance(kind, str) and kind:
        return kind
    status_name = error.get("status") if error is not None else None  # Gemini's envelope
    return status_name if isinstance(status_name, str) and status_name else f"http_{status}"


def error_message(status: int) -> str:
    """The message of an error farebox answers with no more specific one."""
    return _MESSAGES.get(status, f"error {status}")
