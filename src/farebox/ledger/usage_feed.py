"""The usage feed's state in the ledger: the endpoints that want usage events, their cursors, and the hand-over.

Each endpoint keeps a cursor: the last usage event (recorded time, id) it was handed. `hand_over` moves
the cursor and writes the messages that carry the events in one transaction, and only if the cursor is
still where the caller read it, so two processes never hand the same events over twice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, and_, or_, select, update

from farebox.core.events import epoch_us
from farebox.ledger.base import Ledger
from farebox.ledger.outbox import Message, enqueue
from farebox.ledger.reader import EventRow, event_row
from farebox.ledger.schema import usage_events, webhook_endpoints

__all__ = ["FeedEndpoint", "UsageFeedStore"]


@dataclass(frozen=True, slots=True)
class FeedEndpoint:
    """An enabled webhook endpoint that asked for usage events, and where its feed stands."""

    id: str
    account_id: str
    events: tuple[str, ...]
    batch_size: int
    """Most `usage.recorded` events in one message."""
    flush_interval_us: int
    """Longest an event waits for its batch to fill."""
    cursor: tuple[int, str]
    """The last event handed over: (recorded time in epoch microseconds, id)."""


class UsageFeedStore:
    """Reads the events each endpoint has not been handed yet; hands them over, once."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def endpoints(self, *, wanting: Collection[str]) -> list[FeedEndpoint]:
        """The enabled endpoints that asked for any of the event types `wanting`."""
        query = select(webhook_endpoints).where(webhook_endpoints.c.enabled.is_(True))

        def fetch(connection: Connection) -> list[FeedEndpoint]:
            return [
                FeedEndpoint(
                    row["id"],
                    row["account_id"],
                    tuple(row["events"]),
                    row["batch_size"],
                    row["flush_interval_ms"] * 1000,
                    (row["feed_cursor_us"], row["feed_cursor_id"]),
                )
                for row in connection.execute(query).mappings()
                if any(event in row["events"] for event in wanting)
            ]

        return await self._ledger._read(fetch)

    async def events_after(self, endpoint: FeedEndpoint, *, limit: int) -> list[EventRow]:
        """Up to `limit` of the endpoint's account's events recorded after its cursor, in (recorded time, id)
        order."""
        at_us, last_id = endpoint.cursor
        events = usage_events.c
        query = (
            select(usage_events)
            .where(
                events.account_id == endpoint.account_id,
                or_(events.recorded_at_us > at_us, and_(events.recorded_at_us == at_us, events.id > last_id)),
            )
            .order_by(events.recorded_at_us, events.id)
            .limit(limit)
        )
        return await self._ledger._read(
            lambda connection: [event_row(row) for row in connection.execute(query).mappings()]
        )

    async def hand_over(
        self, endpoint: FeedEndpoint, events: Sequence[EventRow], messages: Sequence[Message], *, now_us: int
    ) -> bool:
        """Move the endpoint's cursor to the last of `events` and write `messages`, in one transaction, if the
        cursor is still at `endpoint.cursor`; whether it was (False: another process handed them over first).
        """
        last = events[-1]
        at_us, last_id = endpoint.cursor
        moved = (
            update(webhook_endpoints)
            .where(
                webhook_endpoints.c.id == endpoint.id,
                webhook_endpoints.c.feed_cursor_us == at_us,
                webhook_endpoints.c.feed_cursor_id == last_id,
            )
            .values(feed_cursor_us=epoch_us(last.recorded_at), feed_cursor_id=last.id)
            .returning(webhook_endpoints.c.id)
        )

        def write(connection: Connection) -> bool:
            if connection.execute(moved).first() is None:
                return False
            enqueue(connection, messages, now_us=now_us)
            return True

        return await self._ledger._write(write)
