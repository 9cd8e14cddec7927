"""The usage analytics API (seed 003) over HTTP: cost by model, over time, per key and per member, in the
account's zone, and the same totals in every view."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from admin_client import MASTER, Api, assert_error

from farebox.core.events import Axis, Status, UsageEvent

pytestmark = pytest.mark.anyio

# March 2026 in Kolkata (+05:30): 2026-03-01 starts at 2026-02-28T18:30Z.
EVENTS = [
    # (id, timestamp, key, model, input, output): posted to /api/events
    ("e1", "2026-02-28T18:29:00Z", "ada", "gpt-4o", 1_000_000, 0),  # 28 Feb local: outside March
    ("e2", "2026-02-28T18:30:00Z", "ada", "gpt-4o", 1_000_000, 0),  # 1 March 00:00 local
    ("e3", "2026-03-05T10:00:00Z", "ada", "gpt-4o-mini", 1_000_000, 1_000_000),
    ("e5", "2026-03-31T17:59:59Z", "bob", "gpt-4o-mini", 2_000_000, 0),  # 31 March 23:29 local
]
NOW = datetime(2026, 3, 31, 18, tzinfo=UTC)
"""31 March, 23:30 in Kolkata: "this month" is March there."""
FAILED_AT = datetime(2026, 3, 5, 11, tzinfo=UTC)
"""When Bob's proxied gpt-4o request failed after 100k output tokens ($1.00): recorded as the proxy records it."""


async def _acme(api: Api) -> dict[str, Any]:
    api.clock.at = NOW
    account = await api.account("Acme", plan="enterprise", timezone="Asia/Kolkata")
    ids: dict[str, Any] = {"account": account["id"]}
    for name, role in (("ada", "admin"), ("bob", "member"), ("bill", "billing")):
        ids[name] = (await api.member(account["id"], f"{name}@acme.test", role))["id"]
        ids[f"{name}_token"] = await api.token(account["id"], ids[name])
    for name in ("ada", "bob"):
        key = await api.key(account["id"], member_id=ids[name], name=f"{name}-key")
        ids[f"{name}_key"], ids[f"{name}_secret"] = key["id"], key["key"]
    events = [
        {
            "id": event_id,
            "timestamp": at,
            "axis": "llm",
            "key_id": ids[f"{who}_key"],
            "provider": "openai",
            "model": model,
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
        }
        for event_id, at, who, model, tokens_in, tokens_out in EVENTS
    ]
    posted = await api.client.post(
        "/api/events", json={"events": events}, headers={"authorization": f"Bearer {MASTER}"}
    )
    assert posted.status_code == 200, posted.text
    failed = UsageEvent(
        id="e4",
        timestamp=FAILED_AT,
        account_id=ids["account"],
        key_id=ids["bob_key"],
        member_id=ids["bob"],
        axis=Axis.LLM,
        provider="openai",
        model="gpt-4o",
        canonical_model="gpt-4o",
        operation="chat.completions",
        output_tokens=100_000,
        cost_nano=1_000_000_000,
        status=Status.ERROR,
    )
    await api.ledger.record(failed)
    return ids


