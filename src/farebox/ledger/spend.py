"""The spend counters: what a key, member or account spent in a period (exact, nano-USD); and recounting them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, func, insert, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert

from farebox.core.events import epoch_us
from farebox.core.periods import Period, period_end, period_start
from farebox.core.spend import CounterId, Scope
from farebox.ledger.schema import members, spend_counters, usage_adjustments, usage_events, virtual_keys

__all__ = ["lock_counter", "read_counters", "recount_current_periods"]

_CHUNK = 500


def read_counters(connection: Connection, counters: Sequence[CounterId]) -> dict[CounterId, int]:
    """The counters that exist among `counters` (a missing one means nothing was spent)."""
    columns = (
        spend_counters.c.scope,
        spend_counters.c.scope_id,
        spend_counters.c.period,
        spend_counters.c.period_start,
    )
    found: dict[CounterId, int] = {}
    wanted = list(dict.fromkeys(counters))
    for start in range(0, len(wanted), _CHUNK):
        query = select(*columns, spend_counters.c.spent_nano).where(
            tuple_(*columns).in_(wanted[start : start + _CHUNK])
        )
        for row in connection.execute(query):
            found[CounterId(Scope(row.scope), row.scope_id, Period(row.period), int(row.period_start))] = int(
                row.spent_nano
            )
    return found


def lock_counter(connection: Connection, counter: CounterId) -> int:
    """A counter's value with its row locked until the caller's transaction ends (PostgreSQL). The row is made
    first if missing (spent 0): a transaction making it too is waited for, and then counted."""
    scope, owner_id, period, start = counter
    key = {"scope": scope.value, "scope_id": owner_id, "period": period.value, "period_start": start}
    connection.execute(pg_insert(spend_counters).values(**key, spent_nano=0).on_conflict_do_nothing())
    c = spend_counters.c
    query = select(c.spent_nano).where(
        c.scope == key["scope"], c.scope_id == owner_id, c.period == key["period"], c.period_start == start
    )
    return int(connection.execute(query.with_for_update()).scalar_one())


def recount_current_periods(connection: Connection, account_id: str, *, tz: ZoneInfo, at: datetime) -> None:
    """Recount the account's daily, weekly and monthly counters of the periods containing `at`, as `tz` bounds them.

    Counters are bucketed by the account's timezone when events are recorded; after the timezone changes,
    the current periods start elsewhere, so their counters are summed again from the events, voided ones netted
    out (in the caller's transaction, with the change). Past periods keep the bounds they had; `total` does not
    depend on `tz`.
    """
    owners = [("account", account_id)]
    owners += [
        ("member", m) for m in connection.scalars(select(members.c.id).where(members.c.account_id == account_id))
    ]
    owners += [
        ("key", k) for k in connection.scalars(select(virtual_keys.c.id).where(virtual_keys.c.account_id == account_id))
    ]
    for period in (Period.DAILY, Period.WEEKLY, Period.MONTHLY):
        start = period_start(period, at=at, tz=tz)
        end = period_end(period, start=start, tz=tz)
        assert end is not None
        sums: dict[tuple[str, str], int] = {}
        # The events in the window, and the voids of events in it (their costs negated).
        for table, ts in ((usage_events, usage_events.c.ts_us), (usage_adjustments, usage_adjustments.c.event_ts_us)):
            c = table.c
            query = select(c.key_id, c.member_id, func.sum(c.cost_nano)).where(
                c.account_id == account_id, ts >= epoch_us(start), ts < epoch_us(end)
            )
            for key_id, member_id, cost in connection.execute(query.group_by(c.key_id, c.member_id)):
                for owner in (("account", account_id), ("key", key_id), ("member", member_id)):
                    if owner[1] is not None:
                        sums[owner] = sums.get(owner, 0) + int(cost)
        ids = [owner_id for _, owner_id in owners]
        starts = int(start.timestamp())
        connection.execute(
            delete(spend_counters).where(
                spend_counters.c.scope_id.in_(ids),
                spend_counters.c.period == period.value,
                spend_counters.c.period_start == starts,
            )
        )
        rows = [
            {"scope": scope, "scope_id": owner_id, "period": period.value, "period_start": starts, "spent_nano": spent}
            for (scope, owner_id), spent in sums.items()
        ]
        if rows:
            connection.execute(insert(spend_counters), rows)
