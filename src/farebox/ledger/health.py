"""The ledger's own health: the outbox's backlog, the deliveries failing, and whether the rollups still equal the
events they sum.

The consistency check reads the raw events (voided ones left out), the quarter-hour rollups and the key rollups
of a window of whole quarter hours in ONE statement, so every part sees the same committed data (a commit between
two statements would make a healthy ledger look broken).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, select, true

from farebox.ledger.base import Ledger
from farebox.ledger.outbox import FAILED, PENDING
from farebox.ledger.schema import (
    ROLLUP_BUCKET_SECONDS,
    accounts,
    adjusted_cost,
    outbox,
    outbox_attempts,
    usage_events,
    usage_key_rollups,
    usage_rollups,
    voided,
)

__all__ = ["Backlog", "FailingTarget", "LedgerHealth", "Sums", "Tally"]

_SUMMED = ("cost_nano", "input_tokens", "output_tokens")


@dataclass(frozen=True, slots=True)
class Sums:
    requests: int
    cost_nano: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Tally:
    """A window's usage as each table has it: the raw events, the quarter-hour rollups, the key rollups."""

    since_s: int
    until_s: int
    events: Sums
    rollups: Sums
    key_rollups: Sums

    @property
    def consistent(self) -> bool:
        return self.events == self.rollups == self.key_rollups


@dataclass(frozen=True, slots=True)
class Backlog:
    pending: int
    """Deliveries not yet made (first tries and retries)."""
    retrying: int
    """Of those, the ones that failed at least once."""
    oldest_pending_us: int | None


@dataclass(frozen=True, slots=True)
class FailingTarget:
    """A destination whose deliveries fail: a webhook endpoint, or an alert channel (Slack, e-mail, PagerDuty)."""

    account_id: str
    channel: str
    endpoint_id: str | None
    failed: int
    """Deliveries given up on (every attempt failed) since the window's start."""
    retrying: int
    """Deliveries pending after a failed attempt."""
    last_attempt_us: int
    last_status_code: int | None
    last_error: str | None


class LedgerHealth:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def tally(self, *, since_s: int, until_s: int) -> Tally:
        """The usage of the quarter hours from `since_s` to `until_s` (epoch seconds on the rollups' grid)."""
        if since_s % ROLLUP_BUCKET_SECONDS or until_s % ROLLUP_BUCKET_SECONDS:
            raise ValueError("a tally spans whole quarter hours")
        return await self._ledger._read(lambda connection: _tally(connection, since_s, until_s))

    async def backlog(self) -> Backlog:
        return await self._ledger._read(_backlog)

    async def failing(self, *, since_us: int) -> list[FailingTarget]:
        """The destinations with deliveries given up on since `since_us`, or retrying now; most failures first."""
        return await self._ledger._read(lambda connection: _failing(connection, since_us))


def _sums(requests: ColumnElement[Any], *measures: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    return [func.coalesce(requests, 0), *(func.coalesce(measure, 0) for measure in measures)]


def _adjusted(name: str) -> ColumnElement[Any]:
    """An event's measure as the rollups hold it: its cost with its reprices."""
    return adjusted_cost() if name == "cost_nano" else usage_events.c[name]


def _tally(connection: Connection, since_s: int, until_s: int) -> Tally:
    events = usage_events.c
    # By account: the events' time index leads with the account.
    from_events = (
        select(*_sums(func.count(), *(func.sum(_adjusted(name)) for name in _SUMMED)))
        .where(
            events.account_id.in_(select(accounts.c.id)),
            events.ts_us >= since_s * 1_000_000,
            events.ts_us < until_s * 1_000_000,
            ~voided(),
        )
        .subquery()
    )
    tables = []
    for table in (usage_rollups, usage_key_rollups):
        columns = table.c
        tables.append(
            select(*_sums(func.sum(columns.requests), *(func.sum(columns[name]) for name in _SUMMED)))
            .where(columns.bucket >= since_s, columns.bucket < until_s)
            .subquery()
        )
    # Three one-row sums side by side: a join on nothing, said so.
    joined = from_events.join(tables[0], true()).join(tables[1], true())
    row = connection.execute(select(from_events, *tables).select_from(joined)).one()
    values = [int(value) for value in row]
    return Tally(since_s, until_s, Sums(*values[0:4]), Sums(*values[4:8]), Sums(*values[8:12]))


def _backlog(connection: Connection) -> Backlog:
    rows = outbox.c
    pending, retrying, oldest = connection.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((rows.attempts > 0, 1), else_=0)), 0),
            func.min(rows.created_at_us),
        ).where(rows.status == PENDING)
    ).one()
    return Backlog(int(pending), int(retrying), None if oldest is None else int(oldest))


def _failing(connection: Connection, since_us: int) -> list[FailingTarget]:
    rows = outbox.c
    failed_now = and_(rows.status == FAILED, rows.created_at_us >= since_us)
    retrying_now = and_(rows.status == PENDING, rows.attempts > 0)
    groups = connection.execute(
        select(
            rows.account_id,
            rows.channel,
            rows.endpoint_id,
            func.sum(case((failed_now, 1), else_=0)),
            func.sum(case((retrying_now, 1), else_=0)),
        )
        .where(failed_now | retrying_now)
        .group_by(rows.account_id, rows.channel, rows.endpoint_id)
    ).all()
    found = []
    for account_id, channel, endpoint_id, failed, retrying in groups:
        same = (rows.account_id == account_id, rows.channel == channel, rows.endpoint_id.is_(None))
        if endpoint_id is not None:
            same = (rows.account_id == account_id, rows.channel == channel, rows.endpoint_id == endpoint_id)
        attempts = outbox_attempts.c
        last = connection.execute(
            select(attempts.at_us, attempts.status_code, attempts.error)
            .join(outbox, attempts.outbox_id == rows.id)
            .where(*same, attempts.error.is_not(None) | (attempts.status_code >= 300))
            .order_by(attempts.at_us.desc())
            .limit(1)
        ).first()
        found.append(
            FailingTarget(
                account_id,
                channel,
                endpoint_id,
                int(failed),
                int(retrying),
                0 if last is None else int(last[0]),
                None if last is None else last[1],
                None if last is None else last[2],
            )
        )
    return sorted(found, key=lambda target: (-(target.failed + target.retrying), target.account_id))
