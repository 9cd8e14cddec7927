"""Errors through the proxy, as the official SDKs see them, and what each leaves in the ledger.

Errors farebox decides before forwarding (auth, model, body) are answered in the SDK's own shape and leave
no event: nothing was used. Every forwarded request leaves exactly one event, whatever the upstream did.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anthropic
import httpx
import openai
import pytest

from farebox.app import create_app
from farebox.core.events import RecordResult, UsageEvent
from farebox.errors import LedgerUnavailable
from farebox.gateway.providers.mock import create_mock_app
from farebox.ledger.base import Ledger
from farebox.settings import Settings

MAX_BODY_BYTES = 64 * 1024
"""The test server's `max_body_bytes`."""

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway, ServerThread

MESSAGES: list[Any] = [{"role": "user", "content": "hello"}]


def client(gateway: Gateway, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0)


def claude(gateway: Gateway, secret: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=secret, max_retries=0)


def test_invalid_key_is_401_and_not_forwarded(gateway: Gateway) -> None:
    with client(gateway, "fbx_sk_" + "x" * 43) as bad, pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    with claude(gateway, "not-a-key") as bad_claude, pytest.raises(anthropic.AuthenticationError) as refused:
        bad_claude.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=MESSAGES)
    assert refused.value.body["type"] == "error"  # type: ignore[index]  # Anthropic's envelope


def test_revoked_key_stops_within_a_second_with_a_message_saying_so(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    with client(gateway, secret) as sdk:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # now cached
        assert gateway.admin("POST", f"/api/admin/virtual-keys/{key['id']}/revoke").status_code == 200
        deadline = time.monotonic() + 1.5
        while True:
            try:
                sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            except openai.AuthenticationError as exc:
                assert "revoked" in exc.message and exc.code == "key_revoked"
                break
            assert time.monotonic() < deadline, "a revoked key still worked after 1.5 s"
            time.sleep(0.05)
    assert all(event["status"] == "ok" for event in gateway.events_of(key["id"]))


def test_refusals_before_forwarding_leave_no_event(gateway: Gateway) -> None:
    secret, key = gateway.new_key(allowed_models=["gpt-4o-mini"])
    with client(gateway, secret) as sdk:
        with pytest.raises(openai.PermissionDeniedError, match="may not use"):
            sdk.embeddings.create(model="text-embedding-3-small", input="x")
        with pytest.raises(openai.NotFoundError) as unknown:
            sdk.chat.completions.create(model="gpt-99", messages=MESSAGES)
        assert unknown.value.code == "model_not_found"
        with pytest.raises(openai.BadRequestError, match="model"):
            sdk.chat.completions.create(model="", messages=MESSAGES)
        with pytest.raises(openai.APIStatusError) as too_large:
            sdk.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x" * MAX_BODY_BYTES}]
            )
        assert too_large.value.status_code == 413
    malformed = httpx.post(
        f"{gateway.url}/v1/chat/completions", content=b"{not json", headers={"Authorization": f"Bearer {secret}"}
    )
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "invalid_json"
    with claude(gateway, secret) as sdk_claude:
        with pytest.raises(anthropic.PermissionDeniedError) as forbidden:
            sdk_claude.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=MESSAGES)
        assert forbidden.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
        with pytest.raises(anthropic.RequestTooLargeError) as too_large_claude:
            big: list[Any] = [{"role": "user", "content": "x" * MAX_BODY_BYTES}]
            sdk_claude.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=big)
        assert too_large_claude.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
    assert gateway.events_of(key["id"]) == []


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/v1/chat/completions", lambda body: body["error"]["code"] == "payload_too_large"),
        ("/v1/messages", lambda body: body["type"] == "error" and body["error"]["type"] == "request_too_large"),
        ("/v1beta/models/gemini-2.5-flash:generateContent", lambda body: body["error"]["code"] == 413),
    ],
)
def test_a_chunked_body_over_the_limit_is_refused_in_the_route_s_own_shape(
    gateway: Gateway, path: str, shape: Callable[[dict[str, Any]], bool]
) -> None:
    secret, key = gateway.new_key()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server only learns the size by reading
        yield b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
        for _ in range(MAX_BODY_BYTES // 1024 + 1):
            yield b"x" * 1024
        yield b'"}]}'

    headers = {"Authorization": f"Bearer {secret}", "x-api-key": secret, "content-type": "application/json"}
    response = httpx.post(f"{gateway.url}{path}", content=chunks(), headers=headers, timeout=10)
    assert response.status_code == 413
    assert shape(response.json()), response.text
    assert gateway.events_of(key["id"]) == []


@pytest.mark.parametrize(
    ("status", "exception", "error_type"),
    [(429, openai.RateLimitError, "rate_limit_error"), (500, openai.InternalServerError, "api_error")],
)
def test_upstream_error_passes_through_and_is_recorded_once(
    gateway: Gateway, status: int, exception: type[openai.APIStatusError], error_type: str
) -> None:
    secret, key = gateway.new_key()
    with client(gateway, secret) as sdk, pytest.raises(exception) as caught:
        sdk.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-mock-status": str(status)}
        )
    assert caught.value.status_code == status and "farebox mock" in caught.value.message  # the upstream's body
    (event,) = gateway.events_of(key["id"])
    assert (event["status"], event["http_status"], event["error_type"]) == ("error", status, error_type)
    assert (event["cost_nano"], event["input_tokens"], event["estimated"]) == (0, 0, 0)
    assert event["id"] == caught.value.response.headers["x-farebox-request-id"]


