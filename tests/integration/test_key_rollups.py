"""The key rollups (`usage_key_rollups`) on real ledgers (SQLite, and PostgreSQL with TEST_PG_URL): the engine reads
them where they answer exactly what the quarter-hour rollups answer, in any zone."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from farebox.analytics import Dimension, Engine, Filters, Grain, Measure, Query, Window
from farebox.core.credentials import Principal, PrincipalKind
from farebox.core.owners import Role
from farebox.ledger.actors import Actor
from farebox.ledger.adjustments import Adjustments
from farebox.ledger.base import Ledger
from farebox.ledger.reader import LedgerReader

if TYPE_CHECKING:
    from tests.conftest import EventFactory

pytestmark = pytest.mark.anyio

MASTER = Principal(kind=PrincipalKind.MASTER)
MEASURES = (Measure.REQUESTS, Measure.COST_NANO, Measure.INPUT_TOKENS, Measure.LATENCY_MS_SUM)


def _rows(rows: list[Any], keep: int) -> list[tuple[str, tuple[str, ...], tuple[int, ...]]]:
    """Rows as (slot, the first `keep` dimensions, measures), summed over the dimensions after them, zeros left
    out (a voided event leaves a row of zeros behind)."""
    summed: dict[tuple[str, tuple[str, ...]], list[int]] = defaultdict(lambda: [0] * len(MEASURES))
    for row in rows:
        total = summed[(str(row.at), row.dimensions[:keep])]
        for position, value in enumerate(row.measures):
            total[position] += value
    return sorted((at, dims, tuple(total)) for (at, dims), total in summed.items() if any(total))


_START = datetime(2026, 10, 28, tzinfo=UTC)


async def _ledger_across_a_clock_change(ledger: Ledger, make_event: EventFactory) -> None:
    """Two accounts' usage every 37 minutes over New York's clocks going back (1 November 2026), errors, a key-less
    request and a voided one among it."""
    await ledger.record_many(
        [
            make_event(
                id=f"evt-{n}",
                timestamp=_START + timedelta(minutes=37 * n),
                account_id=("acct-1", "acct-2")[n % 2],
                key_id=None if n % 13 == 0 else f"key-{n % 5}",
                member_id=f"mem-{n % 3}",
                model=("gpt-4o", "gpt-4o-mini")[n % 2],
                canonical_model=("gpt-4o", "gpt-4o-mini")[n % 2],
                status="error" if n % 7 == 0 else "ok",
                cost_nano=1_000 + n,
                input_tokens=n,
                latency_ms=n % 300,
                source="ingest" if n == 40 else "proxy",
            )
            for n in range(600)
        ]
    )
    await Adjustments(ledger).void("evt-40", reason="posted twice", by=Actor("cli"))


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kathmandu"])
async def test_hours_days_weeks_and_months_by_key_and_status_match_the_rollups(
    ledger: Ledger, make_event: EventFactory, zone: str
) -> None:
    await _ledger_across_a_clock_change(ledger, make_event)
    engine = Engine(LedgerReader(ledger))
    window = Window(date(2026, 10, 29), date(2026, 11, 9), ZoneInfo(zone))
    owner = Principal(kind=PrincipalKind.MEMBER, account_id="acct-1", member_id="mem-9", role=Role.OWNER)
    cases: list[tuple[Principal, dict[str, Any]]] = [
        (MASTER, {"group_by": (Dimension.KEY, Dimension.STATUS), "grain": Grain.HOUR}),
        (MASTER, {"group_by": (Dimension.ACCOUNT,), "grain": Grain.DAY}),
        (MASTER, {"grain": Grain.WEEK}),
        (MASTER, {"group_by": (Dimension.STATUS,), "grain": Grain.MONTH}),
        (MASTER, {"filters": Filters({Dimension.KEY: ("key-1", "")})}),
        (owner, {"group_by": (Dimension.KEY,), "grain": Grain.HOUR}),
        (owner, {"group_by": (Dimension.KEY, Dimension.STATUS), "grain": Grain.DAY, "account_id": "acct-1"}),
    ]
    for viewer, fields in cases:
        hourly = Query(window, MEASURES, **fields)
        # The same query with one dimension more, which only the quarter-hour rollups keep, summed away again.
        finer = Query(window, MEASURES, **{**fields, "group_by": (*fields.get("group_by", ()), Dimension.MODEL)})
        assert (engine.source(hourly, viewer=viewer), engine.source(finer, viewer=viewer)) == (
            "usage_key_rollups",
            "usage_rollups",
        ), fields
        keep = len(fields.get("group_by", ()))
        by_hour = _rows(await engine.run(hourly, viewer=viewer), keep)
        by_quarter = _rows(await engine.run(finer, viewer=viewer), keep)
        assert by_hour == by_quarter and by_hour, fields
    hours = await engine.run(Query(window, (Measure.REQUESTS,), grain=Grain.HOUR), viewer=MASTER)
    starts = {row.at.astimezone(UTC) for row in hours if isinstance(row.at, datetime)}  # 1:00 twice is two hours
    assert len(starts) == 12 * 24 + (zone == "America/New_York"), "the day the clocks go back has 25 hours"
    (voided,) = await engine.run(
        Query(window, (Measure.REQUESTS,), filters=Filters({Dimension.KEY: ("key-0",)})), viewer=MASTER
    )
    in_window = [n for n in range(600) if window.since <= _START + timedelta(minutes=37 * n) < window.until]
    assert voided.measures == (sum(1 for n in in_window if n % 5 == 0 and n % 13 and n != 40),)


async def test_an_hour_of_today_and_what_only_the_rollups_keep(ledger: Ledger, make_event: EventFactory) -> None:
    await _ledger_across_a_clock_change(ledger, make_event)
    engine = Engine(LedgerReader(ledger))
    day = Window(date(2026, 11, 2), date(2026, 11, 2), ZoneInfo("Asia/Kolkata"))
    hour = (datetime(2026, 11, 2, 6, 30, tzinfo=UTC), datetime(2026, 11, 2, 7, 30, tzinfo=UTC))
    by_key = (Dimension.KEY, Dimension.STATUS)
    assert engine.source(Query(day, MEASURES, group_by=by_key, within=hour), viewer=MASTER) == "usage_key_rollups"
    minute = (hour[0], hour[0] + timedelta(minutes=1))
    assert engine.source(Query(day, MEASURES, within=minute), viewer=MASTER) == "usage_events"
    assert engine.source(Query(day, MEASURES, group_by=(Dimension.PROVIDER,)), viewer=MASTER) == "usage_rollups"
    only_mini = Filters(models=("gpt-4o-mini",))
    assert engine.source(Query(day, MEASURES, filters=only_mini), viewer=MASTER) == "usage_rollups"
    errors = Filters({Dimension.ERROR_CLASS: ("timeout",)})
    assert engine.source(Query(day, MEASURES, filters=errors), viewer=MASTER) == "usage_rollups"
    in_hour = await engine.run(Query(day, MEASURES, group_by=by_key, within=hour), viewer=MASTER)
    expected = [n for n in range(600) if hour[0] <= _START + timedelta(minutes=37 * n) < hour[1]]
    assert sum(row.measures[0] for row in in_hour) == len(expected) > 0
    assert {row.dimensions[1] for row in in_hour} <= {"ok", "error"}
