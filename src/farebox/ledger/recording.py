"""Recording events: the raw rows, their rollups, latency sketches and spend counters, in one transaction.

Runs on the writer thread inside the group's transaction. Duplicates (an id already in the ledger,
or repeated within the group) are answered as such and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection, select

from farebox.core.error_classes import error_class
from farebox.core.events import MICRO, RecordResult, UsageEvent, epoch_us, from_epoch_us
from farebox.core.periods import Period, period_start
from farebox.core.spend import CounterId, Scope
from farebox.ledger.daily import cube_rows, key_rows, local_day
from farebox.ledger.latency import LATENCY_DIMENSIONS, LatencyBook
from farebox.ledger.partitions import IDS
from farebox.ledger.prompt_prefixes import PREFIX_KEYS, PREFIX_SUMS, prefix_rows
from farebox.ledger.schema import (
    DAILY_DIMENSIONS,
    DAILY_ERROR_DIMENSIONS,
    KEY_ROLLUP_DIMENSIONS,
    ROLLUP_BUCKET_SECONDS,
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
    accounts,
    latency_sketches,
    latency_sketches_daily,
    prompt_prefixes,
    spend_counters,
    usage_daily,
    usage_daily_errors,
    usage_events,
    usage_key_rollups,
    usage_rollups,
)
from farebox.ledger.statements import SQLITE_MAX_PARAMETERS, Insert, upsert

__all__ = ["Recorder", "event_row"]

_IDS_PER_SELECT = tuple(size for size in (512, 64, 8, 1) if size <= SQLITE_MAX_PARAMETERS)
# Every real timezone offset is a multiple of 15 minutes, so period starts are constant per quarter hour.
_QUARTER_HOUR_US = 900 * MICRO
_COUNTED_PERIODS = (Period.DAILY, Period.WEEKLY, Period.MONTHLY, Period.TOTAL)
_TS = 1  # index of ts_us in an event row


_EVENT_COLUMNS = tuple(column.name for column in usage_events.columns)
# Row positions of input_tokens .. cost_nano, the columns a rollup sums in the same order (ROLLUP_MEASURES).
_COUNTS_TO_COST = slice(_EVENT_COLUMNS.index("input_tokens"), _EVENT_COLUMNS.index("cost_nano") + 1)
assert _EVENT_COLUMNS[_COUNTS_TO_COST] == (*ROLLUP_MEASURES[1:7], "seconds_micro", "quantity_micro", "cost_nano")


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def event_row(event: UsageEvent, *, recorded_at_us: int, flags: tuple[Any, Any] = (False, True)) -> tuple[Any, ...]:
    """The `usage_events` row of an event, in column order, JSON columns serialised.

    Values are of the driver's exact types: the enums as plain `str`, the booleans as `flags[value]`
    ((0, 1) for sqlite3). sqlite3 binds a subclass of str or int through its adapter look-up, which
    made the five such values of a row cost as much as the rest of its 34 together.
    """
    # Most events have no tags, no metadata and no seconds or quantity: skip serialising and multiplying those.
    return (
        event.id,
        epoch_us(event.timestamp),
        event.account_id,
        event.key_id,
        event.member_id,
        event.agent_id,
        event.app,
        _json(event.tags) if event.tags else "[]",
        str(event.axis),
        event.provider,
        event.model,
        event.canonical_model,
        event.operation,
        event.input_tokens,
        event.output_tokens,
        event.cached_input_tokens,
        event.cache_write_tokens,
        event.reasoning_tokens,
        event.characters,
        int(event.seconds * MICRO) if event.seconds else 0,
        int(event.quantity * MICRO) if event.quantity else 0,
        event.cost_nano,
        _json(event.unit_prices),
        flags[event.priced],
        str(event.status),
        event.http_status,
        event.error_type,
        event.latency_ms,
        event.ttft_ms,
        flags[event.streamed],
        flags[event.estimated],
        event.source,
        _json(event.metadata) if event.metadata else "{}",
        recorded_at_us,
        event.prompt_prefix,
    )


# Every rollup dimension but the last, `error_class`, is an event column; the class is derived (`_rollups`).
assert ROLLUP_DIMENSIONS[-1] == "error_class"
_ROW_DIMENSIONS = itemgetter(*map(_EVENT_COLUMNS.index, ROLLUP_DIMENSIONS[:-1]))
_STATUS, _HTTP_STATUS, _ERROR_TYPE = map(_EVENT_COLUMNS.index, ("status", "http_status", "error_type"))
_PREFIX = _EVENT_COLUMNS.index("prompt_prefix")
assert ROLLUP_DIMENSIONS[:5] == ("account_id", "key_id", "member_id", "agent_id", "app")
assert ROLLUP_BUCKET_SECONDS * MICRO == _QUARTER_HOUR_US
# What a rollup sums, in ROLLUP_MEASURES order after `requests`; from `priced` on, it counts or adds differently.
_ROW_MEASURES = itemgetter(
    *range(_COUNTS_TO_COST.start, _COUNTS_TO_COST.stop),
    *map(_EVENT_COLUMNS.index, ("priced", "estimated", "latency_ms")),
)


def _rollups(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The `usage_rollups` upserts of new event rows: one per bucket and dimensions, measures summed."""
    groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for row in rows:
        failure = "" if row[_STATUS] == "ok" else error_class(row[_STATUS], row[_HTTP_STATUS], row[_ERROR_TYPE])
        key = (row[_TS] // _QUARTER_HOUR_US * ROLLUP_BUCKET_SECONDS, *_ROW_DIMENSIONS(row), failure)
        group = groups.get(key)
        if group is None:
            groups[key] = [row]
        else:
            group.append(row)
    upserts = []
    for (bucket, account_id, key_id, member_id, agent_id, app, *rest), group in groups.items():
        *sums, priced, estimated, latencies = zip(*map(_ROW_MEASURES, group), strict=True)
        count = len(group)
        measures = (count, *map(sum, sums), count - sum(priced), sum(estimated), sum(ms or 0 for ms in latencies))
        upserts.append((bucket, account_id, key_id or "", member_id or "", agent_id or "", app or "", *rest, *measures))
    return upserts


_NEW_IDS_POSTGRESQL = (
    f"INSERT INTO {IDS} (id, ts_us) SELECT * FROM unnest(%s::varchar[], %s::bigint[]) "
    "ON CONFLICT (id) DO NOTHING RETURNING id"
)
"""The ids of a group's events that the ledger does not hold yet, inserted into `usage_event_ids` (where an id's
uniqueness lives on PostgreSQL, the events being partitioned by month: `farebox.ledger.partitions`) and returned."""


class Recorder:
    """Writes event batches. Holds the per-account timezone cache the spend counters need.

    Its statements are plain driver SQL, prepared once: on the writer's hot path, building and
    compiling SQLAlchemy statements for every group cost more than the database work itself.
    """

    def __init__(self, *, dialect: str):
        self._postgresql = dialect == "postgresql"
        self._flags: tuple[Any, Any] = (False, True) if self._postgresql else (0, 1)
        marker = "%s" if self._postgresql else "?"
        self._insert_events = Insert(usage_events.name, _EVENT_COLUMNS, marker=marker)
        self._upsert_rollups = upsert(
            usage_rollups.name, keys=("bucket", *ROLLUP_DIMENSIONS), sums=ROLLUP_MEASURES, marker=marker
        )
        self._upsert_daily = upsert(
            usage_daily.name, keys=("account_id", "day", *DAILY_DIMENSIONS), sums=ROLLUP_MEASURES, marker=marker
        )
        self._upsert_daily_errors = upsert(
            usage_daily_errors.name,
            keys=("account_id", "day", *DAILY_ERROR_DIMENSIONS),
            sums=ROLLUP_MEASURES,
            marker=marker,
        )
        self._upsert_keys = upsert(
            usage_key_rollups.name,
            keys=("account_id", "bucket", *KEY_ROLLUP_DIMENSIONS),
            sums=ROLLUP_MEASURES,
            marker=marker,
        )
        self._upsert_prefixes = upsert(prompt_prefixes.name, keys=PREFIX_KEYS, sums=PREFIX_SUMS, marker=marker)
        latency_keys = ("bucket", *LATENCY_DIMENSIONS, "writer")
        self._put_latencies = upsert(
            latency_sketches.name, keys=latency_keys, sums=("latency", "ttft"), marker=marker, replace=True
        )
        daily_keys = ("account_id", "day", *LATENCY_DIMENSIONS[1:], "writer")
        self._put_daily_latencies = upsert(
            latency_sketches_daily.name, keys=daily_keys, sums=("latency", "ttft"), marker=marker, replace=True
        )
        self.latencies = LatencyBook()
        """This writer's latency sketches (`farebox.ledger.latency`)."""
        self._upsert_counters = upsert(
            spend_counters.name,
            keys=("scope", "scope_id", "period", "period_start"),
            sums=("spent_nano",),
            marker=marker,
        )
        self._select_ids = {
            size: f"SELECT id FROM {usage_events.name} WHERE id IN ({', '.join('?' * size)})"
            for size in _IDS_PER_SELECT
        }
        self._timezones: dict[str, ZoneInfo] = {}
        self._starts: dict[tuple[str, int], tuple[int, ...]] = {}
        self._days: dict[tuple[str, int], int] = {}
        self.added: dict[CounterId, int] = {}
        """What the last `record_events` call added to the spend counters (uncommitted until its transaction is)."""

    def forget_timezone(self, connection: Connection, account_id: str) -> None:
        """Drop a cached account timezone, and the account's days of latency sketches (its timezone changes, and its
        daily rows are rebuilt from the quarter hours', which are written first, in the transaction under way)."""
        self._timezones.pop(account_id, None)
        self.flush_latencies(connection)
        self.latencies.forget_days(account_id)
        self._starts.clear()
        self._days.clear()

    def record_events(
        self, connection: Connection, batches: Sequence[Sequence[UsageEvent]]
    ) -> list[list[RecordResult]]:
        """Record each batch's new events; return, per batch, what happened to each of its events."""
        firsts: dict[str, UsageEvent] = {}  # the first occurrence of each id in the group, in order
        for batch in batches:
            for event in batch:
                firsts.setdefault(event.id, event)
        self.added = {}
        recorded_at_us = epoch_us(datetime.now(UTC))
        flags = self._flags
        rows = [event_row(event, recorded_at_us=recorded_at_us, flags=flags) for event in firsts.values()]
        inserted = self._insert_new(connection, rows)
        if len(inserted) == len(rows):  # the common case: nothing was a duplicate
            new_events, new_rows = list(firsts.values()), rows
        else:
            new_events = [event for event in firsts.values() if event.id in inserted]
            new_rows = [row for row in rows if row[0] in inserted]
        if inserted:
            self.latencies.record(new_rows)
            self._add_rollups(connection, new_rows)
            self._add_prefixes(connection, new_rows)
            self._add_counters(connection, new_events, new_rows)
        if len(inserted) == sum(len(batch) for batch in batches):
            return [[RecordResult.RECORDED] * len(batch) for batch in batches]
        results: list[list[RecordResult]] = []
        for batch in batches:
            batch_results = []
            for event in batch:
                if event.id in inserted:
                    inserted.discard(event.id)  # a later occurrence of the id is a duplicate
                    batch_results.append(RecordResult.RECORDED)
                else:
                    batch_results.append(RecordResult.DUPLICATE)
            results.append(batch_results)
        return results

    def _insert_new(self, connection: Connection, rows: list[tuple[Any, ...]]) -> set[str]:
        """Insert the rows whose id the ledger does not hold yet; return those ids."""
        if not rows:
            return set()
        if self._postgresql:
            return self._insert_new_postgresql(connection, rows)
        existing: set[str] = set()
        ids = [row[0] for row in rows]
        largest = _IDS_PER_SELECT[0]
        for start in range(0, len(ids), largest):
            chunk = ids[start : start + largest]
            size = min(size for size in _IDS_PER_SELECT if size >= len(chunk))
            padded = chunk + chunk[:1] * (size - len(chunk))  # a repeated id: one statement per size, not per count
            existing.update(row[0] for row in _driver(connection).execute(self._select_ids[size], padded))
        new_rows = [row for row in rows if row[0] not in existing]
        self._insert_events.run_sqlite(_driver(connection), new_rows)
        return {row[0] for row in new_rows}

    def _insert_new_postgresql(self, connection: Connection, rows: list[tuple[Any, ...]]) -> set[str]:
        # The ids first, all in one statement; then the new events' rows, which psycopg pipelines (one round trip).
        driver_connection = connection.connection.driver_connection
        assert driver_connection is not None
        try:
            with driver_connection.cursor() as cursor:
                cursor.execute(_NEW_IDS_POSTGRESQL, ([row[0] for row in rows], [row[1] for row in rows]))
                inserted = {row[0] for row in cursor.fetchall()}
                new_rows = rows if len(inserted) == len(rows) else [row for row in rows if row[0] in inserted]
                if new_rows:
                    cursor.executemany(self._insert_events.one_row, new_rows)
                return inserted
        except Exception:
            if driver_connection.closed:  # the server went away: let the pool replace the connection
                connection.invalidate()
            raise

    def _upsert(self, connection: Connection, statement: Insert, rows: list[tuple[Any, ...]]) -> None:
        if self._postgresql:
            connection.exec_driver_sql(statement.one_row, rows)
        else:
            statement.run_sqlite(_driver(connection), rows)

    def _add_rollups(self, connection: Connection, rows: list[tuple[Any, ...]]) -> None:
        self._add_rollup_rows(connection, _rollups(rows))

    def _add_rollup_rows(self, connection: Connection, rollups: list[tuple[Any, ...]]) -> None:
        """Upsert quarter-hour rollup rows, and the daily cube's and the key rollups' rows summed from them."""
        self._upsert(connection, self._upsert_rollups, rollups)
        cube, errors = cube_rows(rollups, self._day_of(connection))
        self._upsert(connection, self._upsert_daily, cube)
        if errors:
            self._upsert(connection, self._upsert_daily_errors, errors)
        self._upsert(connection, self._upsert_keys, key_rows(rollups))

    def _add_prefixes(self, connection: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Count the prompt prefixes the new event rows carry (`ledger.prompt_prefixes`)."""
        if any(row[_PREFIX] is not None for row in rows):
            self._upsert(connection, self._upsert_prefixes, prefix_rows(rows, _EVENT_COLUMNS, self._day_of(connection)))

    def flush_latencies(self, connection: Connection) -> None:
        """Add the events committed since the last flush to the latency sketches, and overwrite the rows of every
        sketch that changed, in the transaction under way (`LatencyBook.flush`; the writer tells the book once it
        commits)."""
        quarters, days = self.latencies.flush(connection, day_of=self._day_of(connection))
        if quarters:
            self._upsert(connection, self._put_latencies, quarters)
        if days:
            self._upsert(connection, self._put_daily_latencies, days)

    def _day_of(self, connection: Connection) -> Callable[[str, int], int]:
        """`day_of(account_id, bucket)`: the local day a bucket lies in, in its account's zone (cached)."""

        def day_of(account_id: str, bucket: int) -> int:
            cache_key = (account_id, bucket)
            day = self._days.get(cache_key)
            if day is None:
                if len(self._days) > 100_000:
                    self._days.clear()
                day = self._days[cache_key] = local_day(bucket, self.timezone(connection, account_id))
            return day

        return day_of

    def _add_counters(self, connection: Connection, events: list[UsageEvent], rows: list[tuple[Any, ...]]) -> None:
        # First sum by (account, member, key, quarter hour): far fewer groups than events.
        by_owner: dict[tuple[str, str | None, str | None, int], int] = {}
        for event, row in zip(events, rows, strict=True):
            if event.cost_nano:
                owner = (event.account_id, event.member_id, event.key_id, row[_TS] // _QUARTER_HOUR_US)
                by_owner[owner] = by_owner.get(owner, 0) + event.cost_nano
        self.added = self._move_counters(connection, by_owner)

    def unrecord(self, connection: Connection, row: Sequence[Any]) -> dict[CounterId, int]:
        """Take a recorded event out of its rollup and its spend counters (voiding it); the row stays.

        `row` is the event's `usage_events` row as read, in column order. Every measure of its rollup goes down
        by what the event added, the request itself included, so the rollup reads as if it had never been
        recorded; so do the counters of the periods containing the event's time.

        Returns:
            What it added to the spend counters (negative amounts), for the commit's listeners.
        """
        (rollup,) = _rollups([tuple(row)])
        keys = 1 + len(ROLLUP_DIMENSIONS)
        self._add_rollup_rows(connection, [(*rollup[:keys], *(-measure for measure in rollup[keys:]))])
        account_id, key_id, member_id = _ROW_DIMENSIONS(row)[:3]
        cost = row[_COUNTS_TO_COST.stop - 1]  # cost_nano closes the measured columns
        if not cost:
            return {}
        return self._move_counters(connection, {(account_id, member_id, key_id, row[_TS] // _QUARTER_HOUR_US): -cost})

    def add_costs(self, connection: Connection, changes: Sequence[tuple[Sequence[Any], int]]) -> dict[CounterId, int]:
        """Add cost differences (reprices) to recorded events' rollups and spend counters; the rows stay.

        `changes` pairs each event's `usage_events` row as read, in column order, with what its cost moves by. Only
        the cost of the event's rollup moves, in the event's own bucket, and the counters of the periods containing
        the event's time.

        Returns:
            What it added to the spend counters, for the commit's listeners.
        """
        cost_at = _COUNTS_TO_COST.stop - 1
        moved = [(*row[:cost_at], delta, *row[cost_at + 1 :]) for row, delta in changes]
        keys = 1 + len(ROLLUP_DIMENSIONS)
        only_cost = [
            (
                *rollup[:keys],
                *(rollup[keys + n] if name == "cost_nano" else 0 for n, name in enumerate(ROLLUP_MEASURES)),
            )
            for rollup in _rollups(moved)
        ]
        self._add_rollup_rows(connection, only_cost)
        by_owner: dict[tuple[str, str | None, str | None, int], int] = {}
        for row in moved:
            account_id, key_id, member_id = _ROW_DIMENSIONS(row)[:3]
            owner = (account_id, member_id, key_id, row[_TS] // _QUARTER_HOUR_US)
            by_owner[owner] = by_owner.get(owner, 0) + row[cost_at]
        return self._move_counters(connection, by_owner)

    def _move_counters(
        self, connection: Connection, by_owner: dict[tuple[str, str | None, str | None, int], int]
    ) -> dict[CounterId, int]:
        """Add amounts, by (account, member, key, quarter hour), to the counters of every period containing them."""
        sums: dict[CounterId, int] = {}
        for (account_id, member_id, key_id, quarter), cost in by_owner.items():
            starts = self._period_starts(connection, account_id, quarter)
            for scope, scope_id in ((Scope.ACCOUNT, account_id), (Scope.MEMBER, member_id), (Scope.KEY, key_id)):
                if scope_id is None:
                    continue
                for period, start in zip(_COUNTED_PERIODS, starts, strict=True):
                    key = CounterId(scope, scope_id, period, start)
                    sums[key] = sums.get(key, 0) + cost
        if sums:
            rows = [(str(key.scope), key.owner_id, str(key.period), key.start, total) for key, total in sums.items()]
            self._upsert(connection, self._upsert_counters, rows)
        return sums

    def _period_starts(self, connection: Connection, account_id: str, quarter: int) -> tuple[int, ...]:
        cache_key = (account_id, quarter)
        starts = self._starts.get(cache_key)
        if starts is None:
            if len(self._starts) > 100_000:
                self._starts.clear()
            tz = self.timezone(connection, account_id)
            at = from_epoch_us(quarter * _QUARTER_HOUR_US)
            starts = tuple(int(period_start(p, at=at, tz=tz).timestamp()) for p in _COUNTED_PERIODS)
            self._starts[cache_key] = starts
        return starts

    def timezone(self, connection: Connection, account_id: str) -> ZoneInfo:
        """The account's timezone (UTC for an account the ledger does not know)."""
        tz = self._timezones.get(account_id)
        if tz is None:
            name = connection.scalar(select(accounts.c.timezone).where(accounts.c.id == account_id))
            tz = ZoneInfo(name or "UTC")
            self._timezones[account_id] = tz
        return tz


def _driver(connection: Connection) -> Any:
    """The sqlite3 connection under a SQLite ledger's SQLAlchemy connection, in the same transaction.

    The writer's statements are plain SQL built once; run on the driver, each skips SQLAlchemy's
    per-execution bookkeeping (about a third of a one-event commit's Python time).
    """
    return connection.connection.driver_connection
