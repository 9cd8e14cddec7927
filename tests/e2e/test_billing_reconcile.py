"""The billing export's invoice adds up, whatever the month's events: its subtotal is the sum of its rounded lines,
its exact total is `GET /api/usage`'s for the month, voided events are out of both, and the FOCUS rows bill the
invoice's total to the cent.

Hypothesis makes the events (LLM, voice and compute usage of two members' keys and of the account itself, at any
minute from a week before the month to its end, at any cost down to the nano-USD, in a zone of UTC, +05:30, +05:45
or New York's), which of them are voided, how the lines are grouped and the account's tax rate. The events are
posted through `POST /api/events` and voided through `POST /api/admin/events/{id}/void`, over HTTP as the master key.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
from admin_client import MASTER, Api, open_api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_views_reconcile import ZONES, Event, events

FIRST, LAST = date(2026, 11, 1), date(2026, 11, 30)
GROUPS = ("virtual_key", "member", "account", "model")


async def _post(api: Api, path: str, body: Any, status: int = 200) -> None:
    response = await api.client.post(path, json=body, headers={"authorization": f"Bearer {MASTER}"})
    assert response.status_code == status, response.text


async def _invoice(
    tmp_path: Path, zone: str, batch: list[Event], voided: set[int], group_by: str, rate: str
) -> tuple[int, dict[str, Any], Decimal, list[dict[str, str]]]:
    """(the cost of the month's events not voided in nano-USD, the JSON invoice, `/api/usage`'s total in cents, the
    FOCUS rows)."""
    now = datetime(2026, 11, 30, 23, 59, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    async with open_api(tmp_path) as api:
        api.clock.at = now
        account = await api.account("Acme", timezone=zone, plan="enterprise", tax_rate=rate)
        ids = {"account": account["id"]}
        for name in ("ada", "bob"):
            member = await api.member(account["id"], f"{name}@acme.test", "admin")
            ids[f"{name}_key"] = (await api.key(account["id"], member_id=member["id"]))["id"]
        if batch:
            await _post(api, "/api/events", {"events": [event.body(n, ids, now) for n, event in enumerate(batch)]})
        for n in sorted(voided):
            await _post(api, f"/api/admin/events/evt-{n}/void", {"reason": "posted twice"}, 201)
        in_month = [
            event
            for n, event in enumerate(batch)
            if n not in voided and FIRST <= event.at(now).astimezone(ZoneInfo(zone)).date() <= LAST
        ]
        body = {"billingCycle": "2026-11", "groupBy": group_by, "includeTaxCalculations": True}
        params = {"account_id": account["id"]}
        response = await api.client.post(
            "/api/admin/analytics/billing-export",
            json=body,
            params=params,
            headers={"authorization": f"Bearer {MASTER}"},
        )
        assert response.status_code == 200, response.text
        invoiced = json.loads(response.content, parse_float=Decimal)["data"]
        focus = await api.client.post(
            "/api/admin/analytics/billing-export",
            json=body | {"format": "focus"},
            params=params,
            headers={"authorization": f"Bearer {MASTER}"},
        )
        assert focus.status_code == 200, focus.text
        usage = await api.client.get(
            "/api/usage",
            params={"accountId": account["id"], "month": "2026-11"},
            headers={"authorization": f"Bearer {MASTER}"},
        )
        month = json.loads(usage.content, parse_float=Decimal)
        usage_cents = sum(month[axis]["totalCents"] for axis in ("compute", "llm", "voice"))
        return sum(e.cost_nano for e in in_month), invoiced, usage_cents, list(csv.DictReader(io.StringIO(focus.text)))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    zone=st.sampled_from(ZONES),
    batch=events,
    voided=st.sets(st.integers(0, 39), max_size=8),
    group_by=st.sampled_from(GROUPS),
    rate=st.sampled_from(("0", "0.0825", "0.2", "0.000001")),
)
def test_the_invoice_adds_up_and_reconciles_with_the_usage_of_the_month(
    tmp_path_factory: Any, zone: str, batch: list[Event], voided: set[int], group_by: str, rate: str
) -> None:
    voided = {n for n in voided if n < len(batch)}
    expected, invoiced, usage_cents, focus = anyio.run(
        _invoice, tmp_path_factory.mktemp("billing"), zone, batch, voided, group_by, rate
    )
    lines, totals = invoiced["lines"], invoiced["totals"]
    exact = Decimal(expected).scaleb(-7)
    assert totals["exactCents"] == exact == usage_cents, "the unrounded total is /api/usage's, voids left out of both"
    assert sum(line["exactCents"] for line in lines) == exact
    assert totals["subtotalCents"] == sum(line["amountCents"] for line in lines), "the sum of the rounded lines"
    assert totals["roundingResidualCents"] == exact - totals["subtotalCents"]
    assert all(abs(line["exactCents"] - line["amountCents"]) <= Decimal("0.5") for line in lines)
    assert totals["taxCents"] == sum(line["taxCents"] for line in lines)
    assert totals["totalCents"] == totals["subtotalCents"] + totals["taxCents"]
    assert all(line["totalCents"] == line["amountCents"] + line["taxCents"] for line in lines)
    billed = sum(Decimal(row["BilledCost"]) for row in focus) * 100
    assert billed == totals["totalCents"], "the FOCUS rows bill the invoice's total"
    usage_rows = [row for row in focus if row["ChargeCategory"] == "Usage"]
    assert sum(Decimal(row["BilledCost"]) for row in usage_rows) * 100 == exact
