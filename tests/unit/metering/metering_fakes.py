"""Fakes for the metering layer: a ledger that commits in memory and a directory of a few owners.

`MemoryLedger` does what the metering layer asks of the ledger (record, record many, counters read in
commit order, on-commit listeners) the way the SQL ledger does it, so the flow and the counter store are
tested without a database. The ledger contract suite tests the SQL ledger itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from farebox.core.events import RecordResult, UsageEvent
from farebox.core.owners import Account, Member, Plan, Role, VirtualKey
from farebox.core.periods import Period
from farebox.core.spend import CounterId, Scope
from farebox.errors import LedgerUnavailable, NotFound
from farebox.metering import Budgets, KeyCache, LocalCounters, Meter, UsageEvents
from farebox.prices import PriceBook

__all__ = ["JUNE_10", "USD", "MemoryLedger", "Owners", "account", "key", "member"]

USD = 1_000_000_000
JUNE_10 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
_COUNTED = (Period.DAILY, Period.WEEKLY, Period.MONTHLY, Period.TOTAL)


def account(
    *,
    cap_usd: Decimal | int | None = None,
    cap_nano: int | None = None,
    tz: str = "UTC",
    period: Period = Period.MONTHLY,
) -> Account:
    cap = cap_nano if cap_usd is None else int(Decimal(cap_usd) * USD)
    return Account("acct-1", "Acme", Plan.ENTERPRISE, tz, cap, period, 0, JUNE_10, JUNE_10)


def member(*, cap_usd: Decimal | int | None = None, period: Period = Period.MONTHLY) -> Member:
    cap = None if cap_usd is None else int(Decimal(cap_usd) * USD)
    return Member("mem-1", "acct-1", "lea@acme.test", "Lea", Role.ADMIN, cap, period, JUNE_10, JUNE_10)


def key(
    *, cap_usd: Decimal | int | None = None, member_id: str | None = "mem-1", period: Period = Period.MONTHLY
) -> VirtualKey:
    cap = None if cap_usd is None else int(Decimal(cap_usd) * USD)
    return VirtualKey(
        id="key-1",
        account_id="acct-1",
        member_id=member_id,
        name="ci-bot",
        display_prefix="fbx_sk_abc…",
        allowed_models=None,
        agent_id="agent-7",
        app="helpdesk",
        tags=("prod",),
        spend_cap_nano=cap,
        cap_period=period,
        expires_at=None,
        revoked_at=None,
        disabled_at=None,
        disabled_reason=None,
        created_at=JUNE_10,
        updated_at=JUNE_10,
    )


@dataclass
class MemoryLedger:
    """Records events in memory and counts their cost into spend counters, as one commit per call."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    events: dict[str, UsageEvent] = field(default_factory=dict)
    spent: dict[CounterId, int] = field(default_factory=dict)
    listeners: list[Callable[[Mapping[CounterId, int]], None]] = field(default_factory=list)
    fail: bool = False
    """When set, every commit fails as the writer reports it: `LedgerUnavailable`."""
    counter_reads: int = 0

    def on_commit(self, listener: Callable[[Mapping[CounterId, int]], None]) -> None:
        self.listeners.append(listener)

    async def record(self, event: UsageEvent) -> RecordResult:
        (result,) = await self.record_many([event])
        return result

    async def record_many(self, events: Sequence[UsageEvent]) -> list[RecordResult]:
        if self.fail:
            raise LedgerUnavailable("the ledger could not commit; nothing was recorded")
        results, added = [], {}
        for event in events:
            if event.id in self.events:
                results.append(RecordResult.DUPLICATE)
                continue
            self.events[event.id] = event
            results.append(RecordResult.RECORDED)
            for scope, owner_id in (
                (Scope.ACCOUNT, event.account_id),
                (Scope.MEMBER, event.member_id),
                (Scope.KEY, event.key_id),
            ):
                if owner_id is None or not event.cost_nano:
                    continue
                for period in _COUNTED:
                    counter = CounterId.of(scope, owner_id, period, at=event.timestamp, tz=self.tz)
                    added[counter] = added.get(counter, 0) + event.cost_nano
        for counter, amount in added.items():
            self.spent[counter] = self.spent.get(counter, 0) + amount
        for listener in self.listeners:
            listener(added)
        return results

    async def recorded_costs(self, event_ids: Sequence[str]) -> dict[str, int]:
        return {event_id: self.events[event_id].cost_nano for event_id in event_ids if event_id in self.events}

    async def counters(self, ids: Sequence[CounterId]) -> dict[CounterId, int]:
        self.counter_reads += 1
        return {counter: self.spent[counter] for counter in ids if counter in self.spent}

    async def load_counters(self, ids: Sequence[CounterId], *, apply: Callable[[dict[CounterId, int]], None]) -> None:
        self.counter_reads += 1
        apply({counter: self.spent.get(counter, 0) for counter in ids})


@dataclass
class Owners:
    """A directory of one account, one member and one key (the parts `Budgets` and `KeyCache` read)."""

    account: Account
    member: Member | None
    key: VirtualKey
    on_change: list[Callable[[], None]] = field(default_factory=list)

    def now(self) -> datetime:
        return JUNE_10

    async def get_account(self, account_id: str) -> Account:
        if account_id != self.account.id:
            raise NotFound(f"no account with id {account_id!r}", code="account_not_found")
        return self.account

    async def get_member(self, member_id: str) -> Member:
        if self.member is None or member_id != self.member.id:
            raise NotFound(f"no member with id {member_id!r}", code="member_not_found")
        return self.member

    async def authenticate(self, secret: str) -> VirtualKey:
        return self.key

    def meter(self, ledger: MemoryLedger, prices: PriceBook) -> Meter:
        """A meter over these owners and `ledger`, as `create_app` wires one."""
        directory: Any = self
        budgets = Budgets(directory, LocalCounters(ledger))  # type: ignore[arg-type]  # the fake ledger
        return Meter(ledger, UsageEvents(prices), keys=KeyCache(directory), budgets=budgets)  # type: ignore[arg-type]
