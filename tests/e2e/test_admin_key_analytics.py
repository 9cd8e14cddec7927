"""`GET /api/admin/virtual-keys/{key_id}/analytics` and `POST /api/admin/virtual-keys/compare` (seed 004) over
HTTP, on SQLite and PostgreSQL ledgers with known answers: a key's summary, budget and projection, its split by
model, operation and time of day in the account's zone, each day's peak hour and errors; three keys ranked on
each metric; who may ask; and bad parameters refused in the error shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from admin_client import MASTER, Api, assert_error

from farebox.core.events import Axis, Status, UsageEvent

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
"""15:00 on 10 March in Tokyo (+09:00): 9 days and 15 hours into March, a month of 31 days."""
USD = 1_000_000_000
CENT = USD // 100
MODELS = {"gpt-4o": "chat.completions", "gpt-4o-mini": "chat.completions", "text-embedding-3-small": "embeddings"}

# (id, UTC time, key, model, cost in nano-USD, input tokens, output tokens, latency ms, failed); Tokyo time noted
EVENTS = [
    ("a1", "2026-03-09T05:10", "prod", "gpt-4o", USD, 100, 50, 1_000, False),  # 14:10 on the 9th
    ("a2", "2026-03-09T05:40", "prod", "gpt-4o", 0, 10, 0, 200, True),  # 14:40 on the 9th, failed
    ("a3", "2026-03-09T00:30", "prod", "gpt-4o-mini", 50 * CENT, 200, 100, 600, False),  # 09:30 on the 9th
    ("a4", "2026-03-09T15:30", "prod", "text-embedding-3-small", 20 * CENT, 1_000, 0, 100, False),  # 00:30 on the 10th
    ("a5", "2026-03-10T01:00", "prod", "gpt-4o-mini", 50 * CENT, 200, 100, 600, False),  # 10:00 on the 10th
    ("a6", "2026-03-10T01:50", "prod", "gpt-4o-mini", 50 * CENT, 200, 100, 600, False),  # 10:50 on the 10th
    ("a7", "2026-03-02T03:00", "prod", "gpt-4o", 5 * USD, 1_000, 500, 2_000, False),  # 2 March: 30 days, not 7
    ("a8", "2026-02-20T03:00", "prod", "gpt-4o", 3 * USD, 1_000, 500, 2_000, False),  # February: not this budget
    ("b1", "2026-03-09T05:15", "test", "gpt-4o", 4 * USD, 10, 10, 3_000, False),
    ("b2", "2026-03-08T02:00", "test", "gpt-4o", 0, 5, 0, 100, True),
    ("c1", "2026-03-07T10:00", "batch", "gpt-4o-mini", 77 * CENT, 100, 100, 800, False),
]


@pytest.fixture
def api(api_each_backend: Api) -> Api:
    return api_each_backend


async def _acme(api: Api) -> dict[str, Any]:
    api.clock.at = NOW
    account = await api.account("Acme", plan="enterprise", timezone="Asia/Tokyo")
    ids: dict[str, Any] = {"account": account["id"]}
    for name, role in (("ada", "owner"), ("al", "admin"), ("bill", "billing"), ("mo", "member")):
        member = await api.member(account["id"], f"{name}@acme.test", role)
        ids[name] = await api.token(account["id"], member["id"])
    caps = {"prod": {"spend_cap": "10"}, "test": {}, "batch": {"spend_cap": "5"}, "idle": {}}
    for name, cap in caps.items():
        key = await api.key(account["id"], name=f"{name} key", **cap)
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
                model=model,
                canonical_model=model,
                operation=MODELS[model],
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                cost_nano=cost,
                latency_ms=latency,
                status=Status.ERROR if failed else Status.OK,
            )
            for event_id, at, key, model, cost, tokens_in, tokens_out, latency, failed in EVENTS
        ]
    )
    return ids


def _data(response: Any) -> Any:
    """The answer's `data`, its numbers read as exact decimals."""
    assert response.status_code == 200, response.text
    body = json.loads(response.text, parse_float=Decimal)
    assert body["success"] is True and set(body) == {"success", "data"}
    return body["data"]


