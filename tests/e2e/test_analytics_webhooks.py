"""`PUT /api/admin/analytics/webhooks` end to end, on a served farebox and a real receiver: the seed's settings become
webhook endpoints whose deliveries carry the bearer token besides a signature the `standardwebhooks` library checks,
batch `usage.recorded` events as asked, and retry as the endpoint's policy says; a second PUT keeps, changes and
deletes endpoints by URL; `GET` never shows a token or a secret."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from notify_server import Farebox, serve

if TYPE_CHECKING:
    from tests.e2e.conftest import ServerThread

PATH = "/api/admin/analytics/webhooks"


@pytest.fixture(scope="module")
def farebox(
    tmp_path_factory: pytest.TempPathFactory, port_factory: Callable[[], int], server_thread: type[ServerThread]
) -> Iterator[Farebox]:
    with serve(tmp_path_factory.mktemp("analytics-webhooks"), port_factory, server_thread) as running:
        yield running


def _endpoint(farebox: Farebox, path: str, **fields: Any) -> dict[str, Any]:
    return {"url": farebox.receiver.url + path, "events": ["usage.recorded", "budget.exceeded"]} | fields


def _put(farebox: Farebox, account: str, body: dict[str, Any]) -> dict[str, Any]:
    response = farebox.admin("PUT", PATH, params={"account_id": account}, json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    for endpoint in data["endpoints"]:
        if "signingSecret" in endpoint:
            farebox.receiver.secrets[endpoint["url"].removeprefix(farebox.receiver.url)] = endpoint["signingSecret"]
    return data


def test_deliveries_carry_the_bearer_token_and_the_signature_in_batches(farebox: Farebox) -> None:
    account = farebox.account()
    key = farebox.key(account)
    path = farebox.receiver.path()
    auth = {"type": "bearer", "token": "webhook-auth-token"}
    batch = {"enabled": True, "batchSize": 2, "flushInterval": 0.2}
    data = _put(
        farebox,
        account,
        {"enabled": True, "endpoints": [_endpoint(farebox, path, authentication=auth)], "batchSettings": batch},
    )
    (shown,) = data["endpoints"]
    assert shown["signingSecret"].startswith("whsec_") and shown["authentication"] == {"type": "bearer"}
    for usd in ("0.01", "0.02", "0.03"):
        farebox.spend(key, usd)
    received = farebox.receiver.wait(path, 2)
    assert all(r.verified and r.authorization == "Bearer webhook-auth-token" for r in received)
    assert all(r.body["type"] == "usage.recorded" for r in received)
    assert sorted(len(r.body["data"]["events"]) for r in received) == [1, 2], "batches of at most two"
    listed = farebox.admin("GET", "/api/admin/webhooks", params={"account_id": account}).json()["data"]
    assert [(e["url"], e["batch_size"], e["flush_interval_seconds"]) for e in listed] == [
        (farebox.receiver.url + path, 2, 0.2)
    ]


def test_the_endpoint_s_retry_policy_is_honoured(farebox: Farebox) -> None:
    account = farebox.account()
    key = farebox.key(account)
    path = farebox.receiver.path(plan=[500, 500, 500, 500])
    policy = {"maxRetries": 1, "retryDelay": 100}
    body = {"endpoints": [_endpoint(farebox, path, retryPolicy=policy)], "batchSettings": {"enabled": False}}
    (endpoint,) = _put(farebox, account, body)["endpoints"]
    farebox.spend(key, "0.01")
    deadline = time.monotonic() + 10
    log: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        log = farebox.admin("GET", f"/api/admin/webhooks/{endpoint['id']}/deliveries").json()["data"]
        if log and log[0]["status"] == "failed":
            break
        time.sleep(0.05)
    (entry,) = log
    assert (entry["status"], entry["attempts"]) == ("failed", 2), "one try and one retry, not the server's six"
    assert len(farebox.receiver.attempts(path)) == 2
    first, second = entry["log"]
    assert first["status_code"] == second["status_code"] == 500


def test_a_second_put_keeps_changes_and_deletes_by_url_and_get_shows_no_secret(farebox: Farebox) -> None:
    account = farebox.account()
    kept, dropped, added = (farebox.receiver.path() for _ in range(3))
    auth = {"type": "bearer", "token": "first-token"}
    first = _put(
        farebox, account, {"endpoints": [_endpoint(farebox, kept, authentication=auth), _endpoint(farebox, dropped)]}
    )
    second = _put(
        farebox,
        account,
        {
            "enabled": False,
            "endpoints": [_endpoint(farebox, kept, events=["cost.calculated"]), _endpoint(farebox, added)],
        },
    )
    ids = {e["url"].removeprefix(farebox.receiver.url): e for e in second["endpoints"]}
    assert ids[kept]["id"] == first["endpoints"][0]["id"] and "signingSecret" not in ids[kept]
    assert ids[kept]["events"] == ["cost.calculated"] and ids[kept]["authentication"] is None
    assert "signingSecret" in ids[added] and not any(e["enabled"] for e in second["endpoints"])
    shown = farebox.admin("GET", PATH, params={"account_id": account})
    assert shown.status_code == 200 and "first-token" not in shown.text and "whsec_" not in shown.text
    assert {e["url"].removeprefix(farebox.receiver.url) for e in shown.json()["data"]["endpoints"]} == {kept, added}
    assert shown.json()["data"]["enabled"] is False
    other = farebox.admin(
        "POST",
        "/api/admin/webhooks",
        json={"account_id": account, "url": farebox.receiver.url + "/x", "events": ["usage.threshold"]},
    )
    assert other.status_code == 201
    _put(farebox, account, {"endpoints": []})
    remaining = farebox.admin("GET", "/api/admin/webhooks", params={"account_id": account}).json()["data"]
    assert [e["id"] for e in remaining] == [other.json()["id"]], "the webhook API's own endpoint is left alone"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "endpoints"),
        ({"endpoints": [{"url": "http://127.0.0.1:9/a", "events": ["usage.recorded"]}] * 2}, "endpoints"),
        ({"endpoints": [{"url": "http://127.0.0.1:9/a", "events": ["nope"]}]}, "events"),
        (
            {
                "endpoints": [
                    {
                        "url": "http://127.0.0.1:9/a",
                        "events": ["usage.recorded"],
                        "authentication": {"type": "basic", "token": "x"},
                    }
                ]
            },
            "type",
        ),
        (
            {
                "endpoints": [
                    {"url": "http://127.0.0.1:9/a", "events": ["usage.recorded"], "retryPolicy": {"maxRetries": 99}}
                ]
            },
            "maxRetries",
        ),
        ({"endpoints": [], "batchSettings": {"batchSize": 0}}, "batchSize"),
    ],
)
def test_a_bad_body_is_a_422_naming_the_field(farebox: Farebox, body: dict[str, Any], field: str) -> None:
    account = farebox.account()
    response = farebox.admin("PUT", PATH, params={"account_id": account}, json=body)
    assert response.status_code == 422 and field in response.text, response.text
