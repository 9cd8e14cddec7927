"""Sums over the rollups, grouped by dimensions and by slots of time: the one query the read side runs.

The analytics engine (`farebox.analytics`) says what it wants as an `Aggregate`: a range of buckets, which
values each dimension may take, what to group by, which measures to sum, and how buckets fall into time
slots (`Slots`, computed from a time zone by the engine). This module turns it into one `GROUP BY` that
SQLite and PostgreSQL run alike; time-zone arithmetic is integer arithmetic on bucket starts, because every
bucket lies wholly inside one local hour, day, week and month (`ROLLUP_BUCKET_SECONDS`).

A range shorter than a bucket (the current minute) is summed from the raw events instead, through their
(account, timestamp) index, with the same measures and the same voids left out, so it equals what the rollups
will hold for it; it may span at most `MAX_EVENT_SPAN_US`, which keeps such a read to one minute of traffic.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, Select, case, cast, func, literal, or_, select

from farebox.core.error_classes import error_class
from farebox.ledger.schema import (
    ADJUSTED_MEASURES,
    KEY_ROLLUP_DIMENSIONS,
    ROLLUP_BUCKET_SECONDS,
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
    adjusted_cost,
    usage_daily,
    usage_daily_errors,
    usage_events,
    usage_key_rollups,
    usage_rollups,
    voided,
)

__all__ = [
    "ACTIVE_KEYS",
    "FAILED_REQUESTS",
    "KEY_ROLLUP_FIELDS",
    "MAX_EVENT_SPAN_US",
    "MAX_SLOTTED_EVENT_SPAN_US",
    "ROLLUP_BUCKET_SECONDS",
    "Aggregate",
    "AggregateRow",
    "Slots",
    "Source",
    "aggregate",
]

MAX_EVENT_SPAN_US = 60_000_000
"""The longest range summed from raw events in one sum: a minute (longer ranges are the rollups' to answer)."""
MAX_SLOTTED_EVENT_SPAN_US = 6 * 3600 * 1_000_000
"""The longest range summed from raw events slot by slot (minute by minute): six hours."""
_MICRO = 1_000_000
_CLASS = "error_class"
KEY_ROLLUP_FIELDS = frozenset({"account_id", *KEY_ROLLUP_DIMENSIONS})
"""The dimensions the key rollups keep."""
FAILED_REQUESTS = "failed_requests"
"""A measure summed from the status: the requests that failed (`status` 'error'), so a sum over every status still
counts its failures, without grouping by status (which sorts the rows first)."""
ACTIVE_KEYS = "active_keys"
"""A measure that is counted, not summed: how many distinct keys (not '') had requests in a group, voided ones
netted out. Groups of it do not add up (a key busy in two hours is one key of the day), so it is asked for alone
and never folded or added across tables."""


class Source(StrEnum):
    """The table an aggregate sums: its name."""

    ROLLUPS = "usage_rollups"
    """The quarter-hour rollups: bounds and slots in epoch seconds on the bucket grid."""
    KEY_ROLLUPS = "usage_key_rollups"
    """The key rollups: as the rollups, grouped and filtered by account, key and status only (`KEY_ROLLUP_FIELDS`)."""
    DAILY = "usage_daily"
    """The daily cube: bounds and slots in local days since 1970-01-01 of each account's zone."""
    EVENTS = "usage_events"
    """The raw events, voided ones left out: bounds in epoch microseconds, at most `MAX_EVENT_SPAN_US` apart, or
    `MAX_SLOTTED_EVENT_SPAN_US` with slots of epoch seconds (not grouped or filtered by error class then)."""


@dataclass(frozen=True, slots=True)
class Slots:
    """How buckets fall into slots of time.

    With `starts`, a bucket's slot is the index of the last start at or before it (months). Otherwise it is
    `(bucket + shift) // size`, with `shift` from the last `(from_bucket, shift)` pair of `shifts` whose
    `from_bucket` is at or before the bucket (a time zone's offset, which daylight saving changes).
    """

    size: int = 0
    shifts: tuple[tuple[int, int], ...] = ()
    starts: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.starts and (self.size <= 0 or not self.shifts):
            raise ValueError("slots need starts, or a size and at least one shift")

    def of(self, bucket: int) -> int:
        """The slot `bucket` falls in, as the SQL of `_slot` computes it."""
        if self.starts:
            return bisect_right(self.starts, bucket) - 1
        shift = self.shifts[0][1]
        for start, later in self.shifts[1:]:
            if bucket < start:
                break
            shift = later
        return (bucket + shift) // self.size


@dataclass(frozen=True, slots=True)
class Aggregate:
    """What to sum, and from where (`source`, which says the bounds' unit). `since` is included, `until` not."""

    since: int
    until: int
    measures: tuple[str, ...]
    group_by: tuple[str, ...] = ()
    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Dimension -> the values it may take ('' for none); an empty tuple matches nothing."""
    models: tuple[str, ...] | None = None
    """Match the model as called or its canonical model."""
    slots: Slots | None = None
    source: Source = Source.ROLLUPS
    averaging_under: Mapping[str, int] = field(default_factory=dict)
    """Measure -> a bound: only the groups whose sum of each named measure is under the bound per request (`HAVING`),
    so a rule about small requests reads only the groups it is about."""

    def __post_init__(self) -> None:
        unknown = [name for name in (*self.group_by, *self.where) if name not in ROLLUP_DIMENSIONS]
        unknown += [name for name in self.measures if name not in (*ROLLUP_MEASURES, FAILED_REQUESTS, ACTIVE_KEYS)]
        if unknown:
            raise ValueError(f"not a dimension or measure of the rollups: {', '.join(unknown)}")
        if ACTIVE_KEYS in self.measures and (len(self.measures) > 1 or _CLASS in (*self.group_by, *self.where)):
            raise ValueError("active keys are counted alone, and not by error class")
        if self.averaging_under and (
            self.source is Source.EVENTS
            or _CLASS in (*self.group_by, *self.where)
            or not set(self.averaging_under) <= set(ROLLUP_MEASURES)
            or not self.group_by
        ):
            raise ValueError("averages are bounded for groups of the rollups and the daily cube, not by error class")
        bucketed = self.source in (Source.ROLLUPS, Source.KEY_ROLLUPS)
        if bucketed and (self.since % ROLLUP_BUCKET_SECONDS or self.until % ROLLUP_BUCKET_SECONDS):
            raise ValueError("an aggregate's bounds must be bucket starts")
        if self.source is Source.KEY_ROLLUPS and (
            self.models is not None or not KEY_ROLLUP_FIELDS.issuperset((*self.group_by, *self.where))
        ):
            raise ValueError("the key rollups are summed by account, key and status only")
        if self.source is Source.EVENTS and self.until - self.since > (
            MAX_EVENT_SPAN_US if self.slots is None else MAX_SLOTTED_EVENT_SPAN_US
        ):
            raise ValueError("raw events are summed over at most a minute, or six hours slot by slot")
        if self.source is Source.EVENTS and self.slots is not None and _CLASS in (*self.group_by, *self.where):
            raise ValueError("raw events are not classed by error slot by slot")


@dataclass(frozen=True, slots=True)
class AggregateRow:
    """One group: its time slot (None without `slots`), its dimension values, its measures' sums."""

    slot: int | None
    dimensions: tuple[str, ...]
    measures: tuple[int, ...]


def _slot(slots: Slots, bucket: ColumnElement[Any]) -> ColumnElement[Any]:
    if slots.starts:
        months = [
            (bucket >= start, literal(index, BigInteger)) for index, start in reversed(list(enumerate(slots.starts)))
        ]
        return case(*months, else_=literal(-1, BigInteger))
    size = literal(slots.size, BigInteger)
    (_, first), *rest = slots.shifts
    if not rest:
        return (bucket + literal(first, BigInteger)) // size
    shifted: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = [
        (bucket >= start, (bucket + literal(shift, BigInteger)) // size) for start, shift in reversed(rest)
    ]
    return case(*shifted, else_=(bucket + literal(first, BigInteger)) // size)


_TABLES = {
    Source.ROLLUPS: (usage_rollups.c, usage_rollups.c.bucket),
    Source.KEY_ROLLUPS: (usage_key_rollups.c, usage_key_rollups.c.bucket),
    Source.DAILY: (usage_daily.c, usage_daily.c.day),
}
"""Each summed table's columns, and its time column."""


def aggregate(connection: Connection, wanted: Aggregate) -> list[AggregateRow]:
    """The sums `wanted` asks for, in one query on the caller's connection (two for the raw events of every
    account: which accounts have usage in the range's buckets, then their events, and for days by error class:
    the cube's successful requests, then the daily errors)."""
    if wanted.measures == (ACTIVE_KEYS,):
        return _active_keys(connection, wanted)
    if wanted.source is Source.EVENTS:
        return _event_sums(connection, wanted)
    if wanted.source is Source.DAILY and _CLASS in (*wanted.group_by, *wanted.where):
        return _daily_classed(connection, wanted)
    columns, time = _TABLES[wanted.source]
    return _sums(connection, wanted, columns, time, wanted.where, wanted.group_by)


def _sums(
    connection: Connection,
    wanted: Aggregate,
    columns: Any,
    time: ColumnElement[Any],
    where_values: Mapping[str, tuple[str, ...]],
    group_by: tuple[str, ...],
) -> list[AggregateRow]:
    """`wanted`'s measures over its range and slots, from a table's `columns`, filtered and grouped as given."""
    where = _table_where(wanted, columns, time, where_values)
    groups: list[ColumnElement[Any]] = [columns[name] for name in group_by]
    sums = [_sum(_measure(columns, name)).label(name) for name in wanted.measures]
    if wanted.slots is not None and not groups:
        return _folded(connection, select(time, *sums).where(*where).group_by(time), wanted.slots)
    if wanted.slots is not None:
        groups.insert(0, _slot(wanted.slots, time).label("slot"))
    query = select(*groups, *sums).where(*where).group_by(*groups)
    for name, bound in wanted.averaging_under.items():
        query = query.having(func.sum(columns[name]) < literal(bound, BigInteger) * func.sum(columns.requests))
    return _rows(connection, query, timed=wanted.slots is not None, dimensions=len(group_by))


def _table_where(
    wanted: Aggregate, columns: Any, time: ColumnElement[Any], where_values: Mapping[str, tuple[str, ...]]
) -> list[ColumnElement[bool]]:
    """The rows of a summed table in `wanted`'s range whose dimensions take the values given and its models."""
    where: list[ColumnElement[bool]] = [time >= wanted.since, time < wanted.until]
    where += [columns[name].in_(values) for name, values in where_values.items()]
    if wanted.models is not None:
        where.append(or_(columns.model.in_(wanted.models), columns.canonical_model.in_(wanted.models)))
    return where


def _active_keys(connection: Connection, wanted: Aggregate) -> list[AggregateRow]:
    """How many distinct keys had requests per group: the distinct (slot, groups, key) triples with requests, counted
    per (slot, groups). Counting them this way lets both databases hash the triples; `COUNT(DISTINCT ...)` per group
    sorted every row first (55 vs 102 ms on SQLite over a month of a busy account's key rollups)."""
    if wanted.source is Source.EVENTS:
        key, time = _events.key_id, _events.ts_us // literal(_MICRO, BigInteger)
        where = [*_event_where(connection, wanted), key != ""]
        groups = [_event_dimension(name).label(name) for name in wanted.group_by]
    else:
        columns, time = _TABLES[wanted.source]
        key = columns.key_id
        where = [*_table_where(wanted, columns, time, wanted.where), columns.requests > 0, key != ""]
        groups = [columns[name].label(name) for name in wanted.group_by]
    if wanted.slots is not None:
        groups.insert(0, _slot(wanted.slots, time).label("slot"))
    used = select(*groups, key.label("counted_key")).distinct().where(*where).subquery()
    counted = [used.c[group.name] for group in groups]
    query = select(*counted, func.count().label(ACTIVE_KEYS)).group_by(*counted)
    return _rows(connection, query, timed=wanted.slots is not None, dimensions=len(wanted.group_by))


def _measure(columns: Any, name: str) -> ColumnElement[Any]:
    """What a summed table's row adds to a measure: its column, or for `FAILED_REQUESTS` its failed requests."""
    if name == FAILED_REQUESTS:
        return case((columns.status == "error", columns.requests), else_=0)
    column: ColumnElement[Any] = columns[name]
    return column


def _sum(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """`SUM(value)` as a 64-bit integer: PostgreSQL sums `BIGINT` as `NUMERIC`, which reached Python as `Decimal` (a
    third of the time 9,600 groups took to fetch); no group sums past 2**63 (nano-USD: $9.2 billion)."""
    return cast(func.sum(value), BigInteger)


def _daily_classed(connection: Connection, wanted: Aggregate) -> list[AggregateRow]:
    """A daily aggregate grouped or filtered by the error class: the cube's successful requests (class '') and the
    daily errors (`usage_daily_errors`), summed together."""
    allowed = wanted.where.get(_CLASS)
    where = {name: values for name, values in wanted.where.items() if name != _CLASS}
    at = wanted.group_by.index(_CLASS) if _CLASS in wanted.group_by else None
    found: dict[tuple[int | None, tuple[str, ...]], list[int]] = {}

    def add(rows: list[AggregateRow], *, unclassed: bool) -> None:
        for row in rows:
            dimensions = row.dimensions
            if unclassed and at is not None:
                dimensions = (*dimensions[:at], "", *dimensions[at:])
            total = found.get((row.slot, dimensions))
            if total is None:
                found[(row.slot, dimensions)] = list(row.measures)
            else:
                for position, value in enumerate(row.measures):
                    total[position] += value

    if allowed is None or "" in allowed:
        succeeded = where | {"status": tuple(status for status in where.get("status", ("ok",)) if status == "ok")}
        named = tuple(name for name in wanted.group_by if name != _CLASS)
        add(_sums(connection, wanted, usage_daily.c, usage_daily.c.day, succeeded, named), unclassed=True)
    failed = where if allowed is None else where | {_CLASS: tuple(value for value in allowed if value)}
    errors = usage_daily_errors.c
    add(_sums(connection, wanted, errors, errors.day, failed, wanted.group_by), unclassed=False)
    return [AggregateRow(slot, dimensions, tuple(total)) for (slot, dimensions), total in found.items()]


def _folded(connection: Connection, query: Select[Any], slots: Slots) -> list[AggregateRow]:
    """Sums per time value (bucket or day) folded into slots here: grouped by its time column alone, the table is
    summed in index order, where grouping by a slot computed in SQL sorted every row first (half the time over a
    month of key rollups)."""
    found: dict[int, list[int]] = {}
    for time, *measures in connection.execute(query):
        slot = slots.of(int(time))
        total = found.get(slot)
        if total is None:
            found[slot] = [int(value or 0) for value in measures]
        else:
            for position, value in enumerate(measures):
                total[position] += int(value or 0)
    return [AggregateRow(slot, (), tuple(total)) for slot, total in found.items()]


def _rows(connection: Connection, query: Select[Any], *, timed: bool, dimensions: int) -> list[AggregateRow]:
    """A query's rows: its slot first when `timed`, then as many dimension values as said, then the measures."""
    rows = []
    start = 1 if timed else 0
    for row in connection.execute(query):
        values = tuple(row)
        measures = tuple(int(value or 0) for value in values[start + dimensions :])
        rows.append(AggregateRow(int(values[0]) if timed else None, values[start : start + dimensions], measures))
    return rows


_events = usage_events.c


def _event_dimension(name: str) -> ColumnElement[Any]:
    """An event's column as the rollups hold it: '' for no value."""
    column = _events[name]
    return func.coalesce(column, "") if column.nullable else column


_EVENT_MEASURES: dict[str, ColumnElement[Any]] = {
    "requests": func.count(),
    **{name: _sum(adjusted_cost() if name == "cost_nano" else _events[name]) for name in ADJUSTED_MEASURES},
    "unpriced_requests": _sum(case((_events.priced, 0), else_=1)),
    "estimated_requests": _sum(case((_events.estimated, 1), else_=0)),
    "latency_ms_sum": _sum(func.coalesce(_events.latency_ms, 0)),
    FAILED_REQUESTS: _sum(case((_events.status == "error", 1), else_=0)),
}
"""Each rollup measure as a sum over raw events (the rollups add an event's latency as 0 when it has none, and its
reprices to its cost)."""
assert _EVENT_MEASURES.keys() == {*ROLLUP_MEASURES, FAILED_REQUESTS}


def _event_sums(connection: Connection, wanted: Aggregate) -> list[AggregateRow]:
    """`wanted` summed over the raw events, as the rollups sum them (voided events netted out: left out)."""
    where = _event_where(connection, wanted)
    sums = [_EVENT_MEASURES[name].label(name) for name in wanted.measures]
    if _CLASS not in (*wanted.group_by, *wanted.where):
        groups = [_event_dimension(name) for name in wanted.group_by]
        if wanted.slots is not None:
            groups.insert(0, _slot(wanted.slots, _events.ts_us // literal(_MICRO, BigInteger)).label("slot"))
        return _rows(
            connection,
            select(*groups, *sums).where(*where).group_by(*groups),
            timed=wanted.slots is not None,
            dimensions=len(wanted.group_by),
        )
    return _classed(connection, wanted, where, sums)


def _event_where(connection: Connection, wanted: Aggregate) -> list[ColumnElement[bool]]:
    """The events in `wanted`'s range, not voided, whose dimensions take the values it allows (the error class
    aside, which an event does not store) and its models."""
    where: list[ColumnElement[bool]] = [_events.ts_us >= wanted.since, _events.ts_us < wanted.until]
    for name, values in wanted.where.items():
        if name != _CLASS:
            where.append(_event_dimension(name).in_(values))
    if "account_id" not in wanted.where:
        # The index leads with the account, so every account's events are read as one index range per account
        # with usage in the range's buckets (the rollups, written in the same transactions, list them).
        bucket = usage_rollups.c.bucket
        first = wanted.since // _MICRO // ROLLUP_BUCKET_SECONDS * ROLLUP_BUCKET_SECONDS
        busy = (
            select(usage_rollups.c.account_id).distinct().where(bucket >= first, bucket <= (wanted.until - 1) // _MICRO)
        )
        where.append(_events.account_id.in_(list(connection.execute(busy).scalars())))
    if wanted.models is not None:
        where.append(or_(_events.model.in_(wanted.models), _events.canonical_model.in_(wanted.models)))
    where.append(~voided())
    return where


def _classed(
    connection: Connection, wanted: Aggregate, where: list[ColumnElement[bool]], sums: list[Any]
) -> list[AggregateRow]:
    """`wanted` grouped or filtered by the error class, which an event does not store: its events are grouped by
    what the class is made of (status, HTTP status, error type), each group classed by the one rule
    (`farebox.core.error_classes`, as the writer classes them) and the groups of a class added up."""
    named = [name for name in wanted.group_by if name != _CLASS]
    made_of = [_events.status, _events.http_status, _events.error_type]
    groups = [*(_event_dimension(name) for name in named), *made_of]
    allowed = wanted.where.get(_CLASS)
    found: dict[tuple[str, ...], list[int]] = {}
    for row in connection.execute(select(*groups, *sums).where(*where).group_by(*groups)):
        values = tuple(row)
        kind = error_class(*values[len(named) : len(named) + 3])
        if allowed is not None and kind not in allowed:
            continue
        dimensions = dict(zip(named, values[: len(named)], strict=True)) | {_CLASS: kind}
        total = found.setdefault(tuple(dimensions[name] for name in wanted.group_by), [0] * len(sums))
        for position, value in enumerate(values[len(named) + 3 :]):
            total[position] += int(value or 0)
    if not found and not wanted.group_by:
        found[()] = [0] * len(sums)  # as a sum without groups answers: one row of zeros
    return [AggregateRow(None, group, tuple(measures)) for group, measures in found.items()]
