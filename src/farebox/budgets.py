"""Spend caps that parallel traffic cannot race past: reserve the worst case, settle to the truth.

Before a request is forwarded, `Budgets.reserve` takes its worst-case cost from every cap that applies
(the key's, its member's, its account's, each over its own period in the account's timezone) in one step
that no other request can interleave with: `spent + reserved + worst case` must fit under every cap, or
nothing is reserved and the request is refused (`BudgetExceeded`, 402). Once the request's event is
committed its true cost is in `spent` and `release` gives the reservation back.

`spent` is the ledger's spend counters held in memory. A counter is read once, on the ledger's writer
thread (so no commit can slip between the read and the counting of later commits); after that every
commit adds what it added to the counters (`Ledger.on_commit`), proxied requests and ingested events alike.
Between a commit and its request's `release` the cost counts twice (spent and reserved): a cap can refuse a
request a moment early, never let one through late. Exact within one farebox process per ledger; several
replicas would need a shared counter store (DESIGN.md: Redis), which this module does not implement.

The caps themselves (and the account's timezone) are read at most once a second per key, and dropped at
once when this process changes the directory, so a new cap applies to the next request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from farebox.core.money import format_usd
from farebox.core.owners import Account, Member, VirtualKey
from farebox.core.periods import Period, period_end, period_start
from farebox.core.singleflight import SingleFlight
from farebox.errors import FareboxError
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.recording import CounterKey
from farebox.ledger.spend import read_counters

__all__ = ["BudgetExceeded", "BudgetStatus", "Budgets", "Cap", "Caps", "Reservation"]

_MAX_COUNTERS = 200_000
_MAX_CAP_SETS = 50_000
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


class BudgetExceeded(FareboxError):
    """A request whose worst-case cost does not fit under a cap: nothing was forwarded."""

    status = 402
    openai_type = "insufficient_quota"
    default_code = "budget_exceeded"


@dataclass(frozen=True, slots=True)
class Cap:
    """One spend cap: `cap_nano` per `period` for a key, member or account."""

    scope: str
    scope_id: str
    name: str
    cap_nano: int
    period: Period

    def describe(self) -> str:
        return f"the {self.period.value} spend cap of {self.scope} {self.name!r} ({format_usd(self.cap_nano)} USD)"


def caps_of(owners: Sequence[Account | Member | VirtualKey]) -> tuple[Cap, ...]:
    """The caps the owners set (an owner without a cap sets none)."""
    caps = []
    for owner in owners:
        if owner.spend_cap_nano is not None:
            scope = "account" if isinstance(owner, Account) else "member" if isinstance(owner, Member) else "key"
            label = owner.email if isinstance(owner, Member) else owner.name
            caps.append(Cap(scope, owner.id, label, owner.spend_cap_nano, owner.cap_period))
    return tuple(caps)


@dataclass(slots=True)
class Caps:
    """The caps one key's requests are held to, and the timezone their periods run in."""

    key: VirtualKey
    caps: tuple[Cap, ...]
    tz: ZoneInfo
    loaded_at: float
    counters: tuple[CounterKey, ...] = ()
    """The caps' spend counters for the instants in `window` (kept by `Budgets`, which computes them)."""
    window: tuple[datetime, datetime] | None = None


@dataclass(slots=True)
class Reservation:
    """A worst-case cost held against some counters until `Budgets.release` (once; later calls do nothing)."""

    counters: tuple[CounterKey, ...]
    amount_nano: int
    released: bool = False


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Where one cap stands in its current period."""

    cap: Cap | None
    period: Period
    period_start: datetime
    period_end: datetime | None
    spent_nano: int
    reserved_nano: int
    projected_nano: int | None
    """Spend at the period's end if it goes on at the rate so far (None for the `total` period)."""
    average_daily_nano: int

    @property
    def remaining_nano(self) -> int | None:
        return None if self.cap is None else max(0, self.cap.cap_nano - self.spent_nano - self.reserved_nano)

    def as_dict(self, now: datetime) -> dict[str, Any]:
        """The budget status JSON shape: amounts in decimal USD strings, utilisation as a fraction."""
        cap = self.cap
        remaining = self.remaining_nano
        days = None if self.period_end is None else (self.period_end - now + timedelta(days=1, microseconds=-1)).days
        return {
            "period": self.period.value,
            "period_start": self.period_start.isoformat(),
            "period_end": None if self.period_end is None else self.period_end.isoformat(),
            "cap": None if cap is None else format_usd(cap.cap_nano),
            "spent": format_usd(self.spent_nano),
            "reserved": format_usd(self.reserved_nano),
            "remaining": None if remaining is None else format_usd(remaining),
            "utilization": None if cap is None else _fraction(self.spent_nano + self.reserved_nano, cap.cap_nano),
            "projected_period_spend": None if self.projected_nano is None else format_usd(self.projected_nano),
            "on_track": None if cap is None or self.projected_nano is None else self.projected_nano <= cap.cap_nano,
            "days_remaining": days,
            "average_daily_spend": format_usd(self.average_daily_nano),
        }


