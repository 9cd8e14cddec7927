"""The ledger contract: what every backend (SQLite, PostgreSQL) promises its callers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, Table, func, insert, select

from farebox.core.events import Axis, RecordResult, Status, UsageEvent
from farebox.core.periods import Period
from farebox.errors import LedgerUnavailable
from farebox.ledger.base import Ledger
from farebox.ledger.reader import EventRow, LedgerReader
from farebox.ledger.schema import ROLLUP_DIMENSIONS, ROLLUP_MEASURES, accounts, spend_counters, usage_events
from farebox.ledger.schema import usage_rollups as rollups

if TYPE_CHECKING:
    from conftest import TableRows, WriterGate

__all__: list[str] = []

pytestmark = pytest.mark.anyio

RECORDED, DUPLICATE = RecordResult.RECORDED, RecordResult.DUPLICATE
NEW_YORK = ZoneInfo("America/New_York")
EventFactory = Callable[..., UsageEvent]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


async def recorded(ledger: Ledger, event_id: str) -> EventRow:
    row = await LedgerReader(ledger).event(event_id)
    assert row is not None, f"no event {event_id!r} was recorded"
    return row


async def count(ledger: Ledger, table: Table) -> int:
    return await ledger._read(lambda c: int(c.scalar(select(func.count()).select_from(table)) or 0))


def new_account(account_id: str, *, timezone: str = "UTC") -> dict[str, Any]:
    times = {"created_at": 0, "updated_at": 0, "plan": "free", "cap_period": "monthly"}
    return {"id": account_id, "name": account_id, "timezone": timezone, **times}


async def test_same_id_is_recorded_once(ledger: Ledger, make_event: EventFactory, table_rows: TableRows) -> None:
    event = make_event(cost_nano=7_000)

    assert await ledger.record(event) is RECORDED
    assert await ledger.record(event) is DUPLICATE
    assert await ledger.record(replace(event, cost_nano=999_999, model="other")) is DUPLICATE

    assert await count(ledger, usage_events) == 1
    assert (await recorded(ledger, event.id)).cost_nano == 7_000
    (rollup,) = await table_rows(ledger, rollups)
    assert (rollup["requests"], rollup["cost_nano"], rollup["model"]) == (1, 7_000, event.model)
    spent = await ledger.spent(scope="key", scope_id="key-1", period=Period.TOTAL, at=event.timestamp, tz=NEW_YORK)
    assert spent == 7_000


async def test_record_many_answers_each_event_and_counts_in_batch_duplicates_once(
    ledger: Ledger, make_event: EventFactory, table_rows: TableRows
) -> None:
    old = make_event(cost_nano=1)
    await ledger.record(old)
    a, b, c = (make_event(cost_nano=cost) for cost in (10, 200, 3_000))

    results = await ledger.record_many([a, b, replace(a, cost_nano=40_000), old, c, b])

    assert results == [RECORDED, RECORDED, DUPLICATE, DUPLICATE, RECORDED, DUPLICATE]
    assert await count(ledger, usage_events) == 4
    assert (await recorded(ledger, a.id)).cost_nano == 10
    (rollup,) = await table_rows(ledger, rollups)
    assert (rollup["requests"], rollup["cost_nano"]) == (4, 3_211)
    assert await ledger.record_many([]) == []


def _too_big_for_the_event_row(good: list[UsageEvent]) -> list[UsageEvent]:
    return [*good, replace(good[0], id="bad-cost", cost_nano=2**63)]


def _rollup_sum_overflows_after_the_events_were_inserted(good: list[UsageEvent]) -> list[UsageEvent]:
    return [*good, replace(good[0], id="big-1", cost_nano=2**62), replace(good[0], id="big-2", cost_nano=2**62)]


def _null_in_a_not_null_column(good: list[UsageEvent]) -> list[UsageEvent]:
    return [*good, replace(good[0], id="no-provider", provider=None)]


@pytest.mark.parametrize(
    "spoil",
    [_too_big_for_the_event_row, _rollup_sum_overflows_after_the_events_were_inserted, _null_in_a_not_null_column],
)
async def test_record_many_is_all_or_nothing(
    ledger: Ledger,
    make_event: EventFactory,
    spoil: Callable[[list[UsageEvent]], list[UsageEvent]],
    table_rows: TableRows,
) -> None:
    first = make_event(cost_nano=5)
    await ledger.record(first)
    before = [await table_rows(ledger, table) for table in (usage_events, rollups, spend_counters)]
    good = [make_event(cost_nano=100, key_id=f"key-{i}") for i in range(3)]

    with pytest.raises(LedgerUnavailable):
        await ledger.record_many(spoil(good))

    after = [await table_rows(ledger, table) for table in (usage_events, rollups, spend_counters)]
    assert after == before
    assert await ledger.record_many(good) == [RECORDED] * 3  # nothing of the failed batch was kept


async def test_a_failing_batch_does_not_fail_the_batches_grouped_with_it(
    ledger: Ledger, make_event: EventFactory, writer_gate: type[WriterGate]
) -> None:
    good_batch = [make_event(cost_nano=100) for _ in range(3)]
    single = make_event(cost_nano=20)
    bad_batch = _too_big_for_the_event_row([make_event(cost_nano=1)])

    async with writer_gate(ledger):
        outcome = asyncio.gather(
            ledger.record_many(good_batch), ledger.record_many(bad_batch), ledger.record(single), return_exceptions=True
        )
    good_results, bad_result, single_result = await outcome

    assert good_results == [RECORDED] * 3
    assert isinstance(bad_result, LedgerUnavailable)
    assert single_result is RECORDED
    assert await count(ledger, usage_events) == 4
    assert await LedgerReader(ledger).event(bad_batch[0].id) is None


def rollup_key(
    bucket: datetime,
    *,
    key: str = "key-1",
    member: str = "mem-1",
    agent: str = "agent-1",
    app: str = "",
    axis: str = "llm",
    provider: str = "openai",
    model: str = "gpt-4o-2024-08-06",
    canonical: str = "gpt-4o",
    operation: str = "chat.completions",
    status: str = "ok",
    error_class: str = "",
) -> tuple[Any, ...]:
    start = int(bucket.timestamp())
    dimensions = (key, member, agent, app, axis, provider, model, canonical, operation, status, error_class)
    return (start, "acct-1", *dimensions)


async def test_rollups_sum_each_quarter_hour_and_dimension(
    ledger: Ledger, make_event: EventFactory, table_rows: TableRows
) -> None:
    noon, one = at("2025-06-01T12:00:00+00:00"), at("2025-06-01T12:15:00+00:00")
    base = make_event(timestamp=noon + timedelta(minutes=5), input_tokens=100, output_tokens=10, cost_nano=1_000)
    no_tokens = {"input_tokens": 0, "output_tokens": 0}
    events = [
        base,
        replace(base, id="e2", timestamp=noon + timedelta(minutes=14, seconds=59), estimated=True, reasoning_tokens=4),
        replace(base, id="e3", key_id="key-2", member_id="mem-2", cached_input_tokens=60, cache_write_tokens=5),
        replace(base, id="e4", timestamp=one),
        replace(base, id="e5", status=Status.ERROR, cost_nano=0, latency_ms=None, output_tokens=0),
        replace(base, id="e6", model="mystery", canonical_model="mystery", priced=False, cost_nano=0),
        replace(base, id="e9", app="helpdesk"),
        replace(
            base,
            id="e7",
            **no_tokens,
            key_id=None,
            member_id=None,
            agent_id=None,
            axis=Axis.VOICE,
            provider="eleven",
            model="v2",
            canonical_model="v2",
            operation="audio.speech",
            characters=5_400,
            seconds=Decimal("12.5"),
        ),
        replace(
            base,
            id="e8",
            **no_tokens,
            axis=Axis.COMPUTE,
            provider="farebox",
            model="vm.small",
            canonical_model="vm.small",
            operation="compute.vm",
            seconds=Decimal("3600.000123"),
            quantity=Decimal("0.000001"),
        ),
    ]
    await ledger.record_many(events[:3])
    for event in events[3:]:  # later transactions add to the rows the first one created
        await ledger.record(event)

    got = {
        (row["bucket"], *(row[name] for name in ROLLUP_DIMENSIONS)): {name: row[name] for name in ROLLUP_MEASURES}
        for row in await table_rows(ledger, rollups)
    }
    one_event = {"requests": 1, "input_tokens": 100, "output_tokens": 10, "cost_nano": 1_000, "latency_ms_sum": 850}
    expected = {
        rollup_key(noon): one_event
        | {"requests": 2, "input_tokens": 200, "output_tokens": 20, "cost_nano": 2_000, "latency_ms_sum": 1_700}
        | {"reasoning_tokens": 4, "estimated_requests": 1},
        rollup_key(noon, key="key-2", member="mem-2"): one_event | {"cached_input_tokens": 60, "cache_write_tokens": 5},
        rollup_key(one): one_event,
        rollup_key(noon, status="error", error_class="other"): {"requests": 1, "input_tokens": 100},
        rollup_key(noon, model="mystery", canonical="mystery"): one_event | {"cost_nano": 0, "unpriced_requests": 1},
        rollup_key(noon, app="helpdesk"): one_event,
        rollup_key(
            noon,
            key="",
            member="",
            agent="",
            axis="voice",
            provider="eleven",
            model="v2",
            canonical="v2",
            operation="audio.speech",
        ): one_event | {"input_tokens": 0, "output_tokens": 0, "characters": 5_400, "seconds_micro": 12_500_000},
        rollup_key(
            noon, axis="compute", provider="farebox", model="vm.small", canonical="vm.small", operation="compute.vm"
        ): one_event | {"input_tokens": 0, "output_tokens": 0, "seconds_micro": 3_600_000_123, "quantity_micro": 1},
    }
    assert got == {key: {name: sums.get(name, 0) for name in ROLLUP_MEASURES} for key, sums in expected.items()}


async def test_spend_counters_per_key_member_account_and_period(ledger: Ledger, make_event: EventFactory) -> None:
    when = at("2025-06-04T10:00:00+00:00")  # a Wednesday; the week started on Monday 2 June
    await ledger.record_many(
        [
            make_event(timestamp=when, key_id="key-1", member_id="mem-1", cost_nano=1),
            make_event(timestamp=when - timedelta(days=1), key_id="key-1", member_id="mem-1", cost_nano=20),
            make_event(timestamp=when - timedelta(days=3), key_id="key-2", member_id="mem-1", cost_nano=300),
            make_event(timestamp=when - timedelta(days=2), key_id="key-3", member_id=None, cost_nano=4_000),
            make_event(timestamp=when - timedelta(days=40), key_id="key-1", member_id="mem-1", cost_nano=50_000),
            make_event(timestamp=when, account_id="acct-2", key_id="key-9", member_id="mem-9", cost_nano=600_000),
        ]
    )

    async def spent(scope: str, scope_id: str, period: Period) -> int:
        return await ledger.spent(scope=scope, scope_id=scope_id, period=period, at=when, tz=ZoneInfo("UTC"))

    periods = (Period.DAILY, Period.WEEKLY, Period.MONTHLY, Period.TOTAL)
    assert [await spent("key", "key-1", p) for p in periods] == [1, 21, 21, 50_021]
    assert [await spent("key", "key-2", p) for p in periods] == [0, 0, 300, 300]
    assert [await spent("key", "key-3", p) for p in periods] == [0, 4_000, 4_000, 4_000]
    assert [await spent("member", "mem-1", p) for p in periods] == [1, 21, 321, 50_321]
    assert [await spent("account", "acct-1", p) for p in periods] == [1, 4_021, 4_321, 54_321]
    assert [await spent("account", "acct-2", p) for p in periods] == [600_000] * 4


async def test_spend_counter_periods_start_at_local_midnight_of_the_account(
    ledger: Ledger, make_event: EventFactory, table_rows: TableRows
) -> None:
    ny_account = new_account("acct-ny", timezone="America/New_York")
    await ledger._write(lambda connection: connection.execute(insert(accounts).values(ny_account)))
    local = [  # New York is UTC-4 in June; 2025-06-01 is a Sunday
        ("2025-05-31T23:30:00-04:00", 1),
        ("2025-06-01T00:00:00-04:00", 10),
        ("2025-06-01T23:59:59.999999-04:00", 100),
        ("2025-06-02T00:00:00-04:00", 1_000),
    ]
    for account in ("acct-ny", "acct-utc"):  # acct-utc has no accounts row: UTC
        await ledger.record_many(
            [make_event(account_id=account, key_id=f"key-{account}", timestamp=at(t), cost_nano=c) for t, c in local]
        )

    async def spent(account: str, period: Period, when: str, tz: ZoneInfo) -> int:
        return await ledger.spent(scope="account", scope_id=account, period=period, at=at(when), tz=tz)

    utc = ZoneInfo("UTC")
    assert await spent("acct-ny", Period.DAILY, "2025-05-31T12:00:00-04:00", NEW_YORK) == 1
    assert await spent("acct-ny", Period.DAILY, "2025-06-01T12:00:00-04:00", NEW_YORK) == 110
    assert await spent("acct-ny", Period.DAILY, "2025-06-02T12:00:00-04:00", NEW_YORK) == 1_000
    assert await spent("acct-ny", Period.MONTHLY, "2025-05-15T12:00:00-04:00", NEW_YORK) == 1
    assert await spent("acct-ny", Period.MONTHLY, "2025-06-15T12:00:00-04:00", NEW_YORK) == 1_110
    assert await spent("acct-ny", Period.WEEKLY, "2025-05-26T00:00:00-04:00", NEW_YORK) == 111  # Mon 26 .. Sun 1
    assert await spent("acct-ny", Period.WEEKLY, "2025-06-02T00:00:00-04:00", NEW_YORK) == 1_000
    # The same instants fall into other UTC days: 03:30, 04:00, 03:59:59 (next day) and 04:00 UTC.
    assert await spent("acct-utc", Period.DAILY, "2025-06-01T12:00:00+00:00", utc) == 11
    assert await spent("acct-utc", Period.DAILY, "2025-06-02T12:00:00+00:00", utc) == 1_100
    assert await spent("acct-utc", Period.MONTHLY, "2025-06-15T12:00:00+00:00", utc) == 1_111

    ny_daily = sorted(
        (row["period_start"], row["spent_nano"])
        for row in await table_rows(ledger, spend_counters)
        if (row["scope"], row["scope_id"], row["period"]) == ("key", "key-acct-ny", "daily")
    )
    starts = ("2025-05-31T00:00:00-04:00", "2025-06-01T00:00:00-04:00", "2025-06-02T00:00:00-04:00")
    assert ny_daily == [(int(at(s).timestamp()), n) for s, n in zip(starts, (1, 110, 1_000), strict=True)]


async def test_the_reader_returns_an_event_as_recorded(ledger: Ledger, make_event: EventFactory) -> None:
    event = make_event(
        timestamp=datetime(2025, 6, 1, 12, 30, 15, 123_456, tzinfo=UTC),
        app="support-bot",
        tags=("team:search", "env:prod"),
        cached_input_tokens=300,
        cache_write_tokens=50,
        reasoning_tokens=64,
        characters=12,
        seconds=Decimal("1.000001"),
        quantity=Decimal("123456.789012"),
        unit_prices={"input_mtok": "2.5", "cached_input_mtok": "1.25", "output_mtok": "10.000000001"},
        status=Status.ERROR,
        http_status=429,
        error_type="rate_limited",
        ttft_ms=120,
        streamed=True,
        estimated=True,
        priced=False,
        source="ingest",
        metadata={"trace": "abc", "nested": {"n": [1, 2, 3], "ok": True, "none": None}, "ünï": "çødé ✓"},
        cost_nano=123_456_789_012,
    )
    await ledger.record(event)

    row = await recorded(ledger, event.id)

    as_given = ("id", "timestamp", "account_id", "key_id", "member_id", "agent_id", "app", "tags", "axis")
    as_given += ("provider", "model", "canonical_model", "operation", "input_tokens", "output_tokens")
    as_given += ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens", "characters", "cost_nano")
    as_given += ("unit_prices", "priced", "status", "http_status", "error_type", "latency_ms", "ttft_ms", "streamed")
    as_given += ("estimated", "source", "metadata")
    assert asdict(row) == {name: getattr(event, name) for name in as_given} | {
        "seconds_micro": 1_000_001,
        "quantity_micro": 123_456_789_012,
        "recorded_at": row.recorded_at,
    }
    assert row.timestamp == datetime(2025, 6, 1, 12, 30, 15, 123_456, tzinfo=UTC)
    assert (row.status, row.axis, row.unit_prices["output_mtok"]) == ("error", "llm", "10.000000001")
    assert datetime.now(UTC) - timedelta(minutes=1) < row.recorded_at <= datetime.now(UTC)
    assert await LedgerReader(ledger).event("no-such-event") is None


async def test_a_failing_write_job_does_not_undo_the_others_in_its_group(
    ledger: Ledger, make_event: EventFactory, table_rows: TableRows, writer_gate: type[WriterGate]
) -> None:
    class Boom(Exception):
        pass

    def add(account_id: str, *, then_fail: bool = False) -> Callable[[Connection], str]:
        def write(connection: Connection) -> str:
            connection.execute(insert(accounts).values(new_account(account_id)))
            if then_fail:
                raise Boom(account_id)
            return account_id

        return write

    event = make_event()
    commits_before = ledger.commits
    async with writer_gate(ledger):
        outcome = asyncio.gather(
            ledger._write(add("a-1")),
            ledger._write(add("a-2", then_fail=True)),
            ledger.record(event),
            ledger._write(add("a-3")),
            return_exceptions=True,
        )
    results = await outcome

    assert ledger.commits - commits_before == 2  # the gate's group, then all four jobs in one group
    assert results[0] == "a-1" and results[2] is RECORDED and results[3] == "a-3"
    assert isinstance(results[1], Boom)
    assert sorted(row["id"] for row in await table_rows(ledger, accounts)) == ["a-1", "a-3"]
    assert (await recorded(ledger, event.id)).id == event.id


async def test_concurrent_callers_share_commits(
    ledger: Ledger, make_event: EventFactory, table_rows: TableRows
) -> None:
    callers, per_caller = 64, 20
    events = [[make_event(cost_nano=i + 1) for i in range(per_caller)] for _ in range(callers)]
    commits_before = ledger.commits

    async def caller(mine: list[UsageEvent]) -> list[RecordResult]:
        return [await ledger.record(event) for event in mine]

    results = await asyncio.gather(*(caller(mine) for mine in events))

    assert all(result == [RECORDED] * per_caller for result in results)
    commits = ledger.commits - commits_before
    assert commits <= callers * per_caller // 4, f"{commits} commits for {callers * per_caller} events"
    assert await count(ledger, usage_events) == callers * per_caller
    total = callers * sum(range(1, per_caller + 1))
    when = at("2025-06-01T00:00:00+00:00")
    assert await ledger.spent(scope="account", scope_id="acct-1", period=Period.TOTAL, at=when, tz=NEW_YORK) == total
    assert sum(row["cost_nano"] for row in await table_rows(ledger, rollups)) == total


async def test_sqlite_prepares_a_few_insert_statements_whatever_the_batch_sizes(
    ledger: Ledger, make_event: EventFactory
) -> None:
    if ledger.dialect != "sqlite":
        pytest.skip("SQLite inserts many rows per statement; sqlite3 caches each statement it prepares")
    statements: set[str] = set()

    def trace(connection: Connection) -> None:
        connection.connection.driver_connection.set_trace_callback(statements.add)  # type: ignore[union-attr]

    await ledger._write(trace)
    sizes = [*range(1, 41), 257, 333, 1000]
    for size in sizes:
        assert await ledger.record_many([make_event() for _ in range(size)]) == [RECORDED] * size

    # A prepared 250-row insert holds ~0.7 MB: one per batch size made a busy ledger grow by tens of MB.
    inserts = {
        sql.split(" VALUES ", 1)[1].count("(") for sql in statements if sql.startswith("INSERT INTO usage_events")
    }
    assert len(inserts) <= 6, sorted(inserts)
    assert await count(ledger, usage_events) == sum(sizes)
