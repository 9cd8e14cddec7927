"""Spend caps that parallel traffic cannot race past: reserve the worst case, settle to the truth.

Before a request is forwarded, `Budgets.reserve` holds its worst-case cost against every cap that applies
(the key's, its member's, its account's, each over its own period in the account's timezone) in one step
that no other request can interleave with (the `CounterStore`): `spent + reserved + worst case` must fit
under every cap, or nothing is held and the request is refused (`CapRefused`, 402). Once the request's
event is committed its true cost is in `spent` and `release` gives the reservation back.

The caps themselves (and the account's timezone) are read at most once a second per key, and dropped at
once when this process changes the directory, so a new cap applies to the next request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from farebox.core.owners import VirtualKey
from farebox.core.periods import Period, period_end, period_start
from farebox.core.singleflight import SingleFlight
from farebox.core.spend import BudgetStatus, Cap, CapRefused, CounterId, Owner, budget_status, caps_of, scope_of
from farebox.ledger.directory import Directory
from farebox.metering.counters import CounterStore, Holds, Reservation

__all__ = ["Budgets", "Caps"]

_MAX_CAP_SETS = 50_000
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


@dataclass(slots=True)
class Caps:
    """The caps one key's requests are held to, and the timezone their periods run in."""

    key: VirtualKey
    caps: tuple[Cap, ...]
    tz: ZoneInfo
    loaded_at: float
    holds: Holds | None = None
    """The caps with their counters for the instants in `window` (kept by `Budgets`, which computes them)."""
    window: tuple[datetime, datetime] | None = None


class Budgets:
    """Caps, reservations and the spend they are checked against; one per process and ledger."""

    def __init__(
        self,
        directory: Directory,
        counters: CounterStore,
        *,
        ttl: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._counters = counters
        self._ttl = ttl
        self._monotonic = monotonic
        self._caps: dict[str, Caps] = {}
        self._loads: SingleFlight[VirtualKey, Caps] = SingleFlight()
        self._windows: dict[tuple[Period, ZoneInfo], tuple[datetime, datetime, int]] = {}
        self.on_refused: list[Callable[[Cap], None]] = []
        """Called with the cap that refused a request (alerts send `budget.exceeded`)."""
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
        owners: list[Owner] = [key, account] if member is None else [key, member, account]
        caps = Caps(key, caps_of(owners), ZoneInfo(account.timezone), loaded_at)
        if len(self._caps) >= _MAX_CAP_SETS:
            self._caps.clear()
        self._caps[key.id] = caps
        return caps

    async def reserve(self, caps: Caps, amount_nano: int, *, at: datetime) -> Reservation | None:
        """Hold `amount_nano` against every cap, or none of them; None when no cap applies.

        Raises:
            CapRefused: a cap is spent, or cannot take `amount_nano` more (402, naming the cap).
        """
        if not caps.caps:
            return None
        try:
            return await self._counters.reserve(self._holds(caps, at), amount_nano)
        except CapRefused as refused:
            for listener in self.on_refused:
                listener(refused.cap)
            raise

    async def release(self, reservation: Reservation | None) -> None:
        """Give a reservation back (its request's true cost is committed, or nothing was used)."""
        if reservation is not None:
            await self._counters.release(reservation)

    async def remaining(self, caps: Caps, *, at: datetime) -> int | None:
        """What the tightest cap still allows (spent and reserved taken off, never below 0); None for no cap."""
        if not caps.caps:
            return None
        holds = self._holds(caps, at)
        standing = await self._counters.standing(holds.counters)
        lowest = holds.caps[0].cap_nano
        for cap, (spent, reserved) in zip(holds.caps, standing, strict=True):
            lowest = min(lowest, cap.cap_nano - spent - reserved)
        return max(0, lowest)

    async def status(self, owner: Owner, *, tz: ZoneInfo, now: datetime) -> BudgetStatus:
        """Where `owner`'s cap (or, without one, its spend) stands in its current cap period."""
        (cap,) = caps_of([owner]) or (None,)
        counter = CounterId.of(scope_of(owner), owner.id, owner.cap_period, at=now, tz=tz)
        ((spent, reserved),) = await self._counters.standing([counter])
        return budget_status(cap, period=owner.cap_period, tz=tz, now=now, spent_nano=spent, reserved_nano=reserved)

    def _holds(self, caps: Caps, at: datetime) -> Holds:
        """The caps with the counters of their periods that contain `at` (computed once per window of `caps`)."""
        window, holds = caps.window, caps.holds
        if holds is not None and window is not None and window[0] <= at < window[1]:
            return holds
        windows = [self._window(cap.period, caps.tz, at) for cap in caps.caps]
        counters = tuple(
            CounterId(cap.scope, cap.owner_id, cap.period, start_s)
            for cap, (_, _, start_s) in zip(caps.caps, windows, strict=True)
        )
        caps.holds = holds = Holds(caps.caps, counters)
        caps.window = (max(start for start, _, _ in windows), min(end for _, end, _ in windows))
        return holds

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