async def _get(api: Api, path: str, token: str = MASTER, **params: Any) -> Any:
    response = await api.client.get(
        f"/api/analytics{path}", params=params, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_cost_by_model_in_the_account_s_zone(api: Api) -> None:
    ids = await _acme(api)
    body = await _get(api, "/models", account_id=ids["account"], **{"from": "2026-03-01", "to": "2026-03-31"})
    assert (body["from"], body["to"], body["tz"], body["view"]) == (
        "2026-03-01",
        "2026-03-31",
        "Asia/Kolkata",
        "canonical",
    )
    assert [(row["model"], row["cost"], row["requests"], row["tokens"], row["errors"]) for row in body["data"]] == [
        ("gpt-4o", "3.50", 2, 1_100_000, 1),  # 1M in at $2.50/M, 100k out at $10/M; e1 is February there
        ("gpt-4o-mini", "1.05", 2, 4_000_000, 0),  # 3M in at $0.15/M, 1M out at $0.60/M
    ]
    assert body["data"][0]["error_rate"] == "0.5000"


async def test_cost_over_time_has_every_day_and_the_same_totals(api: Api) -> None:
    ids = await _acme(api)
    body = await _get(api, "/models/over-time", ids["ada_token"])
    assert body["buckets"][0] == "2026-03-01" and body["buckets"][-1] == "2026-03-31" and len(body["buckets"]) == 31
    lines = {line["model"]: line for line in body["series"]}
    assert lines["gpt-4o"]["cost"][0] == "2.50" and lines["gpt-4o"]["cost"][4] == "1.00"
    assert lines["gpt-4o-mini"]["cost"][30] == "0.30"
    by_model = await _get(api, "/models", ids["ada_token"])
    for row in by_model["data"]:
        assert sum(Decimal(cost) for cost in lines[row["model"]]["cost"]) == Decimal(row["cost"])
    weeks = await _get(api, "/models/over-time", ids["ada_token"], grain="week")
    assert weeks["buckets"][0] == "2026-02-23", "weeks start on Monday"


async def test_a_key_s_statistics_and_who_may_see_them(api: Api) -> None:
    ids = await _acme(api)
    path = f"/keys/{ids['bob_key']}"
    body = await _get(api, path, ids["bob_token"])
    assert body["key"] == {"id": ids["bob_key"], "name": "bob-key", "member_id": ids["bob"]}
    assert (body["summary"]["cost"], body["summary"]["requests"], body["summary"]["error_rate"]) == (
        "1.30",
        2,
        "0.5000",
    )
    assert [row["model"] for row in body["models"]] == ["gpt-4o", "gpt-4o-mini"]
    assert (await _get(api, path, ids["bob_secret"]))["summary"] == body["summary"], "the key itself may read it"
    headers = {"authorization": f"Bearer {ids['bob_token']}"}
    refused = await api.client.get(f"/api/analytics/keys/{ids['ada_key']}", headers=headers)
    assert_error(refused, 403, "not_yours")
    other = await api.account("Globex")
    stranger = await api.token(other["id"], (await api.member(other["id"], "g@globex.test", "owner"))["id"])
    hidden = await api.client.get(f"/api/analytics{path}", headers={"authorization": f"Bearer {stranger}"})
    assert_error(hidden, 404, "virtual_key_not_found")


async def test_each_caller_sees_only_its_own_usage(api: Api) -> None:
    ids = await _acme(api)
    totals = {}
    for who in ("ada_token", "bill_token", "bob_token", "bob_secret", "ada_secret"):
        totals[who] = sum(Decimal(row["cost"]) for row in (await _get(api, "/models", ids[who]))["data"])
    assert totals == {
        "ada_token": Decimal("4.55"),
        "bill_token": Decimal("4.55"),
        "bob_token": Decimal("1.30"),
        "bob_secret": Decimal("1.30"),
        "ada_secret": Decimal("3.25"),
    }


async def test_member_analytics_for_enterprise_owners_and_admins(api: Api) -> None:
    ids = await _acme(api)
    body = await _get(api, "/members", ids["ada_token"])
    assert [(row["name"], row["cost"], row["key_count"]) for row in body["data"]] == [
        ("ada", "3.25", 1),
        ("bob", "1.30", 1),
        ("bill", "0.00", 0),
    ]
    detail = await _get(api, f"/members/{ids['bob']}", ids["ada_token"])
    assert detail["most_used"] == {"model": "gpt-4o", "provider": "openai", "app": None}
    assert detail["summary"]["requests"] == 2
    for who, code in (("bill_token", "role_required"), ("bob_token", "role_required"), ("bob_secret", "role_required")):
        refused = await api.client.get("/api/analytics/members", headers={"authorization": f"Bearer {ids[who]}"})
        assert_error(refused, 403, code)
    await api.ok("PATCH", f"/accounts/{ids['account']}", {"plan": "pro"})
    downgraded = await api.client.get("/api/analytics/members", headers={"authorization": f"Bearer {ids['ada_token']}"})
    assert_error(downgraded, 403, "upgrade_required")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-03-10", "to": "2026-03-01"}, "to"),
        ({"from": "2025-01-01", "to": "2026-03-01"}, "to"),
        ({"tz": "Mars/Base"}, "tz"),
        ({"from": "2026-13-01"}, "from"),
        ({"grain": "fortnight"}, "grain"),
        ({"grain": "hour", "from": "2026-03-01", "to": "2026-03-31"}, "grain"),
    ],
)
async def test_bad_parameters_are_422(api: Api, params: dict[str, str], field: str) -> None:
    ids = await _acme(api)
    response = await api.client.get(
        "/api/analytics/models/over-time", params=params, headers={"authorization": f"Bearer {ids['ada_token']}"}
    )
    error = assert_error(response, 422)
    assert field in error["message"]


