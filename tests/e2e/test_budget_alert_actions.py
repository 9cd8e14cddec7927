"""What the seed's budget alert settings (`PUT /api/admin/budgets/alerts`) do, end to end on a served farebox: a
key threshold with `disable_key` stops the `openai` SDK until the key is enabled again, and a global threshold's
`pagerduty`, `slack` and `email` actions reach a PagerDuty enqueue URL (an Events API v2 `trigger`), Slack
channels and the threshold's own recipients, retried through the outbox like every delivery."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import openai
import pytest
from notify_server import PAGERDUTY_PATH, Farebox, serve

if TYPE_CHECKING:
    from tests.e2e.conftest import ServerThread

ROUTING_KEY = "Budget0Alerts0Routing0Key0000032"


@pytest.fixture(scope="module")
def farebox(
    tmp_path_factory: pytest.TempPathFactory, port_factory: Callable[[], int], server_thread: type[ServerThread]
) -> Iterator[Farebox]:
    with serve(tmp_path_factory.mktemp("budget-alerts"), port_factory, server_thread) as running:
        yield running


def _settings(farebox: Farebox, account_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = farebox.admin("PUT", "/api/admin/budgets/alerts", params={"account_id": account_id}, json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _wait(condition: Callable[[], bool], what: str, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_key_threshold_with_disable_key_stops_the_sdk_until_the_key_is_enabled(farebox: Farebox) -> None:
    account = farebox.account()
    key = farebox.key(account, spend_cap="1.00")
    path = farebox.receiver.path()
    farebox.webhook(account, path, ["key.disabled", "usage.threshold"])
    keys = {"defaultThresholds": [0.5, 0.95], "actions": {"0.95": ["webhook", "disable_key"]}}
    _settings(farebox, account, {"virtualKeyBudgetAlerts": keys})
    sdk = openai.OpenAI(api_key=key["key"], base_url=f"{farebox.url}/v1", max_retries=0)
    ask: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    sdk.chat.completions.create(**ask)

    farebox.spend(key, "0.60")
    farebox.receiver.wait(path, 1)
    assert farebox.admin("GET", f"/api/admin/virtual-keys/{key['id']}").json()["status"] == "active", "0.5: no stop"
    farebox.spend(key, "0.36")
    _wait(
        lambda: any(r.body["type"] == "key.disabled" for r in farebox.receiver.delivered(path)),
        "the key was not disabled",
    )
    time.sleep(1.1)  # other processes' key caches (none here) may hold the key up to a second
    with pytest.raises(openai.AuthenticationError) as refused:
        sdk.chat.completions.create(**ask)
    assert refused.value.code == "key_disabled" and "95% of its monthly spend cap" in refused.value.message
    history = farebox.admin("GET", f"/api/admin/accounts/{account}/alerts/history").json()["data"]
    assert {"threshold:0.5", "threshold:0.95"} <= {item["rule"] for item in history}
    status = farebox.admin("GET", "/api/admin/budgets/status", params={"account_id": account}).json()["data"]
    (shown,) = status["budgetBreakdown"]["byVirtualKey"]
    assert (shown["keyId"], shown["status"]) == (key["id"], "disabled")

    enabled = farebox.admin("POST", f"/api/admin/virtual-keys/{key['id']}/enable")
    assert enabled.json()["status"] == "active"
    assert sdk.chat.completions.create(**ask).choices


def _ledger_text(farebox: Farebox, table: str) -> str:
    """Every value of a table of the served ledger, as text (to look for a secret in it)."""
    assert farebox.database is not None
    with sqlite3.connect(farebox.database) as connection:
        return repr(connection.execute(f"SELECT * FROM {table}").fetchall())


def test_a_global_threshold_pages_pagerduty_posts_to_slack_channels_and_mails_its_recipients(farebox: Farebox) -> None:
    account = farebox.account(spend_cap="10.00")
    slack = farebox.receiver.path()
    farebox.receiver.plans[PAGERDUTY_PATH] = [500]  # PagerDuty has a bad moment: the event is retried
    rules = farebox.admin("GET", f"/api/admin/accounts/{account}/alerts").json()
    rules |= {"slack_webhook_url": farebox.receiver.url + slack, "pagerduty_routing_key": ROUTING_KEY}
    assert farebox.admin("PUT", f"/api/admin/accounts/{account}/alerts", json=rules).status_code == 200
    threshold = {
        "percentage": 0.9,
        "actions": ["pagerduty", "slack", "email"],
        "recipients": ["cfo@acme.test"],
        "channels": ["#alerts", "#finance"],
        "urgency": "high",
        "message": "Global budget 90% utilized - immediate attention required",
    }
    _settings(farebox, account, {"globalBudgetAlerts": {"enabled": True, "thresholds": [threshold]}})
    key = farebox.key(account)
    started = datetime.now().astimezone()

    farebox.spend(key, "9.50")

    (page,) = farebox.receiver.wait(PAGERDUTY_PATH, 1)
    attempts = [r for r in farebox.receiver.attempts(PAGERDUTY_PATH) if r.body["dedup_key"] == page.body["dedup_key"]]
    assert [r.status for r in attempts] == [500, 200] and attempts[0].body == page.body
    event = page.body
    assert set(event) == {"routing_key", "event_action", "dedup_key", "client", "payload"}
    assert (event["routing_key"], event["event_action"], event["client"]) == (ROUTING_KEY, "trigger", "farebox")
    assert event["dedup_key"].startswith(f"farebox/{account}/threshold:0.9/account/{account}/")
    payload = event["payload"]
    assert payload["summary"] == "Global budget 90% utilized - immediate attention required"
    assert (payload["source"], payload["severity"], payload["class"]) == ("farebox", "critical", "usage.threshold")
    assert datetime.fromisoformat(payload["timestamp"]) >= started.replace(microsecond=0)
    details = payload["custom_details"]
    assert (details["alert"], details["spent"], details["cap"], details["account_id"]) == (
        "threshold:0.9",
        "9.50",
        "10.00",
        account,
    )

    posted = farebox.receiver.wait(slack, 2)
    assert sorted(r.body["channel"] for r in posted) == ["#alerts", "#finance"]
    assert {r.body["text"] for r in posted} == {threshold["message"]}
    _wait(lambda: any(m["To"] == "cfo@acme.test" for m in farebox.mailbox.messages), "no e-mail arrived")
    for table in ("alert_settings", "outbox"):
        assert ROUTING_KEY not in _ledger_text(farebox, table), f"the routing key is in {table} in plain text"
