"""`POST /api/admin/analytics/billing-export` (seed 004) over HTTP on both backends: an invoice whose lines are
rounded to whole cents half to even, with the residual reported and each line taxed at its account's rate; lines by
key, member, model and account; the CSV read back with the `csv` module; the FOCUS 1.2 CSV's columns; who may
export; bad bodies."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from admin_client import MASTER, Api, assert_error

from farebox.analytics.focus import COLUMNS
from farebox.core.events import Axis, UsageEvent

pytestmark = pytest.mark.anyio

PATH = "/api/admin/analytics/billing-export"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
FOCUS_MANDATORY = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
)
"""FOCUS 1.2's mandatory columns."""


@pytest.fixture
def api(api_each_backend: Api) -> Api:
    return api_each_backend


def _event(n: int, account: str, key: str | None, at: datetime, cost_nano: int, **fields: Any) -> UsageEvent:
    values: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o",
        "canonical_model": "gpt-4o",
        "operation": "chat.completions",
        "input_tokens": 100,
        "output_tokens": 20,
        "latency_ms": 300,
    } | fields
    return UsageEvent(
        id=f"evt-{n}", timestamp=at, account_id=account, key_id=key, axis=Axis.LLM, cost_nano=cost_nano, **values
    )


async def _ledger(api: Api) -> dict[str, Any]:
    """Acme (Kolkata, taxed at 20 %) in November: a key costing half a cent, one of 1.5 cents, one of
    $1.234567891 over two models; a member's key; usage without a key; and another account."""
    api.clock.at = NOW
    acme = await api.account("Acme", plan="enterprise", timezone="Asia/Kolkata", tax_rate="0.2")
    other = await api.account("Other", plan="enterprise")
    ada = await api.member(acme["id"], "ada@acme.test", "admin", name="Ada")
    half = await api.key(acme["id"], name="half")
    one_and_half = await api.key(acme["id"], name="one-and-half")
    big = await api.key(acme["id"], name="big", member_id=ada["id"])
    theirs = await api.key(other["id"], name="theirs")
    day = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
    await api.ledger.record_many(
        [
            _event(1, acme["id"], half["id"], day, 5_000_000),
            _event(2, acme["id"], one_and_half["id"], day, 15_000_000),
            _event(3, acme["id"], big["id"], day, 1_000_000_000, member_id=ada["id"]),
            _event(
                4,
                acme["id"],
                big["id"],
                day,
                234_567_891,
                model="claude",
                canonical_model="claude",
                member_id=ada["id"],
            ),
            _event(5, acme["id"], None, day, 2_000_000),
            # Kolkata's November starts at 18:30 UTC on 31 October: this is November's, the next October's.
            _event(6, acme["id"], half["id"], datetime(2026, 10, 31, 18, 45, tzinfo=UTC), 100_000_000),
            _event(7, acme["id"], half["id"], datetime(2026, 10, 31, 18, 15, tzinfo=UTC), 900_000_000),
            _event(8, other["id"], theirs["id"], day, 7_000_000_000),
        ]
    )
    return {
        "acme": acme["id"],
        "other": other["id"],
        "ada": ada["id"],
        "half": half["id"],
        "one_and_half": one_and_half["id"],
        "big": big["id"],
    }


async def billing(api: Api, body: dict[str, Any], token: str = MASTER, **params: str) -> Any:
    return await api.client.post(PATH, json=body, params=params, headers={"authorization": f"Bearer {token}"})


def data_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    answer = json.loads(response.content, parse_float=Decimal)
    assert answer["success"] is True
    return answer["data"]


