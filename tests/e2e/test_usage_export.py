"""`GET /v1/usage/export` over HTTP: the caller's usage events of a range as CSV or JSON, streamed, adding up to
`/v1/usage`, cut in the account's zone, and only what the caller may see."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from admin_client import MASTER, Api, assert_error

from farebox.analytics.export import EXPORT_FIELDS

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 3, 31, 18, tzinfo=UTC)
"""31 March, 23:30 in Kolkata (+05:30): "this month" is March there."""
EVENTS = [
    # (id, timestamp, key, model, input, output)
    ("e1", "2026-02-28T18:29:59Z", "ada", "gpt-4o", 1_000, 0),  # 28 February, 23:59:59 in Kolkata
    ("e2", "2026-02-28T18:30:00Z", "ada", "gpt-4o", 1_000_000, 0),  # 1 March, 00:00 in Kolkata
    ("e3", "2026-03-05T10:00:00.250000Z", "bob", "gpt-4o-mini", 1_234_567, 89_101),
    ("e4", "2026-03-05T10:00:00.250000Z", "ada", "gpt-4o-mini", 7, 3),  # the same instant: ordered by id
    ("e5", "2026-03-20T08:00:00Z", "ada", "gpt-4o", 10, 10),  # voided below
    ("e6", "2026-03-31T17:59:59Z", "bob", "gpt-4o", 333_333, 77_777),  # 31 March, 23:29:59 in Kolkata
]


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
        {"id": event_id, "timestamp": at, "axis": "llm", "key_id": ids[f"{who}_key"], "provider": "openai"}
        | {"model": model, "input_tokens": tokens_in, "output_tokens": tokens_out}
        for event_id, at, who, model, tokens_in, tokens_out in EVENTS
    ]
    posted = await api.client.post("/api/events", json={"events": events}, headers=_bearer(MASTER))
    assert posted.status_code == 200, posted.text
    await api.ok("POST", "/events/e5/void", {"reason": "posted by mistake"}, status=201)
    other = await api.account("Globex")
    owner = await api.member(other["id"], "boss@globex.test", "owner")
    ids["stranger_token"] = await api.token(other["id"], owner["id"])
    return ids


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def _export(api: Api, token: str, **params: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The export's headers and its rows (CSV parsed, or the JSON array), read as a stream."""
    async with api.client.stream("GET", "/v1/usage/export", params=params, headers=_bearer(token)) as response:
        assert response.status_code == 200, await response.aread()
        body = b"".join([chunk async for chunk in response.aiter_bytes()])
        headers = dict(response.headers)
    if params.get("format") == "json":
        rows: list[dict[str, Any]] = orjson.loads(body)
        return headers, rows
    reader = csv.reader(io.StringIO(body.decode()))
    assert tuple(next(reader)) == EXPORT_FIELDS
    return headers, [dict(zip(EXPORT_FIELDS, row, strict=True)) for row in reader]


async def test_a_csv_export_of_this_month_adds_up_to_v1_usage(api: Api) -> None:
    ids = await _acme(api)
    headers, rows = await _export(api, ids["bill_token"])

    assert headers["content-type"] == "text/csv; charset=utf-8"
    filename = f"usage-{ids['account']}-2026-03-01-2026-03-31.csv"
    assert headers["content-disposition"] == f'attachment; filename="{filename}"'
    assert [row["id"] for row in rows] == ["e2", "e3", "e4", "e6"], "March in Kolkata, in time order, e5 voided"
    first = rows[1]
    assert first["timestamp"] == "2026-03-05T10:00:00.250000Z" and rows[0]["timestamp"] == "2026-02-28T18:30:00Z"
    assert (first["account_id"], first["key_id"], first["member_id"]) == (ids["account"], ids["bob_key"], ids["bob"])
    assert (first["provider"], first["model"], first["status"], first["streamed"]) == (
        "openai",
        "gpt-4o-mini",
        "ok",
        "false",
    )
    assert (first["input_tokens"], first["output_tokens"], first["app"], first["latency_ms"]) == (
        "1234567",
        "89101",
        "",
        "",
    )

    usage = (await api.client.get("/v1/usage", headers=_bearer(ids["bill_token"]))).json()
    assert sum(Decimal(row["credits_used"]) for row in rows) == Decimal(usage["total_credits_used"])
    assert len(rows) == usage["total_requests"]
    assert sum(Decimal(row["cost_usd"]) for row in rows) * 20_000 == Decimal(usage["total_credits_used"])


