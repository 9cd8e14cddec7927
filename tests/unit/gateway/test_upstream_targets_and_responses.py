"""Upstream URLs and headers per provider and format, and how an upstream answer's headers and failures map."""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from farebox.gateway.model_routes import ModelRoute, Provider
from farebox.gateway.upstream import (
    ANTHROPIC_VERSION,
    MOCK_KEY_HEADER,
    Upstream,
    UpstreamDisconnected,
    UpstreamResponse,
    UpstreamTarget,
    UpstreamTimeout,
    Wire,
    default_mock_base_url,
    target,
)

MOCK = default_mock_base_url(4000)


def to(
    route: ModelRoute, wire: Wire, path: str, *, query: str = "", headers: Sequence[tuple[bytes, bytes]] = ()
) -> str:
    return target(
        route, wire=wire, path=path, client_headers=list(headers), credential=None, mock_base_url=MOCK, query=query
    ).url


AZURE = ModelRoute(
    name="gpt-4o",
    provider=Provider.AZURE,
    upstream_model="prod-gpt4o",
    base_url="https://res.openai.azure.com",
    api_version="2025-01-01-preview",
    api_key_env="AZURE_KEY",
)


@pytest.mark.parametrize(
    ("route", "wire", "path", "url"),
    [
        (AZURE, "openai", "/embeddings",
         "https://res.openai.azure.com/openai/deployments/prod-gpt4o/embeddings?api-version=2025-01-01-preview"),
        (AZURE, "openai", "/audio/transcriptions",
         "https://res.openai.azure.com/openai/deployments/prod-gpt4o/audio/transcriptions?api-version=2025-01-01-preview"),
        (ModelRoute(name="o", provider=Provider.OPENAI, api_key_env="K", base_url="https://eu.api.openai.com/v1/"),
         "openai", "/images/generations", "https://eu.api.openai.com/v1/images/generations"),
        (ModelRoute(name="c", provider=Provider.ANTHROPIC, api_key_env="K"), "openai", "/chat/completions",
         "https://api.anthropic.com/chat/completions"),
        (ModelRoute(name="c", provider=Provider.ANTHROPIC, api_key_env="K", base_url="https://proxy.local/"),
         "anthropic", "/ignored", "https://proxy.local/v1/messages"),
        (ModelRoute(name="g", provider=Provider.GEMINI, api_key_env="K"), "openai", "/embeddings",
         "https://generativelanguage.googleapis.com/v1beta/openai/embeddings"),
        (ModelRoute(name="tuned", provider=Provider.GEMINI, api_key_env="K", upstream_model="tunedModels/my model"),
         "gemini", ":generateContent",
         "https://generativelanguage.googleapis.com/v1beta/models/tunedModels%2Fmy%20model:generateContent"),
        (ModelRoute(name="v", provider=Provider.OPENAI_COMPATIBLE, base_url="http://vllm:8000/v1"), "openai",
         "/completions", "http://vllm:8000/v1/completions"),
        (ModelRoute(name="m", provider=Provider.MOCK), "openai", "/audio/speech", f"{MOCK}/openai/v1/audio/speech"),
        (ModelRoute(name="m", provider=Provider.MOCK, base_url="http://elsewhere:9/v1"), "openai", "/embeddings",
         "http://elsewhere:9/v1/embeddings"),
        (ModelRoute(name="m", provider=Provider.MOCK, base_url="http://elsewhere:9/mock/anthropic"), "anthropic", "",
         "http://elsewhere:9/mock/anthropic/v1/messages"),
        (ModelRoute(name="m", provider=Provider.MOCK), "gemini", ":streamGenerateContent",
         f"{MOCK}/gemini/v1beta/models/m:streamGenerateContent"),
    ],
)  # fmt: skip
def test_upstream_urls(route: ModelRoute, wire: Wire, path: str, url: str) -> None:
    assert to(route, wire, path) == url


@pytest.mark.parametrize(
    ("query", "suffix"),
    [("", ":streamGenerateContent"), ("alt=sse", ":streamGenerateContent?alt=sse"), ("alt=sse&x=1", "?alt=sse&x=1")],
)
def test_only_the_native_gemini_format_carries_a_query(query: str, suffix: str) -> None:
    gemini = ModelRoute(name="g", provider=Provider.GEMINI, api_key_env="K")
    assert to(gemini, "gemini", ":streamGenerateContent", query=query).endswith(suffix)
    assert "?" not in to(gemini, "openai", "/chat/completions", query=query)
    assert to(AZURE, "openai", "/chat/completions", query=query).endswith("?api-version=2025-01-01-preview")


