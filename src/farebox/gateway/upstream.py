"""The one upstream HTTP client pool, and how a route maps to an upstream URL and credential headers.

`Upstream` owns a single `aiohttp.ClientSession` (keep-alive, generous pool limits), opened in the app's
lifespan and shared by every proxied request; its answers come back as `UpstreamResponse`, and its
failures as `UpstreamTimeout`, `UpstreamUnreachable` or `UpstreamDisconnected`, so nothing above this
module knows the client library. aiohttp was chosen over httpx by measurement (`bench/proxy.py`): under
load httpx's connection pool and h11 parsing cost about 1.5 ms of CPU a request, several times the rest
of the proxy. `target()` builds the URL and headers for one request:

| provider           | URL                                                            | credential header   |
| ------------------ | -------------------------------------------------------------- | ------------------- |
| openai, compatible | `{base_url}{path}` (the base URL ends in `/v1`)                 | `Authorization`     |
| azure              | `{base_url}/openai/deployments/{upstream_model}{path}?api-version=` | `api-key`      |
| anthropic          | `{base_url}/v1/messages` (+ `anthropic-version` if not sent)    | `x-api-key`         |
| gemini             | `{base_url}/openai{path}` (Gemini's OpenAI-compatible API)      | `x-goog-api-key`    |
| gemini, native     | `{base_url}/models/{upstream_model}{path}?{query}`              | `x-goog-api-key`    |
| mock (no base_url) | as above, below `{mock}/openai/v1`, `{mock}/anthropic`, `{mock}/gemini/v1beta` | (its key) |

The client's own headers go upstream except its credentials, hop-by-hop headers, `x-farebox-*` and
`accept-encoding` (farebox asks for identity encoding, so the bytes it relays are the bytes it parses).
The built-in mock answers only requests carrying the per-process key `create_app` generated for it, in
`x-farebox-mock-key` (`MOCK_KEY_HEADER`); a client's own `x-farebox-*` headers never go upstream, so no
client can send one, and the key goes to no other upstream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Protocol
from urllib.parse import quote

import aiohttp
from yarl import URL

from farebox.gateway.model_routes import DEFAULT_BASE_URLS, ModelRoute, Provider

__all__ = [
    "ANTHROPIC_VERSION",
    "MOCK_KEY_HEADER",
    "Upstream",
    "UpstreamDisconnected",
    "UpstreamError",
    "UpstreamResponse",
    "UpstreamTarget",
    "UpstreamTimeout",
    "UpstreamUnreachable",
    "Wire",
    "default_mock_base_url",
    "target",
]

Wire = Literal["openai", "anthropic", "gemini"]
"""The wire format a proxy route speaks to its client (and so to the upstream)."""

ANTHROPIC_VERSION = "2023-06-01"
"""Sent as `anthropic-version` when the client sent none."""

MOCK_KEY_HEADER = "x-farebox-mock-key"
"""The header carrying the built-in mock's key, on requests to the mock mounted in farebox only."""

_DROPPED_REQUEST_HEADERS = frozenset(
    {
        b"host",
        b"authorization",
        b"x-api-key",
        b"api-key",
        b"x-goog-api-key",
        b"content-length",
        b"connection",
        b"keep-alive",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"accept-encoding",
        b"cookie",
        b"expect",
    }
)
_DROPPED_RESPONSE_HEADERS = frozenset(
    {b"content-length", b"transfer-encoding", b"connection", b"keep-alive", b"content-encoding", b"date", b"server"}
)


class UpstreamError(Exception):
    """The upstream failed; `error_type` names how, for the usage event and the error answered."""

    error_type = "upstream_error"


class UpstreamTimeout(UpstreamError):
    """No connection, or no bytes, within the timeout (answered 504)."""

    error_type = "upstream_timeout"


class UpstreamUnreachable(UpstreamError):
    """The upstream could not be connected to (answered 502)."""

    error_type = "upstream_unreachable"


class UpstreamDisconnected(UpstreamError):
    """The upstream closed the connection before its answer was complete (answered 502 if nothing was sent)."""

    error_type = "upstream_disconnected"


@dataclass(frozen=True, slots=True)
class UpstreamTarget:
    """Where one request goes and the headers it goes with."""

    url: str
    headers: list[tuple[str, str]]


def default_mock_base_url(port: int) -> str:
    """The built-in mock, mounted at `/mock` in farebox itself, reached over loopback like any upstream."""
    return f"http://127.0.0.1:{port}/mock"


def _base(route: ModelRoute, mock_base_url: str) -> str:
    if route.base_url is not None:
        return route.base_url.rstrip("/")
    if route.on_builtin_mock:
        return mock_base_url
    return DEFAULT_BASE_URLS[route.provider].rstrip("/")


