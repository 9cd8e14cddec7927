"""Alerts, webhooks, Slack and e-mail end to end: a real farebox, a real HTTP receiver on loopback that checks
every signature with the `standardwebhooks` library (an implementation independent of farebox's), and a real
SMTP server (aiosmtpd). Spend is moved with `POST /api/events` (exact costs) and with the `openai` SDK.

The receiver answers each path as planned: a list of status codes (or `SLOW`, an answer later than farebox's
timeout) used up one request at a time, then 200. A delivery counts as delivered when the receiver answered
it 2xx; no webhook-id may be delivered twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest
from notify_server import MASTER, SETTINGS, SLOW, TIMEOUT_S, Farebox, Mailbox, Received, Receiver, serve

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway, ServerThread


@pytest.fixture(scope="module")
def farebox(
    tmp_path_factory: pytest.TempPathFactory, port_factory: Callable[[], int], server_thread: type[ServerThread]
) -> Iterator[Farebox]:
    with serve(tmp_path_factory.mktemp("notify"), port_factory, server_thread) as running:
        yield running


def _types(received: list[Received]) -> list[tuple[str, str | None]]:
    return [(r.body["type"], r.body["data"].get("threshold")) for r in received]


def test_thresholds_and_the_cap_arrive_signed_once_each(farebox: Farebox) -> None:
    account = farebox.account()
    key = farebox.key(account, spend_cap="10.00")
    path = farebox.receiver.path()
    farebox.webhook(account, path, ["usage.threshold", "budget.exceeded"])

    for usd, expected in (("6.00", 1), ("3.00", 2), ("0.60", 3), ("1.00", 4)):
        farebox.spend(key, usd)
        farebox.receiver.wait(path, expected)
    farebox.spend(key, "0.10")
    time.sleep(0.5)

    delivered = farebox.receiver.delivered(path)
    assert _types(delivered) == [
        ("usage.threshold", "0.5"),
        ("usage.threshold", "0.8"),
        ("usage.threshold", "0.95"),
        ("budget.exceeded", None),
    ]
    assert all(r.verified for r in delivered)
    assert len({r.msg_id for r in delivered}) == 4
    first = delivered[0].body["data"]
    assert (first["key_id"], first["spent"], first["cap"], first["remaining"]) == (key["id"], "6.00", "10.00", "4.00")
    assert "50% of its monthly spend cap" in first["text"]

    history = farebox.admin("GET", f"/api/admin/accounts/{account}/alerts/history").json()["data"]
    # (late in a month the scanner may also project the key past its cap: an anomaly, not a cap alert)
    assert [item["rule"] for item in history if not item["rule"].startswith("anomaly:")] == [
        "budget_exceeded",
        "threshold:0.95",
        "threshold:0.8",
        "threshold:0.5",
    ]


def test_a_test_delivery_arrives_signed_whatever_the_endpoint_asked_for(farebox: Farebox) -> None:
    account = farebox.account()
    path = farebox.receiver.path()
    endpoint = farebox.webhook(account, path, ["usage.recorded"])
    sent = farebox.admin("POST", f"/api/admin/webhooks/{endpoint['id']}/test")
    assert sent.status_code == 202, sent.text
    (received,) = farebox.receiver.wait(path, 1)
    assert received.verified and received.msg_id == sent.json()["id"]
    assert (received.body["type"], received.body["data"]["endpoint_id"]) == ("webhook.test", endpoint["id"])
    assert farebox.admin("POST", "/api/admin/webhooks/nope/test").status_code == 404


def test_a_failing_receiver_is_retried_under_one_webhook_id_and_logged(farebox: Farebox) -> None:
    account = farebox.account()
    key = farebox.key(account, spend_cap="10.00")
    path = farebox.receiver.path(plan=[500, 503])
    endpoint = farebox.webhook(account, path, ["usage.threshold"])
    farebox.spend(key, "5.00")

    (delivered,) = farebox.receiver.wait(path, 1)
    attempts = farebox.receiver.attempts(path)
    assert [r.status for r in attempts] == [500, 503, 200]
    assert {r.msg_id for r in attempts} == {delivered.msg_id}
    assert all(r.verified for r in attempts)

    log = farebox.admin("GET", f"/api/admin/webhooks/{endpoint['id']}/deliveries").json()["data"]
    (entry,) = log
    assert (entry["id"], entry["status"], entry["attempts"]) == (delivered.msg_id, "delivered", 3)
    assert [attempt["status_code"] for attempt in entry["log"]] == [500, 503, 200]
    assert entry["log"][0]["error"].startswith("HTTP 500")


def test_a_delivery_that_fails_every_attempt_can_be_retried_by_hand(farebox: Farebox) -> None:
    account = farebox.account()
    key = farebox.key(account, spend_cap="10.00")
    attempts = SETTINGS["webhook_max_attempts"]
    path = farebox.receiver.path(plan=[503] * attempts)
    endpoint = farebox.webhook(account, path, ["usage.threshold"])
    farebox.spend(key, "5.00")
    log = f"/api/admin/webhooks/{endpoint['id']}/deliveries"

    deadline = time.monotonic() + 15
    while not farebox.admin("GET", log, params={"status": "failed"}).json()["data"]:
        assert time.monotonic() < deadline, "the delivery never failed for good"
        time.sleep(0.05)
    (failed,) = farebox.admin("GET", log).json()["data"]
    assert (failed["status"], failed["attempts"]) == ("failed", attempts)
    assert len(farebox.receiver.attempts(path)) == attempts

    retried = farebox.admin("POST", f"{log}/{failed['id']}/retry")
    assert retried.status_code == 202, retried.text
    (delivered,) = farebox.receiver.wait(path, 1)
    assert delivered.msg_id == failed["id"] and delivered.verified
    (entry,) = farebox.admin("GET", log).json()["data"]
    assert (entry["status"], entry["attempts"]) == ("delivered", attempts + 1)
    again = farebox.admin("POST", f"{log}/{failed['id']}/retry")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "delivery_not_failed")
    assert farebox.admin("POST", f"{log}/msg_nope/retry").status_code == 404


def test_a_receiver_slower_than_the_timeout_is_retried(farebox: Farebox) -> None:
    account = farebox.account()
    key = farebox.key(account, spend_cap="10.00")
    path = farebox.receiver.path(plan=[SLOW])
    endpoint = farebox.webhook(account, path, ["usage.threshold"])
    farebox.spend(key, "5.00")

    farebox.receiver.wait(path, 1)
    (entry,) = farebox.admin("GET", f"/api/admin/webhooks/{endpoint['id']}/deliveries").json()["data"]
    assert entry["status"] == "delivered"
    assert entry["log"][0]["error"] == f"timed out after {TIMEOUT_S:g}s"
    assert entry["log"][1]["status_code"] == 200


def test_usage_recorded_comes_in_batches_with_every_request_once(farebox: Farebox) -> None:
    account = farebox.account()
    key = farebox.key(account)
    path = farebox.receiver.path()
    farebox.webhook(account, path, ["usage.recorded"], batch_size=3, flush_interval_seconds=0.3)
    sdk = openai.OpenAI(api_key=key["key"], base_url=f"{farebox.url}/v1", max_retries=0)
    request_ids = []
    for _ in range(7):
        response = sdk.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        request_ids.append(response.headers["x-farebox-request-id"])

    deadline = time.monotonic() + 10
    while sum(r.body["data"]["count"] for r in farebox.receiver.delivered(path)) < 7:
        assert time.monotonic() < deadline, "usage.recorded did not arrive"
        time.sleep(0.05)
    batches = [r.body["data"] for r in farebox.receiver.delivered(path)]
    assert all(batch["count"] <= 3 for batch in batches) and len(batches) >= 3
    sent = [event["id"] for batch in batches for event in batch["events"]]
    assert sorted(sent) == sorted(request_ids)
    assert all(
        event["key_id"] == key["id"] and event["model"] == "gpt-4o-mini" for b in batches for event in b["events"]
    )


def test_an_email_alert_reaches_the_smtp_server(farebox: Farebox) -> None:
    account = farebox.account()
    key = farebox.key(account, spend_cap="10.00")
    farebox.alerts(
        account,
        {
            "keys": {"thresholds": [{"fraction": "0.8", "actions": ["email"]}]},
            "email_recipients": ["oncall@example.test", "lead@example.test"],
        },
    )
    farebox.spend(key, "8.50")
    deadline = time.monotonic() + 10
    while not any(key["id"] in m.get_payload() for m in farebox.mailbox.messages):
        assert time.monotonic() < deadline, "no e-mail arrived"
        time.sleep(0.05)
    (mail,) = [m for m in farebox.mailbox.messages if key["id"] in m.get_payload()]
    assert mail["To"] == "oncall@example.test,lead@example.test"
    assert mail["From"] == "farebox@example.test"
    assert "80% of its monthly spend cap (8.50 of 10.00 USD)" in mail["Subject"]


def test_a_slack_alert_posts_its_text(farebox: Farebox) -> None:
    account = farebox.account()
    key = farebox.key(account, spend_cap="10.00")
    path = farebox.receiver.path()
    rules = {
        "keys": {"thresholds": [], "credits_low": {"below": "2.00", "actions": ["slack"]}},
        "slack_webhook_url": farebox.receiver.url + path,
    }
    farebox.alerts(account, rules)
    farebox.spend(key, "8.50")
    (message,) = farebox.receiver.wait(path, 1)
    assert set(message.body) == {"text"}
    assert "has 1.50 USD left under its monthly spend cap, below 2.00 USD" in message.body["text"]


def test_disable_key_stops_the_sdk_until_the_key_is_enabled(farebox: Farebox) -> None:
    account = farebox.account()
    key = farebox.key(account, spend_cap="1.00")
    path = farebox.receiver.path()
    farebox.webhook(account, path, ["key.disabled"])
    farebox.alerts(account, {"keys": {"thresholds": [{"fraction": "0.5", "actions": ["disable_key"]}]}})
    sdk = openai.OpenAI(api_key=key["key"], base_url=f"{farebox.url}/v1", max_retries=0)
    ask: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    sdk.chat.completions.create(**ask)

    farebox.spend(key, "0.60")
    (notice,) = farebox.receiver.wait(path, 1)
    assert notice.body["data"]["key_id"] == key["id"]
    time.sleep(1.1)  # other processes' key caches (none here) may hold the key up to a second
    with pytest.raises(openai.AuthenticationError) as refused:
        sdk.chat.completions.create(**ask)
    assert refused.value.code == "key_disabled" and "50% of its monthly spend cap" in refused.value.message
    shown = farebox.admin("GET", f"/api/admin/virtual-keys/{key['id']}").json()
    assert shown["status"] == "disabled" and shown["disabled_reason"].startswith("disabled by alert")

    enabled = farebox.admin("POST", f"/api/admin/virtual-keys/{key['id']}/enable")
    assert enabled.json()["status"] == "active"
    assert sdk.chat.completions.create(**ask).choices


def test_a_quiet_key_that_suddenly_spends_raises_an_anomaly(farebox: Farebox) -> None:
    account = farebox.account()
    key = farebox.key(account)
    path = farebox.receiver.path()
    farebox.webhook(account, path, ["anomaly.detected"])
    now = datetime.now(UTC)
    farebox.spend(key, "0.05", at=now - timedelta(days=4))
    farebox.spend(key, "12.00", at=now)

    def key_leaks() -> list[dict[str, Any]]:
        bodies = [r.body["data"] for r in farebox.receiver.delivered(path)]
        return [body for body in bodies if body["kind"] == "leaked_key" and body["scope"] == "key"]

    deadline = time.monotonic() + 10
    while not key_leaks():
        assert time.monotonic() < deadline, "no leaked-key anomaly arrived"
        time.sleep(0.05)
    (leak,) = key_leaks()
    assert (leak["key_id"], leak["observed"], leak["baseline"]) == (key["id"], "12.00", "0.007142857")
    assert "it may have leaked" in leak["message"]


def test_alert_rules_without_a_destination_are_refused(farebox: Farebox) -> None:
    account = farebox.account()
    cases = [
        ({"keys": {"thresholds": [{"fraction": "0.5", "actions": ["email"]}]}}, "email_recipients"),
        ({"keys": {"thresholds": [{"fraction": "0.5", "actions": ["slack"]}]}}, "slack_webhook_url"),
        ({"keys": {"thresholds": [{"fraction": "0.5", "actions": ["pagerduty"]}]}}, "pagerduty_routing_key"),
        ({"key_overrides": {"no-such-key": {}}}, "key_overrides"),
        ({"keys": {"thresholds": [{"fraction": 1.5}]}}, "fraction"),
    ]
    for rules, field in cases:
        response = farebox.admin("PUT", f"/api/admin/accounts/{account}/alerts", json=rules)
        assert response.status_code == 422, response.text
        assert field in response.text
    assert farebox.admin("GET", f"/api/admin/accounts/{account}/alerts").json()["keys"]["thresholds"][0] == {
        "fraction": "0.5",
        "actions": ["webhook"],
        "message": None,
        "recipients": None,
        "channels": None,
        "urgency": None,
    }


def test_inward_webhook_urls_are_refused_by_default(gateway: Gateway) -> None:
    account = gateway.admin("POST", "/api/admin/accounts", json={"name": "ssrf"}).json()["id"]
    for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data", "http://localhost/x"):
        body = {"account_id": account, "url": url, "events": ["usage.threshold"]}
        response = gateway.admin("POST", "/api/admin/webhooks", json=body)
        assert response.status_code == 422, response.text
        assert "private, loopback or link-local" in response.json()["error"]["message"]
    slack = gateway.admin(
        "PUT", f"/api/admin/accounts/{account}/alerts", json={"slack_webhook_url": "http://10.0.0.1/hook"}
    )
    assert slack.status_code == 422 and "private" in slack.text
    bad_scheme = {"account_id": account, "url": "file:///etc/passwd", "events": ["usage.threshold"]}
    assert gateway.admin("POST", "/api/admin/webhooks", json=bad_scheme).status_code == 422


# --- a gateway killed mid-retry ------------------------------------------------------------------


def _serve(database: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    env |= {f"FAREBOX_{name.upper()}": str(value).lower() for name, value in SETTINGS.items()}
    env |= {"FAREBOX_DATABASE_URL": f"sqlite:///{database}", "FAREBOX_MASTER_KEY": MASTER}
    process = subprocess.Popen(
        [sys.executable, "-m", "farebox", "serve", "--port", str(port)],
        cwd=database.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None and time.monotonic() < deadline, "farebox serve did not start"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)


def test_a_gateway_killed_mid_retry_delivers_everything_once_after_restart(
    tmp_path: Path, port_factory: Callable[[], int]
) -> None:
    free_port = port_factory
    receiver = Receiver(free_port)
    path = receiver.path(plan=[500] * 1000)
    port = free_port()
    first = _serve(tmp_path / "ledger.db", port)
    try:
        farebox = Farebox(f"http://127.0.0.1:{port}", receiver, Mailbox())
        account = farebox.account()
        key = farebox.key(account, spend_cap="10.00")
        farebox.webhook(account, path, ["usage.threshold"])
        farebox.spend(key, "9.60")  # three thresholds at once: three messages
        deadline = time.monotonic() + 10
        while len({r.msg_id for r in receiver.attempts(path)}) < 3 or len(receiver.attempts(path)) < 6:
            assert time.monotonic() < deadline, "farebox did not try the deliveries"
            time.sleep(0.02)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    tried = {r.msg_id for r in receiver.attempts(path)}
    with receiver.lock:
        receiver.plans[path] = []  # the receiver recovers while farebox is down

    second = _serve(tmp_path / "ledger.db", port)
    try:
        delivered = receiver.wait(path, 3, timeout=20)
        time.sleep(1.0)  # time enough for a duplicate to show up
        delivered = receiver.delivered(path)
    finally:
        second.terminate()
        second.wait(timeout=10)
        receiver.close()
    assert sorted(r.msg_id for r in delivered) == sorted(tried), "a delivery was lost, added or repeated"
    assert sorted(r.body["data"]["threshold"] for r in delivered) == ["0.5", "0.8", "0.95"]
    assert all(r.verified for r in delivered)
