"""A prepaid balance in the metering flow: held under the cap rule, refused in credits, shown in credits.

The balance is one more limit on the account's all-time spend counter, so the counter store treats it as it
treats a cap; a `total` cap on the same counter shares one hold. Ingested usage (recorded, never reserved) may
overdraw it, and the next request is then refused.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from metering_fakes import JUNE_10, USD, MemoryLedger, Owners, account, key, member

from farebox.core.credits import Balance, CreditRate, CreditsExhausted, Prepaid, balance_counter
from farebox.core.events import Axis, UsageEvent
from farebox.core.periods import Period
from farebox.core.pricing import Usage
from farebox.core.spend import Cap, Scope
from farebox.metering import (
    Attribution,
    Budgets,
    Call,
    Holds,
    KeyCache,
    LocalCounters,
    Meter,
    Outcome,
    PriceTarget,
    UsageEvents,
)
from farebox.prices import PriceBook

pytestmark = pytest.mark.anyio

RATE = CreditRate()
TOTAL = balance_counter("acct-1")
GPT_4O = PriceTarget("openai", "gpt-4o")
WORST = Usage(input_tokens=1000, output_tokens=1000)
WORST_COST = 12_500_000  # 1,000 x $2.50/M + 1,000 x $10/M
USED = Usage(input_tokens=1000, output_tokens=100)
USED_COST = 3_500_000


class Granted:
    """The credits store as `Budgets` reads it: what the account was given, or None."""

    def __init__(self, granted_nano: int | None, *, opening_nano: int = 0) -> None:
        self.given = (
            None if granted_nano is None else Prepaid("acct-1", granted_nano, opening_nano, topped_up_at=JUNE_10)
        )

    async def prepaid(self, account_id: str) -> Prepaid | None:
        return self.given if account_id == "acct-1" else None


def spend(event_id: str, cost_nano: int) -> UsageEvent:
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
        key_id="key-1",
    )


def prepaid_meter(ledger: MemoryLedger, prices: PriceBook, credits: Granted, **owners: Any) -> Meter:
    directory: Any = Owners(owners.get("account", account()), member(), key())
    budgets = Budgets(directory, LocalCounters(ledger), credits=credits, rate=RATE)  # type: ignore[arg-type]
    return Meter(ledger, UsageEvents(prices), keys=KeyCache(directory), budgets=budgets)  # type: ignore[arg-type]


def call(number: int, at: datetime = JUNE_10) -> Call:
    async def abandoned() -> Outcome:
        return Outcome("mock", "gpt-4o", GPT_4O, "chat.completions", Axis.LLM, Usage())

    attribution = Attribution("acct-1", "key-1", "mem-1")
    return Call(f"req-{number}", at, key(), attribution, GPT_4O, "chat.completions", lambda: WORST, abandoned)


def used() -> Outcome:
    return Outcome("mock", "gpt-4o", GPT_4O, "chat.completions", Axis.LLM, USED)


async def test_a_total_cap_and_the_balance_on_one_counter_share_one_hold() -> None:
    store = LocalCounters(MemoryLedger())
    cap = Cap(Scope.ACCOUNT, "acct-1", "Acme", 10 * USD, Period.TOTAL)
    holds = Holds((cap, Balance("acct-1", "Acme", 5 * USD, RATE)), (TOTAL, TOTAL))
    held = await store.reserve(holds, 2 * USD)
    assert held.counters == (TOTAL,)
    assert await store.standing([TOTAL]) == [(0, 2 * USD)]  # held once, not once per limit
    with pytest.raises(CreditsExhausted):
        await store.reserve(holds, 4 * USD)  # the cap would take it, the balance cannot
    await store.release(held)
    assert await store.standing([TOTAL]) == [(0, 0)]


async def test_a_prepaid_request_holds_its_worst_case_on_the_balance_and_shows_what_is_left(prices: PriceBook) -> None:
    ledger = MemoryLedger()
    meter = prepaid_meter(ledger, prices, Granted(USD))
    ticket = await meter.open(call(1))
    async with ticket:
        assert ticket.prepaid
        assert await ticket.remaining(at=JUNE_10) == USD - WORST_COST
        await ticket.record(used())
        assert await ticket.remaining(at=JUNE_10) == USD - USED_COST


async def test_spend_from_before_the_first_top_up_does_not_draw_on_the_credits(prices: PriceBook) -> None:
    ledger = MemoryLedger()
    await ledger.record(spend("old", 7 * USD))  # the account's all-time spend when it was first topped up
    meter = prepaid_meter(ledger, prices, Granted(WORST_COST, opening_nano=7 * USD))
    async with await meter.open(call(1)) as ticket:
        assert await ticket.remaining(at=JUNE_10) == 0  # exactly one worst case fitted, and is held
        await ticket.record(used())
    with pytest.raises(CreditsExhausted, match=r"may cost up to 250 credits \(0.0125 USD\), and account 'Acme' has"):
        await meter.open(call(2))


async def test_an_account_without_credits_is_not_held_to_a_balance(prices: PriceBook) -> None:
    meter = prepaid_meter(MemoryLedger(), prices, Granted(None))
    async with await meter.open(call(1)) as ticket:
        assert not ticket.prepaid
        assert await ticket.remaining(at=JUNE_10) is None


async def test_ingested_usage_may_overdraw_the_balance_and_the_next_request_is_refused(prices: PriceBook) -> None:
    ledger = MemoryLedger()
    meter = prepaid_meter(ledger, prices, Granted(USD))
    refused: list[Cap] = []
    meter.budgets.on_refused.append(refused.append)
    async with await meter.open(call(1)) as ticket:
        await ticket.record(used())
    await meter.record_many([spend("voice-minutes", 2 * USD)])  # it happened: recorded, never refused
    with pytest.raises(CreditsExhausted) as error:
        await meter.open(call(2))
    assert error.value.message == "credits exhausted: account 'Acme' has no prepaid credits left; top up to continue"
    assert refused == []  # `budget.exceeded` is for caps
    assert meter.in_flight.count == 0


async def test_parallel_requests_cannot_draw_the_balance_below_zero(prices: PriceBook) -> None:
    ledger = MemoryLedger()
    meter = prepaid_meter(ledger, prices, Granted(4 * WORST_COST + WORST_COST // 2))
    started = asyncio.Event()

    async def request(number: int) -> bool:
        try:
            async with await meter.open(call(number)) as ticket:
                await started.wait()
                await ticket.record(Outcome("mock", "gpt-4o", GPT_4O, "chat.completions", Axis.LLM, WORST))
        except CreditsExhausted:
            return False
        return True

    tasks = [asyncio.create_task(request(number)) for number in range(32)]
    await asyncio.sleep(0)
    started.set()
    assert (await asyncio.gather(*tasks)).count(True) == 4
    assert sum(event.cost_nano for event in ledger.events.values()) == 4 * WORST_COST


async def test_a_capped_prepaid_key_is_held_to_the_tighter_of_its_cap_and_the_balance(prices: PriceBook) -> None:
    ledger = MemoryLedger()
    directory: Any = Owners(account(), member(), key(cap_usd=1))
    budgets = Budgets(directory, LocalCounters(ledger), credits=Granted(10 * USD), rate=RATE)  # type: ignore[arg-type]
    caps = await budgets.caps_for(directory.key)
    assert [limit.scope for limit in caps.limits] == [Scope.KEY, Scope.ACCOUNT]
    assert await budgets.remaining(caps, at=JUNE_10) == USD  # the key's cap is tighter than the balance
    await ledger.record(spend("e1", USD // 2))
    assert await budgets.reserved_credits("acct-1") == 0
    held = await budgets.reserve(caps, USD // 4, at=JUNE_10)
    assert await budgets.reserved_credits("acct-1") == USD // 4
    await budgets.release(held)