async def test_a_json_export_of_a_range_in_another_zone(api: Api) -> None:
    ids = await _acme(api)
    one_day = {"from": "2026-03-01", "to": "2026-03-01", "format": "json"}
    headers, rows = await _export(api, ids["ada_token"], **one_day)
    assert headers["content-type"] == "application/json"
    assert headers["content-disposition"].endswith('-2026-03-01-2026-03-01.json"')
    assert [row["id"] for row in rows] == ["e2"], "1 March in Kolkata starts at 18:30 UTC the day before"
    assert list(rows[0]) == list(EXPORT_FIELDS)
    assert (rows[0]["cost_usd"], rows[0]["streamed"], rows[0]["app"]) == ("2.50", False, None)
    assert rows[0]["credits_used"] == "50000"

    _headers, in_utc = await _export(api, ids["ada_token"], **one_day, tz="UTC")
    assert in_utc == [], "in UTC, e2 fell on 28 February"
    _headers, february = await _export(api, ids["ada_token"], **{"from": "2026-02-28", "to": "2026-02-28"})
    assert [row["id"] for row in february] == ["e1"]
    _headers, empty = await _export(api, ids["ada_token"], format="json", **{"from": "2025-01-01", "to": "2025-01-31"})
    assert empty == []


async def test_a_member_exports_its_own_keys_and_a_key_itself(api: Api) -> None:
    ids = await _acme(api)
    _headers, bob = await _export(api, ids["bob_token"])
    assert [row["id"] for row in bob] == ["e3", "e6"]
    _headers, narrowed = await _export(api, ids["bob_token"], key=ids["ada_key"])
    assert narrowed == [], "a filter never widens what a member sees"
    _headers, key = await _export(api, ids["ada_secret"], format="json")
    assert [row["id"] for row in key] == ["e2", "e4"]
    _headers, by_model = await _export(api, ids["ada_token"], model="gpt-4o-mini", provider="openai")
    assert [row["id"] for row in by_model] == ["e3", "e4"]
    _headers, master = await _export(api, MASTER, account_id=ids["account"])
    assert [row["id"] for row in master] == ["e2", "e3", "e4", "e6"]
    hidden = await api.client.get(
        "/v1/usage/export", params={"account_id": ids["account"]}, headers=_bearer(ids["stranger_token"])
    )
    assert_error(hidden, 404, "account_not_found")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-03-10", "to": "2026-03-09"}, "to"),
        ({"format": "xml"}, "format"),
        ({"tz": "Mars/Base"}, "tz"),
        ({"from": "2026-02-30"}, "from"),
    ],
)
async def test_bad_parameters_are_refused_in_the_error_shape(api: Api, params: dict[str, str], field: str) -> None:
    ids = await _acme(api)
    response = await api.client.get("/v1/usage/export", params=params, headers=_bearer(ids["ada_token"]))
    error = assert_error(response, 422)
    assert field in error["message"] or any(field in detail["loc"] for detail in error.get("details", []))


async def test_the_master_key_names_the_account(api: Api) -> None:
    await _acme(api)
    error = assert_error(await api.client.get("/v1/usage/export", headers=_bearer(MASTER)), 422)
    assert "account_id" in error["message"]
    assert_error(await api.client.get("/v1/usage/export"), 401, "missing_api_key")
