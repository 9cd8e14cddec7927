"""The usage feed: `usage.recorded` (batched) and `cost.calculated` webhooks, read from the ledger itself.

Each endpoint that asked for them keeps a cursor: the last usage event (recorded time, id) it was handed.
The feed reads the events after the cursor; once `batch_size` of them wait, or the oldest has waited
`flush_interval`, it writes their messages to the outbox and moves the cursor in one transaction, and only
if the cursor is still where it read it (so two processes never hand the same events twice). Nothing lives
only in memory: after a crash the feed resumes from the cursor. An endpoint created now hears of events
recorded from now on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, or_, select, update

from farebox.core.clock import utcnow
from farebox.core.events import epoch_us, from_epoch_us
from farebox.core.money import format_usd
from farebox.ledger.base import Ledger
from farebox.ledger.outbox import Message, enqueue, message_body
from farebox.ledger.schema import usage_events, webhook_endpoints

__all__ = ["FEED_EVENTS", "UsageFeed", "usage_record"]

log = logging.getLogger(__name__)

FEED_EVENTS = ("usage.recorded", "cost.calculated")
_MAX_READ = 5_000


def usage_record(row: RowMapping) -> dict[str, Any]:
    """A usage event as a webhook sees it (amounts in decimal USD strings)."""
    return {
        "id": row["id"],
        "timestamp": from_epoch_us(row["ts_us"]).isoformat(),
        "account_id": row["account_id"],
        "key_id": row["key_id"],
        "member_id": row["member_id"],
        "agent_id": row["agent_id"],
        "axis": row["axis"],
        "provider": row["provider"],
        "model": row["model"],
        "canonical_model": row["canonical_model"],
        "operation": row["operation"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "cached_input_tokens": row["cached_input_tokens"],
        "reasoning_tokens": row["reasoning_tokens"],
        "cost_usd": format_usd(row["cost_nano"]),
        "priced": row["priced"],
        "estimated": row["estimated"],
        "status": row["status"],
    }


@dataclass(frozen=True, slots=True)
class _Endpoint:
    id: str
    account_id: str
    events: tuple[str, ...]
    batch_size: int
    flush_interval_us: int
    cursor: tuple[int, str]


class UsageFeed:
    """Hands new usage events to the endpoints that asked for them, until cancelled."""

    def __init__(self, ledger: Ledger, *, poll_seconds: float = 0.25, clock: Callable[[], datetime] = utcnow):
        self._ledger = ledger
        self._poll = poll_seconds
        self._clock = clock
        self.on_enqueued: list[Callable[[], None]] = []
        """Called after messages were written (the sender looks at once)."""

    async def run(self) -> None:
        while True:
            try:
                await self.flush()
            except Exception:
                log.exception("usage feed round failed; retrying")
            await asyncio.sleep(self._poll)

    async def flush(self, *, force: bool = False) -> int:
        """Write the messages due for every endpoint (all waiting events with `force`); how many were written."""
        endpoints = await self._ledger.read(_feed_endpoints)
        written = 0
        for endpoint in endpoints:
            rows = await self._ledger.read(lambda c, e=endpoint: _events_after(c, e))  # type: ignore[misc]
            due = self._due(endpoint, rows, force=force)
            if due:
                written += await self._ledger.write(lambda c, e=endpoint, d=due: self._hand_over(c, e, d))  # type: ignore[misc]
        if written:
            for listener in self.on_enqueued:
                listener()
        return written

    def _due(self, endpoint: _Endpoint, rows: Sequence[RowMapping], *, force: bool) -> list[RowMapping]:
        """The events to hand over now: whole batches, and a partial one once its oldest event waited long enough."""
        size = endpoint.batch_size
        whole = len(rows) // size * size
        rest = rows[whole:]
        oldest_us = rest[0]["recorded_at_us"] if rest else None
        if rest and (
            force or oldest_us is not None and epoch_us(self._clock()) - oldest_us >= endpoint.flush_interval_us
        ):
            return list(rows)
        return list(rows[:whole])

    def _hand_over(self, connection: Connection, endpoint: _Endpoint, rows: list[RowMapping]) -> int:
        last = rows[-1]
        moved = connection.execute(
            update(webhook_endpoints)
            .where(
                webhook_endpoints.c.id == endpoint.id,
                webhook_endpoints.c.feed_cursor_us == endpoint.cursor[0],
                webhook_endpoints.c.feed_cursor_id == endpoint.cursor[1],
            )
            .values(feed_cursor_us=last["recorded_at_us"], feed_cursor_id=last["id"])
            .returning(webhook_endpoints.c.id)
        ).first()
        if moved is None:
            return 0  # another process handed these over first
        at = self._clock()
        records = [usage_record(row) for row in rows]
        messages = []
        if "usage.recorded" in endpoint.events:
            for start in range(0, len(records), endpoint.batch_size):
                batch = records[start : start + endpoint.batch_size]
                body = message_body("usage.recorded", {"count": len(batch), "events": batch}, at=at)
                messages.append(
                    Message(endpoint.account_id, "webhook", "usage.recorded", body, endpoint_id=endpoint.id)
                )
        if "cost.calculated" in endpoint.events:
            for record in records:
                body = message_body("cost.calculated", record, at=at)
                messages.append(
                    Message(endpoint.account_id, "webhook", "cost.calculated", body, endpoint_id=endpoint.id)
                )
        enqueue(connection, messages, now_us=epoch_us(at))
        return len(messages)


def _feed_endpoints(connection: Connection) -> list[_Endpoint]:
    query = select(webhook_endpoints).where(webhook_endpoints.c.enabled.is_(True))
    return [
        _Endpoint(
            row["id"],
            row["account_id"],
            tuple(row["events"]),
            row["batch_size"],
            row["flush_interval_ms"] * 1000,
            (row["feed_cursor_us"], row["feed_cursor_id"]),
        )
        for row in connection.execute(query).mappings()
        if any(event in row["events"] for event in FEED_EVENTS)
    ]


def _events_after(connection: Connection, endpoint: _Endpoint) -> list[RowMapping]:
    at_us, last_id = endpoint.cursor
    query = (
        select(usage_events)
        .where(
            usage_events.c.account_id == endpoint.account_id,
            or_(
                usage_events.c.recorded_at_us > at_us,
                and_(usage_events.c.recorded_at_us == at_us, usage_events.c.id > last_id),
            ),
        )
        .order_by(usage_events.c.recorded_at_us, usage_events.c.id)
        .limit(_MAX_READ)
    )
    return list(connection.execute(query).mappings())
