"""The daily cube (`usage_daily`, with its failures by error class in `usage_daily_errors`) and the key rollups
(`usage_key_rollups`): quarter-hour rollup rows summed per local day, and per quarter hour by key and status only.

The writer derives their rows from the quarter-hour upserts of each commit (`cube_rows`, `key_rows`), in the
same transaction; `rebuild_daily` sums an account's daily rows again from its quarter-hour rollups when its time
zone changes, since a day's bounds move with the zone (a quarter hour's do not).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, func, insert, select

from farebox.ledger.schema import (
    DAILY_DIMENSIONS,
    DAILY_ERROR_DIMENSIONS,
    KEY_ROLLUP_DIMENSIONS,
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
    usage_daily,
    usage_daily_errors,
    usage_rollups,
)

__all__ = ["cube_rows", "key_rows", "local_day", "rebuild_daily"]

_EPOCH = date(1970, 1, 1).toordinal()
_DIMENSIONS = slice(2, 2 + len(DAILY_ERROR_DIMENSIONS))
"""A rollup upsert's dimensions after its bucket and account, the error class last."""
_MEASURES = slice(_DIMENSIONS.stop, None)
_CLASS = _DIMENSIONS.stop - 1
_KEPT = slice(2, _CLASS)
"""The daily cube's dimensions: all but the error class."""
assert DAILY_ERROR_DIMENSIONS == (*DAILY_DIMENSIONS, "error_class")


def local_day(bucket: int, tz: ZoneInfo) -> int:
    """The local day (days since 1970-01-01 in `tz`) a bucket starting at epoch second `bucket` lies in."""
    return datetime.fromtimestamp(bucket, UTC).astimezone(tz).date().toordinal() - _EPOCH


def _summed(rows: Iterable[tuple[tuple[Any, ...], Sequence[int]]]) -> list[tuple[Any, ...]]:
    """`(key, measures)` pairs summed per key, as `(*key, *measures)` rows."""
    sums: dict[tuple[Any, ...], list[int]] = {}
    for key, measures in rows:
        total = sums.get(key)
        if total is None:
            sums[key] = [int(value) for value in measures]
        else:
            for position, value in enumerate(measures):
                total[position] += int(value)
    return [(*key, *total) for key, total in sums.items()]


def cube_rows(
    rollups: Sequence[tuple[Any, ...]], day_of: Callable[[str, int], int]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The daily cube's upserts, and the daily errors', of quarter-hour upserts `(bucket, *ROLLUP_DIMENSIONS,
    *ROLLUP_MEASURES)`.

    `day_of(account_id, bucket)` is the bucket's local day in its account's zone.
    """
    if len(rollups) == 1:  # a lone commit's: nothing to sum
        (row,) = rollups
        day = day_of(row[1], row[0])
        errors = [(row[1], day, *row[_DIMENSIONS], *row[_MEASURES])] if row[_CLASS] else []
        return [(row[1], day, *row[_KEPT], *row[_MEASURES])], errors
    days = [day_of(row[1], row[0]) for row in rollups]
    cube = _summed(((row[1], day, *row[_KEPT]), row[_MEASURES]) for row, day in zip(rollups, days, strict=True))
    errors = _summed(
        ((row[1], day, *row[_DIMENSIONS]), row[_MEASURES])
        for row, day in zip(rollups, days, strict=True)
        if row[_CLASS]
    )
    return cube, errors


_KEYED = tuple(1 + ROLLUP_DIMENSIONS.index(name) for name in KEY_ROLLUP_DIMENSIONS)
"""Where a rollup upsert holds the key rollups' dimensions (after its bucket)."""


def key_rows(rollups: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The key rollups' upserts `(account_id, bucket, *KEY_ROLLUP_DIMENSIONS, *ROLLUP_MEASURES)` of quarter-hour
    upserts `(bucket, *ROLLUP_DIMENSIONS, *ROLLUP_MEASURES)`."""
    if len(rollups) == 1:
        (row,) = rollups
        return [(row[1], row[0], *(row[at] for at in _KEYED), *row[_MEASURES])]
    return _summed(((row[1], row[0], *(row[at] for at in _KEYED)), row[_MEASURES]) for row in rollups)


def rebuild_daily(connection: Connection, account_id: str, *, tz: ZoneInfo) -> None:
    """Sum the account's daily cube and daily errors again from its quarter-hour rollups, days bounded in `tz`."""
    rollups = usage_rollups.c
    for table in (usage_daily, usage_daily_errors):
        connection.execute(delete(table).where(table.c.account_id == account_id))
    dimensions = [rollups[name] for name in DAILY_ERROR_DIMENSIONS]
    query = (
        select(rollups.bucket, *dimensions, *(func.sum(rollups[m]) for m in ROLLUP_MEASURES))
        .where(rollups.account_id == account_id)
        .group_by(rollups.bucket, *dimensions)
    )
    days: dict[int, int] = {}
    keyed = []
    for row in connection.execute(query):
        bucket = int(row[0])
        day = days.get(bucket)
        if day is None:
            day = days[bucket] = local_day(bucket, tz)
        keyed.append((day, tuple(row[1:])))
    # As the writer would have: each day's rows are quarter-hour upserts of a bucket standing for the day.
    cube, errors = cube_rows([(day, account_id, *row) for day, row in keyed], lambda _account, day: day)
    for table, found, dimensions_of in (
        (usage_daily, cube, DAILY_DIMENSIONS),
        (usage_daily_errors, errors, DAILY_ERROR_DIMENSIONS),
    ):
        names = ("account_id", "day", *dimensions_of, *ROLLUP_MEASURES)
        rows = [dict(zip(names, row, strict=True)) for row in found]
        for start in range(0, len(rows), 500):
            connection.execute(insert(table), rows[start : start + 500])