async def test_another_account_is_404_never_its_existence(api: Api) -> None:
    ids = await _acme(api)
    other = await api.account("Globex")
    for account_id in (other["id"], "no-such-account"):
        response = await api.client.get(
            "/api/analytics/models",
            params={"account_id": account_id},
            headers={"authorization": f"Bearer {ids['ada_token']}"},
        )
        assert_error(response, 404, "account_not_found")


async def test_the_drill_down_pages_through_a_day_s_requests(api: Api) -> None:
    ids = await _acme(api)
    more = [
        {"id": f"d{n}", "timestamp": f"2026-03-05T0{n}:00:00Z", "axis": "llm", "key_id": ids["ada_key"]}
        | {"provider": "openai", "model": "gpt-4o", "input_tokens": 1000}
        for n in range(5)
    ]
    posted = await api.client.post("/api/events", json={"events": more}, headers={"authorization": f"Bearer {MASTER}"})
    assert posted.status_code == 200, posted.text
    seen: list[str] = []
    cursor = None
    while True:
        params = {"date": "2026-03-05", "model": "gpt-4o", "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await _get(api, "/requests", ids["ada_token"], **params)
        assert page["summary"]["requests"] == 6  # d0..d4 and Bob's failed request, that day in Kolkata
        seen += [row["id"] for row in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["d0", "d1", "d2", "d3", "d4", "e4"]
    first = (await _get(api, "/requests", ids["ada_token"], date="2026-03-05", limit=1))["data"][0]
    assert (first["id"], first["cost"], first["status"], first["key_id"]) == ("d0", "0.0025", "ok", ids["ada_key"])
    own = await _get(api, "/requests", ids["bob_token"], date="2026-03-05")
    assert [row["id"] for row in own["data"]] == ["e4"], "a member sees only its own keys' requests"
    forged = await api.client.get(
        "/api/analytics/requests",
        params={"date": "2026-03-05", "cursor": "bm90LWEtY3Vyc29y"},
        headers={"authorization": f"Bearer {ids['ada_token']}"},
    )
    assert "cursor" in assert_error(forged, 422)["message"]


async def test_the_filter_choices_of_a_range(api: Api) -> None:
    ids = await _acme(api)
    body = await _get(api, "/filters", ids["ada_token"])
    assert body["providers"] == ["openai"] and body["models"] == ["gpt-4o", "gpt-4o-mini"]
    assert {key["name"] for key in body["keys"]} == {"ada-key", "bob-key"}
    assert {member["name"] for member in body["members"]} == {"ada", "bob"}
    assert (await _get(api, "/filters", ids["bob_token"]))["keys"] == [{"id": ids["bob_key"], "name": "bob-key"}]


async def test_v1_usage_in_the_seed_s_shape_for_the_key_itself(api: Api) -> None:
    ids = await _acme(api)
    await api.ok("POST", f"/accounts/{ids['account']}/credits", {"amount_usd": "10.00"}, status=201)
    headers = {"authorization": f"Bearer {ids['bob_secret']}"}
    body = (await api.client.get("/v1/usage", headers=headers)).json()
    assert body["period_start"] == "2026-02-28T18:30:00Z" and body["period_end"] == "2026-03-31T18:30:00Z"
    assert (body["total_requests"], body["total_tokens"]) == (2, 2_100_000)
    assert body["total_credits_used"] == "26000"  # 1.30 USD at 20,000 credits per USD
    assert body["credits_remaining"] == "200000"  # topped up now, after this month's spend
    days = body["daily_breakdown"]
    assert [day["date"] for day in days[:2]] == ["2026-03-31", "2026-03-30"] and len(days) == 31
    assert days[0] == {"date": "2026-03-31", "requests": 1, "tokens": 2_000_000, "credits": "6000"}
    models = (await api.client.get("/v1/usage/models", headers=headers)).json()["data"]
    assert models == [
        {
            "model": "gpt-4o",
            "requests": 1,
            "prompt_tokens": 0,
            "completion_tokens": 100_000,
            "total_tokens": 100_000,
            "credits_used": "20000",
        },
        {
            "model": "gpt-4o-mini",
            "requests": 1,
            "prompt_tokens": 2_000_000,
            "completion_tokens": 0,
            "total_tokens": 2_000_000,
            "credits_used": "6000",
        },
    ]
    account = await api.client.get("/v1/usage", headers={"authorization": f"Bearer {ids['bill_token']}"})
    assert account.json()["total_credits_used"] == "91000", "billing sees the whole account: 4.55 USD"
    assert_error(await api.client.get("/v1/usage", headers={"authorization": f"Bearer {MASTER}"}), 422)
