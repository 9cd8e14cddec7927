"""Scheduled reports on a real ledger (SQLite and PostgreSQL), with an injected clock: each slot is delivered once,
whatever runs it twice, restarts, or races it; a slot missed while farebox was down runs once when it is back (the
latest only); a new schedule never runs a slot from before it; a schedule changed under a runner is not run stale."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from farebox.analytics import Engine
from farebox.analytics.report_runner import ReportRunner
from farebox.core.events import epoch_us
from farebox.core.report_schedule import Frequency, Timing
from farebox.core.sealing import SecretBox
from farebox.core.server_secret import WEBHOOK_SECRETS
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.reader import LedgerReader
from farebox.ledger.scheduled_reports import ReportSpec, ScheduledReports
from farebox.ledger.schema import outbox
from farebox.ledger.webhooks import WebhookEndpoints
from farebox.webhooks.signing import new_secret

if TYPE_CHECKING:
    from tests.conftest import EventFactory, TableRows

pytestmark = pytest.mark.anyio

UTC_ZONE = ZoneInfo("UTC")
DAILY_9 = Timing(Frequency.DAILY, time(9, 0), UTC_ZONE)
REQUEST = {"format": "json", "sections": [{"type": "summary"}], "filters": {}}
BOX = SecretBox.derived("scheduled-reports-tests-server-secret-0123456789", purpose=WEBHOOK_SECRETS)


def report_runner(ledger: Ledger, directory: Directory, clock: Clock) -> ReportRunner:
    return ReportRunner(
        ScheduledReports(ledger),
        directory,
        Engine(LedgerReader(ledger)),
        WebhookEndpoints(ledger, BOX),
        interval=30,
        clock=clock,
    )


async def endpoint(ledger: Ledger, account: str, url: str) -> str:
    """A webhook endpoint of the account at `url` (a scheduled report's webhookUrl names one): its id."""
    created = await WebhookEndpoints(ledger, BOX).create(account, url=url, events=["usage.voided"], secret=new_secret())
    return created.id


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@asynccontextmanager
async def runner(url: str, clock: Clock) -> AsyncIterator[tuple[ReportRunner, Ledger]]:
    """A started ledger on `url` and a report runner on it: a farebox process, as far as reports go."""
    async with Ledger(url) as ledger:
        directory = Directory(ledger, clock=clock)
        yield report_runner(ledger, directory, clock), ledger


async def deliveries(ledger: Ledger, table_rows: TableRows) -> list[dict[str, Any]]:
    """The outbox's rows, each with its body parsed, oldest first."""
    rows = sorted(await table_rows(ledger, outbox), key=lambda row: (row["created_at_us"], row["channel"]))
    return [row | {"body": json.loads(row["body"], parse_float=Decimal)} for row in rows]


def slots(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(row["body"]["data"]["slot"], row["channel"]) for row in rows]


async def test_each_slot_runs_once_across_repeats_a_restart_and_a_missed_stretch(
    ledger_url: str, table_rows: TableRows, make_event: EventFactory
) -> None:
    clock = Clock(datetime(2026, 12, 6, 10, 0, tzinfo=UTC))
    async with runner(ledger_url, clock) as (first, ledger):
        directory = Directory(ledger, clock=clock)
        account = (await directory.create_account(name="Acme")).id
        hook = await endpoint(ledger, account, "https://hooks.acme.test/reports")
        spec = ReportSpec("Daily ops", DAILY_9, REQUEST, ("ops@acme.test",), "https://hooks.acme.test/reports")
        (created,) = await ScheduledReports(ledger).replace(account, [spec], now=clock())
        assert created.last_slot_us == epoch_us(datetime(2026, 12, 6, 9, 0, tzinfo=UTC))
        await ledger.record(make_event(account_id=account, cost_nano=2_500_000_000, timestamp=clock()))
        assert await first.run_due() == 0  # today's 09:00 came before the schedule: not run

        clock.at = datetime(2026, 12, 7, 9, 0, 30, tzinfo=UTC)
        assert [await first.run_due(), await first.run_due()] == [1, 0]
        rows = await deliveries(ledger, table_rows)
        assert slots(rows) == [("2026-12-07T09:00:00Z", "email"), ("2026-12-07T09:00:00Z", "webhook")]
        assert [(row["target"], row["endpoint_id"]) for row in rows] == [("ops@acme.test", None), ("", hook)]
        data = rows[0]["body"]["data"]
        assert rows[0]["body"]["type"] == "report.scheduled" and data["text"] == "Daily ops: 2026-12-06 to 2026-12-06"
        report = data["report"]
        assert report["period"] == {"startDate": "2026-12-06", "endDate": "2026-12-06", "timezone": "UTC"}
        assert dict(report["sections"][0]["rows"])["total_cost"] == Decimal("2.5")
        assert rows[0]["body"] == rows[1]["body"]

    clock.at += timedelta(minutes=5)
    async with runner(ledger_url, clock) as (restarted, ledger):  # a new process on the same database
        assert await restarted.run_due() == 0
        clock.at = datetime(2026, 12, 10, 10, 0, tzinfo=UTC)  # down through the slots of the 8th, 9th and 10th
        assert [await restarted.run_due(), await restarted.run_due()] == [1, 0]
        rows = await deliveries(ledger, table_rows)
        assert slots(rows)[2:] == [("2026-12-10T09:00:00Z", "email"), ("2026-12-10T09:00:00Z", "webhook")]
        assert rows[2]["body"]["data"]["report"]["period"]["startDate"] == "2026-12-09"


async def test_two_runners_racing_on_one_database_deliver_a_slot_once(ledger_url: str, table_rows: TableRows) -> None:
    clock = Clock(datetime(2026, 12, 6, 10, 0, tzinfo=UTC))
    async with runner(ledger_url, clock) as (one, ledger), runner(ledger_url, clock) as (other, _):
        account = (await Directory(ledger, clock=clock).create_account(name="Acme")).id
        await endpoint(ledger, account, "https://hooks.acme.test/r")
        spec = ReportSpec("Daily", DAILY_9, REQUEST, webhook_url="https://hooks.acme.test/r")
        await ScheduledReports(ledger).replace(account, [spec], now=clock())
        for day in (7, 8, 9):
            clock.at = datetime(2026, 12, day, 9, 1, tzinfo=UTC)
            assert sum(await asyncio.gather(one.run_due(), other.run_due(), one.run_due(), other.run_due())) == 1
        assert [slot for slot, _ in slots(await deliveries(ledger, table_rows))] == [
            "2026-12-07T09:00:00Z",
            "2026-12-08T09:00:00Z",
            "2026-12-09T09:00:00Z",
        ]


async def test_a_schedule_changed_under_a_runner_is_not_run_stale_and_a_new_timing_starts_afresh(
    ledger: Ledger, table_rows: TableRows
) -> None:
    clock = Clock(datetime(2026, 12, 6, 10, 0, tzinfo=UTC))
    directory = Directory(ledger, clock=clock)
    account = (await directory.create_account(name="Acme")).id
    store = ScheduledReports(ledger)
    await endpoint(ledger, account, "https://h.test/")
    other = await endpoint(ledger, account, "https://h.test/other")
    spec = ReportSpec(
        "Weekly", Timing(Frequency.WEEKLY, time(8, 0), UTC_ZONE, 0), REQUEST, webhook_url="https://h.test/"
    )
    (read,) = await store.replace(account, [spec], now=clock())
    clock.at = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    runner = report_runner(ledger, directory, clock)
    slot = spec.timing.latest(clock())
    messages = await runner.messages(read, slot, now=clock())
    renamed = ReportSpec("Weekly", spec.timing, REQUEST, webhook_url="https://h.test/other")
    (changed,) = await store.replace(account, [renamed], now=clock())
    assert changed.last_slot_us == read.last_slot_us  # same timing: its next run stays due
    assert not await store.claim(read, slot_us=epoch_us(slot), messages=messages, now_us=epoch_us(clock()))
    assert await table_rows(ledger, outbox) == []
    assert await runner.run_due() == 1
    (row,) = await table_rows(ledger, outbox)
    assert row["endpoint_id"] == other

    # A new timing (Kolkata, +05:30) starts from its latest slot at the change: none of its past slots run.
    kolkata = ReportSpec(
        "Weekly", Timing(Frequency.DAILY, time(9, 0), ZoneInfo("Asia/Kolkata")), REQUEST, webhook_url="https://h.test/"
    )
    (moved,) = await store.replace(account, [kolkata], now=clock())
    assert moved.last_slot_us == epoch_us(datetime(2026, 12, 7, 3, 30, tzinfo=UTC))
    assert await runner.run_due() == 0
    assert await store.replace(account, [], now=clock()) == [] and await store.list() == []


async def test_a_file_report_carries_its_file(ledger: Ledger, table_rows: TableRows) -> None:
    clock = Clock(datetime(2026, 12, 6, 10, 0, tzinfo=UTC))
    directory = Directory(ledger, clock=clock)
    account = (await directory.create_account(name="Acme")).id
    request = REQUEST | {"format": "csv", "period": "7d"}
    await ScheduledReports(ledger).replace(
        account, [ReportSpec("Costs", DAILY_9, request, ("a@acme.test", "b@acme.test"))], now=clock()
    )
    clock.at += timedelta(days=1)
    assert await report_runner(ledger, directory, clock).run_due() == 1
    (row,) = await table_rows(ledger, outbox)
    assert (row["channel"], row["target"]) == ("email", "a@acme.test,b@acme.test")
    attachment = json.loads(row["body"])["data"]["attachment"]
    assert attachment["filename"] == "costs-2026-11-30-2026-12-06.csv"
    assert attachment["contentType"].startswith("text/csv")
    assert base64.b64decode(attachment["content"]).decode().startswith("section,")
