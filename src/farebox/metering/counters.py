"""The counter store: the spend counters that caps and balances are checked against, and the reservations on them.

`CounterStore` is the seam between the limits (`core.spend.Limit`: a spend cap, or an account's prepaid balance,
both held by the rule `core.spend.fits`) and where counters live. `LocalCounters` keeps them in this
process's memory: exact for one farebox process per ledger. A store shared by several processes (Redis)
implements the same protocol (`metering.redis_counters.RedisCounters`), so metering and the gateway do not change
with it.

In `LocalCounters`, a counter is read once from the ledger in order with its commits (`Ledger.load_counters`),
so no commit can slip between the read and the counting of later commits; after that every commit adds
what it added (`Ledger.on_commit`), proxied requests and ingested events alike, and a void what it took
off. Between a commit and its request's release the cost counts twice (spent and reserved): a cap can
refuse a request a moment early, never let one through late. Another process's commits (a void made with
the CLI) reach this one when it drops its counters (`forget`) and reads them again.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from farebox.core.spend import CounterId, Limit, fits
from farebox.ledger.base import Ledger

__all__ = ["CounterStore", "Holds", "LocalCounters", "Reservation"]

_MAX_COUNTERS = 200_000


@dataclass(frozen=True, slots=True)
class Holds:
    """Limits, and for each the counter of its period that holds its spend now (built once per period window)."""

    limits: tuple[Limit, ...]
    counters: tuple[CounterId, ...]
    held: tuple[CounterId, ...] = field(init=False)
    """The counters once each: an account's `total` cap and its balance limit one counter, which one hold holds."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "held", tuple(dict.fromkeys(self.counters)))


@dataclass(slots=True)
class Reservation:
    """A worst-case cost held against some counters (each once) until released (once; later releases do nothing)."""

    counters: tuple[CounterId, ...]
    amount_nano: int
    released: bool = False
    epoch: str = ""
    """Which life of the store holds it (`RedisCounters`: a Redis that restarted empty holds none made before)."""


class CounterStore(Protocol):
    """Spend counters and the reservations on them."""

    async def reserve(self, holds: Holds, amount_nano: int) -> Reservation:
        """Hold `amount_nano` on every counter, each checked against its limits by `core.spend.fits`, or on none.

        Raises:
            BudgetExceeded: what the first limit that cannot take `amount_nano` more answers (`Limit.refused`:
                `CapRefused` naming a cap, `CreditsExhausted` naming a balance); nothing is held.
        """
        ...

    async def release(self, reservation: Reservation) -> None:
        """Give a reservation back (idempotent). Completes even while its caller is being cancelled."""
        ...

    async def standing(self, counters: Sequence[CounterId]) -> list[tuple[int, int]]:
        """(spent, reserved) of each counter, in order."""
        ...

    def forget(self) -> None:
        """Read every counter from the ledger again when next needed (reservations stay held): for changes made by
        a process that did not tell this store, such as a void with the CLI."""
        ...


class LocalCounters:
    """The counters of one process, in memory, kept exact by the ledger's commits. One per process and ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._lock = threading.Lock()  # the writer thread adds commits while the event loop reserves
        self._spent: dict[CounterId, int] = {}
        self._reserved: dict[CounterId, int] = {}
        self._generation = 0
        """How many times `forget` ran: a read begun before it is stale when it arrives."""
        ledger.on_commit(self._committed)

    async def reserve(self, holds: Holds, amount_nano: int) -> Reservation:
        counters = holds.held
        while True:
            if not self._holds_all(counters):
                await self._load(counters)
            with self._lock:
                if not self._holds_all(counters):
                    continue  # dropped to bound memory between the load and now: load again
                spent, reserved = self._spent, self._reserved
                for limit, counter in zip(holds.limits, holds.counters, strict=True):
                    used = spent[counter] + reserved.get(counter, 0)
                    if not fits(limit.limit_nano, used_nano=used, amount_nano=amount_nano):
                        raise limit.refused(used_nano=used, amount_nano=amount_nano)
                for counter in counters:
                    reserved[counter] = reserved.get(counter, 0) + amount_nano
                return Reservation(counters, amount_nano)

    def _holds_all(self, counters: tuple[CounterId, ...]) -> bool:
        spent = self._spent
        for counter in counters:
            if counter not in spent:
                return False
        return True

    async def release(self, reservation: Reservation) -> None:
        with self._lock:
            if reservation.released:
                return
            reservation.released = True
            for counter in reservation.counters:
                left = self._reserved.get(counter, 0) - reservation.amount_nano
                if left > 0:
                    self._reserved[counter] = left
                else:
                    self._reserved.pop(counter, None)

    async def standing(self, counters: Sequence[CounterId]) -> list[tuple[int, int]]:
        result: list[tuple[int, int]] = []
        missing: list[int] = []
        with self._lock:
            spent, reserved = self._spent, self._reserved
            for counter in counters:
                value = spent.get(counter)
                if value is None:
                    missing.append(len(result))
                    value = 0
                result.append((value, reserved.get(counter, 0)))
        if missing:
            # A counter no request has needed is read, without taking it into the store.
            read = await self._ledger.counters([counters[index] for index in missing])
            for index in missing:
                result[index] = (read.get(counters[index], 0), result[index][1])
        return result

    def forget(self) -> None:
        """Drop every counter, to read each again from the ledger when next needed (reservations stay held).

        For changes this process did not commit itself, so did not hear of: a void made by another process.
        A read begun before this call is dropped when it arrives, so no counter keeps a value from before.
        """
        with self._lock:
            self._generation += 1
            self._spent = {}

    async def _load(self, counters: Sequence[CounterId]) -> None:
        wanted = [counter for counter in counters if counter not in self._spent]
        if wanted:
            generation = self._generation
            await self._ledger.load_counters(wanted, apply=lambda found: self._adopt(found, generation=generation))

    def _adopt(self, found: dict[CounterId, int], *, generation: int) -> None:
        """Take counters read on the writer thread (one read meanwhile by another request keeps its value)."""
        with self._lock:
            if generation != self._generation:
                return  # read before a `forget`: the reserving loop reads again
            if len(self._spent) + len(found) > _MAX_COUNTERS:
                self._forget_idle()
            for counter, spent in found.items():
                self._spent.setdefault(counter, spent)

    def _forget_idle(self) -> None:
        """Drop the counters no reservation holds (they are read again when next needed)."""
        self._spent = {counter: spent for counter, spent in self._spent.items() if counter in self._reserved}

    def _committed(self, added: Mapping[CounterId, int]) -> None:
        with self._lock:
            spent = self._spent
            for counter, amount in added.items():
                if counter in spent:
                    spent[counter] += amount
