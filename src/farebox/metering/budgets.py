"""Spend caps and prepaid balances that parallel traffic cannot race past: reserve the worst case, settle to the truth.

Before a request is forwarded, `Budgets.reserve` holds its worst-case cost against every cap that applies
(the key's, its member's, its account's, each over its own period in the account's timezone) and against
the account's prepaid balance when it holds credits (a limit on its all-time spend, `core.credits.Balance`),
in one step that no other request can interleave with (the `CounterStore`): `spent + reserved + worst case`
must fit under every limit, or nothing is held and the request is refused (`CapRefused` or
`CreditsExhausted`, 402). Once the request's event is committed its true cost is in `spent` and `release`
gives the reservation back.

The caps and the balance (and the account's timezone) are read at most once a second per key, and dropped at
once when this process changes the directory, tops an account up or voids an event (`reload`), so a new cap
or a top-up applies to the next request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from farebox.core.credits import Balance, CreditRate, balance_counter
from farebox.core.owners import VirtualKey
from farebox.core.periods import Period, period_end, period_start
from farebox.core.singleflight import SingleFlight
from farebox.core.spend import BudgetStatus, Cap, CapRefused, CounterId, Limit, Owner, budget_status, caps_of, scope_of
from farebox.ledger.credits import Credits
from farebox.ledger.directory import Directory
from farebox.metering.counters import CounterStore, Holds, Reservation

__all__ = ["Budgets", "Caps"]

_MAX_CAP_SETS = 50_000
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
_DEFAULT_RATE = CreditRate()


@dataclass(slots=True)
class Caps:
    """The caps and the prepaid balance one key's requests are held to, and the timezone their periods run in."""

    key: VirtualKey
    caps: tuple[Cap, ...]
    tz: ZoneInfo
    loaded_at: float
    balance: Balance | None = None
    """The account's prepaid balance; None when the account holds no credits."""
    holds: Holds | None = None
    """The limits with their counters for the instants in `window` (kept by `Budgets`, which computes them)."""
    window: tuple[datetime, datetime] | None = None

    @property
    def limits(self) -> tuple[Limit, ...]:
        """Every limit on the key's requests: its caps, then the account's balance."""
        return self.caps if self.balance is None else (*self.caps, self.balance)


class Budgets:
    """Caps, balances, reservations and the spend they are checked against; one per process and ledger.

    Args:
        directory: where keys, members and accounts (and their caps) are read.
        counters: where spend and reservations are held.
        credits: where accounts' prepaid credits are read; None: no account's balance is held to.
        rate: credits per USD, for refusals that speak of credits.
        ttl: how long, in seconds, a key's caps and balance are used before they are read again.
        monotonic: the clock `ttl` is measured on.
    """

    def __init__(
        self,
        directory: Directory,
        counters: CounterStore,
        *,
        credits: Credits | None = None,
        rate: CreditRate = _DEFAULT_RATE,
        ttl: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._counters = counters
        self._credits = credits
        self.rate = rate
        self._ttl = ttl
        self._monotonic = monotonic
        self._caps: dict[str, Caps] = {}
        self._loads: SingleFlight[VirtualKey, Caps] = SingleFlight()
        self._windows: dict[tuple[Period, ZoneInfo], tuple[datetime, datetime, int]] = {}
        self.on_refused: list[Callable[[Cap], None]] = []
        """Called with the cap that refused a request (alerts send `budget.exceeded`)."""
        directory.on_change.append(self.reload)

    def reload(self) -> None:
        """Drop every key's caps and balance, to read them again for its next request (a change was made)."""
        self._caps.clear()

    async def caps_for(self, key: VirtualKey) -> Caps:
        """The caps on `key`'s requests (its own, its member's, its account's) and its account's prepaid balance
        (cached up to `ttl`)."""
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
        prepaid = None if self._credits is None else await self._credits.prepaid(account.id)
        balance = None if prepaid is None else Balance(account.id, account.name, prepaid.limit_nano, self.rate)
        caps = Caps(key, caps_of(owners), ZoneInfo(account.timezone), loaded_at, balance=balance)
        if len(self._caps) >= _MAX_CAP_SETS:
            self._caps.clear()
        self._caps[key.id] = caps
        return caps

    async def reserve(self, caps: Caps, amount_nano: int, *, at: datetime) -> Reservation | None:
        """Hold `amount_nano` against every cap and the balance, or none of them; None when no limit applies.

        Raises:
            CapRefused: a cap is spent, or cannot take `amount_nano` more (402, naming the cap).
            CreditsExhausted: the account's balance is empty, or cannot take `amount_nano` more (402).
        """
        if not caps.limits:
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
        """What the tightest limit, cap or balance, still allows (spent and reserved taken off, never below 0);
        None when no limit applies."""
        if not caps.limits:
            return None
        holds = self._holds(caps, at)
        standing = await self._counters.standing(holds.counters)
        lowest = holds.limits[0].limit_nano
        for limit, (spent, reserved) in zip(holds.limits, standing, strict=True):
            lowest = min(lowest, limit.limit_nano - spent - reserved)
        return max(0, lowest)

    async def reserved_credits(self, account_id: str) -> int:
        """What requests in flight hold on the account's balance (on its all-time spend counter), nano-USD."""
        ((_spent, reserved),) = await self._counters.standing([balance_counter(account_id)])
        return reserved

    async def status(self, owner: Owner, *, tz: ZoneInfo, now: datetime) -> BudgetStatus:
        """Where `owner`'s cap (or, without one, its spend) stands in its current cap period."""
        (status,) = await self.statuses([(owner, tz)], now=now)
        return status

    async def statuses(self, owners: Sequence[tuple[Owner, ZoneInfo]], *, now: datetime) -> list[BudgetStatus]:
        """Where each owner's cap (or, without one, its spend) stands in its current cap period, its account's
        timezone beside it; in order, from one read of the counters."""
        counters = [CounterId.of(scope_of(owner), owner.id, owner.cap_period, at=now, tz=tz) for owner, tz in owners]
        standing = await self._counters.standing(counters) if counters else []
        return [
            budget_status(
                (caps_of([owner]) or (None,))[0],
                period=owner.cap_period,
                tz=tz,
                now=now,
                spent_nano=spent,
                reserved_nano=reserved,
            )
            for (owner, tz), (spent, reserved) in zip(owners, standing, strict=True)
        ]

    def _holds(self, caps: Caps, at: datetime) -> Holds:
        """The limits with the counters of their periods that contain `at` (computed once per window of `caps`)."""
        window, holds = caps.window, caps.holds
        if holds is not None and window is not None and window[0] <= at < window[1]:
            return holds
        limits = caps.limits
        windows = [self._window(limit.period, caps.tz, at) for limit in limits]
        counters = tuple(
            CounterId(limit.scope, limit.owner_id, limit.period, start_s)
            for limit, (_, _, start_s) in zip(limits, windows, strict=True)
        )
        caps.holds = holds = Holds(limits, counters)
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
