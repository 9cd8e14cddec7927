"""The in-process counter store: all-or-none holds, exact spend from commits, bounded memory."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from metering_fakes import JUNE_10, MemoryLedger

from farebox.core.events import Axis, UsageEvent
from farebox.core.periods import Period
from farebox.core.spend import Cap, CapRefused, CounterId, Scope
from farebox.metering import Holds, LocalCounters

pytestmark = pytest.mark.anyio

UTC_ZONE = ZoneInfo("UTC")


def counter(scope: Scope, owner_id: str, period: Period = Period.MONTHLY) -> CounterId:
    return CounterId.of(scope, owner_id, period, at=JUNE_10, tz=UTC_ZONE)


def cap(scope: Scope, owner_id: str, cap_nano: int, period: Period = Period.MONTHLY) -> Cap:
    return Cap(scope, owner_id, owner_id, cap_nano, period)


def holding(*pairs: tuple[Cap, CounterId]) -> Holds:
    return Holds(tuple(cap for cap, _ in pairs), tuple(counter for _, counter in pairs))


def spend(event_id: str, cost_nano: int, *, key_id: str = "key-1") -> UsageEvent:
    return UsageEvent(
        id=event_id,
        timestamp=JUNE_10,
        account_id="acct-1",
        axis=Axis.LLM,
        provider="openai",
        model="gpt-4o",
        canonical_model="gpt-4o",
        operation="chat.completions",
        cost_nano=cost_nano,
        key_id=key_id,
    )


KEY, ACCOUNT = counter(Scope.KEY, "key-1"), counter(Scope.ACCOUNT, "acct-1")


async def test_a_hold_is_taken_on_every_counter_or_on_none() -> None:
    ledger = MemoryLedger()
    store = LocalCounters(ledger)
    holds = holding((cap(Scope.KEY, "key-1", 100), KEY), (cap(Scope.ACCOUNT, "acct-1", 30), ACCOUNT))
    first = await store.reserve(holds, 20)
    with pytest.raises(CapRefused) as refused:
        await store.reserve(holds, 20)  # fits the key's 100, not the account's 30
    assert refused.value.cap.scope is Scope.ACCOUNT
    assert await store.standing([KEY, ACCOUNT]) == [(0, 20), (0, 20)]  # the refused hold left nothing behind
    await store.release(first)
    await store.release(first)  # a second release gives nothing back twice
    assert await store.standing([KEY, ACCOUNT]) == [(0, 0), (0, 0)]


async def test_commits_add_to_the_counters_it_holds_and_a_spent_cap_refuses_even_a_free_request() -> None:
    ledger = MemoryLedger()
    store = LocalCounters(ledger)
    holds = holding((cap(Scope.KEY, "key-1", 100), KEY))
    held = await store.reserve(holds, 60)
    await ledger.record(spend("e1", 60))  # the request's true cost commits ...
    assert await store.standing([KEY]) == [(60, 60)]  # ... and counts twice until it is released
    await store.release(held)
    await ledger.record(spend("e2", 40))  # ingested usage moves the counter too
    assert await store.standing([KEY]) == [(100, 0)]
    with pytest.raises(CapRefused, match="is spent for this period"):
        await store.reserve(holds, 0)


async def test_a_counter_is_read_once_then_kept_by_the_commits() -> None:
    ledger = MemoryLedger()
    await ledger.record(spend("before", 25))
    store = LocalCounters(ledger)
    holds = holding((cap(Scope.KEY, "key-1", 100), KEY))
    for _ in range(5):
        await store.release(await store.reserve(holds, 10))
    await ledger.record(spend("after", 5))
    assert ledger.counter_reads == 1
    assert await store.standing([KEY]) == [(30, 0)]


async def test_standing_reads_a_counter_no_request_needed_without_keeping_it() -> None:
    ledger = MemoryLedger()
    await ledger.record(spend("e1", 7, key_id="key-2"))
    store = LocalCounters(ledger)
    other = counter(Scope.KEY, "key-2")
    assert await store.standing([other]) == [(7, 0)]
    assert await store.standing([other]) == [(7, 0)]
    assert ledger.counter_reads == 2  # read each time: a status read does not make the store hold it


async def test_a_new_period_starts_from_nothing() -> None:
    ledger = MemoryLedger()
    await ledger.record(spend("may", 90))
    store = LocalCounters(ledger)
    july = CounterId.of(Scope.KEY, "key-1", Period.MONTHLY, at=JUNE_10 + timedelta(days=30), tz=UTC_ZONE)
    assert july != KEY
    await store.reserve(holding((cap(Scope.KEY, "key-1", 100), july)), 100)


async def test_concurrent_holds_never_overcommit_a_cap() -> None:
    store = LocalCounters(MemoryLedger())
    holds = holding((cap(Scope.ACCOUNT, "acct-1", 1_000), ACCOUNT))

    async def take() -> bool:
        try:
            await store.reserve(holds, 300)
        except CapRefused:
            return False
        return True

    assert (await asyncio.gather(*(take() for _ in range(10)))).count(True) == 3


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["hold", "commit", "release"]), st.integers(0, 400)), max_size=40))
def test_spent_and_held_never_pass_the_cap_whatever_the_order(steps: list[tuple[str, int]]) -> None:
    limit = 1_000

    async def run() -> None:
        ledger = MemoryLedger()
        store = LocalCounters(ledger)
        holds = holding((cap(Scope.KEY, "key-1", limit), KEY))
        open_holds = []
        for number, (action, amount) in enumerate(steps):
            if action == "hold":
                try:
                    open_holds.append((await store.reserve(holds, amount), amount))
                except CapRefused:
                    pass
                else:
                    ((spent, reserved),) = await store.standing([KEY])
                    assert spent + reserved <= limit
            elif open_holds:
                reservation, held = open_holds.pop(0)
                if action == "commit":  # settle to a true cost at most the worst case held
                    await ledger.record(spend(f"e{number}", held // 2))
                await store.release(reservation)
        ((spent, reserved),) = await store.standing([KEY])
        assert reserved == sum(held for _, held in open_holds)
        assert spent == sum(event.cost_nano for event in ledger.events.values())

    asyncio.run(run())