@pytest.mark.parametrize(
    "header",
    [b"host", b"authorization", b"x-api-key", b"api-key", b"x-goog-api-key", b"content-length", b"connection",
     b"keep-alive", b"proxy-authorization", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade",
     b"accept-encoding", b"cookie", b"expect", b"x-farebox-agent", b"x-farebox-anything"],
)  # fmt: skip
def test_dropped_request_headers(header: bytes) -> None:
    route = ModelRoute(name="m", provider=Provider.MOCK)
    upstream = target(
        route, wire="openai", path="/chat/completions", client_headers=[(header, b"secret")], credential=None,
        mock_base_url=MOCK,
    )  # fmt: skip
    assert upstream.headers == [("accept-encoding", "identity")]


def test_kept_headers_keep_their_order_and_latin1_values() -> None:
    client = [(b"user-agent", b"OpenAI/Python 1.0"), (b"x-custom", b"caf\xe9"), (b"openai-organization", b"org-1")]
    route = ModelRoute(name="m", provider=Provider.OPENAI, api_key_env="K")
    upstream = target(
        route, wire="openai", path="/chat/completions", client_headers=client, credential="sk-up", mock_base_url=MOCK
    )
    assert upstream.headers == [
        ("user-agent", "OpenAI/Python 1.0"),
        ("x-custom", "café"),
        ("openai-organization", "org-1"),
        ("accept-encoding", "identity"),
        ("authorization", "Bearer sk-up"),
    ]


def test_anthropic_version_is_added_once_and_only_for_the_anthropic_format() -> None:
    claude = ModelRoute(name="c", provider=Provider.ANTHROPIC, api_key_env="K")
    native = target(claude, wire="anthropic", path="", client_headers=[], credential="k", mock_base_url=MOCK)
    assert native.headers == [
        ("accept-encoding", "identity"),
        ("anthropic-version", ANTHROPIC_VERSION),
        ("x-api-key", "k"),
    ]
    compatible = target(claude, wire="openai", path="/chat/completions", client_headers=[], credential="k",
                        mock_base_url=MOCK)  # fmt: skip
    assert "anthropic-version" not in dict(compatible.headers)
    assert dict(compatible.headers)["authorization"] == "Bearer k"


def test_no_credential_means_no_credential_header() -> None:
    route = ModelRoute(name="v", provider=Provider.OPENAI_COMPATIBLE, base_url="http://ollama:11434/v1")
    upstream = target(route, wire="openai", path="/chat/completions", client_headers=[], credential=None,
                      mock_base_url=MOCK)  # fmt: skip
    assert upstream == UpstreamTarget("http://ollama:11434/v1/chat/completions", [("accept-encoding", "identity")])


@pytest.mark.parametrize(
    ("route", "sent"),
    [
        (ModelRoute(name="m", provider=Provider.MOCK), True),  # the mock mounted in farebox
        (ModelRoute(name="m", provider=Provider.MOCK, base_url="http://elsewhere:9/mock/openai/v1"), False),
        (ModelRoute(name="m", provider=Provider.OPENAI, api_key_env="K"), False),
        (ModelRoute(name="m", provider=Provider.OPENAI_COMPATIBLE, base_url="http://127.0.0.1:4000/mock/openai/v1"),
         False),
    ],
)  # fmt: skip
@pytest.mark.parametrize("wire", ["openai", "anthropic", "gemini"])
def test_the_mock_key_goes_to_the_built_in_mock_alone(route: ModelRoute, sent: bool, wire: Wire) -> None:
    # A client's own x-farebox-mock-key is dropped: only farebox's key can reach the mock.
    client = [(MOCK_KEY_HEADER.encode(), b"guessed")]
    upstream = target(
        route, wire=wire, path="/chat/completions", client_headers=client, credential=None, mock_base_url=MOCK,
        mock_key="the-key",
    )  # fmt: skip
    keys = [value for name, value in upstream.headers if name == MOCK_KEY_HEADER]
    assert keys == (["the-key"] if sent else [])


def test_default_mock_base_url() -> None:
    assert default_mock_base_url(8080) == "http://127.0.0.1:8080/mock"


