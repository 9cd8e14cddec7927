"""Voids made by another process reach this one's caps: the counter store forgets, and reads again, exactly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from metering_fakes import JUNE_10, MemoryLedger, Owners, account, key, member

from farebox.core.events import Axis, UsageEvent
from farebox.core.periods import Period
from farebox.core.spend import Cap, CapRefused, CounterId, Scope
from farebox.metering import Budgets, Holds, LocalCounters, VoidWatch

pytestmark = pytest.mark.anyio

KEY = CounterId.of(Scope.KEY, "key-1", Period.MONTHLY, at=JUNE_10, tz=ZoneInfo("UTC"))
CAPPED = Holds((Cap(Scope.KEY, "key-1", "ci-bot", 100, Period.MONTHLY),), (KEY,))


def spend(cost_nano: int) -> UsageEvent:
    return UsageEvent(
        id="e-1",
        timestamp=JUNE_10,
        account_id="acct-1",
        axis=Axis.LLM,
        provider="openai",
        model="gpt-4o",
        canonical_model="gpt-4o",
        operation="chat.completions",
        cost_nano=cost_nano,
        key_id="key-1",
    )


def void_elsewhere(ledger: MemoryLedger, amount: int) -> None:
    """What another process's void does to the ledger: this process hears nothing of it."""
    ledger.spent[KEY] -= amount


@dataclass
class GatedLedger(MemoryLedger):
    """Reads counters at once but hands them over only when the test opens the gate."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    reading: asyncio.Event = field(default_factory=asyncio.Event)

    async def load_counters(self, ids: Sequence[CounterId], *, apply: Callable[[dict[CounterId, int]], None]) -> None:
        self.counter_reads += 1
        found = {counter: self.spent.get(counter, 0) for counter in ids}
        self.reading.set()
        await self.gate.wait()
        apply(found)


@dataclass
class Counted:
    """The part of `Adjustments` the watch reads: how many adjustments the ledger holds."""

    adjustments: int = 0

    async def count(self) -> int:
        return self.adjustments


async def test_after_forget_a_counter_is_read_again_and_reservations_stay_held() -> None:
    ledger = MemoryLedger()
    await ledger.record(spend(90))
    store = LocalCounters(ledger)
    held = await store.reserve(CAPPED, 5)
    void_elsewhere(ledger, 90)
    with pytest.raises(CapRefused):
        await store.reserve(CAPPED, 20)  # this process still holds the 90 it read

    store.forget()

    assert await store.standing([KEY]) == [(0, 5)]
    await store.reserve(CAPPED, 90)  # 0 spent + 5 held + 90 fits under 100 ...
    with pytest.raises(CapRefused):
        await store.reserve(CAPPED, 6)  # ... and the first hold still counts
    await store.release(held)


async def test_a_read_begun_before_forget_is_dropped_when_it_arrives() -> None:
    ledger = GatedLedger()
    await ledger.record(spend(90))
    store = LocalCounters(ledger)
    reserving = asyncio.ensure_future(store.reserve(CAPPED, 20))
    await ledger.reading.wait()  # the read saw 90 ...
    void_elsewhere(ledger, 90)  # ... then the void committed elsewhere and the watch heard of it
    store.forget()
    ledger.gate.set()

    reservation = await reserving  # read again: 0 spent, 20 fits

    assert reservation.amount_nano == 20
    assert ledger.counter_reads == 2
    assert await store.standing([KEY]) == [(0, 20)]


async def test_the_watch_forgets_on_its_first_check_and_whenever_the_adjustments_change() -> None:
    ledger = MemoryLedger()
    await ledger.record(spend(90))
    store = LocalCounters(ledger)
    counted = Counted()
    watch = VoidWatch(counted, store)  # type: ignore[arg-type]  # the count is all it reads
    await store.release(await store.reserve(CAPPED, 1))

    checks = [await watch.check(), await watch.check()]
    void_elsewhere(ledger, 90)
    counted.adjustments += 1
    checks += [await watch.check(), await watch.check()]

    assert checks == [True, False, True, False]
    assert await store.standing([KEY]) == [(0, 0)]


async def test_the_watch_also_makes_budgets_read_caps_and_balances_again() -> None:
    """A void of usage from before an account's first top-up moves its balance's opening: caps are read again too."""
    ledger = MemoryLedger()
    store = LocalCounters(ledger)
    directory: Any = Owners(account(), member(), key(cap_usd=1))
    budgets = Budgets(directory, store, ttl=3600)
    counted = Counted()
    watch = VoidWatch(counted, store, budgets=budgets)  # type: ignore[arg-type]  # the count is all it reads
    await watch.check()
    before = await budgets.caps_for(directory.key)
    assert await budgets.caps_for(directory.key) is before  # cached
    counted.adjustments += 1
    await watch.check()
    assert await budgets.caps_for(directory.key) is not before
