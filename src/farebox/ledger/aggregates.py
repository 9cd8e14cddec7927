"""Sums over the rollups, grouped by dimensions and by slots of time: the one query the read side runs.

The analytics engine (`farebox.analytics`) says what it wants as an `Aggregate`: a range of buckets, which
values each dimension may take, what to group by, which measures to sum, and how buckets fall into time
slots (`Slots`, computed from a time zone by the engine). This module turns it into one `GROUP BY` that
SQLite and PostgreSQL run alike; time-zone arithmetic is integer arithmetic on bucket starts, because every
bucket lies wholly inside one local hour, day, week and month (`ROLLUP_BUCKET_SECONDS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, case, func, literal, or_, select

from farebox.ledger.schema import ROLLUP_BUCKET_SECONDS, ROLLUP_DIMENSIONS, ROLLUP_MEASURES, usage_daily, usage_rollups

__all__ = ["ROLLUP_BUCKET_SECONDS", "Aggregate", "AggregateRow", "Slots", "aggregate"]


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


@dataclass(frozen=True, slots=True)
class Aggregate:
    """What to sum, and from where: the quarter-hour rollups (bounds and slots in epoch seconds on the bucket
    grid), or with `daily` the daily cube (in local days since 1970-01-01 of each account's zone).
    `since` is included, `until` not."""

    since: int
    until: int
    measures: tuple[str, ...]
    group_by: tuple[str, ...] = ()
    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Dimension -> the values it may take ('' for none); an empty tuple matches nothing."""
    models: tuple[str, ...] | None = None
    """Match the model as called or its canonical model."""
    slots: Slots | None = None
    daily: bool = False
    """Read the daily cube, not the quarter-hour rollups."""

    def __post_init__(self) -> None:
        unknown = [name for name in (*self.group_by, *self.where) if name not in ROLLUP_DIMENSIONS]
        unknown += [name for name in self.measures if name not in ROLLUP_MEASURES]
        if unknown:
            raise ValueError(f"not a dimension or measure of the rollups: {', '.join(unknown)}")
        if not self.daily and (self.since % ROLLUP_BUCKET_SECONDS or self.until % ROLLUP_BUCKET_SECONDS):
            raise ValueError("an aggregate's bounds must be bucket starts")


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


def aggregate(connection: Connection, wanted: Aggregate) -> list[AggregateRow]:
    """The sums `wanted` asks for, in one query on the caller's connection."""
    columns = usage_daily.c if wanted.daily else usage_rollups.c
    time = columns.day if wanted.daily else columns.bucket
    where: list[ColumnElement[bool]] = [time >= wanted.since, time < wanted.until]
    for name, values in wanted.where.items():
        where.append(columns[name].in_(values))
    if wanted.models is not None:
        where.append(or_(columns.model.in_(wanted.models), columns.canonical_model.in_(wanted.models)))
    groups: list[ColumnElement[Any]] = [columns[name] for name in wanted.group_by]
    if wanted.slots is not None:
        groups.insert(0, _slot(wanted.slots, time).label("slot"))
    sums = [func.sum(columns[name]).label(name) for name in wanted.measures]
    query = select(*groups, *sums).where(*where).group_by(*groups)
    timed = wanted.slots is not None
    rows = []
    for row in connection.execute(query):
        values = tuple(row)
        start = 1 if timed else 0
        dimensions = values[start : start + len(wanted.group_by)]
        measures = tuple(int(value or 0) for value in values[start + len(wanted.group_by) :])
        rows.append(AggregateRow(int(values[0]) if timed else None, dimensions, measures))
    return rows
