"""Reprices: recorded usage moved to the price book of the day by appended adjustments, never by editing an event.

`Reprices.recalculate` reads an account's events in a range (voided ones left out), a page at a time in
(timestamp, id) order, prices each again with the price book as it is now, at the event's own time, and compares
the result with the event's cost so far (its recorded cost plus earlier reprices, `schema.adjusted_cost`). Each
difference is appended as a `reprice` adjustment (who, when, why, and the unit prices charged) and moved into the
event's rollups, spend counters and, for an event from before the account's first top-up, its credits' opening,
in the page's one transaction, so every view and export follows and a crash leaves whole pages. The page is read
again inside that transaction, so two recalculations at once add each difference once; a second run with the same
price book finds nothing to change. A dry run reads the same pages and writes nothing.

Left as recorded: events recorded unpriced (their model had no price; they count as unpriced requests), events
whose cost their sender gave (`cost_usd` of `POST /api/events`), and events whose model today's book no longer
prices. An event is priced as its provider and canonical model, for its operation and usage.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select

from farebox.core.events import MICRO, epoch_us, from_epoch_us
from farebox.core.pricing import Usage
from farebox.core.spend import CounterId
from farebox.errors import ValidationFailed
from farebox.ledger.actors import Actor
from farebox.ledger.base import Ledger
from farebox.ledger.credits import unspend_before_opening
from farebox.ledger.retention import kept_since
from farebox.ledger.schema import (
    ADJUSTED_MEASURES,
    REPRICE,
    adjusted_events,
    usage_adjustments,
    usage_events,
    voided,
)
from farebox.prices import PriceBook, PricedUsage

__all__ = ["MAX_CHANGES_SHOWN", "Change", "Recalculation", "Reprice", "RepriceRange", "Reprices"]

MAX_CHANGES_SHOWN = 100
"""How many of a recalculation's changes it lists, one by one (all of them are counted and summed)."""
_PAGE = 500
_GIVEN = frozenset({"cost_usd"})
"""The unit prices of an event whose sender gave its cost (`metering.UsageEvents.build`)."""
_events = usage_events.c
_COLUMNS = [column.name for column in usage_events.columns]
_AT = {name: _COLUMNS.index(name) for name in _COLUMNS}


@dataclass(frozen=True, slots=True)
class RepriceRange:
    """An account's events to recalculate: `since_us` included, `until_us` not; `key_ids` None for every key."""

    account_id: str
    since_us: int
    until_us: int
    key_ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One event's cost, before and after."""

    event_id: str
    account_id: str
    key_id: str | None
    timestamp_us: int
    previous_nano: int
    new_nano: int


@dataclass(frozen=True, slots=True)
class Reprice:
    """One reprice of an event: what its cost moved by, at which unit prices, why, who and when."""

    id: str
    difference_nano: int
    unit_prices: dict[str, str]
    reason: str
    by: Actor
    created_at: datetime


@dataclass(slots=True)
class Recalculation:
    """What a recalculation found (and, unless a dry run, wrote)."""

    dry_run: bool
    examined: int = 0
    """Events read, voided ones left out."""
    repriced: int = 0
    unpriced: int = 0
    """Recorded without a price: left as they are."""
    cost_given: int = 0
    """Priced by their sender: left as they are."""
    no_longer_priced: int = 0
    """Priced when recorded, by a model today's book does not price: left as they are."""
    previous_nano: int = 0
    """The repriced events' cost before."""
    new_nano: int = 0
    """The repriced events' cost after."""
    by_account: dict[str, list[int]] = field(default_factory=dict)
    """Account id -> [events repriced, difference in nano-USD]."""
    changes: list[Change] = field(default_factory=list)
    """The first `MAX_CHANGES_SHOWN` changes, in (time, id) order per account."""


