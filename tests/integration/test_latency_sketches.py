"""Latency sketches on real ledgers (SQLite, and PostgreSQL with TEST_PG_URL): written with the events they count,
per quarter hour and per local day; several recording processes never lose each other's counts; a late event, a
failed transaction and a change of zone leave every sketch holding exactly the events recorded."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.config import Config

import farebox.ledger.engine
from farebox.errors import LedgerUnavailable
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.latency import LatencyGroup, LatencyQuery
from farebox.ledger.latency_sums import sum_sketches
from farebox.ledger.reader import LedgerReader
from farebox.ledger.schema import latency_sketches, latency_sketches_daily

if TYPE_CHECKING:
    from tests.conftest import EventFactory, TableRows, WriterGate

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
EPOCH = date(1970, 1, 1)


async def _sketches(ledger: Ledger, query: LatencyQuery) -> dict[str, LatencyGroup]:
    return {group.value: group for group in await LedgerReader(ledger).latencies(query)}


async def _quarter(ledger: Ledger, at: datetime, **where: tuple[str, ...]) -> LatencyGroup:
    bucket = int(at.timestamp()) // 900 * 900
    (group,) = (await _sketches(ledger, LatencyQuery(bucket, bucket + 900, where=where))).values()
    return group


async def _day(ledger: Ledger, day: date, **where: tuple[str, ...]) -> LatencyGroup:
    number = (day - EPOCH).days
    (group,) = (await _sketches(ledger, LatencyQuery(number, number + 1, daily=True, where=where))).values()
    return group


async def test_each_quarter_hour_and_day_holds_its_events_and_only_streamed_first_tokens(
    ledger: Ledger, make_event: EventFactory, table_rows: TableRows
) -> None:
    await ledger.record_many(
        [make_event(timestamp=START + timedelta(seconds=n), latency_ms=n + 1, ttft_ms=7) for n in range(600)]
        + [make_event(timestamp=START + timedelta(minutes=15), latency_ms=0, ttft_ms=40, streamed=True)]
        + [make_event(timestamp=START, latency_ms=None, cost_nano=5)]  # posted usage: no latency
    )
    first = await _quarter(ledger, START)
    assert (first.latency.count, first.ttft.count) == (600, 0), "no latency, no sample; not streamed, no first token"
    second = await _quarter(ledger, START + timedelta(minutes=15))
    assert (second.latency.zeros, second.latency.count, second.ttft.quantiles((0.5,))) == (
        1,
        1,
        (pytest.approx(40, rel=0.01),),
    )
    day = await _day(ledger, START.date())
    assert (day.latency.count, day.ttft.count) == (601, 1)
    rows = await table_rows(ledger, latency_sketches)
    assert {row["writer"] for row in rows} == {ledger.recorder.latencies.writer}
    assert {(row["key_id"], row["provider"], row["model"]) for row in rows} == {
        ("key-1", "openai", "gpt-4o-2024-08-06")
    }


async def test_two_recording_processes_keep_rows_of_their_own_and_readers_sum_them(
    ledger: Ledger, ledger_url: str, make_event: EventFactory, table_rows: TableRows
) -> None:
    await ledger.record_many([make_event(timestamp=START, latency_ms=ms) for ms in range(1, 501)])
    async with Ledger(ledger_url) as other:
        await other.record_many([make_event(timestamp=START, latency_ms=ms) for ms in range(501, 1_001)])
    await ledger.record(make_event(timestamp=START, latency_ms=1_000))  # its own row again, the other's untouched

    quarter = await _quarter(ledger, START)
    assert quarter.latency.count == 1_001
    p50, p99 = quarter.latency.quantiles((0.5, 0.99))
    assert p50 == pytest.approx(501, rel=0.01) and p99 == pytest.approx(991, rel=0.01)
    assert (await _day(ledger, START.date())).latency.count == 1_001
    assert len({row["writer"] for row in await table_rows(ledger, latency_sketches_daily)}) == 2


async def test_a_late_event_adds_to_the_sketch_its_writer_already_wrote(
    ledger: Ledger, make_event: EventFactory
) -> None:
    await ledger.record_many([make_event(timestamp=START, latency_ms=100) for _ in range(3)])
    for hours in range(1, 60):  # the writer moves on: that quarter hour and that day leave its memory
        await ledger.record(make_event(timestamp=START + timedelta(hours=hours), latency_ms=200))
    await ledger.record(make_event(timestamp=START + timedelta(minutes=1), latency_ms=300))

    quarter = await _quarter(ledger, START)
    assert (quarter.latency.count, quarter.latency.quantiles((1.0,))) == (4, (pytest.approx(300, rel=0.01),))
    day = await _day(ledger, START.date())
    assert day.latency.count == 4 + 11, "the 1st: 12:00 to 23:59, the late one included"


async def test_a_failed_transaction_adds_nothing_to_the_sketches(
    ledger: Ledger, make_event: EventFactory, writer_gate: type[WriterGate]
) -> None:
    """The batch that fails does so after its events and sketches were written in the group's transaction; the good
    batch, retried alone, must count its events once, not once per attempt."""
    good = [make_event(timestamp=START, latency_ms=100) for _ in range(2)]
    big = make_event(timestamp=START, latency_ms=5_000, cost_nano=2**62)
    bad = [big, replace(big, id="big-2")]  # their rollup's cost overflows

    async with writer_gate(ledger):
        outcome = asyncio.gather(ledger.record_many(good), ledger.record_many(bad), return_exceptions=True)
    _recorded, failed = await outcome

    assert isinstance(failed, LedgerUnavailable)
    assert (await _quarter(ledger, START)).latency.count == 2
    assert (await _day(ledger, START.date())).latency.count == 2
    await ledger.record(make_event(timestamp=START, latency_ms=100))
    assert (await _quarter(ledger, START)).latency.count == 3


async def test_a_zone_change_rebuilds_the_days_as_if_the_zone_had_always_been_the_new_one(
    ledger: Ledger, ledger_url: str, make_event: EventFactory
) -> None:
    directory = Directory(ledger)
    account = await directory.create_account(name="Acme", timezone="UTC")
    events = [
        make_event(account_id=account.id, timestamp=START + timedelta(hours=3 * n), latency_ms=10 * (n + 1))
        for n in range(24)
    ]
    async with Ledger(ledger_url) as other:  # another process's rows are rebuilt too
        await other.record_many(events[:6])
    # The last of these, 21:00 UTC on the 2nd, is 06:00 on the 3rd in Tokyo: a day this writer never wrote before.
    await ledger.record_many(events[6:12])

    await directory.update_account(account.id, timezone="Asia/Tokyo")
    await ledger.record_many(events[12:])

    tokyo = ZoneInfo("Asia/Tokyo")
    days = sorted({event.timestamp.astimezone(tokyo).date() for event in events})
    for day in days:
        expected = sorted(event.latency_ms or 0 for event in events if event.timestamp.astimezone(tokyo).date() == day)
        got = (await _day(ledger, day, account_id=(account.id,))).latency
        assert got.count == len(expected), day
        assert got.quantiles((0.0, 1.0)) == (
            pytest.approx(expected[0], rel=0.01),
            pytest.approx(expected[-1], rel=0.01),
        )


async def test_the_migration_fills_the_sketches_the_writer_would_have_written(
    ledger: Ledger, ledger_url: str, make_event: EventFactory, table_rows: TableRows
) -> None:
    """Migration 0015 sketches the events already recorded: downgraded and upgraded again, the tables hold, under
    its own writer id, the sketches the writers wrote as the events came."""
    directory = Directory(ledger)
    kolkata = await directory.create_account(name="Kolkata", timezone="Asia/Kolkata")
    events = [
        make_event(
            account_id=account_id,
            key_id=key_id,
            timestamp=START + timedelta(minutes=37 * n),
            latency_ms=n * 13 % 5_000,
            ttft_ms=n % 300,
            streamed=n % 3 == 0,
        )
        for n in range(400)
        for account_id, key_id in (("acct-1", "key-1"), (kolkata.id, None))
    ]
    events.append(make_event(timestamp=START, latency_ms=None, ttft_ms=5))  # no latency, not streamed: nothing
    await ledger.record_many(events[:500])
    async with Ledger(ledger_url) as other:
        await other.record_many(events[500:])

    async def sketched() -> dict[tuple[object, ...], tuple[object, ...]]:
        found = {}
        for table, group in ((latency_sketches, ("bucket",)), (latency_sketches_daily, ("day",))):
            rows = [
                (tuple(row[name] for name in (*group, "account_id", "key_id", "model")), row)
                for row in await table_rows(ledger, table)
            ]
            summed = sum_sketches((key, row["latency"], row["ttft"]) for key, row in rows)
            for key, (latency, ttft) in summed.items():
                found[(table.name, *key)] = (
                    latency.zeros,
                    latency.first,
                    list(latency.counts),
                    ttft.zeros,
                    ttft.first,
                    list(ttft.counts),
                )
        return found

    written = await sketched()
    engines = ledger.engines
    with engines.writer.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(Path(farebox.ledger.engine.__file__).parent / "migrations"))
        config.attributes["connection"] = connection
        command.downgrade(config, "0014")
        command.upgrade(config, "head")

    assert {row["writer"] for row in await table_rows(ledger, latency_sketches_daily)} == {"migration-0015"}
    assert await sketched() == written
    assert len(written) > 100
