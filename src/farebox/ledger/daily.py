"""The daily cubes (`usage_daily`, `usage_daily_people`): quarter-hour rollup rows summed per local day.

The writer derives them from the quarter-hour upserts of each commit (`cube_rows`), in the same
transaction; `rebuild_daily` sums an account's again from its quarter-hour rollups when its time zone
changes, since a day's bounds move with the zone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, delete, func, insert, select

from farebox.ledger.schema import (
    DAILY_CUBES,
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
    usage_rollups,
)

__all__ = ["CUBE_DIMENSIONS", "cube_rows", "local_day", "rebuild_daily"]

_EPOCH = date(1970, 1, 1).toordinal()
CUBE_DIMENSIONS = {cube.name: tuple(c.name for c in cube.columns)[2 : -len(ROLLUP_MEASURES)] for cube in DAILY_CUBES}
"""Each cube's dimensions after (account_id, day), in column order."""
_PICK = {name: [1 + ROLLUP_DIMENSIONS.index(d) for d in dims] for name, dims in CUBE_DIMENSIONS.items()}
_MEASURES = slice(1 + len(ROLLUP_DIMENSIONS), None)


def local_day(bucket: int, tz: ZoneInfo) -> int:
    """The local day (days since 1970-01-01 in `tz`) a bucket starting at epoch second `bucket` lies in."""
    return datetime.fromtimestamp(bucket, UTC).astimezone(tz).date().toordinal() - _EPOCH


def cube_rows(
    rollups: Sequence[tuple[Any, ...]], day_of: Callable[[str, int], int]
) -> dict[str, list[tuple[Any, ...]]]:
    """The daily cubes' upserts of quarter-hour upserts `(bucket, *ROLLUP_DIMENSIONS, *ROLLUP_MEASURES)`.

    `day_of(account_id, bucket)` is the bucket's local day in its account's zone.
    """
    cubes: dict[str, list[tuple[Any, ...]]] = {}
    for name, pick in _PICK.items():
        sums: dict[tuple[Any, ...], list[int]] = {}
        for row in rollups:
            account_id = row[1]
            key = (account_id, day_of(account_id, row[0]), *(row[i] for i in pick))
            measures = row[_MEASURES]
            total = sums.get(key)
            if total is None:
                sums[key] = list(measures)
            else:
                for position, value in enumerate(measures):
                    total[position] += value
        cubes[name] = [(*key, *total) for key, total in sums.items()]
    return cubes


def rebuild_daily(connection: Connection, account_id: str, *, tz: ZoneInfo) -> None:
    """Sum the account's daily cubes again from its quarter-hour rollups, days bounded in `tz`."""
    rollups = usage_rollups.c
    for cube in DAILY_CUBES:
        connection.execute(delete(cube).where(cube.c.account_id == account_id))
    buckets = select(rollups.bucket).where(rollups.account_id == account_id).distinct()
    days: dict[int, int] = {int(bucket): local_day(int(bucket), tz) for bucket in connection.scalars(buckets)}
    if not days:
        return
    for cube in DAILY_CUBES:
        _refill(connection, cube, account_id, days)


def _refill(connection: Connection, cube: Table, account_id: str, days: dict[int, int]) -> None:
    rollups = usage_rollups.c
    dimensions = [rollups[name] for name in CUBE_DIMENSIONS[cube.name]]
    query = (
        select(rollups.bucket, *dimensions, *(func.sum(rollups[m]) for m in ROLLUP_MEASURES))
        .where(rollups.account_id == account_id)
        .group_by(rollups.bucket, *dimensions)
    )
    sums: dict[tuple[Any, ...], list[int]] = {}
    width = len(dimensions)
    for row in connection.execute(query):
        key = (days[int(row[0])], *row[1 : 1 + width])
        measures = [int(value) for value in row[1 + width :]]
        total = sums.get(key)
        if total is None:
            sums[key] = measures
        else:
            for position, value in enumerate(measures):
                total[position] += value
    names = ("account_id", "day", *CUBE_DIMENSIONS[cube.name], *ROLLUP_MEASURES)
    rows = [dict(zip(names, (account_id, *key, *total), strict=True)) for key, total in sums.items()]
    for start in range(0, len(rows), 500):
        connection.execute(insert(cube), rows[start : start + 500])
