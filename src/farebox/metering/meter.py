"""The metering use cases: one flow for every proxied request, and one for batches of external events.

A proxied request::

    key = await meter.authorize(secret)      # 401 for an unknown, revoked, disabled or expired key
    ticket = await meter.open(call)          # 402 when the worst case does not fit under a cap or the balance
    async with ticket:
        ...forward, relay...                 # the gateway's wire work
        event = await ticket.record(outcome) # priced, committed; then the reservation is released

`open` holds the request's worst-case cost against every cap that applies, and against the account's prepaid
balance when it holds credits; leaving the `async with` block
always gives it back, on success, error, cancellation and client disconnect. Nothing may come between
`open` and the block: the block is what releases. A request cancelled before it recorded (a
shutdown past its grace period) is recorded as the call's `abandoned` outcome, estimated from the request.
Recording returns only once the event is durable, so the gateway releases the last bytes of a response
after it (docs/ledger.md, "Group commit and durability").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import NamedTuple

import anyio

from farebox.core.events import RecordResult, UsageEvent
from farebox.core.owners import VirtualKey
from farebox.core.pricing import Usage
from farebox.errors import LedgerUnavailable
from farebox.ledger.base import Ledger
from farebox.metering.budgets import Budgets, Caps
from farebox.metering.counters import Reservation
from farebox.metering.keys import KeyCache
from farebox.metering.usage_events import Attribution, Outcome, PriceTarget, UsageEvents

__all__ = ["Call", "InFlight", "Meter", "Recorded", "Ticket"]

log = logging.getLogger(__name__)


class InFlight:
    """Opened requests not closed yet, in all and per account: shutdown waits for them before the ledger closes,
    and the live usage view shows them. Counts this process's requests only."""

    def __init__(self) -> None:
        self._count = 0
        self._accounts: dict[str, int] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def count(self) -> int:
        return self._count

    def of(self, account_id: str) -> int:
        """How many of the account's requests are in flight."""
        return self._accounts.get(account_id, 0)

    def enter(self, account_id: str) -> None:
        self._count += 1
        accounts = self._accounts
        accounts[account_id] = accounts.get(account_id, 0) + 1
        self._idle.clear()

    def leave(self, account_id: str) -> None:
        self._count -= 1
        left = self._accounts[account_id] - 1
        # An account with none in flight leaves the map, so it holds the accounts busy now, not every one seen.
        if left:
            self._accounts[account_id] = left
        else:
            del self._accounts[account_id]
        if not self._count:
            self._idle.set()

    async def drained(self, *, timeout: float) -> bool:
        """Wait until none is in flight (True), or `timeout` seconds (False)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


# Not frozen, like UsageEvent: one is built per request, and a frozen dataclass takes twice as long to build.
@dataclass(slots=True)
class Call:
    """A request about to be forwarded: whose it is, what it is priced as, the most it may use. Never changed."""

    request_id: str
    at: datetime
    key: VirtualKey
    attribution: Attribution
    price_as: PriceTarget
    operation: str
    worst_case: Callable[[], Usage]
    """The most the request may use; called only when a cap or a balance applies (it may count the prompt's tokens)."""
    abandoned: Callable[[], Awaitable[Outcome]]
    """What to record when the request is cancelled before it recorded."""


class Recorded(NamedTuple):
    """What became of one event of a batch: recorded or a duplicate, and the cost the ledger holds for its id.

    A tuple: one is made per ingested event, and a frozen dataclass takes several times as long to build.
    """

    event: UsageEvent
    result: RecordResult
    cost_nano: int
    """For a duplicate, the cost its id was first recorded at."""


class Ticket:
    """One opened request: its caps, balance and reservation, until it records and closes. Made by `Meter.open`."""

    def __init__(self, meter: Meter, call: Call) -> None:
        self.call = call
        self._meter = meter
        self._caps: Caps | None = None
        self._reservation: Reservation | None = None
        self.recorded: UsageEvent | None = None
        """The event once `record` committed it."""

    async def _open(self) -> None:
        meter, call = self._meter, self.call
        caps = self._caps = await meter.budgets.caps_for(call.key)
        if caps.limits:
            worst = meter.events.cost_nano(call.price_as, operation=call.operation, usage=call.worst_case(), at=call.at)
            self._reservation = await meter.budgets.reserve(caps, worst, at=call.at)
        meter.in_flight.enter(call.key.account_id)

    async def __aenter__(self) -> Ticket:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            if kind is not None and issubclass(kind, anyio.get_cancelled_exc_class()) and self.recorded is None:
                # Cancelled while the upstream may already be working on it: record it, estimated.
                with anyio.CancelScope(shield=True):
                    try:
                        await self.record(await self.call.abandoned())
                    except LedgerUnavailable:  # shutting down with a broken ledger: the cancellation goes on
                        log.exception("recording cancelled request %s failed", self.call.request_id)
        finally:
            await self._meter.budgets.release(self._reservation)
            self._meter.in_flight.leave(self.call.key.account_id)

    async def record(self, outcome: Outcome) -> UsageEvent:
        """Price the outcome and commit its event; then give the reservation back (committed or failed).

        Raises:
            LedgerUnavailable: the ledger could not commit it.
        """
        call = self.call
        event = self._meter.events.build(call.request_id, at=call.at, attribution=call.attribution, outcome=outcome)
        try:
            await self._meter.ledger.record(event)
        finally:
            # Committed (its cost is in the spend counters now) or failed (nothing was charged): let go.
            reservation, self._reservation = self._reservation, None
            await self._meter.budgets.release(reservation)
        self.recorded = event
        return event

    async def remaining(self, *, at: datetime) -> int | None:
        """What the tightest cap on the request, or its account's balance, still allows (None: neither applies)."""
        assert self._caps is not None, "the ticket is not open"
        return await self._meter.budgets.remaining(self._caps, at=at)

    @property
    def prepaid(self) -> bool:
        """Whether the request's account holds prepaid credits (its `remaining` is then shown in credits)."""
        assert self._caps is not None, "the ticket is not open"
        return self._caps.balance is not None


class Meter:
    """Authorizes, reserves, prices and records. Safe to share between concurrent requests; one per process."""

    def __init__(self, ledger: Ledger, events: UsageEvents, *, keys: KeyCache, budgets: Budgets) -> None:
        self.ledger = ledger
        self.events = events
        self.keys = keys
        self.budgets = budgets
        self.in_flight = InFlight()

    async def authorize(self, secret: str) -> VirtualKey:
        """The active key of a secret.

        Raises:
            AuthenticationFailed: unknown, revoked, disabled or expired (401).
        """
        return await self.keys.authenticate(secret)

    async def open(self, call: Call) -> Ticket:
        """The request's ticket, holding its worst case until the ticket's `async with` block ends.

        Raises:
            CapRefused: a cap cannot take the worst case (402); nothing is held, nothing may be forwarded.
            CreditsExhausted: nor can the account's prepaid balance (402 `credits_exhausted`), likewise.
        """
        ticket = Ticket(self, call)
        await ticket._open()
        return ticket

    async def record_many(self, events: Sequence[UsageEvent]) -> list[Recorded]:
        """Record events built by `events.build` all together or not at all; what became of each, in order.

        Raises:
            LedgerUnavailable: the ledger could not commit them; nothing was recorded.
        """
        results = await self.ledger.record_many(events)
        duplicates = list({e.id for e, r in zip(events, results, strict=True) if r is RecordResult.DUPLICATE})
        # The cost the ledger holds for a duplicate id (a repeat in this batch included) is its first recording's.
        costs = await self.ledger.recorded_costs(duplicates) if duplicates else {}
        return [
            Recorded(event, result, costs.get(event.id, event.cost_nano))
            for event, result in zip(events, results, strict=True)
        ]