async def test_each_line_is_rounded_half_to_even_and_the_residual_reported(api: Api) -> None:
    ids = await _ledger(api)
    data = data_of(await billing(api, {"billingCycle": "2026-11", "groupBy": "virtual_key"}, account_id=ids["acme"]))
    lines = {line["virtualKeyId"]: line for line in data["lines"]}
    assert [line["virtualKeyId"] for line in data["lines"]] == [ids["big"], ids["half"], ids["one_and_half"], None]
    assert (lines[ids["big"]]["cost"], lines[ids["big"]]["amountCents"]) == ("1.234567891", 123)
    assert (lines[ids["half"]]["exactCents"], lines[ids["half"]]["amountCents"]) == (Decimal("10.5"), 10)
    assert (lines[ids["one_and_half"]]["exactCents"], lines[ids["one_and_half"]]["amountCents"]) == (
        Decimal("1.5"),
        2,
    ), "half to even: 1.5 -> 2, 10.5 -> 10"
    assert lines[None]["amountCents"] == 0 and lines[None]["exactCents"] == Decimal("0.2")
    assert lines[ids["big"]]["requests"] == 2 and lines[ids["big"]]["inputTokens"] == 200
    assert data["totals"] == {
        "requests": 6,
        "inputTokens": 600,
        "outputTokens": 120,
        "cost": "1.356567891",
        "exactCents": Decimal("135.6567891"),
        "subtotalCents": 135,
        "roundingResidualCents": Decimal("0.6567891"),
        "totalCents": 135,
    }
    assert (data["billingCycle"], data["accountId"], data["currency"], data["complete"]) == (
        "2026-11",
        ids["acme"],
        "USD",
        True,
    )
    usage = await api.client.get(
        "/api/usage",
        params={"accountId": ids["acme"], "month": "2026-11"},
        headers={"authorization": f"Bearer {MASTER}"},
    )
    assert json.loads(usage.content, parse_float=Decimal)["llm"]["totalCents"] == data["totals"]["exactCents"]


async def test_each_line_is_taxed_at_its_account_s_rate(api: Api) -> None:
    ids = await _ledger(api)
    body = {"billingCycle": "2026-11", "includeTaxCalculations": True, "includeMetadata": True}
    data = data_of(await billing(api, body, account_id=ids["acme"]))
    taxes = [(line["virtualKeyName"], line["amountCents"], line["taxRate"], line["taxCents"]) for line in data["lines"]]
    assert taxes == [
        ("big", 123, "0.2", 25),
        ("half", 10, "0.2", 2),
        ("one-and-half", 2, "0.2", 0),
        (None, 0, "0.2", 0),
    ]
    assert (data["totals"]["subtotalCents"], data["totals"]["taxCents"], data["totals"]["totalCents"]) == (135, 27, 162)
    metadata = data["metadata"]
    assert metadata["timezone"] == "Asia/Kolkata"
    assert (
        metadata["periodStart"] == "2026-11-01T00:00:00+05:30" and metadata["periodEnd"] == "2026-12-01T00:00:00+05:30"
    )
    assert metadata["accounts"] == [{"id": ids["acme"], "name": "Acme", "taxRate": "0.2"}]
    assert "half to even" in metadata["roundingRule"]
    assert all(line["accountName"] == "Acme" for line in data["lines"])


async def test_lines_by_member_model_and_account(api: Api) -> None:
    ids = await _ledger(api)
    by_member = data_of(await billing(api, {"billingCycle": "2026-11", "groupBy": "member"}, account_id=ids["acme"]))
    assert [(line["memberId"], line["amountCents"]) for line in by_member["lines"]] == [
        (ids["ada"], 123),
        (None, 12),
    ], "the member's key, and the rest (12.2 cents of keys without a member and usage without a key)"
    by_model = data_of(await billing(api, {"billingCycle": "2026-11", "groupBy": "model"}, account_id=ids["acme"]))
    assert [(line["model"], line["cost"]) for line in by_model["lines"]] == [
        ("gpt-4o", "1.122"),
        ("claude", "0.234567891"),
    ]
    everyone = data_of(await billing(api, {"billingCycle": "2026-11", "groupBy": "account"}))
    assert everyone["accountId"] is None
    assert [(line["accountId"], line["cost"]) for line in everyone["lines"]] == [
        (ids["acme"], "1.256567891"),
        (ids["other"], "7.00"),
    ], "the operator view: every account's UTC month, where both events of 31 October are October's"


async def test_the_csv_reads_back_with_the_json_lines(api: Api) -> None:
    ids = await _ledger(api)
    body = {"billingCycle": "2026-11", "format": "csv", "includeTaxCalculations": True, "includeMetadata": True}
    response = await billing(api, body, account_id=ids["acme"])
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert f'filename="billing-{ids["acme"]}-2026-11.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == [
        "billing_cycle",
        "account_id",
        "virtual_key_id",
        "account_name",
        "virtual_key_name",
        "requests",
        "input_tokens",
        "output_tokens",
        "cost",
        "exact_cents",
        "amount_cents",
        "tax_rate",
        "tax_cents",
        "total_cents",
    ]
    assert [(row["virtual_key_name"], row["exact_cents"], row["amount_cents"]) for row in rows] == [
        ("big", "123.4567891", "123"),
        ("half", "10.5", "10"),
        ("one-and-half", "1.5", "2"),
        ("", "0.2", "0"),
    ]
    assert sum(int(row["total_cents"]) for row in rows) == 162


