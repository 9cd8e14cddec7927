"""Ledger invariants over random event streams, on every backend (hypothesis).

Each example starts a ledger of its own on an emptied database. The oracle is computed from the
generated events alone, with the domain's `period_start`, never from what the ledger wrote.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, delete, insert

from farebox.core.error_classes import error_class
from farebox.core.events import MICRO, Axis, RecordResult, Status, UsageEvent, epoch_us
from farebox.core.periods import Period, period_start
from farebox.ledger.adjustments import Actor, Adjustments
from farebox.ledger.base import Ledger
from farebox.ledger.partitions import IDS
from farebox.ledger.schema import (
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
    accounts,
    spend_counters,
    usage_adjustments,
    usage_events,
)
from farebox.ledger.schema import usage_rollups as rollups

if TYPE_CHECKING:
    from conftest import TableRows

__all__: list[str] = []

pytestmark = pytest.mark.anyio

# Accounts with a row get its timezone (Kathmandu is UTC+5:45); the others count in UTC.
TIMEZONES = {"acct-ny": "America/New_York", "acct-ktm": "Asia/Kathmandu"}
ACCOUNTS = ("acct-ny", "acct-ktm", "acct-utc")
START = datetime(2025, 2, 20, tzinfo=UTC)  # the streams cross a month end and New York's DST change
DAYS = 30
# Minutes of the UTC day around local midnights: New York (04:00 / 05:00 UTC), Kathmandu (18:15), UTC.
EDGE_MINUTES = (0, 1439, 239, 240, 299, 300, 1094, 1095)
PERIODS = (Period.DAILY, Period.WEEKLY, Period.MONTHLY, Period.TOTAL)
MODELS = (("openai", "gpt-4o-2024-08-06", "gpt-4o"), ("openai", "gpt-4o", "gpt-4o"), ("anthropic", "claude", "claude"))

PROPERTY_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    # Every example starts a new ledger on the test's database and empties it first (`fresh_ledger`).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

counts = st.integers(min_value=0, max_value=10**7)


# Categorical fields are drawn as whole combinations: one draw each instead of eight keeps examples fast.
OWNERS = tuple(
    itertools.product(ACCOUNTS, ("key-1", "key-2", None), ("mem-1", "mem-2", None), ("agent-1", "agent-2", None))
)
KINDS = tuple(itertools.product(Axis, MODELS, ("chat.completions", "responses", "embeddings"), Status))


FAILURES = [(None, None), (429, "rate_limit_error"), (503, "http_503"), (504, "upstream_timeout"), (499, "cancelled")]
"""(HTTP status, error type) of failed events: their error classes become rollup dimensions."""


@st.composite
def usage_events_of(draw: st.DrawFn, index: int) -> UsageEvent:
    account_id, key_id, member_id, agent_id = draw(st.sampled_from(OWNERS))
    axis, (provider, model, canonical), operation, status = draw(st.sampled_from(KINDS))
    day = draw(st.integers(min_value=0, max_value=DAYS - 1))
    minute = draw(st.integers(min_value=0, max_value=1439) | st.sampled_from(EDGE_MINUTES))
    offset_us = (day * 1440 + minute) * 60 * MICRO + draw(st.integers(min_value=0, max_value=60 * MICRO - 1))
    tokens = draw(st.tuples(*[counts] * 6))
    http_status, error_type = draw(st.sampled_from(FAILURES)) if status is Status.ERROR else (200, None)
    return UsageEvent(
        id=f"evt-{index}",
        timestamp=START + timedelta(microseconds=offset_us),
        account_id=account_id,
        key_id=key_id,
        member_id=member_id,
        agent_id=agent_id,
        axis=axis,
        provider=provider,
        model=model,
        canonical_model=canonical,
        operation=operation,
        status=status,
        http_status=http_status,
        error_type=error_type,
        cost_nano=draw(st.integers(min_value=0, max_value=10**12)),
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cached_input_tokens=tokens[2],
        cache_write_tokens=tokens[3],
        reasoning_tokens=tokens[4],
        characters=tokens[5],
        seconds=draw(st.decimals(min_value=0, max_value=10**6, places=6)),
        quantity=draw(st.decimals(min_value=0, max_value=10**3, places=6)),
        priced=draw(st.booleans()),
        estimated=draw(st.booleans()),
        latency_ms=draw(st.none() | st.integers(min_value=0, max_value=600_000)),
    )


@st.composite
def event_streams(draw: st.DrawFn) -> list[UsageEvent]:
    size = draw(st.integers(min_value=1, max_value=40))
    return [draw(usage_events_of(index)) for index in range(size)]


def batches_of(draw: st.DrawFn, events: list[UsageEvent]) -> list[list[UsageEvent]]:
    """The events cut into consecutive batches of random sizes."""
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=max(1, len(events) - 1)), max_size=6)))
    bounds = [0, *cuts, len(events)]
    return [events[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if a < b]


def measures(event: UsageEvent) -> tuple[int, ...]:
    return (
        1,
        event.input_tokens,
        event.output_tokens,
        event.cached_input_tokens,
        event.cache_write_tokens,
        event.reasoning_tokens,
        event.characters,
        int(event.seconds * MICRO),
        int(event.quantity * MICRO),
        event.cost_nano,
        0 if event.priced else 1,
        1 if event.estimated else 0,
        event.latency_ms or 0,
    )


def dimensions(event: UsageEvent) -> tuple[str, ...]:
    values = (event.account_id, event.key_id, event.member_id, event.agent_id, event.app, event.axis, event.provider)
    values += (event.model, event.canonical_model, event.operation, event.status)
    values += (error_class(event.status, event.http_status, event.error_type),)
    return tuple(value or "" for value in values)


def sum_by(items: Iterable[tuple[Any, tuple[int, ...]]]) -> dict[Any, tuple[int, ...]]:
    sums: dict[Any, list[int]] = {}
    for key, values in items:
        total = sums.setdefault(key, [0] * len(values))
        for i, value in enumerate(values):
            total[i] += value
    return {key: tuple(total) for key, total in sums.items()}


def utc_day(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).date().isoformat()


BUCKETS: dict[str, Callable[[int], object]] = {
    "quarter": lambda s: s - s % 900,
    "hour": lambda s: s - s % 3600,
    "day": utc_day,
    "month": lambda s: utc_day(s)[:7],
}


def expected_counters(events: Iterable[UsageEvent]) -> dict[tuple[str, str, str, int], int]:
    sums: dict[tuple[str, str, str, int], int] = defaultdict(int)
    for event in events:
        tz = ZoneInfo(TIMEZONES.get(event.account_id, "UTC"))
        for period in PERIODS:
            start = int(period_start(period, at=event.timestamp, tz=tz).timestamp())
            for scope, scope_id in (("account", event.account_id), ("member", event.member_id), ("key", event.key_id)):
                if scope_id is not None:
                    sums[(scope, scope_id, period.value, start)] += event.cost_nano
    return {key: total for key, total in sums.items() if total}


async def fresh_ledger(url: str) -> Ledger:
    """A new ledger on the test's database, emptied: hypothesis runs many examples per test."""
    ledger = Ledger(url)
    await ledger.start()
    rows = [
        {"id": a, "name": a, "plan": "free", "timezone": tz, "cap_period": "monthly"} for a, tz in TIMEZONES.items()
    ]

    def reset(connection: Connection) -> None:
        for table in (usage_adjustments, usage_events, rollups, spend_counters, accounts):
            connection.execute(delete(table))
        if connection.dialect.name == "postgresql":  # where an event id's uniqueness is kept (`ledger.partitions`)
            connection.exec_driver_sql(f"DELETE FROM {IDS}")
        connection.execute(insert(accounts), [row | {"created_at": 0, "updated_at": 0} for row in rows])

    await ledger._write(reset)
    return ledger