async def _analytics(api: Api, key_id: str, token: str = MASTER, **params: str) -> Any:
    response = await api.client.get(
        f"/api/admin/virtual-keys/{key_id}/analytics", params=params, headers={"authorization": f"Bearer {token}"}
    )
    return _data(response)


async def _compare(api: Api, body: dict[str, Any], token: str = MASTER) -> Any:
    return await api.client.post(
        "/api/admin/virtual-keys/compare", json=body, headers={"authorization": f"Bearer {token}"}
    )


async def test_a_key_s_week_in_the_seed_s_fields_with_known_answers(api: Api) -> None:
    ids = await _acme(api)
    data = await _analytics(api, ids["prod"], period="7d")
    assert set(data) == {
        *("keyId", "keyName", "period", "summary", "budgetStatus", "usageBreakdown", "dailyTrend"),
        *("breakdown", "timezone"),
    }
    assert (data["keyId"], data["keyName"], data["period"]) == (ids["prod"], "prod key", "7d")
    assert (data["breakdown"], data["timezone"]) == ("daily", "Asia/Tokyo")
    assert data["summary"] == {
        "totalRequests": 6,
        "successfulRequests": 5,
        "failedRequests": 1,
        "totalTokens": 2_060,
        "inputTokens": 1_710,
        "outputTokens": 350,
        "totalCost": Decimal("2.7"),
        "averageLatency": Decimal("0.517"),  # 3,100 ms over 6 requests, in seconds
        "errorRate": Decimal("0.1667"),
        "costPerRequest": Decimal("0.45"),
        "costPerToken": Decimal("0.00131068"),  # 2.7 / 2,060 to the nano-USD
    }
    breakdown = data["usageBreakdown"]
    assert breakdown["byModel"] == {
        "gpt-4o-mini": {"requests": 3, "tokens": 900, "cost": Decimal("1.5"), "percentage": Decimal("0.5556")},
        "gpt-4o": {"requests": 2, "tokens": 160, "cost": 1, "percentage": Decimal("0.3704")},
        "text-embedding-3-small": {
            "requests": 1,
            "tokens": 1_000,
            "cost": Decimal("0.2"),
            "percentage": Decimal("0.0741"),
        },
    }
    assert list(breakdown["byModel"]) == ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"], "by descending cost"
    assert breakdown["byOperation"] == {
        "chat.completions": {"requests": 5, "cost": Decimal("2.5"), "percentage": Decimal("0.9259")},
        "embeddings": {"requests": 1, "cost": Decimal("0.2"), "percentage": Decimal("0.0741")},
    }
    assert breakdown["byTimeOfDay"] == {
        "00-06": {"requests": 1, "cost": Decimal("0.2")},  # 00:30 Tokyo, 15:30 UTC the day before
        "06-12": {"requests": 3, "cost": Decimal("1.5")},
        "12-18": {"requests": 2, "cost": 1},
        "18-24": {"requests": 0, "cost": 0},
    }
    trend = data["dailyTrend"]
    assert [day["date"] for day in trend] == [f"2026-03-{day:02d}" for day in range(4, 11)], "Tokyo dates"
    assert trend[5] == {
        "date": "2026-03-09",
        "requests": 3,
        "tokens": 460,
        "cost": Decimal("1.5"),
        "peakHour": 14,
        "errors": 1,
    }
    assert trend[6] == {
        "date": "2026-03-10",
        "requests": 3,
        "tokens": 1_600,
        "cost": Decimal("1.2"),
        "peakHour": 10,
        "errors": 0,
    }
    assert trend[0] == {"date": "2026-03-04", "requests": 0, "tokens": 0, "cost": 0, "peakHour": None, "errors": 0}


