"""`POST /api/admin/analytics/export` (seed 004) over HTTP on both backends: raw events and hourly and daily sums as
CSV (read back with the `csv` module), a JSON array and NDJSON, with their totals equal to `/api/usage`'s; the fields
and filters asked for; who may export; bad bodies."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from admin_client import MASTER, Api, assert_error

from farebox.core.events import Axis, Status, UsageEvent

pytestmark = pytest.mark.anyio

PATH = "/api/admin/analytics/export"
NOW = datetime(2026, 3, 10, 12, 20, tzinfo=UTC)


@pytest.fixture
def api(api_each_backend: Api) -> Api:
    return api_each_backend


def _event(n: int, account: str, key: str, at: datetime, **fields: Any) -> UsageEvent:
    values: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o",
        "canonical_model": "gpt-4o",
        "operation": "chat.completions",
        "input_tokens": 100,
        "output_tokens": 20,
        "cost_nano": 1_500_000,
        "latency_ms": 300,
    } | fields
    return UsageEvent(id=f"evt-{n}", timestamp=at, account_id=account, key_id=key, axis=Axis.LLM, **values)


async def _ledger(api: Api) -> dict[str, Any]:
    """Two keys of Acme over three days (one failed request, one that costs $2.50) and a key of another account."""
    api.clock.at = NOW
    acme = await api.account("Acme", plan="enterprise")
    other = await api.account("Other", plan="enterprise")
    small = await api.key(acme["id"], name="small")
    big = await api.key(acme["id"], name="big")
    theirs = await api.key(other["id"], name="theirs")
    day = NOW.replace(hour=9, minute=0)
    await api.ledger.record_many(
        [
            _event(1, acme["id"], small["id"], day - timedelta(days=2)),
            _event(2, acme["id"], small["id"], day - timedelta(days=2, minutes=-10)),
            _event(3, acme["id"], small["id"], day - timedelta(days=1), status=Status.ERROR, http_status=503),
            _event(4, acme["id"], big["id"], day, cost_nano=2_500_000_000, provider="anthropic", model="claude"),
            _event(5, acme["id"], big["id"], day + timedelta(hours=1, minutes=5), latency_ms=500),
            _event(6, other["id"], theirs["id"], day),
        ]
    )
    return {"acme": acme["id"], "small": small["id"], "big": big["id"]}


async def export(api: Api, body: dict[str, Any], token: str = MASTER, **params: str) -> Any:
    return await api.client.post(PATH, json=body, params=params, headers={"authorization": f"Bearer {token}"})


def rows_of(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_raw_csv_holds_every_event_of_the_account_and_adds_up_to_the_usage_total(api: Api) -> None:
    ids = await _ledger(api)
    response = await export(api, {"format": "csv", "period": "7d"}, account_id=ids["acme"])
    rows = rows_of(response)
    assert [row["id"] for row in rows] == ["evt-1", "evt-2", "evt-3", "evt-4", "evt-5"], "time order, Acme's only"
    assert "attachment" in response.headers["content-disposition"]
    trends = await api.client.get(
        "/api/admin/analytics/usage/trends",
        params={"period": "7d", "granularity": "day", "account_id": ids["acme"]},
        headers={"authorization": f"Bearer {MASTER}"},
    )
    total = json.loads(trends.text, parse_float=Decimal)["data"]["metrics"]["totalCost"]
    assert sum(Decimal(row["cost_usd"]) for row in rows) == Decimal("2.506") == total, "the trends' total, exactly"


async def test_hourly_sums_carry_the_seed_s_fields_in_the_order_asked(api: Api) -> None:
    ids = await _ledger(api)
    fields = ["timestamp", "virtual_key_id", "virtual_key_name", "provider", "model", "operation"]
    fields += ["requests", "tokens", "cost", "latency", "errors"]
    body = {"format": "csv", "period": "7d", "granularity": "hourly", "includeFields": fields}
    response = await export(api, body, account_id=ids["acme"])
    assert response.text.splitlines()[0] == ",".join(fields)
    rows = rows_of(response)
    assert [(row["timestamp"], row["virtual_key_name"], row["requests"], row["errors"]) for row in rows] == [
        ("2026-03-08T09:00:00Z", "small", "2", "0"),
        ("2026-03-09T09:00:00Z", "small", "1", "1"),
        ("2026-03-10T09:00:00Z", "big", "1", "0"),
        ("2026-03-10T10:00:00Z", "big", "1", "0"),
    ]
    first = rows[0]
    assert (first["virtual_key_id"], first["tokens"], first["cost"], first["latency"]) == (
        ids["small"],
        "240",
        "0.003",
        "300",
    )
    assert rows[2]["provider"] == "anthropic" and rows[2]["cost"] == "2.50"


async def test_daily_json_and_ndjson_hold_the_same_rows(api: Api) -> None:
    ids = await _ledger(api)
    body = {"period": "7d", "granularity": "daily", "format": "json"}
    as_json = await export(api, body, account_id=ids["acme"])
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    array = json.loads(as_json.text)
    as_ndjson = await export(api, body | {"format": "ndjson"}, account_id=ids["acme"])
    assert as_ndjson.headers["content-type"] == "application/x-ndjson"
    assert [json.loads(line) for line in as_ndjson.text.splitlines()] == array
    assert [(row["timestamp"][:10], row["virtual_key_name"], row["requests"]) for row in array] == [
        ("2026-03-08", "small", 2),
        ("2026-03-09", "small", 1),
        ("2026-03-10", "big", 1),
        ("2026-03-10", "big", 1),
    ], "the big key's two providers are two rows of its day"
    assert sum(Decimal(row["cost"]) for row in array) == Decimal("2.506")


async def test_filters_keep_the_keys_providers_and_costs_asked_for(api: Api) -> None:
    ids = await _ledger(api)
    by_key = rows_of(
        await export(api, {"period": "7d", "filters": {"virtualKeys": [ids["big"]]}}, account_id=ids["acme"])
    )
    assert [row["id"] for row in by_key] == ["evt-4", "evt-5"]
    by_provider = {"period": "7d", "granularity": "hourly", "filters": {"providers": ["anthropic"]}}
    assert [row["model"] for row in rows_of(await export(api, by_provider, account_id=ids["acme"]))] == ["claude"]
    costly = {"startDate": "2026-03-01", "endDate": "2026-03-10", "filters": {"minCost": 1.00}}
    assert [row["id"] for row in rows_of(await export(api, costly, account_id=ids["acme"]))] == ["evt-4"]
    empty = rows_of(await export(api, {"period": "7d", "filters": {"models": ["o3"]}}, account_id=ids["acme"]))
    assert empty == []


async def test_who_may_export(api: Api) -> None:
    ids = await _ledger(api)
    owner = await api.member(ids["acme"], "bill@acme.test", "billing")
    billing = await api.token(ids["acme"], owner["id"])
    mine = rows_of(await export(api, {"period": "7d"}, token=billing))
    assert len(mine) == 5, "a billing member exports its own account"
    plain = await api.member(ids["acme"], "mo@acme.test", "member")
    assert_error(await export(api, {"period": "7d"}, token=await api.token(ids["acme"], plain["id"])), 403)
    assert_error(await export(api, {"period": "7d"}, token=billing, account_id="acct-nowhere"), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "period"),
        ({"period": "7d", "startDate": "2026-03-01", "endDate": "2026-03-02"}, "period"),
        ({"period": "24h"}, "period"),
        ({"period": "7x"}, "period"),
        ({"startDate": "2026-03-01"}, "endDate"),
        ({"startDate": "2026-03-05", "endDate": "2026-03-01"}, "endDate"),
        ({"startDate": "2025-01-01", "endDate": "2026-03-01"}, "period"),
        ({"period": "7d", "granularity": "hourly", "includeFields": ["id"]}, "includeFields"),
        ({"period": "7d", "format": "xml"}, "format"),
        ({"period": "7d", "filters": {"minCost": -1}}, "minCost"),
        ({"period": "7d", "surprise": 1}, "surprise"),
    ],
)
async def test_a_bad_body_is_a_422_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    ids = await _ledger(api)
    error = assert_error(await export(api, body, account_id=ids["acme"]), 422)
    assert field in json.dumps(error), error


async def test_the_master_key_names_the_account(api: Api) -> None:
    await _ledger(api)
    error = assert_error(await export(api, {"period": "7d"}), 422)
    assert "account_id" in json.dumps(error)