def target(
    route: ModelRoute,
    *,
    wire: Wire,
    path: str,
    client_headers: list[tuple[bytes, bytes]],
    credential: str | None,
    mock_base_url: str,
    mock_key: str | None = None,
    query: str = "",
) -> UpstreamTarget:
    """The upstream URL and headers of one request to `route`.

    Args:
        route: the model's route.
        wire: the wire format of the proxy route.
        path: the operation's path below the format's base (`/chat/completions` below OpenAI's `/v1`,
            `:generateContent` after Gemini's `models/{model}`); ignored for Anthropic.
        client_headers: the client's raw request headers (lower-case names).
        credential: the provider credential, if the route has one.
        mock_base_url: the mock's root URL, for mock routes without their own `base_url`.
        mock_key: the built-in mock's key, sent to it alone (as `MOCK_KEY_HEADER`).
        query: the query string to send on (Gemini's native routes only; already without `key`).
    """
    headers = [
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in client_headers if not _dropped(name)
    ]
    headers.append(("accept-encoding", "identity"))
    on_mock = route.on_builtin_mock
    url, credential_header = _URLS[wire](route, _base(route, mock_base_url), path, on_mock=on_mock, query=query)
    if wire == "anthropic" and not any(name == "anthropic-version" for name, _ in headers):
        headers.append(("anthropic-version", ANTHROPIC_VERSION))
    if on_mock and mock_key is not None:
        headers.append((MOCK_KEY_HEADER, mock_key))
    if credential is not None:
        name, prefix = credential_header
        headers.append((name, prefix + credential))
    return UpstreamTarget(url, headers)


_CredentialHeader = tuple[str, str]
"""(header name, value prefix) of a provider credential."""


class _UrlBuilder(Protocol):
    def __call__(
        self, route: ModelRoute, base: str, path: str, *, on_mock: bool, query: str
    ) -> tuple[str, _CredentialHeader]: ...


def _openai_url(route: ModelRoute, base: str, path: str, *, on_mock: bool, query: str) -> tuple[str, _CredentialHeader]:
    if route.provider is Provider.AZURE:
        return f"{base}/openai/deployments/{route.upstream}{path}?api-version={route.api_version}", ("api-key", "")
    if route.provider is Provider.GEMINI:
        return f"{base}/openai{path}", ("x-goog-api-key", "")
    return (f"{base}/openai/v1{path}" if on_mock else f"{base}{path}"), ("authorization", "Bearer ")


def _anthropic_url(
    route: ModelRoute, base: str, path: str, *, on_mock: bool, query: str
) -> tuple[str, _CredentialHeader]:
    return (f"{base}/anthropic/v1/messages" if on_mock else f"{base}/v1/messages"), ("x-api-key", "")


def _gemini_url(route: ModelRoute, base: str, path: str, *, on_mock: bool, query: str) -> tuple[str, _CredentialHeader]:
    root = f"{base}/gemini/v1beta" if on_mock else base
    url = f"{root}/models/{quote(route.upstream, safe='')}{path}"
    return (f"{url}?{query}" if query else url), ("x-goog-api-key", "")


_URLS: Mapping[Wire, _UrlBuilder] = MappingProxyType(
    {"openai": _openai_url, "anthropic": _anthropic_url, "gemini": _gemini_url}
)
"""How each wire format's upstream URL is built, and which header carries the provider credential."""


def _dropped(name: bytes) -> bool:
    return name in _DROPPED_REQUEST_HEADERS or name.startswith(b"x-farebox-")


class UpstreamResponse:
    """An upstream answer whose headers have arrived; read its body with `read()` or `chunks()`, then `close()`."""

    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = [
            (name.lower(), value)
            for name, value in response.raw_headers
            if name.lower() not in _DROPPED_RESPONSE_HEADERS
        ]
        """The headers to pass on to the client (lower-case names; hop-by-hop and length headers left out)."""

    @property
    def content_type(self) -> str:
        return self._response.headers.get("content-type", "")

    async def read_chunks(self) -> list[bytes]:
        """The whole body, in the chunks it arrived in.

        Not joined here: 2048 embeddings are a 68 MB answer, and one 68 MB string is a copy of some 60 ms that
        holds the event loop, and every other request, while it runs.

        Raises:
            UpstreamTimeout: the body stalled for longer than the timeout.
            UpstreamDisconnected: the upstream closed the connection before the body's end.
        """
        return [chunk async for chunk in self.chunks()]

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive. Raises as `read_chunks()` does."""
        content = self._response.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        except TimeoutError as exc:
            raise UpstreamTimeout(str(exc)) from None
        except aiohttp.ClientError as exc:
            raise UpstreamDisconnected(str(exc)) from None

    def close(self) -> None:
        """Give the connection back to the pool (or close it, if the body was not read to its end)."""
        self._response.release()


class Upstream:
    """The pooled upstream HTTP client. `start()` in the app's lifespan, `aclose()` at shutdown.

    Args:
        timeout: seconds to wait for a connection, or for the next bytes of the response; beyond it
            the request fails with `UpstreamTimeout` (the proxy answers 504).
    """

    def __init__(self, *, timeout: float) -> None:
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the connection pool (on the running event loop)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0, keepalive_timeout=60, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=self._timeout),
                auto_decompress=False,
                skip_auto_headers=("Accept", "Content-Type"),
            )

    async def aclose(self) -> None:
        """Close every pooled connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, method: str, upstream: UpstreamTarget, *, body: bytes | None) -> UpstreamResponse:
        """Send a request and return once the response headers arrived; the caller reads the body and closes.

        Raises:
            UpstreamTimeout: no connection or no answer in time.
            UpstreamUnreachable: the upstream could not be connected to.
            UpstreamDisconnected: the upstream closed the connection before answering.
        """
        if self._session is None:
            raise RuntimeError("the upstream client is not started (create_app's lifespan did not run)")
        try:
            response = await self._session.request(
                method, URL(upstream.url, encoded=True), headers=upstream.headers, data=body, allow_redirects=False
            )
        except TimeoutError as exc:
            raise UpstreamTimeout(str(exc)) from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamUnreachable(str(exc)) from None
        except aiohttp.ClientError as exc:
            raise UpstreamDisconnected(str(exc)) from None
        return UpstreamResponse(response)