async def test_budget_status_is_the_cap_s_current_period_projected_linearly(api: Api) -> None:
    ids = await _acme(api)
    prod = await _analytics(api, ids["prod"], period="30d")
    assert prod["summary"]["totalCost"] == Decimal("10.7"), "30 days reach back into February"
    assert prod["budgetStatus"] == {
        "maxBudget": 10,
        "usedBudget": Decimal("7.7"),  # March (Tokyo) only: February's 3 USD is another period
        "reservedBudget": 0,
        "remainingBudget": Decimal("2.3"),
        "utilizationPercentage": Decimal("0.77"),
        "projectedMonthlySpend": Decimal("24.8"),  # 7.7 over 9 days 15 hours, scaled to 31 days
        "onTrackForBudget": False,
        "budgetPeriod": "monthly",
        "periodStart": "2026-02-28T15:00:00Z",
        "periodEnd": "2026-03-31T15:00:00Z",
    }
    batch = (await _analytics(api, ids["batch"]))["budgetStatus"]
    assert (batch["usedBudget"], batch["projectedMonthlySpend"], batch["onTrackForBudget"]) == (
        Decimal("0.77"),
        Decimal("2.48"),
        True,
    )
    uncapped = (await _analytics(api, ids["test"]))["budgetStatus"]
    assert uncapped["maxBudget"] is None and uncapped["remainingBudget"] is None
    assert uncapped["utilizationPercentage"] is None and uncapped["onTrackForBudget"] is None
    assert uncapped["usedBudget"] == 4 and uncapped["projectedMonthlySpend"] == Decimal("12.883116883")


async def test_the_last_24_hours_by_hour_and_by_day(api: Api) -> None:
    ids = await _acme(api)
    data = await _analytics(api, ids["prod"], period="24h", breakdown="hourly")
    assert "dailyTrend" not in data and data["breakdown"] == "hourly"
    hours = data["hourlyTrend"]
    assert len(hours) == 24
    assert (hours[0]["timestamp"], hours[-1]["timestamp"]) == ("2026-03-09T07:00:00Z", "2026-03-10T06:00:00Z")
    busiest = next(hour for hour in hours if hour["timestamp"] == "2026-03-10T01:00:00Z")
    assert busiest == {"timestamp": "2026-03-10T01:00:00Z", "requests": 2, "tokens": 600, "cost": 1, "errors": 0}
    assert data["summary"]["totalRequests"] == 3 == sum(hour["requests"] for hour in hours), "14:xx on the 9th left out"
    assert data["usageBreakdown"]["byModel"] == {
        "gpt-4o-mini": {"requests": 2, "tokens": 600, "cost": 1, "percentage": Decimal("0.8333")},
        "text-embedding-3-small": {
            "requests": 1,
            "tokens": 1_000,
            "cost": Decimal("0.2"),
            "percentage": Decimal("0.1667"),
        },
    }
    daily = (await _analytics(api, ids["prod"], period="24h"))["dailyTrend"]
    assert [(day["date"], day["requests"], day["peakHour"]) for day in daily] == [
        ("2026-03-09", 0, None),
        ("2026-03-10", 3, 10),
    ]


async def test_an_idle_key_has_zeros_and_no_rates(api: Api) -> None:
    ids = await _acme(api)
    summary = (await _analytics(api, ids["idle"], period="1w"))["summary"]
    assert summary["totalRequests"] == 0 and summary["totalCost"] == 0
    assert [summary[name] for name in ("averageLatency", "errorRate", "costPerRequest", "costPerToken")] == [None] * 4


