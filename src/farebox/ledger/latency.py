"""Latency sketches in the ledger: kept by the writer beside the rollups, merged by the readers.

The writer (`LatencyBook`, one per `Recorder`) adds each new event's latency, and a streamed request's time to first
token, to a sketch (`farebox.core.latency`) per quarter hour, account, key, provider and model, and per local day of
the account's zone, key, provider and model; then overwrites the touched groups' rows of `latency_sketches` and
`latency_sketches_daily` in the transaction of the events. Each book writes under an id of its own (`writer`), so
processes recording into one database never overwrite each other's counts, and no database merges blobs: readers
sum every writer's rows (`read_latencies`).

A book keeps only the newest quarter hours and days in memory. A group it does not hold is read back from its own
row before it adds to it when it may have one (a late event's, one it let go of when a transaction failed, or a
rebuilt day), so nothing is lost; any other group it does not hold it never wrote, and it does not look for it.

Voids do not touch the sketches: only proxied requests carry a latency, and those cannot be voided.
"""

from __future__ import annotations

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
    """One writer's latency sketches: the newest groups in memory, every group it wrote in its own rows."""

    def __init__(self) -> None:
        self.writer = uuid.uuid4().hex
        """This book's id in the `writer` column: unique to the process, so its rows are its own."""
        self._quarters: dict[QuarterKey, _Pair] = {}
        self._days: dict[DayKey, _Pair] = {}
        self._newest_bucket = -1
        """The newest bucket this book has written, or tried to; it holds every group of the last `_KEEP_BUCKETS`."""
        self._newest_day: dict[str, int] = {}
        """Per account, the newest local day this book has written, or tried to; it holds every group of the last
        `_KEEP_DAYS`."""
        self._dropped: set[Any] = set()
        """Groups of the kept buckets and days that a failed transaction made it let go of (`discard`)."""
        self._rebuilt: set[str] = set()
        """Accounts whose days were rebuilt (`forget_days`): any of their days may have a row of this book's."""
        self._touched: tuple[list[QuarterKey], list[DayKey]] = ([], [])

    def record(
        self, connection: Connection, rows: Sequence[tuple[Any, ...]], *, day_of: Callable[[str, int], int]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Add new `usage_events` rows' durations to their groups; answer the rows to overwrite.

        Runs on the writer thread inside the transaction. `day_of(account_id, bucket)` is a bucket's local day.

        Returns:
            The `latency_sketches` and `latency_sketches_daily` rows of every group the events touched, in column
            order.
        """
        self._touched = ([], [])
        added: dict[QuarterKey, _Durations] = {}
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
        if not added:
            return [], []
        by_day: dict[DayKey, _Durations] = {}
        for (bucket, account_id, key_id, provider, model), durations in added.items():
            day_group = (account_id, day_of(account_id, bucket), key_id, provider, model)
            before = by_day.get(day_group)
            by_day[day_group] = durations if before is None else (before[0] + durations[0], before[1] + durations[1])
        # A group it does not hold has no row of this book's unless it left memory: older than the buckets and days
        # kept, let go of by `discard`, or rebuilt. Only those are read back.
        horizon = self._newest_bucket - (_KEEP_BUCKETS - 1) * ROLLUP_BUCKET_SECONDS
        quarters = self._add(
            connection,
            latency_sketches,
            self._quarters,
            added,
            self._touched[0],
            unsure=lambda group: group[0] < horizon or group in self._dropped,
        )
        days = self._add(
            connection,
            latency_sketches_daily,
            self._days,
            by_day,
            self._touched[1],
            unsure=lambda group: group in self._dropped or group[0] in self._rebuilt or not self._kept(group),
        )
        self._advance(self._touched[0], self._touched[1])
        return quarters, days

    def _add(
        self,
        connection: Connection,
        table: Table,
        held: dict[Any, _Pair],
        added: Mapping[Any, _Durations],
        touched: list[Any],
        *,
        unsure: Callable[[Any], bool],
    ) -> list[tuple[Any, ...]]:
        """Add durations to the held groups (first reading back those that may have a row), and answer their rows."""
        missing = [group for group in added if group not in held]
        if missing:
            found = self._read_back(connection, table, [group for group in missing if unsure(group)])
            for group in missing:
                held[group] = found.get(group) or _Pair()
            self._dropped.difference_update(missing)
        touched.extend(added)  # first: a failure from here on discards them
        rows = []
        for group, (latencies, ttfts) in added.items():
            pair = held[group]
            for ms in latencies:
                pair.latency.add(ms)
            for ms in ttfts:
                pair.ttft.add(ms)
            rows.append((*group, self.writer, _blob(pair.latency), _blob(pair.ttft)))
        return rows

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

    def _advance(self, quarters: list[QuarterKey], days: list[DayKey]) -> None:
        """Move the newest bucket and days on, and let go of the groups older than those kept."""
        newest = max(self._newest_bucket, max(group[0] for group in quarters))
        horizon = newest - (_KEEP_BUCKETS - 1) * ROLLUP_BUCKET_SECONDS
        if newest > self._newest_bucket:
            self._newest_bucket = newest
            self._quarters = {group: pair for group, pair in self._quarters.items() if group[0] >= horizon}
        else:  # late events: their groups go once written
            for group in quarters:
                if group[0] < horizon:
                    self._quarters.pop(group, None)
        moved = False
        for account_id, day, *_rest in days:
            if day > self._newest_day.get(account_id, -1):
                self._newest_day[account_id] = day
                moved = True
        if moved:
            self._days = {group: pair for group, pair in self._days.items() if self._kept(group)}
        else:
            for day_group in days:
                if not self._kept(day_group):
                    self._days.pop(day_group, None)

    def _kept(self, group: DayKey) -> bool:
        """Whether a day is among those its account keeps (any day of an account this book never wrote is)."""
        newest = self._newest_day.get(group[0])
        return newest is None or group[1] > newest - _KEEP_DAYS

    def discard(self) -> None:
        """Forget the groups the last `record` touched: its transaction failed, so their rows are what they were."""
        quarters, days = self._touched
        for group in quarters:
            self._quarters.pop(group, None)
        for day_group in days:
            self._days.pop(day_group, None)
        self._dropped.update(quarters, days)
        self._touched = ([], [])

    def forget_days(self, account_id: str) -> None:
        """Forget an account's days (its zone changed, and its rows are rebuilt): from now on each of its days is
        read back from this book's row before it is added to."""
        self._days = {group: pair for group, pair in self._days.items() if group[0] != account_id}
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