async def test_the_focus_csv_fills_the_mandatory_columns_and_bills_the_invoice_total(api: Api) -> None:
    ids = await _ledger(api)
    body = {"billingCycle": "2026-11", "format": "focus", "includeTaxCalculations": True}
    response = await billing(api, body, account_id=ids["acme"])
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    reader = csv.DictReader(io.StringIO(response.text))
    rows = list(reader)
    assert tuple(reader.fieldnames or ()) == COLUMNS and set(FOCUS_MANDATORY) <= set(COLUMNS)
    usage = [row for row in rows if row["ChargeCategory"] == "Usage"]
    assert len(usage) == 6, "a row per day, key, member, provider, model and operation"
    for row in usage:
        assert all(row[column] for column in FOCUS_MANDATORY if column != "ChargeClass"), row
        assert row["ChargeClass"] == "", "no row corrects an earlier period"
        assert row["BilledCost"] == row["EffectiveCost"] == row["ListCost"] == row["ContractedCost"]
        assert (row["BillingPeriodStart"], row["BillingPeriodEnd"]) == ("2026-10-31T18:30:00Z", "2026-11-30T18:30:00Z")
        assert row["BillingCurrency"] == "USD" and row["InvoiceId"] == f"{ids['acme']}/2026-11"
    first = usage[0]
    assert (first["ChargePeriodStart"], first["ChargePeriodEnd"]) == ("2026-10-31T18:30:00Z", "2026-11-01T18:30:00Z")
    assert (first["SubAccountId"], first["SubAccountName"], first["BilledCost"]) == (ids["half"], "half", "0.10")
    assert (first["PricingQuantity"], first["PricingUnit"], first["SkuId"]) == ("120", "Tokens", "gpt-4o")
    charges = [(row["ChargeCategory"], row["BilledCost"]) for row in rows if row["ChargeCategory"] != "Usage"]
    assert charges == [("Adjustment", "-0.006567891"), ("Tax", "0.25"), ("Tax", "0.02")]
    assert sum(Decimal(row["BilledCost"]) for row in rows) == Decimal("1.62"), "the invoice's total"


async def test_who_may_export(api: Api) -> None:
    ids = await _ledger(api)
    body = {"billingCycle": "2026-11"}
    billing_member = await api.member(ids["acme"], "bill@acme.test", "billing")
    token = await api.token(ids["acme"], billing_member["id"])
    assert data_of(await billing(api, body, token=token))["totals"]["subtotalCents"] == 135
    plain = await api.member(ids["acme"], "mo@acme.test", "member")
    assert_error(await billing(api, body, token=await api.token(ids["acme"], plain["id"])), 403, "role_required")
    assert_error(await billing(api, body, token=token, account_id=ids["other"]), 404, "account_not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "billingCycle"),
        ({"billingCycle": "2026-13"}, "billingCycle"),
        ({"billingCycle": "2026-1"}, "billingCycle"),
        ({"billingCycle": "2026-11", "period": "weekly"}, "period"),
        ({"billingCycle": "2026-11", "groupBy": "team"}, "groupBy"),
        ({"billingCycle": "2026-11", "format": "xlsx"}, "format"),
        ({"billingCycle": "2026-11", "surprise": 1}, "surprise"),
    ],
)
async def test_a_bad_body_is_a_422_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    ids = await _ledger(api)
    error = assert_error(await billing(api, body, account_id=ids["acme"]), 422)
    assert field in json.dumps(error), error


async def test_a_tax_rate_outside_0_to_1_or_finer_than_a_millionth_is_refused(api: Api) -> None:
    ids = await _ledger(api)
    for rate in ("1.5", "0.0000001", "-0.1", "eight"):
        response = await api.call("PATCH", f"/accounts/{ids['acme']}", {"tax_rate": rate})
        assert "tax_rate" in json.dumps(assert_error(response, 422)), rate
    changed = await api.ok("PATCH", f"/accounts/{ids['acme']}", {"tax_rate": "0.0825"})
    assert changed["tax_rate"] == "0.0825"
