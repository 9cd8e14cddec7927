"""Adjustments: audited corrections appended to the ledger. A recorded event is never changed or deleted.

This module makes voids; reprices are `farebox.ledger.reprices`'. `Adjustments.void` takes a wrongly ingested
event out of every spend figure in one transaction: it appends an adjustment row (the event's attribution and
time, its amounts negated, its cost as repriced so far, the reason, who and when), takes the event out of its
rollup and its spend counters in the event's own bucket and periods, so that every figure reads as if it had never
been recorded, and enqueues `usage.voided` for the account's webhook endpoints that asked for it. Its commit moves
the in-memory spend counters as a recorded event's does (`Ledger.on_commit`, with negative amounts). The event row
stays. An event recorded before its account's first credit top-up is taken out of the balance's opening too, so its
void gives back no credits the event never drew (`ledger.credits`).

Only ingested events (`source` `ingest`, from `POST /api/events`) can be voided: a proxied request really
reached its provider, which bills it. An event is voided at most once, and its id stays taken.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, func, insert, select
from sqlalchemy.exc import IntegrityError

from farebox.core.clock import utcnow
from farebox.core.events import epoch_us, format_micro, from_epoch_us
from farebox.core.money import format_usd
from farebox.core.spend import CounterId
from farebox.errors import Conflict, NotFound, ValidationFailed
from farebox.ledger.actors import Actor, ActorKind
from farebox.ledger.base import Ledger
from farebox.ledger.credits import unspend_before_opening
from farebox.ledger.outbox import notify_endpoints
from farebox.ledger.schema import ADJUSTED_MEASURES, VOID, adjusted_events, usage_adjustments, usage_events

__all__ = ["MAX_REASON", "VOIDED", "Actor", "ActorKind", "Adjustments", "Void", "clean_reason", "void_record"]

MAX_REASON = 1_000
"""The longest reason a void may give, in characters."""
VOIDED = "usage.voided"
"""The webhook event type a void enqueues."""
_INGESTED = "ingest"


@dataclass(frozen=True, slots=True)
class Void:
    """The adjustment that voided an event: the event's attribution, its amounts negated, why, who and when."""

    id: str
    event_id: str
    account_id: str
    key_id: str | None
    member_id: str | None
    event_timestamp: datetime
    """When the voided usage happened: the rollup bucket and cap periods the void is netted in."""
    reason: str
    by: Actor
    created_at: datetime
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    characters: int
    seconds_micro: int
    quantity_micro: int
    cost_nano: int
    """The event's cost, negated (nano-USD)."""


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def void_record(void: Void) -> dict[str, Any]:
    """A void as the admin API answers it and a `usage.voided` webhook carries it (amounts negated, USD strings)."""
    return {
        "id": void.id,
        "event_id": void.event_id,
        "account_id": void.account_id,
        "key_id": void.key_id,
        "member_id": void.member_id,
        "event_timestamp": _iso(void.event_timestamp),
        "reason": void.reason,
        "voided_at": _iso(void.created_at),
        "voided_by": void.by.kind,
        "voided_by_member_id": void.by.member_id,
        "input_tokens": void.input_tokens,
        "output_tokens": void.output_tokens,
        "cached_input_tokens": void.cached_input_tokens,
        "cache_write_tokens": void.cache_write_tokens,
        "reasoning_tokens": void.reasoning_tokens,
        "characters": void.characters,
        "seconds": format_micro(void.seconds_micro),
        "quantity": format_micro(void.quantity_micro),
        "cost_usd": format_usd(void.cost_nano),
    }


def _void(row: Mapping[str, Any] | RowMapping) -> Void:
    return Void(
        id=row["id"],
        event_id=row["event_id"],
        account_id=row["account_id"],
        key_id=row["key_id"],
        member_id=row["member_id"],
        event_timestamp=from_epoch_us(int(row["event_ts_us"])),
        reason=row["reason"],
        by=Actor(row["actor_kind"], row["actor_member_id"]),
        created_at=from_epoch_us(int(row["created_at_us"])),
        **{name: int(row[name]) for name in ADJUSTED_MEASURES},
    )


