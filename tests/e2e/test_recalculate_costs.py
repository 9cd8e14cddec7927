"""`POST /api/admin/analytics/recalculate-costs` (seed 004) over HTTP on both backends: a price change in the price
book, once farebox restarts with it, reprices the stored usage as adjustments that bring every view to the new total
(`/api/usage`, the billing export, the raw CSV and JSON exports, a request's drill-down, the spend counters, the
pipeline's consistency check); a dry run shows the same and writes nothing; a second run changes nothing; events
whose cost their sender gave, unpriced and voided events stay as recorded; a void after a reprice takes the new cost
out; the run is in the audit log with who and why; who may run it; bad bodies."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from admin_client import MASTER, Api, assert_error, open_api

from farebox.core.periods import Period

pytestmark = pytest.mark.anyio

PATH = "/api/admin/analytics/recalculate-costs"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
BOOK = """
[[prices]]
model = "house-llm"
input_mtok = "{input}"
output_mtok = "{output}"
"""
NOVEMBER_TO_NOW = {"startDate": "2026-11-01", "endDate": "2026-12-05"}


@asynccontextmanager
async def farebox(tmp_path: Path, ledger_url: str, *, input_mtok: str, output_mtok: str) -> AsyncIterator[Api]:
    """farebox on the test's ledger with `house-llm` at these prices per million tokens (a restart per book)."""
    book = tmp_path / "prices.toml"
    book.write_text(BOOK.format(input=input_mtok, output=output_mtok))
    secret = "e2e-recalculate-server-secret-" + "s" * 16
    async with open_api(tmp_path, database_url=ledger_url, secret_key=secret, price_overrides=book) as api:
        api.clock.at = NOW
        yield api


async def post(api: Api, path: str, body: Any, token: str = MASTER, **params: str) -> Any:
    return await api.client.post(path, json=body, params=params, headers={"authorization": f"Bearer {token}"})


