"""`GET /api/admin/analytics/usage/trends` (seed 004) over HTTP, on a ledger with known answers: the period's
slots in the account's zone, totals, the peak slot, active keys and error rate per slot, and growth on the
period before; who may ask; and bad parameters refused in the error shape."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from admin_client import MASTER, Api, assert_error

from farebox.core.events import Axis, Status, UsageEvent

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 3, 10, 12, 20, tzinfo=UTC)
"""17:50 on 10 March in Kolkata (+05:30): the current local hour began at 11:30Z."""
USD = 1_000_000_000

# (id, timestamp, key, cost in nano-USD, input tokens, output tokens, failed)
EVENTS = [
    ("now-a", "2026-03-10T11:40:00", "a", USD, 100, 50, False),  # the current hour, 17:10 local
    ("now-b", "2026-03-10T11:45:00", "b", 2 * USD, 300, 0, True),  # the current hour, failed
    ("morning", "2026-03-10T05:31:00", "a", USD // 2, 50, 0, False),  # 11:01 local
    ("yesterday", "2026-03-09T12:29:00", "a", USD, 1_000, 0, False),  # 17:59 on the 9th: the 24 hours before
    ("older", "2026-03-08T11:00:00", "b", 7 * USD, 10, 0, False),  # 16:30 on the 8th: in neither
    ("last-week", "2026-03-02T10:00:00", "b", 4 * USD, 10, 0, False),  # the 7 days before the last 7
]


async def _acme(api: Api) -> dict[str, Any]:
    api.clock.at = NOW
    account = await api.account("Acme", plan="enterprise", timezone="Asia/Kolkata")
    ids: dict[str, Any] = {"account": account["id"]}
    for name, role in (("ada", "owner"), ("bill", "billing"), ("mo", "member")):
        member = await api.member(account["id"], f"{name}@acme.test", role)
        ids[name] = await api.token(account["id"], member["id"])
    for name in ("a", "b"):
        key = await api.key(account["id"], name=f"key-{name}")
        ids[name], ids[f"{name}_secret"] = key["id"], key["key"]
    await api.ledger.record_many(
        [
            UsageEvent(
                id=event_id,
                timestamp=datetime.fromisoformat(at).replace(tzinfo=UTC),
                account_id=account["id"],
                key_id=ids[key],
                axis=Axis.LLM,
                provider="openai",
                model="gpt-4o",
                canonical_model="gpt-4o",
                operation="chat.completions",
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                cost_nano=cost,
                status=Status.ERROR if failed else Status.OK,
            )
            for event_id, at, key, cost, tokens_in, tokens_out, failed in EVENTS
        ]
    )
    return ids


async def _trends(api: Api, token: str = MASTER, **params: str) -> Any:
    response = await api.client.get(
        "/api/admin/analytics/usage/trends", params=params, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and set(body) == {"success", "data"}
    return body["data"]


async def test_the_last_24_hours_hour_by_hour_in_the_account_s_zone(api: Api) -> None:
    ids = await _acme(api)
    data = await _trends(api, period="24h", granularity="hour", account_id=ids["account"])
    assert (data["period"], data["granularity"], data["timezone"]) == ("24h", "hour", "Asia/Kolkata")
    assert data["totalDataPoints"] == 24 == len(data["timeline"])
    assert data["timeline"][0]["timestamp"] == "2026-03-09T12:30:00Z", "18:00 on the 9th, local"
    last = data["timeline"][-1]
    assert last["timestamp"] == "2026-03-10T11:30:00Z", "the current hour, 17:00 local"
    assert (last["requests"], last["activeVirtualKeys"], last["errorRate"], last["cost"]) == (2, 2, 0.5, 3)
    morning = next(slot for slot in data["timeline"] if slot["timestamp"] == "2026-03-10T05:30:00Z")
    assert (morning["requests"], morning["tokens"], morning["activeVirtualKeys"]) == (1, 50, 1)
    assert sum(slot["requests"] for slot in data["timeline"]) == 3

    metrics = data["metrics"]
    assert metrics == {
        "totalRequests": 3,
        "totalTokens": 500,
        "totalCost": 3.5,
        "averageRequestsPerHour": 0.12,  # 3 / 24 = 0.125, to even cents
        "peakRequestsPerHour": 2,
        "averageCostPerRequest": 1.166666667,
    }
    growth = data["trends"]
    assert (growth["requestGrowth"], growth["costGrowth"]) == (2, 2.5), "3 requests and $3.50 on 1 and $1.00"
    assert growth["efficiencyImprovement"] == pytest.approx(1 - (3.5 / 500) / (1 / 1_000)), "per token: 7x dearer"


async def test_seven_days_day_by_day_and_their_growth(api: Api) -> None:
    ids = await _acme(api)
    data = await _trends(api, period="7d", granularity="day", account_id=ids["account"])
    days = [slot["timestamp"] for slot in data["timeline"]]
    assert days == [f"2026-03-{day:02d}T18:30:00Z" for day in range(3, 10)], "local midnights, 4 to 10 March"
    assert [slot["requests"] for slot in data["timeline"]] == [0, 0, 0, 0, 1, 1, 3]
    assert data["metrics"]["totalCost"] == 11.5 and data["metrics"]["peakRequestsPerDay"] == 3
    assert data["trends"]["requestGrowth"] == 4, "5 requests in the last 7 days against 1 in the 7 before"
    exact = Decimal(str(data["metrics"]["averageCostPerRequest"]))
    assert exact == Decimal("2.3"), "11.5 USD over 5 requests, exact"


async def test_the_last_hour_minute_by_minute_from_the_events(api: Api) -> None:
    ids = await _acme(api)
    data = await _trends(api, period="1h", granularity="minute", account_id=ids["account"])
    assert (data["granularity"], data["totalDataPoints"], len(data["timeline"])) == ("minute", 60, 60)
    stamps = [slot["timestamp"] for slot in data["timeline"]]
    assert (stamps[0], stamps[-1]) == ("2026-03-10T11:21:00Z", "2026-03-10T12:20:00Z"), "the current minute last"
    busy = {slot["timestamp"]: slot for slot in data["timeline"] if slot["requests"]}
    assert set(busy) == {"2026-03-10T11:40:00Z", "2026-03-10T11:45:00Z"}
    assert (busy["2026-03-10T11:40:00Z"]["tokens"], busy["2026-03-10T11:40:00Z"]["errorRate"]) == (150, 0)
    assert (busy["2026-03-10T11:45:00Z"]["cost"], busy["2026-03-10T11:45:00Z"]["errorRate"]) == (2, 1)
    assert data["metrics"]["peakRequestsPerMinute"] == 1 and data["metrics"]["averageRequestsPerMinute"] == 0.03
    assert data["trends"]["requestGrowth"] is None, "nothing in the hour before"
    two = await _trends(api, period="2h", granularity="minute", account_id=ids["account"])
    assert (two["totalDataPoints"], two["metrics"]["totalRequests"]) == (120, 2)


async def test_an_empty_period_has_every_slot_and_no_growth(api: Api) -> None:
    ids = await _acme(api)
    api.clock.at = datetime(2027, 1, 1, tzinfo=UTC)
    data = await _trends(api, period="2w", granularity="week", account_id=ids["account"])
    assert data["metrics"]["totalRequests"] == 0 and data["metrics"]["averageCostPerRequest"] is None
    assert data["trends"] == {"requestGrowth": None, "costGrowth": None, "efficiencyImprovement": None}
    assert data["totalDataPoints"] == len(data["timeline"]) == 3, "14 local days touch three Monday weeks"


async def test_who_may_ask(api: Api) -> None:
    ids = await _acme(api)
    assert (await _trends(api, ids["bill"], period="24h"))["metrics"]["totalRequests"] == 3, "billing: its account"
    assert (await _trends(api, ids["ada"], period="24h"))["metrics"]["totalRequests"] == 3
    path = "/api/admin/analytics/usage/trends"
    refused = await api.client.get(path, headers={"authorization": f"Bearer {ids['mo']}"})
    assert_error(refused, 403, "role_required")
    as_key = await api.client.get(path, headers={"authorization": f"Bearer {ids['a_secret']}"})
    assert_error(as_key, 403, "role_required")
    assert_error(await api.client.get(path), 401)
    other = await api.account("Elsewhere")
    owner = await api.member(other["id"], "o@elsewhere.test", "owner")
    stranger = await api.token(other["id"], owner["id"])
    asked = await api.client.get(
        path, params={"account_id": ids["account"]}, headers={"authorization": f"Bearer {stranger}"}
    )
    assert_error(asked, 404, "account_not_found")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "7x"}, "period"),
        ({"period": "0d"}, "period"),
        ({"period": "200d"}, "period"),
        ({"granularity": "second"}, "granularity"),
        ({"granularity": "minute"}, "granularity"),
        ({"period": "3h", "granularity": "minute"}, "granularity"),
        ({"period": "24h", "granularity": "day"}, "granularity"),
    ],
)
async def test_bad_parameters_are_refused_in_the_error_shape(api: Api, params: dict[str, str], field: str) -> None:
    await _acme(api)
    response = await api.client.get(
        "/api/admin/analytics/usage/trends", params=params, headers={"authorization": f"Bearer {MASTER}"}
    )
    error = assert_error(response, 422)
    assert field in error["message"]
