"""`GET` and `PUT /api/admin/budgets/alerts` (seed 004) over HTTP: the seed's body round-trips, lands in the
account's alert rules (`/api/admin/accounts/{id}/alerts`) beside what the seed does not name, bad bodies are
refused in the error shape, each role may do what it may, and the spike settings change what the anomaly
detectors fire on."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from admin_client import MASTER, Api, assert_error, open_api

from farebox.alerts.actions import Alerter
from farebox.alerts.scanner import AnomalyScanner
from farebox.core.events import Axis, UsageEvent

pytestmark = pytest.mark.anyio

ROUTING_KEY = "R0uting0Key0Of0Thirty0Two0Chars0"
SEED = {
    "globalBudgetAlerts": {
        "enabled": True,
        "thresholds": [
            {
                "percentage": 0.7,
                "actions": ["webhook", "email"],
                "recipients": ["admin@company.com"],
                "message": "Global budget 70% utilized",
            },
            {
                "percentage": 0.9,
                "actions": ["webhook", "email", "slack", "pagerduty"],
                "recipients": ["admin@company.com"],
                "channels": ["#alerts"],
                "urgency": "high",
                "message": "Global budget 90% utilized - immediate attention required",
            },
        ],
    },
    "virtualKeyBudgetAlerts": {
        "enabled": True,
        "defaultThresholds": [0.5, 0.8, 0.95],
        "actions": {"0.5": ["webhook"], "0.8": ["webhook", "email"], "0.95": ["webhook", "email", "disable_key"]},
    },
    "costSpikesDetection": {
        "enabled": True,
        "thresholdMultiplier": 3.0,
        "timeWindow": 3600,
        "actions": ["webhook", "email"],
    },
}
"""The seed's example body, as the seed writes it."""
PATH = "/api/admin/budgets/alerts"


@pytest.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    """The admin API with somewhere for e-mail to go (nothing is sent: no lifespan runs)."""
    monkeypatch.chdir(tmp_path)
    settings = {"smtp_host": "127.0.0.1", "smtp_from": "farebox@acme.test", "allow_private_webhook_urls": True}
    async with open_api(tmp_path, **settings) as opened:
        yield opened


async def _call(api: Api, method: str, token: str = MASTER, body: Any = None, **params: str) -> Any:
    headers = {"authorization": f"Bearer {token}"}
    return await api.client.request(method, PATH, params=params, json=body, headers=headers)


async def _data(api: Api, method: str, token: str = MASTER, body: Any = None, **params: str) -> Any:
    response = await _call(api, method, token, body, **params)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["success"] is True and set(answer) == {"success", "data"}
    return answer["data"]


async def _destinations(api: Api, account_id: str) -> None:
    """The account's Slack URL, recipients and PagerDuty routing key, set through farebox's own alert rules."""
    rules = await api.ok("GET", f"/accounts/{account_id}/alerts")
    rules |= {
        "slack_webhook_url": "http://127.0.0.1:9/slack",
        "email_recipients": ["oncall@acme.test"],
        "pagerduty_routing_key": ROUTING_KEY,
    }
    await api.ok("PUT", f"/accounts/{account_id}/alerts", rules)


async def test_the_seed_s_body_round_trips_and_lands_in_the_alert_rules(api: Api) -> None:
    account = await api.account()
    await _destinations(api, account["id"])

    saved = await _data(api, "PUT", body=SEED, account_id=account["id"])
    assert saved == SEED
    assert await _data(api, "GET", account_id=account["id"]) == SEED

    rules = await api.ok("GET", f"/accounts/{account['id']}/alerts")
    high = rules["account"]["thresholds"][1]
    assert (high["fraction"], high["urgency"], high["channels"], high["recipients"]) == (
        "0.9",
        "high",
        ["#alerts"],
        ["admin@company.com"],
    )
    assert [(t["fraction"], t["actions"]) for t in rules["keys"]["thresholds"]] == [
        ("0.5", ["webhook"]),
        ("0.8", ["webhook", "email"]),
        ("0.95", ["webhook", "email", "disable_key"]),
    ]
    spikes = rules["anomalies"]
    assert (spikes["spike_multiplier"], spikes["window_seconds"], spikes["actions"]) == (
        "3.0",
        3600,
        ["webhook", "email"],
    )
    assert spikes["leak_min"] == "5" and spikes["runaway_days"] == 7, "what the seed does not name stays"
    assert rules["members"]["thresholds"][0]["fraction"] == "0.5" and rules["email_recipients"] == ["oncall@acme.test"]
    assert rules["pagerduty_routing_key"].startswith("sealed:v1:") and ROUTING_KEY not in str(rules)