async def test_three_keys_ranked_on_each_metric(api: Api) -> None:
    ids = await _acme(api)
    a, b, c = ids["prod"], ids["test"], ids["batch"]
    metrics = ["requests", "cost", "latency", "errorRate", "failedRequests"]
    data = _data(await _compare(api, {"keyIds": [a, b, c], "period": "7d", "metrics": metrics}))
    assert (data["period"], data["metrics"]) == ("7d", metrics)
    assert [(key["keyId"], key["keyName"], key["timezone"]) for key in data["keys"]] == [
        (a, "prod key", "Asia/Tokyo"),
        (b, "test key", "Asia/Tokyo"),
        (c, "batch key", "Asia/Tokyo"),
    ]
    prod = data["keys"][0]["metrics"]
    assert prod["requests"] == {"value": 6, "share": Decimal("0.6667"), "rank": 1}
    assert prod["cost"] == {"value": Decimal("2.7"), "share": Decimal("0.3614"), "rank": 2}
    assert prod["latency"] == {"value": Decimal("0.517"), "share": None, "rank": 3}
    assert data["keys"][1]["metrics"]["latency"] == {"value": Decimal("1.55"), "share": None, "rank": 1}
    assert data["keys"][2]["metrics"]["errorRate"] == {"value": 0, "share": None, "rank": 3}
    comparison = data["comparison"]
    assert comparison["requests"] == {"total": 9, "first": [a], "ranking": [a, b, c]}
    assert comparison["cost"] == {"total": Decimal("7.47"), "first": [b], "ranking": [b, a, c]}
    assert comparison["latency"] == {"total": Decimal("0.778"), "first": [b], "ranking": [b, c, a]}, "7,000 ms / 9"
    assert comparison["errorRate"] == {"total": Decimal("0.2222"), "first": [b], "ranking": [b, a, c]}
    assert comparison["failedRequests"] == {"total": 2, "first": [a, b], "ranking": [a, b, c]}, "a tie shares rank 1"
    assert [key["metrics"]["failedRequests"]["rank"] for key in data["keys"]] == [1, 1, 3]


async def test_a_key_without_usage_is_compared_without_a_rank_where_it_has_no_value(api: Api) -> None:
    ids = await _acme(api)
    data = _data(await _compare(api, {"keyIds": [ids["idle"], ids["batch"]], "period": "24h"}))
    assert len(data["metrics"]) == 11, "every metric by default"
    idle = data["keys"][0]["metrics"]
    assert idle["requests"] == {"value": 0, "share": None, "rank": 1}, "nobody made a request in the last 24 hours"
    assert idle["latency"] == {"value": None, "share": None, "rank": None}
    assert data["comparison"]["latency"] == {"total": None, "first": [], "ranking": []}


async def test_the_master_key_compares_keys_of_several_accounts_each_in_its_zone(api: Api) -> None:
    ids = await _acme(api)
    other = await api.account("Globex")
    globex = await api.key(other["id"], name="globex key")
    event = UsageEvent(
        id="g1",
        timestamp=datetime(2026, 3, 9, 23, 0, tzinfo=UTC),
        account_id=other["id"],
        key_id=globex["id"],
        axis=Axis.LLM,
        provider="openai",
        model="gpt-4o",
        canonical_model="gpt-4o",
        operation="chat.completions",
        cost_nano=2 * USD,
    )
    await api.ledger.record_many([event])
    data = _data(await _compare(api, {"keyIds": [globex["id"], ids["prod"]], "metrics": ["cost"]}))
    assert [(key["timezone"], key["metrics"]["cost"]["value"]) for key in data["keys"]] == [
        ("UTC", 2),
        ("Asia/Tokyo", Decimal("2.7")),
    ]
    refused = await _compare(api, {"keyIds": [ids["prod"], globex["id"]]}, token=ids["ada"])
    error = assert_error(refused, 404, "virtual_key_not_found")
    assert globex["id"] in error["message"] and ids["prod"] not in error["message"]


@pytest.mark.parametrize("role", ["ada", "al", "bill"])
async def test_owners_admins_and_billing_members_see_their_account_s_keys(api: Api, role: str) -> None:
    ids = await _acme(api)
    data = await _analytics(api, ids["prod"], ids[role], period="7d")
    assert data["summary"]["totalRequests"] == 6
    compared = _data(await _compare(api, {"keyIds": [ids["prod"], ids["test"]], "metrics": ["requests"]}, ids[role]))
    assert compared["comparison"]["requests"]["first"] == [ids["prod"]]


