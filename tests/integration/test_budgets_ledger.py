"""Budgets against a real ledger (SQLite and PostgreSQL): counters read once and kept exact by commits,
period resets, reservations, refusals and the budget status figures."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

if TYPE_CHECKING:
    from tests.conftest import WriterGate

from farebox.analytics.budget_schemas import budget_out
from farebox.core.events import Axis, UsageEvent
from farebox.core.money import NANO_PER_USD
from farebox.core.owners import Account, Member, VirtualKey
from farebox.core.periods import Period, period_end
from farebox.errors import BudgetExceeded
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.metering import Budgets, LocalCounters

pytestmark = pytest.mark.anyio

USD = NANO_PER_USD
JUNE_10 = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


def spend(key: VirtualKey, cost_nano: int, *, at: datetime = JUNE_10) -> UsageEvent:
    return UsageEvent(
        id=f"evt-{uuid.uuid4().hex}",
        timestamp=at,
        account_id=key.account_id,
        key_id=key.id,
        member_id=key.member_id,
        axis=Axis.LLM,
        provider="openai",
        model="gpt-4o",
        canonical_model="gpt-4o",
        operation="chat.completions",
        cost_nano=cost_nano,
    )


async def capped_key(directory: Directory, *, cap_usd: int = 10, period: Period = Period.MONTHLY) -> VirtualKey:
    account = await directory.create_account(name="acme", timezone="Europe/Paris")
    key, _secret = await directory.create_key(account.id, name="prod", spend_cap_nano=cap_usd * USD, cap_period=period)
    return key


async def test_spend_before_the_first_request_and_after_it_is_counted_exactly_once(
    ledger: Ledger, writer_gate: type[WriterGate]
) -> None:
    directory = Directory(ledger, clock=lambda: JUNE_10)
    budgets = Budgets(directory, LocalCounters(ledger))
    key = await capped_key(directory)
    await ledger.record(spend(key, 2 * USD))  # before budgets ever read the counter
    caps = await budgets.caps_for(key)
    # The counter's first read shares a writer transaction with new events: counted once, not twice.
    async with writer_gate(ledger):
        racing = asyncio.ensure_future(ledger.record(spend(key, 3 * USD)))
        held = asyncio.ensure_future(budgets.reserve(caps, 1 * USD, at=JUNE_10))
    await racing
    reservation = await held
    assert await budgets.remaining(caps, at=JUNE_10) == 10 * USD - 2 * USD - 3 * USD - 1 * USD
    await ledger.record(spend(key, 1 * USD))  # commits after the read are added as they commit
    await budgets.release(reservation)
    await budgets.release(reservation)  # a second release gives nothing back twice
    assert await budgets.remaining(caps, at=JUNE_10) == 4 * USD
    assert await directory.spend(key) == 6 * USD  # the ledger agrees


async def test_a_request_that_does_not_fit_is_refused_and_reserves_nothing(ledger: Ledger) -> None:
    directory = Directory(ledger)
    budgets = Budgets(directory, LocalCounters(ledger))
    key = await capped_key(directory, cap_usd=1)
    caps = await budgets.caps_for(key)
    first = await budgets.reserve(caps, 600_000_000, at=JUNE_10)
    with pytest.raises(BudgetExceeded) as refused:
        await budgets.reserve(caps, 600_000_000, at=JUNE_10)
    assert refused.value.status == 402 and refused.value.code == "budget_exceeded"
    assert "monthly spend cap of key 'prod' (1.00 USD)" in refused.value.message
    assert "0.40 USD remaining" in refused.value.message
    assert await budgets.remaining(caps, at=JUNE_10) == 400_000_000
    await budgets.release(first)
    await ledger.record(spend(key, USD))  # exactly the cap: spent, so even a free request is refused
    with pytest.raises(BudgetExceeded, match="is spent for this period"):
        await budgets.reserve(caps, 0, at=JUNE_10)


async def test_caps_reset_at_the_period_boundary_in_the_account_timezone(ledger: Ledger) -> None:
    directory = Directory(ledger)
    budgets = Budgets(directory, LocalCounters(ledger))
    key = await capped_key(directory, cap_usd=1, period=Period.DAILY)
    caps = await budgets.caps_for(key)
    before_midnight = datetime(2025, 6, 10, 21, 59, tzinfo=UTC)  # 23:59 in Paris
    await ledger.record(spend(key, USD, at=before_midnight))
    with pytest.raises(BudgetExceeded):
        await budgets.reserve(caps, 1, at=before_midnight)
    after_midnight = before_midnight + timedelta(minutes=1)  # 00:00 on 11 June in Paris: a new day
    assert await budgets.reserve(caps, USD, at=after_midnight) is not None


async def test_member_and_account_caps_apply_to_a_key_and_a_change_is_seen_at_once(ledger: Ledger) -> None:
    directory = Directory(ledger)
    budgets = Budgets(directory, LocalCounters(ledger), ttl=3600)
    account = await directory.create_account(name="acme", spend_cap_nano=5 * USD, cap_period=Period.WEEKLY)
    member = await directory.create_member(account.id, email="ada@example.com", name="Ada", spend_cap_nano=3 * USD)
    key, _ = await directory.create_key(account.id, member_id=member.id, name="k")
    caps = await budgets.caps_for(key)
    assert {(cap.scope, cap.cap_nano, cap.period) for cap in caps.caps} == {
        ("member", 3 * USD, Period.MONTHLY),
        ("account", 5 * USD, Period.WEEKLY),
    }
    await directory.update_member(member.id, spend_cap_nano=None)
    assert {cap.scope for cap in (await budgets.caps_for(key)).caps} == {"account"}


async def test_requests_that_find_the_caps_stale_together_share_one_read(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = Directory(ledger)
    budgets = Budgets(directory, LocalCounters(ledger))
    account = await directory.create_account(name="acme", spend_cap_nano=5 * USD)
    member = await directory.create_member(account.id, email="ada@example.com", name="Ada", spend_cap_nano=3 * USD)
    key, _ = await directory.create_key(account.id, member_id=member.id, name="k", spend_cap_nano=USD)
    reads: list[str] = []
    get_account, get_member = directory.get_account, directory.get_member

    async def counted_account(account_id: str) -> Account:
        reads.append(account_id)
        return await get_account(account_id)

    async def counted_member(member_id: str) -> Member:
        reads.append(member_id)
        return await get_member(member_id)

    monkeypatch.setattr(directory, "get_account", counted_account)
    monkeypatch.setattr(directory, "get_member", counted_member)
    found = await asyncio.gather(*(budgets.caps_for(key) for _ in range(32)))
    assert sorted(reads) == sorted([account.id, member.id])
    assert all(caps is found[0] for caps in found)
    assert [cap.scope for cap in found[0].caps] == ["key", "member", "account"]


async def test_status_projects_the_period_from_the_spend_so_far(ledger: Ledger) -> None:
    directory = Directory(ledger)
    budgets = Budgets(directory, LocalCounters(ledger))
    key = await capped_key(directory, cap_usd=100)
    paris = ZoneInfo("Europe/Paris")
    june_start = datetime(2025, 5, 31, 22, 0, tzinfo=UTC)  # 1 June 00:00 in Paris
    await ledger.record(spend(key, 30 * USD, at=june_start + timedelta(days=1)))
    now = june_start + timedelta(days=10)  # a third of June gone, 30 USD spent: 90 USD projected
    status = await budgets.status(key, tz=paris, now=now)
    shown = budget_out(key, status).model_dump()
    assert shown["cap"] == "100.00" and shown["spent"] == "30.00" and shown["remaining"] == "70.00"
    assert shown["utilization"] == "0.3000"
    assert shown["projected_period_spend"] == "90.00" and shown["on_track"] is True
    assert shown["average_daily_spend"] == "3.00"
    assert shown["days_remaining"] == 20
    assert shown["period_start"] == june_start.isoformat()
    assert period_end(Period.MONTHLY, start=june_start, tz=paris) == datetime(2025, 6, 30, 22, 0, tzinfo=UTC)