def _usage(row: Sequence[Any]) -> Usage:
    return Usage(
        input_tokens=int(row[_AT["input_tokens"]]),
        output_tokens=int(row[_AT["output_tokens"]]),
        cached_input_tokens=int(row[_AT["cached_input_tokens"]]),
        cache_write_tokens=int(row[_AT["cache_write_tokens"]]),
        reasoning_tokens=int(row[_AT["reasoning_tokens"]]),
        characters=int(row[_AT["characters"]]),
        seconds=Decimal(int(row[_AT["seconds_micro"]])) / MICRO,
        quantity=Decimal(int(row[_AT["quantity_micro"]])) / MICRO,
    )


@dataclass(slots=True)
class _Page:
    """What one page held: how many events it read, where the next starts, what it skipped and what it changes."""

    read: int = 0
    after: tuple[int, str] | None = None
    unpriced: int = 0
    cost_given: int = 0
    no_longer_priced: int = 0
    changed: list[tuple[tuple[Any, ...], PricedUsage]] = field(default_factory=list)

    def add_to(self, found: Recalculation) -> None:
        found.examined += self.read
        found.unpriced += self.unpriced
        found.cost_given += self.cost_given
        found.no_longer_priced += self.no_longer_priced
        for row, priced in self.changed:
            previous, cost = int(row[_AT["cost_nano"]]), priced.cost_nano
            found.repriced += 1
            found.previous_nano += previous
            found.new_nano += cost
            totals = found.by_account.setdefault(row[_AT["account_id"]], [0, 0])
            totals[0] += 1
            totals[1] += cost - previous
            if len(found.changes) < MAX_CHANGES_SHOWN:
                event_id, account_id, key_id, ts_us = (
                    row[_AT[name]] for name in ("id", "account_id", "key_id", "ts_us")
                )
                found.changes.append(Change(event_id, account_id, key_id, ts_us, previous, cost))


