"""The events table by month on PostgreSQL: its partitions, made ahead of time and dropped past retention.

On PostgreSQL `usage_events` is partitioned by range of `ts_us`, one partition a UTC month
(`usage_events_2026_12`), with a default partition (`usage_events_default`) for an event no month partition
holds yet, so a row never fails for want of a partition. Its indexes are declared on the parent, so every
partition has them. A partitioned table's unique index must hold the partition key, so the uniqueness of an
event id lives in `usage_event_ids` (id → ts_us): the writer inserts there first, and a row of `usage_events`
follows only when that insert was new, in one statement (`Recorder`).

`add_months` makes the partitions of the months ahead. It moves any row of those months out of the default
partition first and attaches the new table, which takes a `SHARE UPDATE EXCLUSIVE` lock on the parent: reads
and commits go on meanwhile. `drop_months` drops whole partitions that end at or before a cutoff; dropping takes
an `ACCESS EXCLUSIVE` lock on the parent for a moment. Both run under a transaction-scoped advisory lock, so two
processes (or a process and `farebox maintain`) never do it at once, and under a lock timeout, so a long read
makes them fail and retry later rather than queue every commit behind them.

SQLite has one table and no partitions; its retention deletes rows (`farebox.ledger.retention`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from farebox.core.events import epoch_us

__all__ = [
    "DEFAULT",
    "IDS",
    "PARENT",
    "Partition",
    "add_months",
    "drop_months",
    "month_start",
    "next_month",
    "partitions",
]

PARENT = "usage_events"
DEFAULT = "usage_events_default"
IDS = "usage_event_ids"
MAINTENANCE_LOCK = 0x6661726562_6F78  # "farebox": the advisory lock every partition change takes
LOCK_TIMEOUT = "5s"

_BOUND = re.compile(r"FROM \('?(MINVALUE|-?\d+)'?\) TO \('?(MAXVALUE|-?\d+)'?\)")


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition of `usage_events` and the `ts_us` range it holds (`None`: unbounded; the default: both)."""

    name: str
    lower_us: int | None
    upper_us: int | None
    default: bool = False


def month_start(at: datetime) -> datetime:
    """The first instant of `at`'s UTC month."""
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    """The first instant of the UTC month after the one `start` begins."""
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def _months(first: datetime, count: int) -> Iterator[datetime]:
    start = month_start(first)
    for _ in range(count):
        yield start
        start = next_month(start)


def partitions(connection: Connection) -> list[Partition]:
    """The partitions of `usage_events`, from the catalog, in no set order."""
    rows = connection.exec_driver_sql(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'usage_events'::regclass"
    ).all()
    found = []
    for name, bound in rows:
        if bound == "DEFAULT":
            found.append(Partition(name, None, None, default=True))
            continue
        match = _BOUND.search(bound)
        assert match is not None, bound
        lower, upper = match.groups()
        found.append(
            Partition(name, None if lower == "MINVALUE" else int(lower), None if upper == "MAXVALUE" else int(upper))
        )
    return found


def _take_maintenance_lock(connection: Connection) -> None:
    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MAINTENANCE_LOCK})")


def add_months(connection: Connection, *, now: datetime, months: int = 3) -> list[str]:
    """Make the partitions of the `months` UTC months from `now`'s on that no partition covers yet, in the
    transaction under way; return their names.

    A month partly held by another partition (the one migration 0027 made of the table before it) is left to it.
    """
    _take_maintenance_lock(connection)
    existing = partitions(connection)
    has_default = any(partition.default for partition in existing)
    made = []
    for start in _months(now, months):
        lower, upper = epoch_us(start), epoch_us(next_month(start))
        if any(_overlaps(partition, lower, upper) for partition in existing):
            continue
        name = f"{PARENT}_{start.year:04d}_{start.month:02d}"
        connection.exec_driver_sql(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        if has_default:
            # Rows of the month that arrived before its partition existed move with it, under a lock that keeps
            # any more from arriving in the default partition until the new one is attached.
            connection.exec_driver_sql(f"LOCK TABLE {DEFAULT} IN ACCESS EXCLUSIVE MODE")
            where = f"ts_us >= {lower} AND ts_us < {upper}"
            connection.exec_driver_sql(f"INSERT INTO {name} SELECT * FROM {DEFAULT} WHERE {where}")
            connection.exec_driver_sql(f"DELETE FROM {DEFAULT} WHERE {where}")
        connection.exec_driver_sql(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ({lower}) TO ({upper})"
        )
        made.append(name)
    return made


def _overlaps(partition: Partition, lower: int, upper: int) -> bool:
    if partition.default:
        return False
    below = partition.lower_us is None or partition.lower_us < upper
    above = partition.upper_us is None or partition.upper_us > lower
    return below and above


def _reaches_across(partition: Partition, at_us: int) -> bool:
    """Whether the partition holds times both before and from `at_us`."""
    return (partition.lower_us is None or partition.lower_us < at_us) and (
        partition.upper_us is None or partition.upper_us > at_us
    )


def drop_months(connection: Connection, *, before_us: int) -> tuple[list[str], int]:
    """Drop every partition whose whole range lies before `before_us`, and delete the rows before it of the
    default partition and of one reaching across it, in the transaction under way; return the dropped partitions'
    names and how many events went. The ids of every event before it go too."""
    _take_maintenance_lock(connection)
    dropped, events = [], 0
    for partition in sorted(partitions(connection), key=lambda partition: partition.name):
        if partition.default or _reaches_across(partition, before_us):
            # The default partition, or one reaching across the cutoff (the first, made of the table before 0027)
            events += connection.exec_driver_sql(f"DELETE FROM {partition.name} WHERE ts_us < {before_us}").rowcount
        elif partition.upper_us is not None and partition.upper_us <= before_us:
            events += connection.exec_driver_sql(f"SELECT count(*) FROM {partition.name}").scalar_one()
            connection.exec_driver_sql(f"DROP TABLE {partition.name}")
            dropped.append(partition.name)
    connection.exec_driver_sql(f"DELETE FROM {IDS} WHERE ts_us < {before_us}")
    return dropped, events