async def recalculate(api: Api, body: dict[str, Any], token: str = MASTER, **params: str) -> dict[str, Any]:
    response = await post(api, PATH, body, token, **params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = json.loads(response.content, parse_float=Decimal)["data"]
    return data


def _llm(event_id: str, key: str | None, at: datetime, tokens: int = 1_000, **fields: Any) -> dict[str, Any]:
    event = {
        "id": event_id,
        "timestamp": at.isoformat(),
        "axis": "llm",
        "model": "house-llm",
        "input_tokens": tokens,
        "output_tokens": tokens // 2,
    } | fields
    if key is not None:
        event["key_id"] = key
    return event


async def _world(api: Api, tmp_path: Path) -> dict[str, str]:
    """Acme (Kolkata) in November and today: house-llm events of two keys (1,000 input and 500 output tokens cost
    $0.006 at $2/$8), one whose sender gave its cost, one of a model no book prices, one voided, one of October."""
    acme = await api.account("Acme", plan="enterprise", timezone="Asia/Kolkata")
    owner = await api.member(acme["id"], "olga@acme.test", "owner")
    billing = await api.member(acme["id"], "bill@acme.test", "billing")
    k1 = await api.key(acme["id"], name="one", member_id=owner["id"])
    k2 = await api.key(acme["id"], name="two")
    day = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
    events = [
        _llm("e1", k1["id"], day),
        _llm("e2", k2["id"], day + timedelta(hours=1), tokens=2_000),
        _llm("e3", k1["id"], day, cost_usd="0.5"),
        _llm("e4", k1["id"], day, model="mystery-model"),
        _llm("e5", k2["id"], day),
        _llm("e6", None, datetime(2026, 10, 20, 9, 0, tzinfo=UTC), account_id=acme["id"]),
        _llm("e7", k1["id"], day + timedelta(days=1)),
        _llm("e8", k2["id"], NOW - timedelta(minutes=10)),
    ]
    response = await post(api, "/api/events", {"events": events})
    assert response.status_code in (200, 201, 207), response.text
    voided = await post(api, "/api/admin/events/e5/void", {"reason": "posted twice"})
    assert voided.status_code == 201, voided.text
    return {
        "acme": acme["id"],
        "k1": k1["id"],
        "k2": k2["id"],
        "owner": await api.token(acme["id"], owner["id"]),
        "billing": await api.token(acme["id"], billing["id"]),
    }


async def _views(api: Api, ids: dict[str, str]) -> dict[str, Any]:
    """What each view says Acme's November and today cost (USD), and one request's cost."""
    auth = {"authorization": f"Bearer {MASTER}"}
    month = await api.client.get("/api/usage", params={"accountId": ids["acme"], "month": "2026-11"}, headers=auth)
    assert month.status_code == 200, month.text
    billed = await post(api, "/api/admin/analytics/billing-export", {"billingCycle": "2026-11"}, account_id=ids["acme"])
    assert billed.status_code == 200, billed.text
    export_body = {"format": "csv", **NOVEMBER_TO_NOW, "granularity": "raw"}
    exported = await post(api, "/api/admin/analytics/export", export_body, account_id=ids["acme"])
    assert exported.status_code == 200, exported.text
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    as_json = await post(api, "/api/admin/analytics/export", export_body | {"format": "json"}, account_id=ids["acme"])
    assert as_json.status_code == 200, as_json.text
    drilled = await api.client.get("/api/admin/requests/e1", headers=auth)
    assert drilled.status_code == 200, drilled.text
    health = await api.client.get("/api/admin/analytics/pipeline-health", headers=auth)
    assert health.status_code == 200, health.text
    key_total = await api.ledger.spent(scope="key", scope_id=ids["k1"], period=Period.TOTAL, at=NOW, tz=UTC)
    return {
        "month": json.loads(month.content, parse_float=Decimal)["llm"]["totalCents"] / 100,
        "billed": json.loads(billed.content, parse_float=Decimal)["data"]["totals"]["exactCents"] / 100,
        "exported": sum(Decimal(row["cost_usd"]) for row in rows),
        "exported_json": sum(Decimal(str(row["cost_usd"])) for row in json.loads(as_json.content)),
        "e1": Decimal(drilled.json()["cost_usd"]),
        "k1_total": Decimal(key_total) / 10**9,
        "consistent": health.json()["data"]["consistency"]["consistent"],
    }


async def test_a_price_change_reprices_every_view_once_and_a_dry_run_writes_nothing(
    ledger_url: str, tmp_path: Path
) -> None:
    async with farebox(tmp_path, ledger_url, input_mtok="2", output_mtok="8") as api:
        ids = await _world(api, tmp_path)
        unchanged = await recalculate(api, NOVEMBER_TO_NOW, account_id=ids["acme"])
        assert (unchanged["eventsExamined"], unchanged["eventsRepriced"]) == (6, 0), (
            "the book the events were priced by"
        )
        assert unchanged["eventsLeftAsRecorded"] == {"unpriced": 1, "costGiven": 1, "noLongerPriced": 0}
        before = await _views(api, ids)
    # November: e1 0.006 + e2 0.012 + e3 0.5 + e4 0 + e7 0.006 (e5 voided); today e8 0.006.
    assert before["month"] == before["billed"] == Decimal("0.524")
    assert before["exported"] == before["exported_json"] == Decimal("0.530")
    assert (before["e1"], before["k1_total"], before["consistent"]) == (Decimal("0.006"), Decimal("0.512"), True)

    async with farebox(tmp_path, ledger_url, input_mtok="3", output_mtok="12") as api:
        dry = await recalculate(api, NOVEMBER_TO_NOW | {"dryRun": True, "virtualKeys": [ids["k1"]]})
        assert dry["dryRun"] is True
        assert (dry["eventsRepriced"], dry["difference"]) == (2, Decimal("0.006"))
        assert [change["eventId"] for change in dry["changes"]] == ["e1", "e7"]
        assert dry["changes"][0] | {"timestamp": None} == {
            "eventId": "e1",
            "accountId": ids["acme"],
            "virtualKeyId": ids["k1"],
            "timestamp": None,
            "previousCost": Decimal("0.006"),
            "newCost": Decimal("0.009"),
            "difference": Decimal("0.003"),
        }
        assert await _views(api, ids) == before, "a dry run writes nothing"

        done = await recalculate(api, NOVEMBER_TO_NOW | {"reason": "house-llm's list price went up on 1 November"})
        assert done["dryRun"] is False
        assert (done["eventsExamined"], done["eventsRepriced"]) == (6, 4)
        assert (done["previousCost"], done["newCost"], done["difference"]) == (
            Decimal("0.030"),
            Decimal("0.045"),
            Decimal("0.015"),
        )
        assert done["accounts"] == [{"accountId": ids["acme"], "eventsRepriced": 4, "difference": Decimal("0.015")}]
        after = await _views(api, ids)
        assert after["month"] == after["billed"] == Decimal("0.536"), "e1, e2 and e7 at the new prices"
        assert after["exported"] == after["exported_json"] == Decimal("0.545"), "and e8, today's"
        assert (after["e1"], after["k1_total"], after["consistent"]) == (Decimal("0.009"), Decimal("0.518"), True)

        again = await recalculate(api, NOVEMBER_TO_NOW)
        assert (again["eventsExamined"], again["eventsRepriced"], again["changes"]) == (6, 0, [])
        assert await _views(api, ids) == after, "a second run changes nothing"
        drilled = await api.client.get("/api/admin/requests/e1", headers={"authorization": f"Bearer {MASTER}"})
        (reprice,) = drilled.json()["reprices"]
        assert (reprice["difference_usd"], reprice["reason"], reprice["repriced_by"]) == (
            "0.003",
            "house-llm's list price went up on 1 November",
            "master",
        )
        assert reprice["unit_prices"]["input_mtok"] == "3"
        assert drilled.json()["unit_prices"]["input_mtok"] == "2", "the event as recorded"

        void = await post(api, "/api/admin/events/e7/void", {"reason": "a test event"})
        assert void.status_code == 201, void.text
        assert void.json()["cost_usd"] == "-0.009", "the void takes the event's cost as repriced"
        assert (await _views(api, ids))["month"] == Decimal("0.527")

        audited = await api.client.get(
            "/api/admin/audit", params={"operation": PATH}, headers={"authorization": f"Bearer {MASTER}"}
        )
        assert audited.status_code == 200, audited.text
        runs = [row for row in audited.json()["data"] if row["path"] == PATH]
        assert len(runs) == 4, "one row per run, the dry run and the unchanged book's included"
        (why,) = [row for row in runs if row["filters"]["body"].get("reason")]
        assert why["filters"]["body"]["reason"] == "house-llm's list price went up on 1 November"
        assert (why["principal"]["kind"], why["status"]) == ("master", 200)


async def test_an_owner_reprices_its_own_account_and_others_may_not(ledger_url: str, tmp_path: Path) -> None:
    async with farebox(tmp_path, ledger_url, input_mtok="2", output_mtok="8") as api:
        ids = await _world(api, tmp_path)
    async with farebox(tmp_path, ledger_url, input_mtok="4", output_mtok="16") as api:
        assert_error(await post(api, PATH, NOVEMBER_TO_NOW, ids["billing"]), 403, "role_required")
        key = await api.key(ids["acme"], name="three")
        assert_error(await post(api, PATH, NOVEMBER_TO_NOW, key["key"]), 403)
        other = await api.account("Other")
        assert_error(await post(api, PATH, NOVEMBER_TO_NOW, ids["owner"], account_id=other["id"]), 404)
        done = await recalculate(api, NOVEMBER_TO_NOW, ids["owner"])
        assert (done["accountId"], done["eventsRepriced"], done["difference"]) == (ids["acme"], 4, Decimal("0.030"))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"endDate": "2026-11-30"}, "startDate"),
        ({"startDate": "2026-11-31", "endDate": "2026-12-01"}, "startDate"),
        ({"startDate": "2026-11-30", "endDate": "2026-11-01"}, "endDate"),
        ({"startDate": "2025-01-01", "endDate": "2026-11-01"}, "period"),
        ({**NOVEMBER_TO_NOW, "virtualKeys": ["no-such-key"]}, "virtualKeys"),
        ({**NOVEMBER_TO_NOW, "reason": ""}, "reason"),
        ({**NOVEMBER_TO_NOW, "reason": "   "}, "reason"),
        ({**NOVEMBER_TO_NOW, "dryRun": "maybe"}, "dryRun"),
        ({**NOVEMBER_TO_NOW, "prices": {}}, "prices"),
    ],
)
async def test_a_bad_body_is_refused_with_the_field_named(
    ledger_url: str, tmp_path: Path, body: dict[str, Any], field: str
) -> None:
    async with farebox(tmp_path, ledger_url, input_mtok="2", output_mtok="8") as api:
        acme = await api.account("Acme")
        error = assert_error(await post(api, PATH, body, account_id=acme["id"]), 422)
        assert field in json.dumps(error), error
        assert await api.services.adjustments.count() == 0


async def test_a_recalculation_reaching_before_the_raw_events_kept_is_refused(tmp_path: Path) -> None:
    """With `raw_events_retention_days`, the events before the start of the month it reaches are gone: a range
    reaching before it cannot be repriced whole, so none of it is."""
    async with open_api(tmp_path, raw_events_retention_days=30) as api:
        api.clock.at = NOW  # kept since 2026-11-01 (30 days back is 5 November)
        acme = await api.account("Acme")
        early = {"startDate": "2026-10-31", "endDate": "2026-11-02"}
        error = assert_error(await post(api, PATH, early, account_id=acme["id"]), 422, "validation_failed")
        assert "startDate" in json.dumps(error) and "before 2026-11-01 are removed" in error["message"]
        assert (await post(api, PATH, NOVEMBER_TO_NOW, account_id=acme["id"])).status_code == 200