class FakeContent:
    def __init__(self, chunks: list[bytes], error: BaseException | None) -> None:
        self._chunks = list(chunks)
        self._error = error

    async def readany(self) -> bytes:
        if self._chunks:
            return self._chunks.pop(0)
        if self._error is not None:
            raise self._error
        return b""


class FakeClientResponse:
    """The part of `aiohttp.ClientResponse` that `UpstreamResponse` reads."""

    def __init__(
        self, raw_headers: list[tuple[bytes, bytes]], chunks: list[bytes], *, error: BaseException | None = None
    ) -> None:
        self.status = 201
        self.raw_headers = raw_headers  # bytes, as aiohttp keeps them
        self.headers = CIMultiDictProxy(CIMultiDict((name.decode(), value.decode()) for name, value in raw_headers))
        self.content = FakeContent(chunks, error)
        self.released = False

    def release(self) -> None:
        self.released = True


def wrap(fake: FakeClientResponse) -> UpstreamResponse:
    return UpstreamResponse(fake)  # type: ignore[arg-type]  # duck-typed stand-in for aiohttp's response


def test_response_headers_pass_on_except_hop_by_hop_and_length() -> None:
    raw = [(b"Content-Type", b"text/event-stream"), (b"Content-Length", b"10"), (b"Transfer-Encoding", b"chunked"),
           (b"Connection", b"keep-alive"), (b"Keep-Alive", b"timeout=5"), (b"Content-Encoding", b"gzip"),
           (b"Date", b"Mon"), (b"Server", b"cloudflare"), (b"X-Request-Id", b"req_1"), (b"Set-Cookie", b"a=1"),
           (b"anthropic-ratelimit-requests-remaining", b"99")]  # fmt: skip
    response = wrap(FakeClientResponse(raw, []))
    assert response.status == 201
    assert response.headers == [
        (b"content-type", b"text/event-stream"),
        (b"x-request-id", b"req_1"),
        (b"set-cookie", b"a=1"),
        (b"anthropic-ratelimit-requests-remaining", b"99"),
    ]
    assert response.content_type == "text/event-stream"
    assert wrap(FakeClientResponse([], [])).content_type == ""


@pytest.mark.anyio
async def test_read_and_chunks_give_the_body_then_close_releases() -> None:
    fake = FakeClientResponse([], [b"da", b"ta"])
    response = wrap(fake)
    assert await response.read_chunks() == [b"da", b"ta"]  # as they arrived: never joined
    assert [chunk async for chunk in wrap(FakeClientResponse([], [b"da", b"ta"])).chunks()] == [b"da", b"ta"]
    response.close()
    assert fake.released


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("error", "mapped"),
    [
        (TimeoutError("read timed out"), UpstreamTimeout),
        (aiohttp.ClientPayloadError("Response payload is not completed"), UpstreamDisconnected),
        (aiohttp.ServerDisconnectedError(), UpstreamDisconnected),
    ],
)
async def test_body_failures_become_upstream_errors(error: BaseException, mapped: type[Exception]) -> None:
    with pytest.raises(mapped) as raised:
        await wrap(FakeClientResponse([], [b"partial"], error=error)).read_chunks()
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no aiohttp trace leaks out
    seen: list[bytes] = []
    with pytest.raises(mapped):
        async for chunk in wrap(FakeClientResponse([], [b"partial"], error=error)).chunks():
            seen.append(chunk)
    assert seen == [b"partial"]  # what arrived before the failure was delivered


@pytest.mark.anyio
async def test_error_types_name_the_failure() -> None:
    assert (UpstreamTimeout.error_type, UpstreamDisconnected.error_type) == (
        "upstream_timeout",
        "upstream_disconnected",
    )


@pytest.mark.anyio
async def test_sending_outside_start_and_aclose_is_a_clear_error() -> None:
    upstream = Upstream(timeout=1.0)
    nowhere = UpstreamTarget("http://127.0.0.1:9/", [])
    with pytest.raises(RuntimeError, match="not started"):
        await upstream.send("POST", nowhere, body=b"{}")
    await upstream.start()
    await upstream.start()  # a second start keeps the pool
    await upstream.aclose()
    await upstream.aclose()  # and closing twice is harmless
    with pytest.raises(RuntimeError, match="not started"):
        await upstream.send("POST", nowhere, body=b"{}")