def _fraction(part: int, whole: int) -> str:
    if whole <= 0:
        return "1.0000" if part > 0 else "0.0000"
    return str((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001")))


class Budgets:
    """Caps, reservations and the spend they are checked against; one per process and ledger."""

    def __init__(
        self,
        ledger: Ledger,
        directory: Directory,
        *,
        ttl: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ledger = ledger
        self._directory = directory
        self._ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()  # the writer thread adds commits while the event loop reserves
        self._spent: dict[CounterKey, int] = {}
        self._reserved: dict[CounterKey, int] = {}
        self._caps: dict[str, Caps] = {}
        self._loads: SingleFlight[VirtualKey, Caps] = SingleFlight()
        self._windows: dict[tuple[Period, ZoneInfo], tuple[datetime, datetime, int]] = {}
        self.on_refused: list[Callable[[Cap], None]] = []
        """Called with the cap that refused a request (alerts send `budget.exceeded`)."""
        ledger.on_commit(self._committed)
        directory.on_change.append(self._caps.clear)

    async def caps_for(self, key: VirtualKey) -> Caps:
        """The caps on `key`'s requests: its own, its member's and its account's (cached up to `ttl`)."""
        cached = self._caps.get(key.id)
        if cached is not None and cached.key is key and self._monotonic() - cached.loaded_at < self._ttl:
            return cached
        # Requests that find the entry stale together (a key reloads once a second) share one read.
        return await self._loads.run(key, lambda: self._load_caps(key))

    async def _load_caps(self, key: VirtualKey) -> Caps:
        loaded_at = self._monotonic()
        account = await self._directory.get_account(key.account_id)
        member = await self._directory.get_member(key.member_id) if key.member_id else None
        owners: list[Account | Member | VirtualKey] = [key, account] if member is None else [key, member, account]
        caps = Caps(key, caps_of(owners), ZoneInfo(account.timezone), loaded_at)
        if len(self._caps) >= _MAX_CAP_SETS:
            self._caps.clear()
        self._caps[key.id] = caps
        return caps

    async def reserve(self, caps: Caps, amount_nano: int, *, at: datetime) -> Reservation | None:
        """Hold `amount_nano` against every cap, or none of them; None when no cap applies.

        Raises:
            BudgetExceeded: a cap is spent, or cannot take `amount_nano` more (402, naming the cap).
        """
        if not caps.caps:
            return None
        counters = self._counters(caps, at)
        while True:
            missing = [counter for counter in counters if counter not in self._spent]
            if missing:
                await self._load(missing)
            with self._lock:
                if any(counter not in self._spent for counter in counters):
                    continue  # dropped to bound memory between the load and now: load again
                for cap, counter in zip(caps.caps, counters, strict=True):
                    used = self._spent[counter] + self._reserved.get(counter, 0)
                    if used >= cap.cap_nano or used + amount_nano > cap.cap_nano:
                        for listener in self.on_refused:
                            listener(cap)
                        raise BudgetExceeded(_refusal(cap, used, amount_nano))
                for counter in counters:
                    self._reserved[counter] = self._reserved.get(counter, 0) + amount_nano
                return Reservation(counters, amount_nano)

    def release(self, reservation: Reservation | None) -> None:
        """Give a reservation back (its request's true cost is committed, or nothing was used)."""
        if reservation is None:
            return
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

    def remaining(self, caps: Caps, *, at: datetime) -> int | None:
        """What the tightest cap still allows (spent and reserved taken off, never below 0); None for no cap."""
        lowest: int | None = None
        counters = self._counters(caps, at)
        with self._lock:
            for cap, counter in zip(caps.caps, counters, strict=True):
                left = cap.cap_nano - self._spent.get(counter, 0) - self._reserved.get(counter, 0)
                lowest = left if lowest is None else min(lowest, left)
        return None if lowest is None else max(0, lowest)

    def _counters(self, caps: Caps, at: datetime) -> tuple[CounterKey, ...]:
        """The spend counters of the caps' periods that contain `at` (computed once per window of `caps`)."""
        window = caps.window
        if (window is not None and window[0] <= at < window[1]) or not caps.caps:
            return caps.counters
        windows = [self._window(cap.period, caps.tz, at) for cap in caps.caps]
        caps.counters = tuple(
            (cap.scope, cap.scope_id, cap.period.value, start_s)
            for cap, (_, _, start_s) in zip(caps.caps, windows, strict=True)
        )
        caps.window = (max(start for start, _, _ in windows), min(end for _, end, _ in windows))
        return caps.counters

    def _window(self, period: Period, tz: ZoneInfo, at: datetime) -> tuple[datetime, datetime, int]:
        """The period containing `at`: its start, its end and its start in epoch seconds (the current one kept)."""
        window = self._windows.get((period, tz))
        if window is None or not window[0] <= at < window[1]:
            start = period_start(period, at=at, tz=tz)
            end = period_end(period, start=start, tz=tz) or _END_OF_TIME
            window = (start, end, int(start.timestamp()))
            if len(self._windows) > _MAX_CAP_SETS:
                self._windows.clear()
            self._windows[(period, tz)] = window
        return window

    async def status(self, owner: Account | Member | VirtualKey, *, tz: ZoneInfo, now: datetime) -> BudgetStatus:
        """Where `owner`'s cap (or, without one, its spend) stands in its current cap period."""
        (cap,) = caps_of([owner]) or (None,)
        scope = "account" if isinstance(owner, Account) else "member" if isinstance(owner, Member) else "key"
        start = period_start(owner.cap_period, at=now, tz=tz)
        counter = (scope, owner.id, owner.cap_period.value, int(start.timestamp()))
        with self._lock:
            spent, reserved = self._spent.get(counter), self._reserved.get(counter, 0)
        if spent is None:  # no request has needed it: read it, without taking it into the budgets
            spent = (await self._ledger.read(lambda c: read_counters(c, [counter]))).get(counter, 0)
        end = period_end(owner.cap_period, start=start, tz=tz)
        elapsed = max(int((now - start).total_seconds()), 3600)  # the first hour projects from a full hour
        projected = None
        if end is not None:
            length = int((end - start).total_seconds())
            projected = spent * length // elapsed
        average_daily = spent * 86_400 // max(elapsed, 86_400)
        return BudgetStatus(cap, owner.cap_period, start, end, spent, reserved, projected, average_daily)

    async def _load(self, counters: Sequence[CounterKey]) -> None:
        """Read counters not held yet, on the writer thread: in order with the commits `_committed` counts."""
        if all(counter in self._spent for counter in counters):
            return

        def read(connection: Connection) -> None:
            wanted = [counter for counter in counters if counter not in self._spent]
            if not wanted:
                return
            found = read_counters(connection, wanted)
            with self._lock:
                if len(self._spent) + len(wanted) > _MAX_COUNTERS:
                    self._forget_idle()
                for counter in wanted:
                    self._spent.setdefault(counter, found.get(counter, 0))

        await self._ledger.write(read)

    def _forget_idle(self) -> None:
        """Drop the counters no reservation holds (they are read again when next needed)."""
        self._spent = {counter: spent for counter, spent in self._spent.items() if counter in self._reserved}

    def _committed(self, added: Mapping[CounterKey, int]) -> None:
        with self._lock:
            spent = self._spent
            for counter, amount in added.items():
                if counter in spent:
                    spent[counter] += amount


def _refusal(cap: Cap, used: int, amount: int) -> str:
    left = max(0, cap.cap_nano - used)
    if used >= cap.cap_nano:
        return f"budget exceeded: {cap.describe()} is spent for this period (0 USD remaining)"
    return (
        f"budget exceeded: this request may cost up to {format_usd(amount)} USD, "
        f"and {cap.describe()} has {format_usd(left)} USD remaining"
    )
