"""`farebox export`: an account's usage events of a range to a CSV or JSON file, from the terminal."""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from farebox.analytics.export import EXPORT_FIELDS
from farebox.core.events import Axis, UsageEvent
from farebox.ledger.adjustments import Actor, Adjustments
from farebox.ledger.base import Ledger

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

MARCH_1_PARIS = datetime(2026, 2, 28, 23, tzinfo=UTC)
AWKWARD_APP = 'ops, "night"\nshift'
"""A name the CSV must quote: a comma, quotes and a line break."""


def _record(cli: Cli, account_id: str, key_id: str, *, count: int) -> None:
    """`count` events a minute apart from 1 March 00:00 in Paris, 0.01 USD each, and one voided, ingested one."""

    def event(
        event_id: str, at: datetime, *, source: str = "proxy", cost_nano: int = 10_000_000, app: str | None = None
    ) -> UsageEvent:
        return UsageEvent(
            id=event_id,
            timestamp=at,
            account_id=account_id,
            key_id=key_id,
            axis=Axis.LLM,
            provider="openai",
            model="gpt-4o",
            canonical_model="gpt-4o",
            operation="chat.completions",
            input_tokens=100,
            cost_nano=cost_nano,
            source=source,
            app=app,
        )

    events = [event(f"evt-{n:05d}", MARCH_1_PARIS + timedelta(minutes=n)) for n in range(count)]
    events[5] = event("evt-00005", MARCH_1_PARIS + timedelta(minutes=5), app=AWKWARD_APP)
    events.append(event("early", MARCH_1_PARIS - timedelta(seconds=1)))  # 28 February in Paris
    events.append(event("wrong", MARCH_1_PARIS + timedelta(days=2), source="ingest", cost_nano=99_000_000_000))

    async def record() -> None:
        async with Ledger(cli.database_url) as ledger:
            for start in range(0, len(events), 1_000):
                await ledger.record_many(events[start : start + 1_000])
            await Adjustments(ledger).void("wrong", reason="posted twice", by=Actor("cli"))

    asyncio.run(record())


def test_export_writes_the_range_to_a_csv_or_json_file(cli: Cli, tmp_path: Path) -> None:
    account = cli.json("accounts", "create", "--name", "Acme", "--timezone", "Europe/Paris")
    key = cli.json("keys", "create", "--account", account["id"], "--name", "ci-bot")
    _record(cli, account["id"], key["id"], count=12_000)  # more than two pages of 5,000
    march = ("--account", account["id"], "--from", "2026-03-01", "--to", "2026-03-31")

    result = cli.run("export", *march, "--output", str(tmp_path / "march.csv"))
    assert result.exit_code == 0, result.output
    assert "12000 events" in result.stdout and "march.csv" in result.stdout
    assert "12000/12000" in result.stderr, "the progress bar counts up to the rollups' request count"
    with (tmp_path / "march.csv").open(newline="") as file:
        rows = list(csv.reader(file))
    assert tuple(rows[0]) == EXPORT_FIELDS
    assert [row[0] for row in rows[1:]] == [f"evt-{n:05d}" for n in range(12_000)], "in time order, no voided one"
    assert rows[1][1] == "2026-02-28T23:00:00Z"
    assert rows[6][EXPORT_FIELDS.index("app")] == AWKWARD_APP and rows[7][EXPORT_FIELDS.index("app")] == ""
    total = sum(Decimal(row[EXPORT_FIELDS.index("cost_usd")]) for row in rows[1:])
    assert total == Decimal(cli.json("usage", "--account", account["id"], "--month", "2026-03")["total"]["cost"])
    assert not list(tmp_path.glob(".*.partial"))

    done = cli.json("export", *march, "--format", "json", "--tz", "UTC", "-o", str(tmp_path / "march.json"))
    assert done == {
        "account_id": account["id"],
        "from": "2026-03-01",
        "to": "2026-03-31",
        "tz": "UTC",
        "format": "json",
        "granularity": "raw",
        "events": 11_940,
        "output": str(tmp_path / "march.json"),
    }
    exported = orjson.loads((tmp_path / "march.json").read_bytes())
    assert exported[0]["id"] == "evt-00060", "in UTC, March starts an hour later"
    assert (exported[0]["cost_usd"], exported[0]["credits_used"]) == ("0.01", "200")
    assert len(exported) == 12_000 - 60 and exported[-1]["id"] == "evt-11999"


def test_export_sums_by_the_hour_picks_fields_and_drops_cheap_rows(cli: Cli, tmp_path: Path) -> None:
    """The rows of `POST /api/admin/analytics/export` from the terminal: hourly sums with the fields asked for, and
    raw events as NDJSON above a minimum cost."""
    account = cli.json("accounts", "create", "--name", "Acme", "--timezone", "Europe/Paris")
    key = cli.json("keys", "create", "--account", account["id"], "--name", "ci-bot")
    _record(cli, account["id"], key["id"], count=150)  # 00:00 to 02:29 on 1 March in Paris
    march = ("--account", account["id"], "--from", "2026-03-01", "--to", "2026-03-31")

    fields = "timestamp,virtual_key_name,requests,cost"
    hourly = tmp_path / "hourly.csv"
    result = cli.run("export", *march, "--granularity", "hourly", "--fields", fields, "-o", str(hourly))
    assert result.exit_code == 0, result.output
    assert "3 hourly rows" in result.stdout
    with hourly.open(newline="") as file:
        rows = list(csv.reader(file))
    assert rows == [
        fields.split(","),
        ["2026-02-28T23:00:00Z", "ci-bot", "60", "0.60"],
        ["2026-03-01T00:00:00Z", "ci-bot", "60", "0.60"],
        ["2026-03-01T01:00:00Z", "ci-bot", "30", "0.30"],
    ], "the voided event left out, the hours of Paris"

    dear = cli.json("export", *march, "--format", "ndjson", "--min-cost", "0.01", "-o", str(tmp_path / "x.ndjson"))
    assert (dear["events"], dear["granularity"]) == (150, "raw")
    lines = (tmp_path / "x.ndjson").read_bytes().splitlines()
    assert len(lines) == 150 and orjson.loads(lines[0])["key_id"] == key["id"]
    cheap_only = cli.json("export", *march, "--format", "ndjson", "--min-cost", "0.0100001", "-o", str(tmp_path / "y"))
    assert cheap_only["events"] == 0 and (tmp_path / "y").read_bytes() == b""

    assert "id" in cli.fails("export", *march, "--granularity", "daily", "--fields", "id", "-o", str(hourly), code=2)
    assert "1.50" in cli.fails("export", *march, "--min-cost", "-1", "-o", str(hourly), code=2)


def test_export_refuses_a_bad_range_zone_or_account(cli: Cli, tmp_path: Path) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    out = str(tmp_path / "x.csv")
    assert "2026-02-30" in cli.fails("export", "--account", account, "-o", out, "--from", "2026-02-30", code=2)
    assert "comes before" in cli.fails(
        "export", "--account", account, "-o", out, "--from", "2026-03-02", "--to", "2026-03-01", code=2
    )
    assert "Mars/Base" in cli.fails("export", "--account", account, "-o", out, "--tz", "Mars/Base", code=2)
    assert "no-such-account" in cli.fails("export", "--account", "no-such-account", "-o", out)
    assert cli.json_error("export", "--account", "no-such-account", "-o", out)["code"] == "account_not_found"
    assert not (tmp_path / "x.csv").exists()