class Reprices:
    """Recalculations of recorded costs. Every method is a coroutine."""

    def __init__(
        self, ledger: Ledger, prices: PriceBook, *, clock: Callable[[], datetime], retention_days: int | None = None
    ) -> None:
        self._ledger = ledger
        self._prices = prices
        self._clock = clock
        self._retention_days = retention_days
        self.on_reprice: list[Callable[[], None]] = []
        """Called after each page of reprices this process commits (what caches an account's balance reads it)."""

    async def recalculate(
        self, ranges: Sequence[RepriceRange], *, reason: str, by: Actor, dry_run: bool = False
    ) -> Recalculation:
        """Reprice every event of the ranges that today's price book prices differently; see the module.

        Raises:
            ValidationFailed: a range begins before the raw events kept (`raw_events_retention_days`): its
                removed events could not be repriced, so nothing is (422 on `startDate`).
        """
        kept = kept_since(self._clock(), days=self._retention_days)
        if kept is not None and any(wanted.since_us < epoch_us(kept) for wanted in ranges):
            message = (
                f"the raw events before {kept.date().isoformat()} are removed (raw_events_retention_days): "
                "recalculate from that date on"
            )
            raise ValidationFailed(f"startDate: {message}", details=[{"loc": "startDate", "message": message}])
        found = Recalculation(dry_run=dry_run)
        for wanted in ranges:
            after: tuple[int, str] | None = None
            while True:
                if dry_run:
                    page = await self._ledger._read(partial(self._page, wanted=wanted, after=after))
                else:
                    write = partial(self._write, wanted=wanted, after=after, reason=reason, by=by)
                    page = await self._ledger._write_moving_counters(write)
                    if page.changed:
                        for listener in self.on_reprice:
                            listener()
                page.add_to(found)
                if page.read < _PAGE:
                    break
                after = page.after
        return found

    async def of(self, event_id: str) -> list[Reprice]:
        """An event's reprices, oldest first."""
        query = (
            select(usage_adjustments)
            .where(usage_adjustments.c.event_id == event_id, usage_adjustments.c.kind == REPRICE)
            .order_by(usage_adjustments.c.created_at_us, usage_adjustments.c.id)
        )

        def fetch(connection: Connection) -> list[Reprice]:
            return [
                Reprice(
                    row["id"],
                    int(row["cost_nano"]),
                    dict(row["unit_prices"] or {}),
                    row["reason"],
                    Actor(row["actor_kind"], row["actor_member_id"]),
                    from_epoch_us(int(row["created_at_us"])),
                )
                for row in connection.execute(query).mappings()
            ]

        return await self._ledger._read(fetch)

    def _price(self, row: Sequence[Any]) -> PricedUsage:
        """An event priced in today's book at its time, as its provider and canonical model."""
        return self._prices.price(
            provider=row[_AT["provider"]] or None,
            model=row[_AT["canonical_model"]],
            operation=row[_AT["operation"]],
            usage=_usage(row),
            at=from_epoch_us(int(row[_AT["ts_us"]])),
        )

    def _page(self, connection: Connection, *, wanted: RepriceRange, after: tuple[int, str] | None) -> _Page:
        """Read a page of events after `after` and price each: what changes and what is left as recorded."""
        where = [
            _events.account_id == wanted.account_id,
            _events.ts_us >= wanted.since_us,
            _events.ts_us < wanted.until_us,
            ~voided(),
        ]
        if wanted.key_ids is not None:
            where.append(_events.key_id.in_(wanted.key_ids))
        if after is not None:
            ts, event_id = after
            where.append(and_(_events.ts_us >= ts, or_(_events.ts_us > ts, _events.id > event_id)))
        query = select(*adjusted_events()).where(*where).order_by(_events.ts_us, _events.id).limit(_PAGE)
        rows = [tuple(row) for row in connection.execute(query)]
        page = _Page(read=len(rows), after=(rows[-1][_AT["ts_us"]], rows[-1][_AT["id"]]) if rows else None)
        for row in rows:
            if not row[_AT["priced"]]:
                page.unpriced += 1
            elif set(row[_AT["unit_prices"]] or ()) == _GIVEN:
                page.cost_given += 1
            elif not (priced := self._price(row)).priced:
                page.no_longer_priced += 1
            elif priced.cost_nano != row[_AT["cost_nano"]]:
                page.changed.append((row, priced))
        return page

    def _write(
        self,
        connection: Connection,
        *,
        wanted: RepriceRange,
        after: tuple[int, str] | None,
        reason: str,
        by: Actor,
    ) -> tuple[_Page, dict[CounterId, int]]:
        """Read and price the page inside the writer's transaction, and append and net in its differences."""
        page = self._page(connection, wanted=wanted, after=after)
        if not page.changed:
            return page, {}
        now_us = epoch_us(self._clock())
        zero = dict.fromkeys(ADJUSTED_MEASURES, 0)
        adjustments = []
        deltas = []
        for row, priced in page.changed:
            delta = priced.cost_nano - int(row[_AT["cost_nano"]])
            deltas.append((row, delta))
            adjustments.append(
                {
                    "id": "adj_" + uuid.uuid4().hex,
                    "kind": REPRICE,
                    "event_id": row[_AT["id"]],
                    "account_id": row[_AT["account_id"]],
                    "key_id": row[_AT["key_id"]],
                    "member_id": row[_AT["member_id"]],
                    "event_ts_us": row[_AT["ts_us"]],
                    **zero,
                    "cost_nano": delta,
                    "unit_prices": priced.unit_prices,
                    "reason": reason,
                    "actor_kind": by.kind,
                    "actor_member_id": by.member_id,
                    "created_at_us": now_us,
                }
            )
        connection.execute(insert(usage_adjustments), adjustments)
        by_account: dict[str, list[tuple[int, int]]] = {}
        for row, delta in deltas:
            by_account.setdefault(row[_AT["account_id"]], []).append((int(row[_AT["recorded_at_us"]]), -delta))
        for account_id, costs in by_account.items():
            unspend_before_opening(connection, account_id=account_id, costs=costs)
        return page, self._ledger.recorder.add_costs(connection, deltas)
