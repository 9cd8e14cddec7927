"""Reading the spend counters: what a key, member or account spent in a period (exact, nano-USD)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select, tuple_

from farebox.core.periods import Period, period_start
from farebox.ledger.recording import CounterKey
from farebox.ledger.schema import spend_counters

__all__ = ["counter_of", "read_counters"]

_CHUNK = 500


def counter_of(scope: str, owner_id: str, period: Period, *, at: datetime, tz: ZoneInfo) -> CounterKey:
    """The counter of an owner's period that contains `at` (periods run in the account's timezone `tz`)."""
    return scope, owner_id, period.value, int(period_start(period, at=at, tz=tz).timestamp())


def read_counters(connection: Connection, counters: Sequence[CounterKey]) -> dict[CounterKey, int]:
    """The counters that exist among `counters` (a missing one means nothing was spent)."""
    columns = (
        spend_counters.c.scope,
        spend_counters.c.scope_id,
        spend_counters.c.period,
        spend_counters.c.period_start,
    )
    found: dict[CounterKey, int] = {}
    wanted = list(dict.fromkeys(counters))
    for start in range(0, len(wanted), _CHUNK):
        query = select(*columns, spend_counters.c.spent_nano).where(
            tuple_(*columns).in_(wanted[start : start + _CHUNK])
        )
        for row in connection.execute(query):
            found[(row.scope, row.scope_id, row.period, int(row.period_start))] = int(row.spent_nano)
    return found