def test_unreachable_upstream_is_502(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    with client(gateway, secret) as sdk, pytest.raises(openai.InternalServerError) as caught:
        sdk.chat.completions.create(model="dead-gpt", messages=MESSAGES)
    assert caught.value.status_code == 502 and caught.value.code == "upstream_unreachable"
    (event,) = gateway.events_of(key["id"])
    assert (event["status"], event["http_status"], event["error_type"]) == ("error", 502, "upstream_unreachable")


def test_upstream_timeout_is_504_in_each_sdk_shape(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    slow = {"x-mock-latency-ms": str(int(gateway.upstream_timeout * 1000) + 500)}
    with client(gateway, secret) as sdk, pytest.raises(openai.InternalServerError) as caught:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=slow)
    assert caught.value.status_code == 504 and caught.value.code == "upstream_timeout"
    with claude(gateway, secret) as sdk_claude, pytest.raises(anthropic.InternalServerError) as timed_out:
        sdk_claude.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=MESSAGES, extra_headers=slow)
    assert timed_out.value.status_code == 504
    assert timed_out.value.body["error"]["type"] == "timeout_error"  # type: ignore[index]
    events = gateway.events_of(key["id"])
    assert [(event["http_status"], event["error_type"]) for event in events] == [(504, "upstream_timeout")] * 2


def test_anthropic_upstream_429_passes_through(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    with claude(gateway, secret) as sdk, pytest.raises(anthropic.RateLimitError) as caught:
        sdk.messages.create(
            model="claude-sonnet-4-6", max_tokens=5, messages=MESSAGES, extra_headers={"x-mock-status": "429"}
        )
    assert "farebox mock" in caught.value.message
    (event,) = gateway.events_of(key["id"])
    assert (event["http_status"], event["error_type"], event["operation"]) == (429, "rate_limit_error", "messages")


class BrokenLedger(Ledger):
    """A ledger whose commits all fail, as a full disk or a lost database would make them."""

    async def record(self, event: UsageEvent) -> RecordResult:
        raise LedgerUnavailable("the ledger is down")


@pytest.mark.anyio
async def test_a_failed_commit_fails_the_request_and_never_ends_the_stream(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    port_factory: Callable[[], int],
    server_thread: type[ServerThread],
) -> None:
    monkeypatch.chdir(tmp_path)
    mock_port = port_factory()
    upstream = f"http://127.0.0.1:{mock_port}/mock/openai/v1"  # a mock of its own: the gateway's answers farebox only
    route = {"name": "gpt-4o-mini", "provider": "openai_compatible", "base_url": upstream}
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'broken.db'}", models=[route])  # type: ignore[list-item]
    ledger = BrokenLedger(settings.database_url)
    app = create_app(settings, ledger=ledger, master_key="fbx_master_broken-ledger-test")
    with server_thread(create_mock_app(), mock_port):
        async with app.router.lifespan_context(app):
            account = await app.state.services.directory.create_account(name="broken")
            _, secret = await app.state.services.directory.create_key(account.id, name="k")
            headers = {"Authorization": f"Bearer {secret}"}
            body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES}
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://farebox") as client:
                answered = await client.post("/v1/chat/completions", json=body, headers=headers)
                streamed = await client.post("/v1/chat/completions", json={**body, "stream": True}, headers=headers)
    assert answered.status_code == 503 and answered.json()["error"]["code"] == "ledger_unavailable"
    assert "choices" not in answered.text  # the upstream's answer is not released
    assert streamed.status_code == 200 and b"The" in streamed.content and b"[DONE]" not in streamed.content


@pytest.mark.anyio
async def test_a_bug_on_the_proxy_path_is_a_500_without_its_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'bug.db'}"), master_key="fbx_master_bug-test")

    async def broken(secret: str) -> None:
        raise RuntimeError("secret internals")

    async with app.router.lifespan_context(app):
        monkeypatch.setattr(app.state.services.meter.keys, "authenticate", broken)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://farebox") as client:
            answers = [
                await client.post(path, json={"model": model, "messages": MESSAGES}, headers={"x-api-key": "k"})
                for path, model in (("/v1/chat/completions", "gpt-4o-mini"), ("/v1/messages", "claude-sonnet-4-5"))
            ]
    for answer in answers:
        assert answer.status_code == 500
        assert answer.json() == {"error": {"type": "api_error", "code": "internal_error", "message": "internal error"}}
    assert "secret internals" in caplog.text  # logged for the operator, never sent to the client
