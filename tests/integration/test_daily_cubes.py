"""The daily cube on real ledgers (SQLite, and PostgreSQL with TEST_PG_URL): always the sums of the events not
voided, per day of each account's zone, through recording, voids and a change of zone."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from farebox.core.error_classes import error_class
from farebox.core.events import UsageEvent
from farebox.ledger.adjustments import Actor, Adjustments
from farebox.ledger.base import Ledger
from farebox.ledger.daily import local_day
from farebox.ledger.directory import Directory
from farebox.ledger.schema import (
    DAILY_DIMENSIONS,
    DAILY_ERROR_DIMENSIONS,
    ROLLUP_MEASURES,
    usage_daily,
    usage_daily_errors,
)

if TYPE_CHECKING:
    from tests.conftest import EventFactory, TableRows

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 5, tzinfo=UTC)  # New York changes its clocks on 8 March
_OUTCOMES: list[dict[str, Any]] = [
    {},
    {},
    {},
    {"status": "error", "http_status": 429, "error_type": "rate_limit_error"},
    {"status": "error", "http_status": 503, "error_type": "http_503"},
    {"status": "error", "http_status": 504, "error_type": "upstream_timeout"},
]
"""Half the requests succeed; the others fail in one of three classes."""


def _expected(
    events: list[UsageEvent], zones: dict[str, ZoneInfo], dimensions: tuple[str, ...]
) -> dict[tuple[Any, ...], tuple[int, ...]]:
    sums: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * len(ROLLUP_MEASURES))
    for event in events:
        values = {"key_id": event.key_id, "member_id": event.member_id, "agent_id": event.agent_id, "app": event.app}
        values |= {"axis": event.axis, "provider": event.provider, "model": event.model}
        values |= {"canonical_model": event.canonical_model, "operation": event.operation, "status": event.status}
        values |= {"error_class": error_class(event.status, event.http_status, event.error_type)}
        day = local_day(int(event.timestamp.timestamp()), zones[event.account_id])
        key = (event.account_id, day, *((values[name] or "") for name in dimensions))
        measures = (1, event.input_tokens, event.output_tokens, event.cached_input_tokens, event.cache_write_tokens)
        measures += (event.reasoning_tokens, event.characters, 0, 0, event.cost_nano, 0, 0, event.latency_ms or 0)
        for position, value in enumerate(measures):
            sums[key][position] += value
    return {key: tuple(total) for key, total in sums.items()}


async def _assert_cubes(
    ledger: Ledger, table_rows: TableRows, events: list[UsageEvent], zones: dict[str, ZoneInfo]
) -> None:
    failed = [event for event in events if event.status == "error"]
    for table, dimensions, counted in (
        (usage_daily, DAILY_DIMENSIONS, events),
        (usage_daily_errors, DAILY_ERROR_DIMENSIONS, failed),
    ):
        dims = ("account_id", "day", *dimensions)
        got = {
            tuple(row[d] for d in dims): tuple(row[m] for m in ROLLUP_MEASURES)
            for row in await table_rows(ledger, table)
            if any(row[m] for m in ROLLUP_MEASURES)
        }
        assert got == _expected(counted, zones, dimensions), table.name
    assert failed, "the ledger has failures, by several classes"


async def test_the_cubes_are_the_sums_of_the_events_per_local_day(
    ledger: Ledger, make_event: EventFactory, table_rows: TableRows
) -> None:
    directory = Directory(ledger)
    kolkata = await directory.create_account(name="Kolkata", timezone="Asia/Kolkata")
    york = await directory.create_account(name="York", timezone="America/New_York")
    rng = random.Random(7)
    events = [
        make_event(
            id=f"evt-{n}",
            timestamp=START + timedelta(minutes=rng.randrange(10 * 24 * 60)),
            account_id=rng.choice((kolkata.id, york.id)),
            key_id=rng.choice(("k1", "k2", None)),
            member_id=rng.choice(("m1", "m2", None)),
            agent_id=rng.choice(("a1", None)),
            app=rng.choice(("app", None)),
            model=rng.choice(("gpt-4o", "gpt-4o-mini")),
            cost_nano=rng.randrange(1, 10_000),
            input_tokens=rng.randrange(100),
            source="ingest",
            **rng.choice(_OUTCOMES),
        )
        for n in range(300)
    ]
    for start in range(0, len(events), 37):
        await ledger.record_many(events[start : start + 37])
    zones = {kolkata.id: ZoneInfo("Asia/Kolkata"), york.id: ZoneInfo("America/New_York")}
    await _assert_cubes(ledger, table_rows, events, zones)

    adjustments = Adjustments(ledger)
    voided = {event.id for event in events[::10]}
    for event_id in sorted(voided):
        await adjustments.void(event_id, reason="posted twice", by=Actor("cli"))
    kept = [event for event in events if event.id not in voided]
    await _assert_cubes(ledger, table_rows, kept, zones)

    await directory.update_account(york.id, timezone="Asia/Kathmandu")
    zones[york.id] = ZoneInfo("Asia/Kathmandu")
    await _assert_cubes(ledger, table_rows, kept, zones)
    later = make_event(id="evt-late", timestamp=START + timedelta(days=3), account_id=york.id, key_id="k1")
    await ledger.record(later)
    await _assert_cubes(ledger, table_rows, [*kept, later], zones)
