"""Raw events past `raw_events_retention_days` go, their totals stay (`farebox.ledger.retention`); on PostgreSQL
the events live in month partitions made ahead and dropped whole (`farebox.ledger.partitions`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Connection, func, select

from farebox.core.events import RecordResult
from farebox.ledger.actors import Actor
from farebox.ledger.adjustments import Adjustments
from farebox.ledger.base import Ledger
from farebox.ledger.partitions import DEFAULT, IDS, add_months
from farebox.ledger.retention import EventRetention
from farebox.ledger.schema import usage_adjustments, usage_daily, usage_events, usage_key_rollups, usage_rollups

if TYPE_CHECKING:
    from tests.conftest import EventFactory

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
MONTHS = {
    "sep": datetime(2026, 9, 14, 10, 0, tzinfo=UTC),
    "oct": datetime(2026, 10, 31, 23, 59, tzinfo=UTC),
    "nov": datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
    "dec": datetime(2026, 12, 6, 8, 30, tzinfo=UTC),
}


def _clock() -> datetime:
    return NOW


async def _scalar(ledger: Ledger, statement: Any) -> Any:
    return await ledger._read(lambda connection: connection.execute(statement).scalar_one())


async def _totals(ledger: Ledger) -> list[int]:
    """The cost every table of sums holds, summed."""
    return [
        await _scalar(ledger, select(func.sum(table.c.cost_nano)))
        for table in (usage_rollups, usage_daily, usage_key_rollups)
    ]


async def _event_ids(ledger: Ledger) -> set[str]:
    return set(await ledger._read(lambda connection: list(connection.scalars(select(usage_events.c.id)))))


async def test_raw_events_before_the_month_of_the_retention_go_and_every_total_stays(
    ledger: Ledger, make_event: EventFactory
) -> None:
    events = {name: make_event(id=f"evt-{name}", timestamp=at, source="ingest") for name, at in MONTHS.items()}
    await ledger.record_many(list(events.values()))
    await Adjustments(ledger).void("evt-sep", reason="posted twice", by=Actor("cli"))
    await Adjustments(ledger).void("evt-nov", reason="posted twice", by=Actor("cli"))
    totals = await _totals(ledger)

    # 45 days before 6 December is 22 October: October's events stay until November's month ends.
    done = await EventRetention(ledger, days=45, clock=_clock).maintain()

    assert done.before == datetime(2026, 10, 1, tzinfo=UTC)
    assert (done.events_deleted, done.adjustments_deleted) == (1, 1)
    assert await _event_ids(ledger) == {"evt-oct", "evt-nov", "evt-dec"}
    assert await _scalar(ledger, select(func.count()).select_from(usage_adjustments)) == 1
    assert await _totals(ledger) == totals


async def test_a_round_with_nothing_past_the_retention_or_no_retention_removes_nothing(
    ledger: Ledger, make_event: EventFactory
) -> None:
    await ledger.record_many([make_event(timestamp=at) for at in MONTHS.values()])

    kept = await EventRetention(ledger, days=None, clock=_clock).maintain()
    recent = await EventRetention(ledger, days=120, clock=_clock).maintain()

    assert kept.before is None and kept.events_deleted == 0
    assert recent.before == datetime(2026, 8, 1, tzinfo=UTC) and recent.events_deleted == 0
    assert len(await _event_ids(ledger)) == 4


async def test_sqlite_deletes_past_the_retention_a_batch_at_a_time_across_accounts(
    tmp_path: Path, make_event: EventFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("farebox.ledger.retention._BATCH", 3)
    async with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        old = [
            make_event(account_id=account, timestamp=MONTHS["sep"])
            for account in ("acct-1", "acct-2")
            for _ in range(7)
        ]
        await ledger.record_many([*old, make_event(timestamp=MONTHS["dec"])])

        done = await EventRetention(ledger, days=45, clock=_clock).maintain()

        assert done.events_deleted == 14
        assert len(await _event_ids(ledger)) == 1


# PostgreSQL: the month partitions.


def _where(connection: Connection) -> dict[str, str]:
    """Each event's partition."""
    rows = connection.exec_driver_sql("SELECT id, tableoid::regclass::text FROM usage_events").all()
    return {event_id: partition for event_id, partition in rows}


async def _committed(ledger: Ledger, change: Callable[[Connection], list[str]]) -> list[str]:
    def run() -> list[str]:
        with ledger.engines.reader.begin() as connection:
            return change(connection)

    return await asyncio.to_thread(run)


@pytest.fixture
async def pg_ledger(pg_ledger_url: str) -> AsyncIterator[Ledger]:
    async with Ledger(pg_ledger_url) as started:
        yield started


async def test_postgresql_keeps_each_month_in_its_partition_and_drops_whole_months(
    pg_ledger: Ledger, make_event: EventFactory
) -> None:
    await _committed(pg_ledger, lambda connection: add_months(connection, now=MONTHS["sep"], months=4))
    await pg_ledger.record_many([make_event(id=f"evt-{name}", timestamp=at) for name, at in MONTHS.items()])
    assert await pg_ledger._read(_where) == {
        "evt-sep": "usage_events_2026_09",
        "evt-oct": "usage_events_2026_10",
        "evt-nov": "usage_events_2026_11",
        "evt-dec": "usage_events_2026_12",
    }

    done = await EventRetention(pg_ledger, days=45, clock=_clock).maintain()

    assert done.partitions_dropped == ["usage_events_2026_09"]
    assert done.events_deleted == 1
    assert await _scalar(pg_ledger, select(func.count()).select_from(usage_events)) == 3
    ids = await pg_ledger._read(lambda connection: connection.exec_driver_sql(f"SELECT id FROM {IDS}").scalars().all())
    assert sorted(ids) == ["evt-dec", "evt-nov", "evt-oct"]


async def test_postgresql_an_event_no_month_holds_yet_waits_in_the_default_partition_and_moves_with_its_month(
    pg_ledger: Ledger, make_event: EventFactory
) -> None:
    later = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)
    assert await pg_ledger.record(make_event(id="evt-2031", timestamp=later)) == RecordResult.RECORDED
    assert (await pg_ledger._read(_where))["evt-2031"] == DEFAULT

    made = await _committed(pg_ledger, lambda connection: add_months(connection, now=later, months=1))

    assert made == ["usage_events_2031_05"]
    assert (await pg_ledger._read(_where))["evt-2031"] == "usage_events_2031_05"


async def test_postgresql_an_id_is_recorded_once_across_months(pg_ledger: Ledger, make_event: EventFactory) -> None:
    first = make_event(id="evt-once", timestamp=MONTHS["dec"])
    again = make_event(id="evt-once", timestamp=MONTHS["nov"])

    assert await pg_ledger.record(first) == RecordResult.RECORDED
    assert await pg_ledger.record_many([again, make_event(timestamp=MONTHS["nov"])]) == [
        RecordResult.DUPLICATE,
        RecordResult.RECORDED,
    ]
    assert await _scalar(pg_ledger, select(func.count()).select_from(usage_events)) == 2