async def snapshot(ledger: Ledger, table_rows: TableRows) -> list[list[dict[str, Any]]]:
    return [sorted((await table_rows(ledger, table)), key=repr) for table in (usage_events, rollups, spend_counters)]


@PROPERTY_SETTINGS
@given(data=st.data())
async def test_rollups_and_counters_equal_the_sums_of_the_raw_events(
    data: st.DataObject, ledger_url: str, table_rows: TableRows
) -> None:
    events = data.draw(event_streams())
    ledger = await fresh_ledger(ledger_url)
    try:
        for batch in batches_of(data.draw, events):
            assert await ledger.record_many(batch) == [RecordResult.RECORDED] * len(batch)
        raw = await table_rows(ledger, usage_events)
        hourly = await table_rows(ledger, rollups)
        counters = await table_rows(ledger, spend_counters)
    finally:
        await ledger.close()

    assert sorted(row["id"] for row in raw) == sorted(event.id for event in events)
    assert_derived_from(events, hourly=hourly, counters=counters)


def assert_derived_from(
    events: list[UsageEvent], *, hourly: list[dict[str, Any]], counters: list[dict[str, Any]]
) -> None:
    """The rollups and counters are the sums of `events`, in every bucket and along every dimension (a rollup
    row whose events were all voided reads all zeros, and counts as absent)."""
    got_hourly = {
        (row["bucket"], *(row[d] for d in ROLLUP_DIMENSIONS)): tuple(row[m] for m in ROLLUP_MEASURES)
        for row in hourly
        if any(row[m] for m in ROLLUP_MEASURES)
    }
    quarter_of = BUCKETS["quarter"]
    assert got_hourly == sum_by(
        ((quarter_of(epoch_us(e.timestamp) // MICRO), *dimensions(e)), measures(e)) for e in events
    )
    for bucket_name, bucket in BUCKETS.items():
        for position, dimension in enumerate(ROLLUP_DIMENSIONS):
            from_rollups = sum_by(((bucket(k[0]), k[1 + position]), v) for k, v in got_hourly.items())
            from_events = sum_by(
                ((bucket(epoch_us(e.timestamp) // MICRO), dimensions(e)[position]), measures(e)) for e in events
            )
            assert from_rollups == from_events, (bucket_name, dimension)

    got_counters = {(r["scope"], r["scope_id"], r["period"], r["period_start"]): r["spent_nano"] for r in counters}
    assert {key: total for key, total in got_counters.items() if total} == expected_counters(events)


@PROPERTY_SETTINGS
@given(data=st.data())
async def test_replaying_any_subset_of_events_changes_nothing(
    data: st.DataObject, ledger_url: str, table_rows: TableRows
) -> None:
    events = data.draw(event_streams())
    replay = data.draw(st.lists(st.sampled_from(events), min_size=1, max_size=2 * len(events)))
    # A replayed id may come back with different contents: the first recording stands.
    replay = [
        event if data.draw(st.booleans()) else data.draw(usage_events_of(int(event.id.removeprefix("evt-"))))
        for event in replay
    ]
    ledger = await fresh_ledger(ledger_url)
    try:
        for batch in batches_of(data.draw, events):
            await ledger.record_many(batch)
        before = await snapshot(ledger, table_rows)
        for batch in batches_of(data.draw, replay):
            if len(batch) == 1 and data.draw(st.booleans()):
                assert await ledger.record(batch[0]) is RecordResult.DUPLICATE
            else:
                assert await ledger.record_many(batch) == [RecordResult.DUPLICATE] * len(batch)
        after = await snapshot(ledger, table_rows)
    finally:
        await ledger.close()

    assert after == before
    assert sum(row["cost_nano"] for row in after[0]) == sum(event.cost_nano for event in events)


@PROPERTY_SETTINGS
@given(data=st.data())
async def test_after_voiding_any_events_rollups_and_counters_are_the_sums_of_the_others(
    data: st.DataObject, ledger_url: str, table_rows: TableRows
) -> None:
    events = [replace(event, source="ingest") for event in data.draw(event_streams())]
    voided = data.draw(st.sets(st.sampled_from([event.id for event in events])))
    ledger = await fresh_ledger(ledger_url)
    try:
        for batch in batches_of(data.draw, events):
            await ledger.record_many(batch)
        adjustments = Adjustments(ledger)
        await asyncio.gather(*(adjustments.void(id_, reason="test", by=Actor("cli")) for id_ in sorted(voided)))
        raw = await table_rows(ledger, usage_events)
        hourly = await table_rows(ledger, rollups)
        counters = await table_rows(ledger, spend_counters)
    finally:
        await ledger.close()

    assert sorted(row["id"] for row in raw) == sorted(event.id for event in events), "no event row is removed"
    assert_derived_from([event for event in events if event.id not in voided], hourly=hourly, counters=counters)
