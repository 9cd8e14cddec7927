"""`POST /api/admin/analytics/reports` (seed 004) over HTTP on both backends: the seed's sections as JSON, the same
numbers in the CSV (read back with `csv`), the XLSX (read back with `openpyxl`, its charts there) and the PDF
(rendered with `pdftoppm`, its text read with `pdftotext`); filters; who may ask; bad bodies."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from admin_client import MASTER, Api, assert_error

from farebox.core.alerts import Alert
from farebox.core.events import Axis, Status, UsageEvent
from farebox.ledger.alert_state import AlertState, Firing

pytestmark = pytest.mark.anyio

PATH = "/api/admin/analytics/reports"
NOW = datetime(2026, 3, 10, 12, 20, tzinfo=UTC)
SECTIONS = [
    {"type": "summary", "metrics": ["total_cost", "total_requests", "unique_users", "error_rate"]},
    {"type": "breakdown", "groupBy": "provider", "metrics": ["cost", "requests", "latency"]},
    {"type": "trends", "granularity": "daily", "metrics": ["cost", "requests"]},
    {"type": "top_items", "category": "virtual_keys", "sortBy": "cost", "limit": 10},
]


@pytest.fixture
def api(api_each_backend: Api) -> Api:
    return api_each_backend


def _event(n: int, account: str, key: str, member: str | None, at: datetime, **fields: Any) -> UsageEvent:
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
    return UsageEvent(
        id=f"evt-{n}", timestamp=at, account_id=account, key_id=key, member_id=member, axis=Axis.LLM, **values
    )


async def _ledger(api: Api) -> dict[str, str]:
    """Acme over three days: Ada's key (three OpenAI requests, one failed), a key tagged `test` (one Anthropic
    request of $2.50)."""
    api.clock.at = NOW
    acme = await api.account("Acme", plan="enterprise")
    ada = await api.member(acme["id"], "ada@acme.test", "admin", name="Ada")
    mine = await api.key(acme["id"], name="ada-key", member_id=ada["id"])
    tested = await api.key(acme["id"], name="ci-key", tags=["test"])
    day = NOW.replace(hour=9, minute=0)
    await api.ledger.record_many(
        [
            _event(1, acme["id"], mine["id"], ada["id"], day - timedelta(days=2)),
            _event(2, acme["id"], mine["id"], ada["id"], day - timedelta(days=1), latency_ms=500),
            _event(3, acme["id"], mine["id"], ada["id"], day, status=Status.ERROR, http_status=503, cost_nano=0),
            _event(
                4, acme["id"], tested["id"], None, day, provider="anthropic", model="claude", cost_nano=2_500_000_000
            ),
        ]
    )
    return {"acme": acme["id"], "mine": mine["id"], "tested": tested["id"]}


async def _report(api: Api, body: dict[str, Any], account: str, token: str = MASTER) -> Any:
    return await api.client.post(
        PATH, json=body, params={"account_id": account}, headers={"authorization": f"Bearer {token}"}
    )


async def _json(api: Api, account: str, **extra: Any) -> dict[str, Any]:
    body = {"reportName": "Monthly Executive Summary", "period": "7d", "sections": SECTIONS} | extra
    response = await _report(api, body, account)
    assert response.status_code == 200, response.text
    return json.loads(response.content, parse_float=Decimal)["data"]


async def test_the_alerts_fired_in_the_period_and_the_forecast_ahead_are_sections_too(api: Api) -> None:
    ids = await _ledger(api)
    yesterday = NOW.replace(hour=9, minute=0) - timedelta(days=1)
    await api.ledger.record(_event(5, ids["acme"], ids["mine"], None, yesterday, cost_nano=1_200_000_000))
    fired = NOW - timedelta(days=1)
    await AlertState(api.ledger).fire(
        [
            Firing(
                Alert(
                    rule="threshold:0.8",
                    event_type="usage.threshold",
                    account_id=ids["acme"],
                    scope="key",
                    scope_id=ids["mine"],
                    period_start=int(fired.timestamp()),
                    text="ada-key passed 80% of its monthly cap",
                    data={},
                    actions=(),
                )
            )
        ],
        at=fired,
    )
    body = {"period": "7d", "sections": [{"type": "alerts"}, {"type": "forecasts"}]}
    response = await _report(api, body, ids["acme"])
    assert response.status_code == 200, response.text
    alerts, forecast = json.loads(response.content, parse_float=Decimal)["data"]["sections"]
    assert alerts["rows"] == [
        [fired.isoformat(), "threshold:0.8", f"key {ids['mine']}", "ada-key passed 80% of its monthly cap"]
    ]
    assert forecast["title"] == "Forecast, 30d from 2026-03-10"
    assert [row[0] for row in forecast["rows"]] == ["2026-03", "2026-04"]
    march = forecast["rows"][0]
    assert march[1] == Decimal("1.20"), "spent to date, to the cent: the month's usage before today ($1.202)"
    assert march[3] <= march[2] <= march[4], "the projection lies in its interval"
    pdf = await _report(api, body | {"format": "pdf"}, ids["acme"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


async def test_the_seed_s_sections_as_json(api: Api) -> None:
    ids = await _ledger(api)
    data = await _json(api, ids["acme"])
    assert data["period"] == {"startDate": "2026-03-04", "endDate": "2026-03-10", "timezone": "UTC"}
    summary, breakdown, trends, top = data["sections"]
    assert dict(summary["rows"]) == {
        "total_cost": Decimal("2.503"),
        "total_requests": 4,
        "unique_users": 1,
        "error_rate": Decimal("0.25"),
    }
    assert breakdown["columns"] == ["provider", "cost (USD)", "requests", "latency (ms)"]
    assert breakdown["rows"] == [
        ["anthropic", Decimal("2.5"), 1, Decimal("300")],
        ["openai", Decimal("0.003"), 3, Decimal("366.7")],
    ]
    assert [row[0] for row in trends["rows"]] == [f"2026-03-{day:02d}" for day in range(4, 11)], "every day"
    assert sum(row[1] for row in trends["rows"]) == Decimal("2.503")
    assert [row[0] for row in top["rows"]] == ["ci-key", "ada-key"]


async def test_filters_leave_out_test_keys_and_cheap_rows(api: Api) -> None:
    ids = await _ledger(api)
    data = await _json(api, ids["acme"], filters={"excludeTestKeys": True})
    assert dict(data["sections"][0]["rows"])["total_cost"] == Decimal("0.003")
    costly = await _json(api, ids["acme"], filters={"minCost": "1.00"})
    assert [row[0] for row in costly["sections"][1]["rows"]] == ["anthropic"]


async def test_the_csv_holds_the_json_s_numbers(api: Api) -> None:
    ids = await _ledger(api)
    data = await _json(api, ids["acme"])
    response = await _report(api, {"format": "csv", "period": "7d", "sections": SECTIONS}, ids["acme"])
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    total = next(row for row in rows if row["section"] == "summary" and row["metric"] == "total_cost")
    assert Decimal(total["value"]) == dict(data["sections"][0]["rows"])["total_cost"]
    trend_costs = [
        Decimal(row["value"]) for row in rows if row["section"] == "trends" and row["metric"] == "cost (USD)"
    ]
    assert sum(trend_costs) == Decimal("2.503")


async def test_the_xlsx_opens_in_openpyxl_with_the_same_totals_and_charts(api: Api) -> None:
    ids = await _ledger(api)
    body = {"format": "excel", "reportName": "Weekly Cost Analysis", "period": "7d", "sections": SECTIONS}
    response = await _report(api, body, ids["acme"])
    assert response.status_code == 200, response.text
    assert 'filename="weekly-cost-analysis-2026-03-04-2026-03-10.xlsx"' in response.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == [
        "Report",
        "Summary",
        "Breakdown by provider",
        "Trends, daily",
        "Top 10 virtual keys by cost",
    ]
    assert book["Report"]["A1"].value == "Weekly Cost Analysis"
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(min_row=2, values_only=True)}
    assert Decimal(str(summary["total_cost"])) == Decimal("2.503") and summary["total_requests"] == 4
    trends = list(book["Trends, daily"].iter_rows(min_row=2, values_only=True))
    assert sum(Decimal(str(row[1])) for row in trends) == Decimal("2.503")
    assert len(book["Breakdown by provider"]._charts) == 1 and len(book["Trends, daily"]._charts) == 1


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (pdftoppm, pdftotext) is not installed")
async def test_the_pdf_renders_with_its_numbers(api: Api, tmp_path: Path) -> None:
    ids = await _ledger(api)
    body = {"format": "pdf", "reportName": "Monthly Executive Summary", "period": "7d", "sections": SECTIONS}
    response = await _report(api, body, ids["acme"])
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(response.content)
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True)
    (page,) = tmp_path.glob("page*.png")
    assert page.stat().st_size > 5_000, "a page with tables and charts on it"
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    assert "Monthly Executive Summary" in text and "2.503" in text and "Breakdown by provider" in text


async def test_who_may_ask(api: Api) -> None:
    ids = await _ledger(api)
    body = {"period": "7d", "sections": [{"type": "summary"}]}
    plain = await api.member(ids["acme"], "mo@acme.test", "member")
    assert_error(await _report(api, body, ids["acme"], token=await api.token(ids["acme"], plain["id"])), 403)
    billing = await api.member(ids["acme"], "bill@acme.test", "billing")
    response = await _report(api, body, ids["acme"], token=await api.token(ids["acme"], billing["id"]))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"period": "7d"}, "sections"),
        ({"sections": [{"type": "summary"}]}, "period"),
        ({"period": "24h", "sections": [{"type": "summary"}]}, "period"),
        ({"period": "7d", "sections": [{"type": "anomalies"}]}, "type"),
        ({"period": "7d", "sections": [{"type": "breakdown", "metrics": ["vibes"]}]}, "metrics"),
        ({"period": "7d", "sections": [{"type": "breakdown", "groupBy": "team"}]}, "groupBy"),
        ({"period": "7d", "sections": [{"type": "summary"}], "format": "docx"}, "format"),
        ({"period": "7d", "sections": [{"type": "summary"}], "schedule": {"frequency": "monthly"}}, "schedule"),
    ],
)
async def test_a_bad_body_is_a_422_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    ids = await _ledger(api)
    error = assert_error(await _report(api, body, ids["acme"]), 422)
    assert field in json.dumps(error), error


def test_the_cli_runs_a_report_as_json_and_as_an_xlsx_file(cli: Any, tmp_path: Path) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    printed = cli.run("reports", "run", "--account", account, "--period", "7d", "--section", "summary")
    assert printed.exit_code == 0, printed.output
    data = json.loads(printed.stdout, parse_float=Decimal)
    assert [section["type"] for section in data["sections"]] == ["summary"]
    assert dict(data["sections"][0]["rows"])["total_cost"] == 0
    out = tmp_path / "report.xlsx"
    written = cli.json("reports", "run", "--account", account, "--format", "xlsx", "-o", str(out), "--name", "Weekly")
    assert written == {"written": out.stat().st_size, "path": str(out)}
    book = openpyxl.load_workbook(out)
    assert book["Report"]["A1"].value == "Weekly" and "Trends, daily" in book.sheetnames
    assert "--output" in cli.fails("reports", "run", "--account", account, "--format", "pdf", code=2)
    assert "--section" in cli.fails("reports", "run", "--account", account, "--section", "breakdown:team", code=2)
    assert "no account" in cli.fails("reports", "run", "--account", "nowhere")