async def test_a_part_left_out_stays_as_it_was(api: Api) -> None:
    account = await api.account()
    await _destinations(api, account["id"])
    await _data(api, "PUT", body=SEED, account_id=account["id"])

    changed = {"costSpikesDetection": {"enabled": False, "thresholdMultiplier": "12.5", "timeWindow": 7200}}
    data = await _data(api, "PUT", body=changed, account_id=account["id"])

    assert data["costSpikesDetection"] == {
        "enabled": False,
        "thresholdMultiplier": 12.5,
        "timeWindow": 7200,
        "actions": ["webhook"],
    }
    assert (data["globalBudgetAlerts"], data["virtualKeyBudgetAlerts"]) == (
        SEED["globalBudgetAlerts"],
        SEED["virtualKeyBudgetAlerts"],
    )
    fresh = await api.account("Fresh")
    defaults = await _data(api, "GET", account_id=fresh["id"])
    assert defaults["virtualKeyBudgetAlerts"]["actions"] == {
        "0.5": ["webhook"],
        "0.8": ["webhook"],
        "0.95": ["webhook"],
    }


async def test_the_routing_key_stays_sealed_and_bound_to_its_account(api: Api) -> None:
    account = await api.account()
    other = await api.account("Globex")
    await _destinations(api, account["id"])
    rules = await api.ok("GET", f"/accounts/{account['id']}/alerts")
    sealed = rules["pagerduty_routing_key"]

    again = await api.ok("PUT", f"/accounts/{account['id']}/alerts", rules)
    assert again["pagerduty_routing_key"] == sealed, "sent back sealed, it is kept as it is"
    copied = await api.call("PUT", f"/accounts/{other['id']}/alerts", {"pagerduty_routing_key": sealed})
    error = assert_error(copied, 422, "validation_failed")
    assert error["details"][0]["loc"] == "pagerduty_routing_key"
    short = await api.call("PUT", f"/accounts/{other['id']}/alerts", {"pagerduty_routing_key": "too-short"})
    assert assert_error(short, 422)["details"][0]["loc"] == "pagerduty_routing_key"


