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
from datetime import datetime
from typing import Any

from farebox.core.clock import utcnow
from farebox.core.events import epoch_us
from farebox.core.money import format_usd
from farebox.ledger.base import Ledger
from farebox.ledger.outbox import Message, message_body
from farebox.ledger.reader import EventRow
from farebox.ledger.usage_feed import FeedEndpoint, UsageFeedStore

__all__ = ["FEED_EVENTS", "UsageFeed", "usage_record"]

log = logging.getLogger(__name__)

FEED_EVENTS = ("usage.recorded", "cost.calculated")
_MAX_READ = 5_000


def usage_record(row: EventRow) -> dict[str, Any]:
    """A usage event as a webhook sees it (amounts in decimal USD strings)."""
    return {
        "id": row.id,
        "timestamp": row.timestamp.isoformat(),
        "account_id": row.account_id,
        "key_id": row.key_id,
        "member_id": row.member_id,
        "agent_id": row.agent_id,
        "axis": row.axis,
        "provider": row.provider,
        "model": row.model,
        "canonical_model": row.canonical_model,
        "operation": row.operation,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cached_input_tokens": row.cached_input_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "cost_usd": format_usd(row.cost_nano),
        "priced": row.priced,
        "estimated": row.estimated,
        "status": row.status,
    }


class UsageFeed:
    """Hands new usage events to the endpoints that asked for them, until cancelled."""

    def __init__(self, ledger: Ledger, *, poll_seconds: float = 0.25, clock: Callable[[], datetime] = utcnow):
        self._store = UsageFeedStore(ledger)
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
        written = 0
        for endpoint in await self._store.endpoints(wanting=FEED_EVENTS):
            rows = await self._store.events_after(endpoint, limit=_MAX_READ)
            due = self._due(endpoint, rows, force=force)
            if due:
                at = self._clock()
                messages = _messages(endpoint, due, at=at)
                if await self._store.hand_over(endpoint, due, messages, now_us=epoch_us(at)):
                    written += len(messages)
        if written:
            for listener in self.on_enqueued:
                listener()
        return written

    def _due(self, endpoint: FeedEndpoint, rows: Sequence[EventRow], *, force: bool) -> list[EventRow]:
        """The events to hand over now: whole batches, and a partial one once its oldest event waited long enough."""
        size = endpoint.batch_size
        whole = len(rows) // size * size
        rest = rows[whole:]
        waited_us = epoch_us(self._clock()) - epoch_us(rest[0].recorded_at) if rest else 0
        if rest and (force or waited_us >= endpoint.flush_interval_us):
            return list(rows)
        return list(rows[:whole])


def _messages(endpoint: FeedEndpoint, rows: list[EventRow], *, at: datetime) -> list[Message]:
    """The endpoint's messages for `rows`: `usage.recorded` in batches, one `cost.calculated` per event."""
    records = [usage_record(row) for row in rows]
    messages = []
    if "usage.recorded" in endpoint.events:
        for start in range(0, len(records), endpoint.batch_size):
            batch = records[start : start + endpoint.batch_size]
            body = message_body("usage.recorded", {"count": len(batch), "events": batch}, at=at)
            messages.append(Message(endpoint.account_id, "webhook", "usage.recorded", body, endpoint_id=endpoint.id))
    if "cost.calculated" in endpoint.events:
        for record in records:
            body = message_body("cost.calculated", record, at=at)
            messages.append(Message(endpoint.account_id, "webhook", "cost.calculated", body, endpoint_id=endpoint.id))
    return messages
