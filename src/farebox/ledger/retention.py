"""Raw events kept for a while, totals kept for good: the `raw_events_retention_days` setting.

The raw events (and their voids and reprices) before the start of the UTC month that holds "now minus the
retention" go; the rollups, daily cubes, key rollups, latency sketches and spend counters that sum them stay, so
every total, chart and invoice of those months reads as before. What needs the single request (the request
drill-down, raw exports, voids and recalculations) reaches back as far as the retention.

An event older than the retention is refused at ingestion (`IngestLimits.max_age` is the shorter of the two
settings), so no event can arrive for a month already gone, and an event id forgotten with its month cannot come
back and be counted twice.

On PostgreSQL whole month partitions are dropped and the month partitions ahead are made
(`farebox.ledger.partitions`); on SQLite the rows are deleted a batch per writer transaction, so commits go on
between batches. One process of a ledger does it, under a lease, once an hour; `farebox maintain` does it at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import Connection, delete, select

from farebox.core.clock import utcnow
from farebox.core.events import epoch_us
from farebox.ledger.base import Ledger
from farebox.ledger.engine import Engines
from farebox.ledger.leases import Leases
from farebox.ledger.partitions import add_months, drop_months, month_start
from farebox.ledger.schema import usage_adjustments, usage_events

__all__ = ["LEASE", "EventRetention", "Maintained", "kept_since"]

LEASE = "event-retention"
_EVERY_S = 3_600.0
_BATCH = 10_000

log = logging.getLogger(__name__)


def kept_since(now: datetime, *, days: int | None) -> datetime | None:
    """The instant raw events before which are gone at `now`, with a retention of `days` (`None`: none): the start
    of the UTC month holding `now` minus the retention."""
    return None if days is None else month_start(now - timedelta(days=days))


@dataclass(frozen=True, slots=True)
class Maintained:
    """What one round of maintenance did."""

    before: datetime | None
    """Raw events before this instant are gone (`None`: kept for good)."""
    events_deleted: int = 0
    adjustments_deleted: int = 0
    partitions_made: list[str] = field(default_factory=list)
    partitions_dropped: list[str] = field(default_factory=list)


class EventRetention:
    """Keeps the raw events of the last `days` days (`None`: every event) and, on PostgreSQL, the partitions of
    the months ahead.

    Args:
        ledger: the ledger.
        days: the retention (`raw_events_retention_days`).
        leases: given, only the process holding the `event-retention` lease does the hourly round.
        clock: the time (tests inject one).
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        days: int | None,
        leases: Leases | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._ledger = ledger
        self._days = days
        self._leases = leases
        self._clock = clock

    def before(self, now: datetime) -> datetime | None:
        """The instant raw events before which go at `now` (`kept_since`)."""
        return kept_since(now, days=self._days)

    async def maintain(self) -> Maintained:
        """One round: make the partitions ahead, then remove what lies before the retention.

        Raises:
            DatabaseUnusable: the database refused (a lock not had within 5 s on PostgreSQL: try again later).
        """
        now = self._clock()
        before = self.before(now)
        if self._ledger.dialect == "postgresql":
            return await asyncio.to_thread(_postgresql, self._ledger.engines, now, before)
        if before is None:
            return Maintained(None)
        before_us = epoch_us(before)
        adjustments = await self._ledger._write(lambda connection: _delete_adjustments(connection, before_us))
        events = 0
        for account_id in await self._ledger._read(_accounts):
            delete_batch = partial(_delete_events, account_id=account_id, before_us=before_us)
            while (batch := await self._ledger._write(delete_batch)) > 0:
                events += batch
        return Maintained(before, events_deleted=events, adjustments_deleted=adjustments)

    async def run(self) -> None:
        """A round now and every hour until cancelled; a failed round is logged and tried at the next."""
        while True:
            try:
                if self._leases is None or await self._leases.hold(LEASE, seconds=2 * _EVERY_S):
                    done = await self.maintain()
                    if done.events_deleted or done.partitions_made:
                        log.info(
                            "raw events before %s removed: %d events, %d adjustments; partitions made %s, dropped %s",
                            done.before,
                            done.events_deleted,
                            done.adjustments_deleted,
                            done.partitions_made,
                            done.partitions_dropped,
                        )
            except Exception:
                log.exception("maintaining the raw events failed; trying again in an hour")
            await asyncio.sleep(_EVERY_S)


def _postgresql(engines: Engines, now: datetime, before: datetime | None) -> Maintained:
    with engines.reader.begin() as connection:
        made = add_months(connection, now=now)
    if before is None:
        return Maintained(None, partitions_made=made)
    before_us = epoch_us(before)
    with engines.reader.begin() as connection:
        adjustments = _delete_adjustments(connection, before_us)
        dropped, events = drop_months(connection, before_us=before_us)
    return Maintained(
        before, events_deleted=events, adjustments_deleted=adjustments, partitions_made=made, partitions_dropped=dropped
    )


def _delete_adjustments(connection: Connection, before_us: int) -> int:
    return connection.execute(delete(usage_adjustments).where(usage_adjustments.c.event_ts_us < before_us)).rowcount


def _accounts(connection: Connection) -> list[str]:
    return list(connection.scalars(select(usage_events.c.account_id).distinct()))


def _delete_events(connection: Connection, *, account_id: str, before_us: int) -> int:
    """Up to a batch of an account's events before `before_us` (found on its (account, time) index)."""
    events = usage_events.c
    old = (
        select(events.id)
        .where(events.account_id == account_id, events.ts_us < before_us)
        .limit(_BATCH)
        .scalar_subquery()
    )
    return connection.execute(delete(usage_events).where(usage_events.c.id.in_(old))).rowcount
