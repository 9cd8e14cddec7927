"""The built-in mock is served only when a route uses it, and only to farebox's own gateway.

It used to be mounted at `/mock` on every server, open to anyone: a 70 KB embeddings request sent straight to
it, with no key, came back as 333 MB.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest
from starlette.routing import Mount

from farebox.app import create_app
from farebox.gateway.providers import anthropic as anthropic_wire
from farebox.gateway.providers import gemini as gemini_wire
from farebox.gateway.upstream import MOCK_KEY_HEADER
from farebox.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from tests.e2e.conftest import Gateway, ServerThread

MASTER = "fbx_master_mock-access-0123456789"
MANY_INPUTS = {"model": "text-embedding-3-small", "input": ["a"] * 10_000}  # 40 KB: under the body limit here


def test_the_mounted_mock_refuses_anyone_but_the_gateway(gateway: Gateway) -> None:
    direct = httpx.post(f"{gateway.url}/mock/openai/v1/embeddings", json=MANY_INPUTS, timeout=10)
    assert direct.status_code == 401 and len(direct.content) < 1024
    assert direct.json()["error"]["type"] == "authentication_error"
    wrong = httpx.post(
        f"{gateway.url}/mock/openai/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": []},
        headers={MOCK_KEY_HEADER: "guess"},
        timeout=10,
    )
    assert wrong.status_code == 401
    claude = httpx.post(f"{gateway.url}/mock/anthropic/v1/messages", json={}, timeout=10)
    assert claude.json() == anthropic_wire.error_body(401, claude.json()["error"]["message"])
    gemini = httpx.post(f"{gateway.url}/mock/gemini/v1beta/models/g:generateContent", json={}, timeout=10)
    assert gemini.json() == gemini_wire.error_body(401, gemini.json()["error"]["message"])


def test_the_gateway_still_reaches_it(gateway: Gateway) -> None:
    secret, _ = gateway.new_key()
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0)
    assert len(client.embeddings.create(model="text-embedding-3-small", input="hello").data[0].embedding) == 1536


@pytest.mark.anyio
async def test_no_mock_route_means_no_mock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    routes: Any = [
        {"name": "gpt-4o-mini", "provider": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"},
        {"name": "elsewhere", "provider": "mock", "base_url": "http://127.0.0.1:9/mock/openai/v1"},
    ]
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}", models=routes), master_key=MASTER)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://farebox") as client:
        assert (await client.post("/mock/openai/v1/embeddings", json=MANY_INPUTS)).status_code == 404
        assert (await client.get("/mock/openai/v1/models")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200


def _mock_key(app: FastAPI) -> str:
    """The key create_app generated for its mock (read from the mounted mock's guard, never changed)."""
    mount = next(route for route in app.routes if isinstance(route, Mount) and route.path == "/mock")
    (guard,) = mount.app.user_middleware  # type: ignore[attr-defined]  # the mounted mock is a Starlette app
    return str(guard.kwargs["key"])


def test_the_mock_key_is_in_no_response_and_no_log(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    port_factory: Callable[[], int],
    server_thread: type[ServerThread],
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in Settings.model_fields:
        monkeypatch.delenv(f"FAREBOX_{name.upper()}", raising=False)
    port = port_factory()
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}", port=port), master_key=MASTER)
    key = _mock_key(app)
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{port}"
    with server_thread(app, port):
        admin = {"authorization": f"Bearer {MASTER}"}
        account = httpx.post(f"{url}/api/admin/accounts", json={"name": "a"}, headers=admin).json()
        made = httpx.post(
            f"{url}/api/admin/virtual-keys", json={"account_id": account["id"], "name": "k"}, headers=admin
        )
        headers = {"authorization": f"Bearer {made.json()['key']}"}
        chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        answers = [
            httpx.post(f"{url}/v1/chat/completions", json=chat, headers=headers),
            httpx.post(f"{url}/v1/chat/completions", json={**chat, "stream": True}, headers=headers),
            httpx.post(f"{url}/v1/chat/completions", json=chat, headers={**headers, "x-mock-status": "500"}),
            httpx.post(f"{url}/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"}, headers=headers),
        ]
        direct = httpx.get(f"{url}/mock/openai/v1/models", headers={MOCK_KEY_HEADER: key})
    assert [answer.status_code for answer in answers] == [200, 200, 500, 200]
    assert direct.status_code == 200  # it is the key the mock asks for
    for answer in answers:
        assert key not in answer.text and all(key not in value for value in answer.headers.values())
    assert caplog.records and not any(key in record.getMessage() for record in caplog.records)