def clean_reason(reason: str) -> str:
    """A void's reason without surrounding blanks.

    Raises:
        ValidationFailed: it is empty or longer than `MAX_REASON` (422 on `reason`).
    """
    cleaned = reason.strip()
    if not cleaned or len(cleaned) > MAX_REASON:
        message = f"give the reason for the void, 1 to {MAX_REASON:,} characters"
        raise ValidationFailed(f"reason: {message}", details=[{"loc": "reason", "message": message}])
    return cleaned


class Adjustments:
    """Voids of recorded usage events, and reading them back. Every method is a coroutine."""

    def __init__(self, ledger: Ledger, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._ledger = ledger
        self._clock = clock
        self.on_void: list[Callable[[], None]] = []
        """Called after each void this process commits (what caches an account's prepaid balance reads it again)."""

    async def void(self, event_id: str, *, reason: str, by: Actor, account_id: str | None = None) -> Void:
        """Void an ingested event: append its adjustment, net it out of every figure, tell the webhooks; all at once.

        Args:
            event_id: the event's id.
            reason: why, for the audit trail (surrounding blanks dropped).
            by: who voids it.
            account_id: when given, an event of another account is answered as unknown.

        Raises:
            ValidationFailed: the reason is empty or longer than `MAX_REASON` (422).
            NotFound: no such event, or it belongs to another account than `account_id` (404 `event_not_found`).
            Conflict: the event was proxied, not ingested (409 `event_not_ingested`), or is voided already
                (409 `event_already_voided`).
        """
        reason = clean_reason(reason)
        adjustment_id = "adj_" + uuid.uuid4().hex
        recorder = self._ledger.recorder

        def write(connection: Connection) -> tuple[Void, dict[CounterId, int]]:
            query = select(*adjusted_events()).where(usage_events.c.id == event_id)
            row = connection.execute(query).mappings().first()
            if row is None or account_id is not None and row["account_id"] != account_id:
                raise NotFound(f"no usage event with id {event_id!r}", code="event_not_found")
            if row["source"] != _INGESTED:
                raise Conflict(
                    f"usage event {event_id!r} is a proxied request, which reached its provider: only ingested "
                    "events can be voided",
                    code="event_not_ingested",
                )
            now = self._clock()
            values = {
                "id": adjustment_id,
                "kind": VOID,
                "event_id": event_id,
                "account_id": row["account_id"],
                "key_id": row["key_id"],
                "member_id": row["member_id"],
                "event_ts_us": row["ts_us"],
                **{name: -int(row[name]) for name in ADJUSTED_MEASURES},
                "reason": reason,
                "actor_kind": by.kind,
                "actor_member_id": by.member_id,
                "created_at_us": epoch_us(now),
            }
            try:
                connection.execute(insert(usage_adjustments).values(values))
            except IntegrityError:  # the unique index on voided events: the writer rolls back to its savepoint
                raise Conflict(f"usage event {event_id!r} is voided already", code="event_already_voided") from None
            moved = recorder.unrecord(connection, list(row.values()))
            unspend_before_opening(
                connection, account_id=row["account_id"], costs=[(int(row["recorded_at_us"]), int(row["cost_nano"]))]
            )
            void = _void(values)
            notify_endpoints(
                connection,
                account_id=void.account_id,
                event_type=VOIDED,
                data=void_record(void),
                at=now,
                now_us=epoch_us(now),
            )
            return void, moved

        void = await self._ledger._write_moving_counters(write)
        for listener in self.on_void:
            listener()
        return void

    async def void_of(self, event_id: str) -> Void | None:
        """The void of an event, None when it is not voided."""
        query = select(usage_adjustments).where(
            usage_adjustments.c.event_id == event_id, usage_adjustments.c.kind == VOID
        )

        def fetch(connection: Connection) -> Void | None:
            row = connection.execute(query).mappings().first()
            return None if row is None else _void(row)

        return await self._ledger._read(fetch)

    async def count(self) -> int:
        """How many adjustments the ledger holds, whoever made them (it only grows)."""
        query = select(func.count()).select_from(usage_adjustments)
        return await self._ledger._read(lambda connection: int(connection.scalar(query) or 0))
