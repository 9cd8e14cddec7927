"""Latency sketches in the ledger: kept by the writer beside the rollups, merged by the readers.

The writer (`LatencyBook`, one per `Recorder`) adds each committed event's latency, and a streamed request's time to
first token, to a sketch (`farebox.core.latency`) per quarter hour, account, key, provider and model, and per local
day of the account's zone, key, provider and model, in memory, at most `FLUSH_SECONDS` after the event's commit, and
overwrites every changed group's rows of `latency_sketches` and `latency_sketches_daily` then, in the next
transaction or in one of their own. Adding and writing them at every commit cost a lone event about a sixth of its
commit. Each
book writes under an id of its own (`writer`), so processes recording into one database never overwrite each
other's counts, and no database merges blobs: readers sum every writer's rows (`read_latencies`). A process killed
outright loses the latencies of its last second from the sketches, never an event: each event keeps its own.

A book keeps only the newest quarter hours and days in memory, and those whose rows lag. A group it does not hold
is read back from its own row before it adds to it when it may have one (a late event's, or a rebuilt day), so
nothing is lost; any other group it does not hold it never wrote, and it does not look for it.

Voids do not touch the sketches: only proxied requests carry a latency, and those cannot be voided.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, delete, insert, select

from farebox.core.events import MICRO
from farebox.core.latency import LatencySketch
from farebox.ledger.daily import local_day
from farebox.ledger.schema import ROLLUP_BUCKET_SECONDS, latency_sketches, latency_sketches_daily, usage_events

__all__ = [
    "FLUSH_SECONDS",
    "LATENCY_DIMENSIONS",
    "LatencyBook",
    "LatencyGroup",
    "LatencyQuery",
    "read_latencies",
    "rebuild_daily_latency",
]

LATENCY_DIMENSIONS = ("account_id", "key_id", "provider", "model")
"""What the sketches are kept by, besides time and writer."""
_KEEP_BUCKETS = 4
"""Quarter hours a book keeps in memory: the newest, and the three before it (late events of the last hour)."""
_KEEP_DAYS = 2
FLUSH_SECONDS = 1.0
"""How long a book's rows may lag what it recorded: the percentiles read see every request but the last second's."""
_BUCKET_US = ROLLUP_BUCKET_SECONDS * MICRO
_COLUMNS = [column.name for column in usage_events.columns]
_TS, _ACCOUNT, _KEY, _PROVIDER, _MODEL, _LATENCY, _TTFT, _STREAMED = map(
    _COLUMNS.index, ("ts_us", "account_id", "key_id", "provider", "model", "latency_ms", "ttft_ms", "streamed")
)
_CHUNK = 400
"""Groups read back per statement (a few parameters each, well under SQLite's limit)."""

_Durations = tuple[list[int], list[int]]
"""Latencies, and times to first token, in ms."""
QuarterKey = tuple[int, str, str, str, str]
"""(bucket, account, key, provider, model)"""
DayKey = tuple[str, int, str, str, str]
"""(account, day, key, provider, model)"""


class _Pair:
    """A group's two sketches: request latencies, and streamed requests' times to first token."""

    __slots__ = ("latency", "ttft")

    def __init__(self, latency: LatencySketch | None = None, ttft: LatencySketch | None = None) -> None:
        self.latency = LatencySketch() if latency is None else latency
        self.ttft = LatencySketch() if ttft is None else ttft


def _blob(sketch: LatencySketch) -> bytes | None:
    """The sketch encoded, None for an empty one (the column is NULL)."""
    return sketch.encode() if sketch.counts or sketch.zeros else None


def _decoded(blob: bytes | None) -> LatencySketch | None:
    return None if blob is None else LatencySketch.decode(bytes(blob))


class LatencyBook:
    """One writer's latency sketches: the newest groups in memory, every group it wrote in its own rows.

    `record` only keeps a transaction's new event rows; once it commits (`committed`) they are pending, and `flush`,
    in a later transaction, adds the pending durations to the sketches in memory and answers the rows of every
    group that changed. Memory therefore only ever holds committed events, and a failed transaction, recording or
    flushing, leaves nothing to undo (`discard`).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.writer = uuid.uuid4().hex
        """This book's id in the `writer` column: unique to the process, so its rows are its own."""
        self._clock = clock
        self._quarters: dict[QuarterKey, _Pair] = {}
        self._days: dict[DayKey, _Pair] = {}
        self._newest_bucket = -1
        """The newest bucket this book has added to; it holds every group of the last `_KEEP_BUCKETS`."""
        self._newest_day: dict[str, int] = {}
        """Per account, the newest local day this book has added to; it holds every group of the last `_KEEP_DAYS`."""
        self._rebuilt: set[str] = set()
        """Accounts whose days were rebuilt (`forget_days`): any of their days may have a row of this book's."""
        self._recording: list[Sequence[tuple[Any, ...]]] = []
        """The new event rows of the transaction under way."""
        self._pending: list[Sequence[tuple[Any, ...]]] = []
        """Committed event rows not yet added to the sketches."""
        self._changed: tuple[set[QuarterKey], set[DayKey]] = (set(), set())
        """Groups whose rows lag memory."""
        self._flushed_at = clock()
        self._flushing: tuple[set[QuarterKey], set[DayKey]] | None = None
        """The groups `flush` answered rows of in the transaction under way."""

    def record(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Keep new `usage_events` rows of the transaction under way, to be added once it commits."""
        self._recording.append(rows)

    def wait(self) -> float | None:
        """Seconds until the sketches are due to be written (0: now); None when nothing waits to be."""
        if not (self._pending or self._changed[0] or self._changed[1]):
            return None
        return max(0.0, self._flushed_at + FLUSH_SECONDS - self._clock())

    def flush(
        self, connection: Connection, *, day_of: Callable[[str, int], int]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Add the committed events' durations to the sketches; answer the `latency_sketches` and
        `latency_sketches_daily` rows of every group that changed, in column order, for the transaction under way to
        overwrite (they count as written once it commits: `committed`).

        Runs on the writer thread. `day_of(account_id, bucket)` is a bucket's local day.
        """
        pending, self._pending = self._pending, []
        added: dict[QuarterKey, _Durations] = {}
        for rows in pending:
            for row in rows:
                latency, ttft = row[_LATENCY], row[_TTFT] if row[_STREAMED] else None
                if latency is None and ttft is None:
                    continue
                group = (
                    row[_TS] // _BUCKET_US * ROLLUP_BUCKET_SECONDS,
                    row[_ACCOUNT],
                    row[_KEY] or "",
                    *row[_PROVIDER : _MODEL + 1],
                )
                durations = added.get(group)
                if durations is None:
                    durations = added[group] = ([], [])
                if latency is not None:
                    durations[0].append(latency)
                if ttft is not None:
                    durations[1].append(ttft)
        if added:
            self._add_all(connection, added, day_of)
        quarters, days = self._changed
        self._flushing = (set(quarters), set(days))
        return [self._row(self._quarters, group) for group in quarters], [
            self._row(self._days, group) for group in days
        ]

    def _add_all(
        self, connection: Connection, added: dict[QuarterKey, _Durations], day_of: Callable[[str, int], int]
    ) -> None:
        by_day: dict[DayKey, _Durations] = {}
        for (bucket, account_id, key_id, provider, model), durations in added.items():
            day_group = (account_id, day_of(account_id, bucket), key_id, provider, model)
            before = by_day.get(day_group)
            by_day[day_group] = durations if before is None else (before[0] + durations[0], before[1] + durations[1])
        # A group it does not hold has no row of this book's unless it left memory: older than the buckets and days
        # kept, or rebuilt. Only those are read back.
        horizon = self._newest_bucket - (_KEEP_BUCKETS - 1) * ROLLUP_BUCKET_SECONDS
        self._add(connection, latency_sketches, self._quarters, added, unsure=lambda group: group[0] < horizon)
        self._add(
            connection,
            latency_sketches_daily,
            self._days,
            by_day,
            unsure=lambda group: group[0] in self._rebuilt or not self._kept(group),
        )
        self._changed[0].update(added)
        self._changed[1].update(by_day)
        self._newest_bucket = max(self._newest_bucket, max(group[0] for group in added))
        for account_id, day, *_rest in by_day:
            if day > self._newest_day.get(account_id, -1):
                self._newest_day[account_id] = day

    def _add(
        self,
        connection: Connection,
        table: Table,
        held: dict[Any, _Pair],
        added: Mapping[Any, _Durations],
        *,
        unsure: Callable[[Any], bool],
    ) -> None:
        """Add durations to the held groups, first reading back those that may have a row."""
        missing = [group for group in added if group not in held]
        if missing:
            found = self._read_back(connection, table, [group for group in missing if unsure(group)])
            for group in missing:
                held[group] = found.get(group) or _Pair()
        for group, (latencies, ttfts) in added.items():
            pair = held[group]
            for ms in latencies:
                pair.latency.add(ms)
            for ms in ttfts:
                pair.ttft.add(ms)

    def _read_back(self, connection: Connection, table: Table, groups: list[Any]) -> dict[Any, _Pair]:
        """This book's rows of `groups` (a group's columns are the table's first five), decoded; groups without a
        row are absent."""
        columns = list(table.columns)[:5]
        found: dict[Any, _Pair] = {}
        for start in range(0, len(groups), _CHUNK):
            chunk = set(groups[start : start + _CHUNK])
            query = select(*columns, table.c.latency, table.c.ttft).where(
                table.c.writer == self.writer,
                columns[0].in_(sorted({group[0] for group in chunk})),
                columns[1].in_(sorted({group[1] for group in chunk})),
            )
            for row in connection.execute(query):
                group = tuple(row[:5])
                if group in chunk:
                    found[group] = _Pair(_decoded(row[5]), _decoded(row[6]))
        return found

    def _row(self, held: dict[Any, _Pair], group: Any) -> tuple[Any, ...]:
        pair = held[group]
        return (*group, self.writer, _blob(pair.latency), _blob(pair.ttft))

    def committed(self) -> None:
        """The transaction under way committed: its events are pending, what it flushed is written, and the groups
        older than those kept, written, leave memory."""
        if self._recording:
            self._pending.extend(self._recording)
            self._recording = []
        if self._flushing is None:
            return
        self._changed[0].difference_update(self._flushing[0])
        self._changed[1].difference_update(self._flushing[1])
        self._flushing = None
        self._flushed_at = self._clock()
        horizon = self._newest_bucket - (_KEEP_BUCKETS - 1) * ROLLUP_BUCKET_SECONDS
        changed_quarters, changed_days = self._changed
        self._quarters = {g: pair for g, pair in self._quarters.items() if g[0] >= horizon or g in changed_quarters}
        self._days = {g: pair for g, pair in self._days.items() if self._kept(g) or g in changed_days}

    def _kept(self, group: DayKey) -> bool:
        """Whether a day is among those its account keeps (any day of an account this book never added to is)."""
        newest = self._newest_day.get(group[0])
        return newest is None or group[1] > newest - _KEEP_DAYS

    def discard(self) -> None:
        """The transaction under way failed: its events never happened; what it flushed still lags."""
        self._recording = []
        if self._flushing is not None:  # not again at once: a database that refused may need a moment
            self._flushing = None
            self._flushed_at = self._clock()

    def forget_days(self, account_id: str) -> None:
        """Forget an account's days (its zone changed, and its rows are rebuilt from the quarter hours', which must be
        flushed first): from now on each of its days is read back from this book's row before it is added to."""
        self._days = {group: pair for group, pair in self._days.items() if group[0] != account_id}
        self._changed[1].difference_update([group for group in self._changed[1] if group[0] == account_id])
        self._rebuilt.add(account_id)


@dataclass(frozen=True, slots=True)
class LatencyQuery:
    """Which sketches to sum: quarter hours `since` (included) to `until` (epoch seconds on the bucket grid), or with
    `daily` local days (days since 1970-01-01 in each account's zone); grouped by one of `LATENCY_DIMENSIONS` or
    not at all."""

    since: int
    until: int
    daily: bool = False
    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Dimension -> the values it may take ('' for none); an empty tuple matches nothing."""
    group_by: str | None = None

    def __post_init__(self) -> None:
        unknown = [name for name in (*self.where, self.group_by or "account_id") if name not in LATENCY_DIMENSIONS]
        if unknown:
            raise ValueError(f"latency sketches are not kept by {', '.join(unknown)}")


@dataclass(frozen=True, slots=True)
class LatencyGroup:
    """The sum of a group's sketches: its value of the grouping dimension ('' without one), its request latencies,
    and its streamed requests' times to first token."""

    value: str
    latency: LatencySketch
    ttft: LatencySketch


def read_latencies(connection: Connection, wanted: LatencyQuery) -> list[LatencyGroup]:
    """The sketches `wanted` asks for, every writer's, summed per group.

    The rows are fetched on the driver's own cursor, a binary one on PostgreSQL: a month of an account's daily
    sketches is ~10,000 rows of two blobs, which SQLAlchemy's rows and PostgreSQL's text protocol (bytea as hex)
    made three to five times slower to fetch. Names in the SQL are `LATENCY_DIMENSIONS`' (`LatencyQuery` checks
    them); values are bound.
    """
    from farebox.ledger.latency_sums import sum_sketches  # numpy: loaded by the first read, not by serving

    if any(not values for values in wanted.where.values()):
        return []
    postgresql = connection.dialect.name == "postgresql"
    marker = "%s" if postgresql else "?"
    time = "day" if wanted.daily else "bucket"
    clauses = [f"{time} >= {marker}", f"{time} < {marker}"]
    parameters: list[Any] = [wanted.since, wanted.until]
    for name, values in wanted.where.items():
        clauses.append(f"{name} IN ({', '.join([marker] * len(values))})")
        parameters.extend(values)
    table = latency_sketches_daily if wanted.daily else latency_sketches
    group = wanted.group_by or "''"
    sql = f"SELECT {group}, latency, ttft FROM {table.name} WHERE {' AND '.join(clauses)}"
    driver = connection.connection.driver_connection
    assert driver is not None
    if postgresql:
        with driver.cursor(binary=True) as cursor:
            rows = cursor.execute(sql, parameters).fetchall()
    else:
        rows = driver.execute(sql, parameters).fetchall()
    sums = sum_sketches((str(value), latency, ttft) for value, latency, ttft in rows)
    return [LatencyGroup(value, latency, ttft) for value, (latency, ttft) in sums.items()]


def rebuild_daily_latency(connection: Connection, account_id: str, *, tz: ZoneInfo) -> None:
    """Sum the account's daily sketches again from its quarter-hour ones, each writer's apart, days bounded in `tz`.

    A day at a time (its quarter hours are consecutive buckets), so memory holds one day's groups however long the
    account's history."""
    from farebox.ledger.latency_sums import sum_sketches  # numpy: loaded by the first rebuild, not by serving

    connection.execute(delete(latency_sketches_daily).where(latency_sketches_daily.c.account_id == account_id))
    quarters = latency_sketches.c
    columns = (quarters.bucket, quarters.key_id, quarters.provider, quarters.model, quarters.writer)
    query = select(*columns, quarters.latency, quarters.ttft).where(quarters.account_id == account_id)
    days: dict[int, int] = {}

    def day_of(row: Any) -> int:
        day = days.get(row[0])
        if day is None:
            day = days[row[0]] = local_day(row[0], tz)
        return day

    names = ("day", "key_id", "provider", "model", "writer")
    for day, rows in groupby(connection.execute(query.order_by(quarters.bucket)), key=day_of):
        sums = sum_sketches(((day, *row[1:5]), row[5], row[6]) for row in rows)
        connection.execute(
            insert(latency_sketches_daily),
            [
                {
                    "account_id": account_id,
                    **dict(zip(names, group, strict=True)),
                    "latency": _blob(latency),
                    "ttft": _blob(ttft),
                }
                for group, (latency, ttft) in sums.items()
            ],
        )
