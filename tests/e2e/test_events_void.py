"""Voiding a wrongly ingested event over HTTP, on the running gateway: the cap that refused lets the key through again.

`POST /api/events` records an event that spends a key's cap; the official `openai` SDK is then refused with 402;
`POST /api/admin/events/{id}/void` nets it out, and the very next SDK call of the same running process goes
through. The refusals (404, 409, 403, 422, 401) come in the admin API's one error shape.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest
from typer.testing import CliRunner

from farebox.cli import app as cli_app

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway

MESSAGES = [{"role": "user", "content": "hello"}]


SDK = Callable[[str], openai.OpenAI]


@pytest.fixture
def sdk(gateway: Gateway) -> Iterator[SDK]:
    """`sdk(secret)`: the official OpenAI client pointed at the gateway with a key (closed after the test)."""
    clients: list[openai.OpenAI] = []

    def make(secret: str) -> openai.OpenAI:
        clients.append(openai.OpenAI(api_key=secret, base_url=f"{gateway.url}/v1", max_retries=0))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def ingest(gateway: Gateway, key: dict[str, Any], *, cost_usd: str = "0.02") -> str:
    """Post one event of the key costing `cost_usd`; its id."""
    event_id = f"wrong-{uuid.uuid4().hex}"
    event = {"id": event_id, "key_id": key["id"], "axis": "llm", "model": "gpt-4o", "cost_usd": cost_usd}
    response = gateway.admin("POST", "/api/events", json={"events": [event]})
    assert response.status_code == 200, response.text
    return event_id


def void(gateway: Gateway, event_id: str, body: Any = None, *, secret: str | None = None) -> httpx.Response:
    """`POST .../void` as the master key, or as the key `secret`."""
    path, body = (
        f"/api/admin/events/{event_id}/void",
        {"reason": "posted against the wrong key"} if body is None else body,
    )
    if secret is None:
        return gateway.admin("POST", path, json=body)
    return httpx.post(f"{gateway.url}{path}", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=10)


def spent(gateway: Gateway, key: dict[str, Any]) -> str:
    response = gateway.admin("GET", f"/api/admin/virtual-keys/{key['id']}/budget")
    assert response.status_code == 200, response.text
    return str(response.json()["spent"])


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return str(body["error"]["message"])


def member_token(gateway: Gateway, account_id: str, *, role: str) -> tuple[str, str]:
    """A member of the account with this role and an API token of it: (token, member id)."""
    member = gateway.admin(
        "POST",
        f"/api/admin/accounts/{account_id}/members",
        json={"email": f"{uuid.uuid4().hex[:8]}@acme.test", "name": "M", "role": role},
    ).json()
    created = gateway.admin(
        "POST", f"/api/admin/accounts/{account_id}/members/{member['id']}/tokens", json={"name": "t"}
    )
    assert created.status_code == 201, created.text
    return created.json()["token"], member["id"]


def test_a_voided_event_stops_counting_against_the_cap_at_once(gateway: Gateway, sdk: SDK) -> None:
    secret, key = gateway.new_key(spend_cap="0.01")
    client = sdk(secret)
    event_id = ingest(gateway, key)

    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)  # type: ignore[arg-type]
    assert (refused.value.status_code, refused.value.code) == (402, "budget_exceeded")
    assert spent(gateway, key) == "0.02"

    voided = void(gateway, event_id)

    assert voided.status_code == 201, voided.text
    answer = voided.json()
    assert answer["event_id"] == event_id and answer["id"].startswith("adj_")
    assert (answer["reason"], answer["voided_by"], answer["voided_by_member_id"]) == (
        "posted against the wrong key",
        "master",
        None,
    )
    assert (answer["cost_usd"], answer["account_id"], answer["key_id"]) == ("-0.02", key["account_id"], key["id"])
    reply = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=MESSAGES,  # type: ignore[arg-type]
        max_tokens=20,
    )
    assert reply.http_response.status_code == 200
    assert spent(gateway, key) == reply.headers["x-farebox-cost-usd"]
    shown = gateway.event(event_id)
    assert (shown["cost_usd"], shown["source"]) == ("0.02", "ingest"), "the event itself stays as recorded"
    assert shown["void"] == answer
    assert gateway.event(reply.headers["x-farebox-request-id"])["void"] is None


def test_an_unknown_event_is_404_and_a_second_void_409(gateway: Gateway) -> None:
    _, key = gateway.new_key()
    event_id = ingest(gateway, key)
    assert void(gateway, event_id).status_code == 201

    error(void(gateway, "no-such-event"), 404, "event_not_found")
    message = error(void(gateway, event_id, {"reason": "again"}), 409, "event_already_voided")

    assert event_id in message
    assert gateway.event(event_id)["void"]["reason"] == "posted against the wrong key"


def test_a_proxied_request_cannot_be_voided(gateway: Gateway, sdk: SDK) -> None:
    secret, key = gateway.new_key()
    reply = sdk(secret).chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=MESSAGES,  # type: ignore[arg-type]
        max_tokens=20,
    )
    request_id = reply.headers["x-farebox-request-id"]

    message = error(void(gateway, request_id), 409, "event_not_ingested")

    assert "proxied" in message
    assert spent(gateway, key) == reply.headers["x-farebox-cost-usd"]


def test_an_admin_member_voids_in_its_own_account_only(gateway: Gateway) -> None:
    _, key = gateway.new_key()
    _, elsewhere = gateway.new_key()
    admin_secret, admin_id = member_token(gateway, key["account_id"], role="admin")
    mine, theirs = ingest(gateway, key), ingest(gateway, elsewhere)

    error(void(gateway, theirs, secret=admin_secret), 404, "event_not_found")
    done = void(gateway, mine, secret=admin_secret)

    assert done.status_code == 201, done.text
    assert (done.json()["voided_by"], done.json()["voided_by_member_id"]) == ("member", admin_id)
    assert gateway.event(theirs)["void"] is None


@pytest.mark.parametrize("role", ["billing", "member"])
def test_a_billing_or_plain_member_a_virtual_key_and_no_key_are_refused(gateway: Gateway, role: str) -> None:
    key_secret, key = gateway.new_key()
    member_secret, _ = member_token(gateway, key["account_id"], role=role)
    event_id = ingest(gateway, key)

    error(void(gateway, event_id, secret=member_secret), 403, "not_admin")
    error(void(gateway, event_id, secret=key_secret), 403, "proxy_key")
    error(void(gateway, event_id, secret="fbx_sk_not-a-key"), 401, "invalid_api_key")
    assert gateway.event(event_id)["void"] is None


@pytest.mark.parametrize(
    ("body", "loc"),
    [({}, "reason"), ({"reason": ""}, "reason"), ({"reason": "  \n "}, "reason"), ({"reason": "x" * 1001}, "reason")],
)
def test_a_void_needs_a_reason(gateway: Gateway, body: dict[str, Any], loc: str) -> None:
    _, key = gateway.new_key()
    event_id = ingest(gateway, key)

    response = void(gateway, event_id, body)

    error(response, 422, "validation_failed")
    assert [detail["loc"] for detail in response.json()["error"]["details"]] == [loc]
    assert gateway.event(event_id)["void"] is None


def test_an_unknown_field_is_422(gateway: Gateway) -> None:
    _, key = gateway.new_key()
    event_id = ingest(gateway, key)

    error(void(gateway, event_id, {"reason": "x", "cost_usd": "0"}), 422, "validation_failed")


def test_a_void_made_with_the_cli_reaches_the_running_gateways_cap(gateway: Gateway, sdk: SDK) -> None:
    secret, key = gateway.new_key(spend_cap="0.01")
    client = sdk(secret)
    event_id = ingest(gateway, key)
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)  # type: ignore[arg-type]

    result = CliRunner().invoke(
        cli_app,
        ["events", "void", event_id, "--reason", "wrong key", "--json"],
        env={"FAREBOX_DATABASE_URL": f"sqlite:///{gateway.database}"},
    )
    assert result.exit_code == 0, result.output

    deadline = time.monotonic() + 5  # the gateway polls the ledger for voids every second
    while True:
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)  # type: ignore[arg-type]
            break
        except openai.APIStatusError as exc:
            assert exc.status_code == 402 and time.monotonic() < deadline, "the CLI's void never reached the cap"
            time.sleep(0.1)
    assert gateway.event(event_id)["void"]["voided_by"] == "cli"