def _with(path: list[Any], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(SEED)
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


BAD = [
    (_with(["globalBudgetAlerts", "thresholds", 0, "actions"], ["sms"]), "globalBudgetAlerts.thresholds.0.actions.0"),
    (
        _with(["globalBudgetAlerts", "thresholds", 0, "actions"], ["disable_key"]),
        "globalBudgetAlerts.thresholds.0.actions.0",
    ),
    (_with(["globalBudgetAlerts", "thresholds", 0, "percentage"], 0), "globalBudgetAlerts.thresholds.0.percentage"),
    (_with(["globalBudgetAlerts", "thresholds", 0, "percentage"], 1.5), "globalBudgetAlerts.thresholds.0.percentage"),
    (_with(["globalBudgetAlerts", "thresholds", 0, "percentage"], 0.9), "globalBudgetAlerts.thresholds"),
    (_with(["globalBudgetAlerts", "thresholds", 0, "urgency"], "urgent"), "globalBudgetAlerts.thresholds.0.urgency"),
    (_with(["virtualKeyBudgetAlerts", "defaultThresholds"], [0.5, 2]), "virtualKeyBudgetAlerts.defaultThresholds.1"),
    (_with(["virtualKeyBudgetAlerts", "actions", "0.6"], ["webhook"]), "virtualKeyBudgetAlerts"),
    (_with(["virtualKeyBudgetAlerts", "actions", "0.5"], ["page"]), "virtualKeyBudgetAlerts.actions.0.5.0"),
    (_with(["costSpikesDetection", "thresholdMultiplier"], 1), "costSpikesDetection.thresholdMultiplier"),
    (_with(["costSpikesDetection", "thresholdMultiplier"], "three"), "costSpikesDetection.thresholdMultiplier"),
    (_with(["costSpikesDetection", "timeWindow"], 1800), "costSpikesDetection.timeWindow"),
    (_with(["costSpikesDetection", "timeWindow"], 30 * 86_400), "costSpikesDetection.timeWindow"),
    (_with(["costSpikesDetection", "timeWindow"], "3600"), "costSpikesDetection.timeWindow"),
    (_with(["costSpikesDetection", "enabled"], "yes"), "costSpikesDetection.enabled"),
    (_with(["costSpikesDetection", "sensitivity"], 2), "costSpikesDetection.sensitivity"),
]


@pytest.mark.parametrize(("body", "loc"), BAD, ids=[loc for _body, loc in BAD])
async def test_a_bad_body_is_refused_naming_the_field(api: Api, body: dict[str, Any], loc: str) -> None:
    account = await api.account()
    await _destinations(api, account["id"])
    error = assert_error(await _call(api, "PUT", body=body, account_id=account["id"]), 422, "validation_failed")
    assert loc in [detail["loc"] for detail in error["details"]], error
    assert (await api.ok("GET", f"/accounts/{account['id']}/alerts"))["account"]["thresholds"][0]["fraction"] == "0.5"


async def test_an_action_with_nowhere_to_go_is_refused(api: Api) -> None:
    account = await api.account()
    pager = {"globalBudgetAlerts": {"thresholds": [{"percentage": 0.9, "actions": ["pagerduty"]}]}}
    error = assert_error(await _call(api, "PUT", body=pager, account_id=account["id"]), 422)
    assert error["details"] == [
        {"loc": "pagerduty_routing_key", "message": "a `pagerduty` action needs the PagerDuty routing key"}
    ]
    mail = {"virtualKeyBudgetAlerts": {"defaultThresholds": [0.8], "actions": {"0.8": ["email"]}}}
    error = assert_error(await _call(api, "PUT", body=mail, account_id=account["id"]), 422)
    assert error["details"][0]["loc"] == "email_recipients"
    addressed = {
        "globalBudgetAlerts": {"thresholds": [{"percentage": 0.8, "actions": ["email"], "recipients": ["a@b.test"]}]}
    }
    assert (await _data(api, "PUT", body=addressed, account_id=account["id"]))["globalBudgetAlerts"]["thresholds"][0][
        "recipients"
    ] == ["a@b.test"], "a threshold's own recipients are somewhere to go"


async def test_who_may_read_and_change_the_settings(api: Api) -> None:
    account = await api.account()
    other = await api.account("Globex")
    tokens = {}
    for role in ("owner", "admin", "billing", "member"):
        member = await api.member(account["id"], f"{role}@acme.test", role)
        tokens[role] = await api.token(account["id"], member["id"])
    key = await api.key(account["id"])
    body = {"costSpikesDetection": {"thresholdMultiplier": 4}}

    for role in ("owner", "admin"):
        assert (await _data(api, "PUT", tokens[role], body))["costSpikesDetection"]["thresholdMultiplier"] == 4
    assert (await _data(api, "GET", tokens["billing"]))["costSpikesDetection"]["thresholdMultiplier"] == 4
    assert_error(await _call(api, "PUT", tokens["billing"], body), 403, "role_required")
    assert_error(await _call(api, "PUT", tokens["billing"], {"bad": 1}), 403, "role_required")
    for credential in (tokens["member"], key["key"]):
        assert_error(await _call(api, "GET", credential), 403, "role_required")
        assert_error(await _call(api, "PUT", credential, body), 403, "role_required")
    assert_error(await _call(api, "GET", tokens["owner"], account_id=other["id"]), 404, "account_not_found")
    error = assert_error(await _call(api, "GET"), 422, "validation_failed")
    assert error["details"][0]["loc"] == "query.account_id", "the master key names the account"
    assert_error(await _call(api, "PUT", body=body, account_id="nope"), 404, "account_not_found")


NOW = datetime(2026, 3, 10, 12, 20, tzinfo=UTC)
USD = 1_000_000_000


async def test_the_spike_settings_decide_what_the_detector_fires_on(api: Api) -> None:
    """A key that spent 0.10 an hour for a week spends 2.00 in the current hour: 20 times its usual."""
    api.clock.at = NOW
    account = await api.account()
    key = await api.key(account["id"])
    hours = [NOW - timedelta(hours=n) for n in range(1, 169)]
    events = [(f"base-{n}", at, USD // 10) for n, at in enumerate(hours)] + [
        ("now", NOW - timedelta(minutes=5), 2 * USD)
    ]
    await api.ledger.record_many(
        [
            UsageEvent(
                id=event_id,
                timestamp=at,
                account_id=account["id"],
                key_id=key["id"],
                axis=Axis.LLM,
                provider="openai",
                model="gpt-4o",
                canonical_model="gpt-4o",
                operation="chat.completions",
                cost_nano=cost,
            )
            for event_id, at, cost in events
        ]
    )
    scanner = AnomalyScanner(api.ledger, Alerter(api.ledger, api.services.directory), interval=60, clock=lambda: NOW)

    async def spikes(**settings: Any) -> list[tuple[str, str]]:
        await _data(api, "PUT", body={"costSpikesDetection": settings}, account_id=account["id"])
        fired = await scanner.scan()
        return sorted((alert.rule, alert.scope) for alert in fired.alerts)

    assert await spikes(thresholdMultiplier=25) == [], "20 times is not above 25 times"
    assert await spikes(enabled=False, thresholdMultiplier=10) == [], "detection off"
    assert await spikes(thresholdMultiplier=10) == [("anomaly:cost_spike", "account"), ("anomaly:cost_spike", "key")]
    history = await api.ok("GET", f"/accounts/{account['id']}/alerts/history")
    spike = next(item for item in history["data"] if item["scope"] == "key")
    assert (spike["evidence"]["observed"], spike["evidence"]["baseline"]) == ("2.00", "0.10")
    assert "more than 10x" in spike["text"]
