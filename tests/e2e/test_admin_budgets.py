"""`GET /api/admin/budgets/status` (seed 004) over HTTP, on a ledger with known answers: the month so far against
the account's cap in its own zone, its projection, the caps at or past an alert threshold, spend by key and by
provider, farebox's per-cap detail beside them, every account at once for the master key, and who may ask."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from admin_client import MASTER, Api, assert_error

from farebox.core.events import Axis, UsageEvent

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 3, 10, 12, 20, tzinfo=UTC)
"""17:50 on 10 March in Kolkata (+05:30): the local month began at 2026-02-28T18:30Z, 841,800 s ago."""
USD = 1_000_000_000

# (id, timestamp, key, provider, cost in nano-USD)
EVENTS = [
    ("feb", "2026-02-28T18:00:00", "free", "anthropic", 7 * USD),  # 23:30 on 28 February, local: last month
    ("zone", "2026-02-28T19:00:00", "free", "openai", 3 * USD),  # 00:30 on 1 March, local: this month
    ("prod-1", "2026-03-05T06:00:00", "prod", "openai", 30 * USD),
    ("prod-2", "2026-03-09T06:00:00", "prod", "anthropic", 12 * USD),
    ("dev-1", "2026-03-09T10:00:00", "dev", "openai", 2 * USD),  # yesterday: not in dev's daily cap
    ("dev-2", "2026-03-10T10:00:00", "dev", "google", 21 * USD // 2),  # today: 10.50 of dev's 10.00 a day
]
SEED_GLOBAL = {
    "maxBudget",
    "currentSpend",
    "remainingBudget",
    "utilizationPercentage",
    "projectedMonthlySpend",
    "onTrack",
    "daysRemaining",
    "averageDailySpend",
}


def _event(
    event_id: str, at: str, account_id: str, key_id: str, provider: str, cost: int, member_id: str | None = None
) -> UsageEvent:
    return UsageEvent(
        id=event_id,
        timestamp=datetime.fromisoformat(at).replace(tzinfo=UTC),
        account_id=account_id,
        key_id=key_id,
        member_id=member_id,
        axis=Axis.LLM,
        provider=provider,
        model="m",
        canonical_model="m",
        operation="chat.completions",
        cost_nano=cost,
    )


async def _acme(api: Api) -> dict[str, Any]:
    """Acme (Kolkata, 100.00 a month): Mo (a member capped at 35.00) holds prod (50.00 a month); dev has 10.00 a
    day, free no cap, old is revoked."""
    api.clock.at = NOW
    account = await api.account("Acme", plan="enterprise", timezone="Asia/Kolkata", spend_cap="100.00")
    ids: dict[str, Any] = {"account": account["id"]}
    for name, role in (("ada", "owner"), ("adam", "admin"), ("bill", "billing")):
        member = await api.member(account["id"], f"{name}@acme.test", role)
        ids[name] = await api.token(account["id"], member["id"])
    mo = await api.member(account["id"], "mo@acme.test", spend_cap="35.00")
    ids["mo"], ids["mo_token"] = mo["id"], await api.token(account["id"], mo["id"])
    caps = {"prod": {"spend_cap": "50.00", "member_id": mo["id"]}, "dev": {"spend_cap": "10.00", "cap_period": "daily"}}
    for name in ("prod", "dev", "free", "old"):
        key = await api.key(account["id"], name=name, **caps.get(name, {}))
        ids[name], ids[f"{name}_secret"] = key["id"], key["key"]
    await api.ok("POST", f"/virtual-keys/{ids['old']}/revoke")
    owner = {"prod": mo["id"]}
    await api.ledger.record_many(
        [_event(e, at, account["id"], ids[k], p, c, owner.get(k)) for e, at, k, p, c in EVENTS]
    )
    return ids


async def _status(api: Api, token: str = MASTER, **params: str) -> Any:
    response = await api.client.get(
        "/api/admin/budgets/status", params=params, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and set(body) == {"success", "data"}
    return body["data"]


async def test_the_month_so_far_against_the_account_s_cap(api: Api) -> None:
    ids = await _acme(api)
    data = await _status(api, account_id=ids["account"])

    assert set(data) >= {"globalBudget", "budgetAlerts", "budgetBreakdown"}
    month = data["globalBudget"]
    assert set(month) >= SEED_GLOBAL
    assert (month["maxBudget"], month["currentSpend"], month["remainingBudget"]) == (100, 57.5, 42.5)
    assert month["utilizationPercentage"] == 0.575
    # 57.50 over 841,800 s of a 2,678,400 s month, floored to the nano-USD
    assert Decimal(str(month["projectedMonthlySpend"])) == Decimal("182.950819672")
    assert month["onTrack"] is False, "182.95 projected against a cap of 100"
    assert month["daysRemaining"] == 22, "10 to 31 March, today included"
    assert Decimal(str(month["averageDailySpend"])) == Decimal("5.901639344")
    assert (month["timezone"], month["accounts"]) == ("Asia/Kolkata", 1)

    providers = data["budgetBreakdown"]["byProvider"]
    assert list(providers) == ["openai", "anthropic", "google"], "by spend, the February anthropic event left out"
    assert providers["openai"] == {"spend": 35, "percentage": 0.6087}
    assert providers["anthropic"] == {"spend": 12, "percentage": 0.2087}
    assert providers["google"] == {"spend": 10.5, "percentage": 0.1826}
    assert sum(Decimal(str(p["spend"])) for p in providers.values()) == Decimal(str(month["currentSpend"]))


async def test_caps_at_or_past_their_thresholds_raise_alerts(api: Api) -> None:
    ids = await _acme(api)
    alerts = (await _status(api, account_id=ids["account"]))["budgetAlerts"]

    assert [(a["scope"], a["scopeId"], a["level"], a["percentage"]) for a in alerts] == [
        ("member", ids["mo"], "critical", 1),  # 42.00 of 35.00: spent
        ("key", ids["dev"], "critical", 1),  # 10.50 of 10.00 today: spent
        ("key", ids["prod"], "warning", 0.8),  # 42.00 of 50.00: past 0.8, short of 0.95
        ("account", ids["account"], "warning", 0.5),  # 57.50 of 100.00
    ]
    prod = alerts[2]
    assert set(prod) >= {"level", "message", "keyId", "percentage", "remainingBudget"}
    assert (prod["keyId"], prod["remainingBudget"], prod["utilizationPercentage"]) == (ids["prod"], 8, 0.84)
    assert prod["message"] == "Virtual key 'prod' has reached 80% of its monthly budget"
    assert alerts[1]["message"] == "Virtual key 'dev' has spent its daily budget of 10 USD"
    assert (alerts[1]["remainingBudget"], alerts[1]["period"]) == (0, "daily")
    assert alerts[0]["keyId"] is None and alerts[3]["accountId"] == ids["account"]

    rules = {"keys": {"thresholds": [{"fraction": "0.95"}]}, "account": {"enabled": False}}
    await api.ok("PUT", f"/accounts/{ids['account']}/alerts", rules)
    alerts = (await _status(api, account_id=ids["account"]))["budgetAlerts"]
    assert [a["scopeId"] for a in alerts] == [ids["mo"], ids["dev"]], "prod below 0.95, the account's rules off"


async def test_spend_and_utilisation_of_every_live_key(api: Api) -> None:
    ids = await _acme(api)
    data = await _status(api, token=ids["bill"])
    keys = data["budgetBreakdown"]["byVirtualKey"]

    assert [key["keyName"] for key in keys] == ["dev", "prod", "free"], "fullest cap first; old is revoked"
    dev, prod, free = keys
    assert set(prod) >= {"keyId", "keyName", "maxBudget", "currentSpend", "utilizationPercentage"}
    assert (dev["maxBudget"], dev["currentSpend"], dev["utilizationPercentage"], dev["period"]) == (
        10,
        10.5,
        1.05,
        "daily",
    )
    assert (prod["keyId"], prod["maxBudget"], prod["currentSpend"], prod["utilizationPercentage"]) == (
        ids["prod"],
        50,
        42,
        0.84,
    )
    assert (free["maxBudget"], free["currentSpend"], free["utilizationPercentage"]) == (None, 3, None)
    assert {key["status"] for key in keys} == {"active"}


async def test_farebox_s_own_status_of_every_cap_stays_in_the_answer(api: Api) -> None:
    ids = await _acme(api)
    data = await _status(api, token=ids["ada"])

    (account,) = data["accounts"]
    assert (account["id"], account["scope"], account["cap"], account["spent"], account["reserved"]) == (
        ids["account"],
        "account",
        "100.00",
        "57.50",
        "0.00",
    )
    assert (account["remaining"], account["utilization"], account["period"]) == ("42.50", "0.5750", "monthly")
    assert account["period_start"] == "2026-02-28T18:30:00+00:00"
    mo = next(member for member in data["members"] if member["id"] == ids["mo"])
    assert (mo["cap"], mo["spent"], mo["on_track"]) == ("35.00", "42.00", False)
    assert [key["name"] for key in data["keys"]] == ["prod", "dev", "free"]
    assert len(data["members"]) == 4


async def test_the_master_key_sees_every_account_each_in_its_own_month(api: Api) -> None:
    await _acme(api)
    globex = await api.account("Globex", spend_cap="20.00")
    key = await api.key(globex["id"], name="g")
    await api.ledger.record_many([_event("g", "2026-03-10T09:00:00", globex["id"], key["id"], "openai", 5 * USD)])

    month = (data := await _status(api))["globalBudget"]
    assert (month["maxBudget"], month["currentSpend"], month["utilizationPercentage"]) == (120, 62.5, 0.5208)
    # Acme's 182.950819672 and Globex's 5.00 over 822,000 s of its UTC month
    assert Decimal(str(month["projectedMonthlySpend"])) == Decimal("199.242790474")
    assert Decimal(str(month["averageDailySpend"])) == Decimal("6.427186789")
    assert (month["timezone"], month["accounts"], month["daysRemaining"]) == ("UTC", 2, 22)
    assert data["budgetBreakdown"]["byProvider"]["openai"]["spend"] == 40
    assert len(data["accounts"]) == 2 and key["id"] in {k["keyId"] for k in data["budgetBreakdown"]["byVirtualKey"]}

    await api.ok("PATCH", f"/accounts/{globex['id']}", {"cap_period": "weekly"})
    month = (await _status(api))["globalBudget"]
    assert (month["maxBudget"], month["remainingBudget"], month["onTrack"]) == (None, None, None), "no month's cap"
    assert month["currentSpend"] == 62.5
    one = (await _status(api, account_id=globex["id"]))["globalBudget"]
    assert (one["maxBudget"], one["currentSpend"], one["timezone"]) == (None, 5, "UTC")


async def test_who_may_read_the_budget_status(api: Api) -> None:
    ids = await _acme(api)
    other = await api.account("Globex")
    for token in (ids["ada"], ids["adam"], ids["bill"]):
        assert (await _status(api, token=token))["globalBudget"]["maxBudget"] == 100
    for token in (ids["mo_token"], ids["prod_secret"]):
        response = await api.client.get("/api/admin/budgets/status", headers={"authorization": f"Bearer {token}"})
        assert_error(response, 403, "role_required")
    foreign = await api.client.get(
        "/api/admin/budgets/status",
        params={"account_id": other["id"]},
        headers={"authorization": f"Bearer {ids['ada']}"},
    )
    assert_error(foreign, 404, "account_not_found")
    unknown = await api.client.get(
        "/api/admin/budgets/status", params={"account_id": "nope"}, headers={"authorization": f"Bearer {MASTER}"}
    )
    assert_error(unknown, 404)
    assert_error(await api.client.get("/api/admin/budgets/status"), 401)


async def test_a_new_month_starts_from_nothing(api: Api) -> None:
    ids = await _acme(api)
    api.clock.at = datetime(2026, 3, 31, 19, 0, tzinfo=UTC)  # 00:30 on 1 April in Kolkata
    month = (await _status(api, account_id=ids["account"]))["globalBudget"]
    assert (month["currentSpend"], month["projectedMonthlySpend"], month["onTrack"]) == (0, 0, True)
    assert (month["daysRemaining"], month["remainingBudget"]) == (30, 100)
