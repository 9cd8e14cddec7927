"""Where each provider's requests go, and with which credential header; client credentials never go upstream."""

from __future__ import annotations

import pytest

from farebox.gateway.model_routes import ModelRoute, Provider
from farebox.gateway.upstream import Wire, target

CLIENT_HEADERS = [
    (b"host", b"farebox"),
    (b"authorization", b"Bearer fbx_sk_client-secret"),
    (b"x-api-key", b"fbx_sk_client-secret"),
    (b"content-type", b"application/json"),
    (b"content-length", b"12"),
    (b"accept-encoding", b"gzip"),
    (b"x-farebox-agent", b"planner"),
    (b"x-mock-status", b"429"),
    (b"openai-beta", b"assistants=v2"),
]
MOCK = "http://127.0.0.1:4000/mock"


@pytest.mark.parametrize(
    ("route", "wire", "url", "credential_header"),
    [
        (
            ModelRoute(name="gpt-4o", provider=Provider.OPENAI, api_key_env="K"),
            "openai",
            "https://api.openai.com/v1/chat/completions",
            (b"authorization", b"Bearer sk-provider"),
        ),
        (
            ModelRoute(
                name="gpt-4o",
                provider=Provider.AZURE,
                upstream_model="deploy-1",
                base_url="https://r.openai.azure.com/",
                api_version="2024-10-21",
                api_key_env="K",
            ),
            "openai",
            "https://r.openai.azure.com/openai/deployments/deploy-1/chat/completions?api-version=2024-10-21",
            (b"api-key", b"sk-provider"),
        ),
        (
            ModelRoute(name="claude", provider=Provider.ANTHROPIC, api_key_env="K"),
            "anthropic",
            "https://api.anthropic.com/v1/messages",
            (b"x-api-key", b"sk-provider"),
        ),
        (
            ModelRoute(name="gemini-2.5-flash", provider=Provider.GEMINI, api_key_env="K"),
            "openai",
            "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
            (b"x-goog-api-key", b"sk-provider"),
        ),
        (
            ModelRoute(name="llama", provider=Provider.OPENAI_COMPATIBLE, base_url="http://gpu:8000/v1"),
            "openai",
            "http://gpu:8000/v1/chat/completions",
            (b"authorization", b"Bearer sk-provider"),
        ),
        (ModelRoute(name="gpt-4o", provider=Provider.MOCK), "openai", f"{MOCK}/openai/v1/chat/completions", None),
        (ModelRoute(name="claude", provider=Provider.MOCK), "anthropic", f"{MOCK}/anthropic/v1/messages", None),
        (
            ModelRoute(name="flash", provider=Provider.GEMINI, upstream_model="gemini-2.5-flash", api_key_env="K"),
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
            (b"x-goog-api-key", b"sk-provider"),
        ),
        (
            ModelRoute(name="gemini-2.5-flash", provider=Provider.MOCK),
            "gemini",
            f"{MOCK}/gemini/v1beta/models/gemini-2.5-flash:generateContent",
            None,
        ),
        (
            ModelRoute(name="g", provider=Provider.MOCK, base_url="http://other:9/mock/gemini/v1beta"),
            "gemini",
            "http://other:9/mock/gemini/v1beta/models/g:generateContent",
            None,
        ),
    ],
)
def test_target(route: ModelRoute, wire: Wire, url: str, credential_header: tuple[bytes, bytes] | None) -> None:
    credential = None if credential_header is None else "sk-provider"
    upstream = target(
        route,
        wire=wire,
        path=":generateContent" if wire == "gemini" else "/chat/completions",
        client_headers=CLIENT_HEADERS,
        credential=credential,
        mock_base_url=MOCK,
    )
    assert upstream.url == url
    names = [name for name, _ in upstream.headers]
    assert len(names) == len(set(names))
    headers = {name.encode(): value.encode() for name, value in upstream.headers}
    assert b"fbx_sk_client-secret" not in b"".join(headers.values())
    assert not {b"host", b"content-length", b"x-farebox-agent"} & set(headers)
    assert headers[b"accept-encoding"] == b"identity"
    assert (headers[b"x-mock-status"], headers[b"openai-beta"]) == (b"429", b"assistants=v2")
    if credential_header is not None:
        assert headers[credential_header[0]] == credential_header[1]
    if wire == "anthropic":
        assert headers[b"anthropic-version"] == b"2023-06-01"


def test_the_clients_anthropic_version_is_kept() -> None:
    route = ModelRoute(name="claude", provider=Provider.ANTHROPIC, api_key_env="K")
    headers = [(b"anthropic-version", b"2024-01-01"), (b"anthropic-beta", b"prompt-caching")]
    upstream = target(route, wire="anthropic", path="", client_headers=headers, credential="k", mock_base_url=MOCK)
    assert [value for name, value in upstream.headers if name == "anthropic-version"] == ["2024-01-01"]
    assert ("anthropic-beta", "prompt-caching") in upstream.headers


def test_a_native_gemini_query_goes_upstream_and_the_client_key_header_does_not() -> None:
    route = ModelRoute(name="flash", provider=Provider.GEMINI, api_key_env="K")
    headers = [(b"x-goog-api-key", b"fbx_sk_client-secret"), (b"x-goog-api-client", b"genai-py")]
    upstream = target(
        route,
        wire="gemini",
        path=":streamGenerateContent",
        client_headers=headers,
        credential="provider-key",
        mock_base_url=MOCK,
        query="alt=sse",
    )
    assert upstream.url.endswith("/v1beta/models/flash:streamGenerateContent?alt=sse")
    assert [value for name, value in upstream.headers if name == "x-goog-api-key"] == ["provider-key"]
    assert ("x-goog-api-client", "genai-py") in upstream.headers