async def test_who_may_not_ask(api: Api) -> None:
    ids = await _acme(api)
    path = f"/api/admin/virtual-keys/{ids['prod']}/analytics"
    for token in (ids["mo"], ids["prod_secret"]):
        assert_error(await api.client.get(path, headers={"authorization": f"Bearer {token}"}), 403, "role_required")
        assert_error(await _compare(api, {"keyIds": [ids["prod"], ids["test"]]}, token), 403, "role_required")
    assert_error(await api.client.get(path), 401)
    other = await api.account("Elsewhere")
    owner = await api.member(other["id"], "o@elsewhere.test", "owner")
    stranger = await api.token(other["id"], owner["id"])
    foreign = await api.client.get(path, headers={"authorization": f"Bearer {stranger}"})
    unknown = await api.client.get(
        "/api/admin/virtual-keys/no-such-key/analytics", headers={"authorization": f"Bearer {stranger}"}
    )
    assert assert_error(foreign, 404, "virtual_key_not_found")["message"] == f"no virtual key with id {ids['prod']!r}"
    assert assert_error(unknown, 404, "virtual_key_not_found")["message"] == "no virtual key with id 'no-such-key'"
    both = await _compare(api, {"keyIds": [ids["prod"], "no-such-key"]}, stranger)
    assert assert_error(both, 404, "virtual_key_not_found")["message"] == (
        f"no virtual keys with ids {ids['prod']!r}, 'no-such-key'"
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "7x"}, "period"),
        ({"period": "0d"}, "period"),
        ({"period": "200d"}, "period"),
        ({"breakdown": "weekly"}, "breakdown"),
        ({"breakdown": ""}, "breakdown"),
    ],
)
async def test_bad_parameters_are_refused_in_the_error_shape(api: Api, params: dict[str, str], field: str) -> None:
    ids = await _acme(api)
    response = await api.client.get(
        f"/api/admin/virtual-keys/{ids['prod']}/analytics", params=params, headers={"authorization": f"Bearer {MASTER}"}
    )
    error = assert_error(response, 422)
    assert field in error["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"keyIds": ["one"]}, "keyIds"),
        ({"keyIds": [f"k{n}" for n in range(21)]}, "keyIds"),
        ({"keyIds": ["same", "same"]}, "keyIds"),
        ({"keyIds": ["a", ""]}, "keyIds.1"),
        ({}, "keyIds"),
        ({"keyIds": ["a", "b"], "metrics": ["requests", "speed"]}, "metrics.1"),
        ({"keyIds": ["a", "b"], "metrics": []}, "metrics"),
        ({"keyIds": ["a", "b"], "metrics": ["cost", "cost"]}, "metrics"),
        ({"keyIds": ["a", "b"], "period": "7x"}, "period"),
        ({"keyIds": ["a", "b"], "period": "27w"}, "period"),
        ({"keyIds": ["a", "b"], "key_ids": ["c", "d"]}, "key_ids"),
    ],
)
async def test_bad_comparisons_are_refused_in_the_error_shape(api: Api, body: dict[str, Any], field: str) -> None:
    await _acme(api)
    error = assert_error(await _compare(api, body), 422)
    assert field in [detail["loc"] for detail in error["details"]]


async def test_compare_is_its_own_route_not_a_key_id(api: Api) -> None:
    """`/virtual-keys/{key_id}` serves GET, PATCH and DELETE: POST to `/virtual-keys/compare` still compares, and
    the other methods there look up a key of that id, which none has."""
    ids = await _acme(api)
    auth = {"authorization": f"Bearer {MASTER}"}
    reached = await _compare(api, {"keyIds": [ids["prod"], ids["test"]], "metrics": ["requests"]})
    assert _data(reached)["comparison"]["requests"]["total"] == 8
    assert_error(await api.client.get("/api/admin/virtual-keys/compare", headers=auth), 404, "virtual_key_not_found")
    options = await api.client.options("/api/admin/virtual-keys/compare", headers=auth)
    assert_error(options, 405)
    assert {method.strip() for method in options.headers["allow"].split(",")} == {"GET", "POST", "PATCH", "DELETE"}
