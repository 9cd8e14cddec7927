"""Fill a ledger with the demo month: the cast in the directory, then the month's events through the metering path.

`plan` checks what was asked before anything is written; `fill` refuses a ledger that already has accounts
(unless forced), creates the accounts, members (with an API token for each owner), workloads (its agents and
plain VMs, named) and keys, records the
events in large batches with `Ledger.record_many` (the rollups, daily cubes and spend counters follow, as for
every batch), and last sets the capped keys' monthly caps from what they spent in the window's last month.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from farebox.core.events import RecordResult
from farebox.core.owners import Account, Member, Role, VirtualKey
from farebox.core.periods import Period
from farebox.core.pricing import Usage
from farebox.demo.cast import CAST, CapLevel, WorkloadSpec, model_spec, workload_ids
from farebox.demo.rhythm import Window, vm_stretches
from farebox.demo.traffic import BoundAccount, BoundKey, Budget, Incident, Tally, Traffic
from farebox.errors import Conflict, InvalidRequest
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.member_tokens import MemberTokens
from farebox.ledger.workloads import Workloads
from farebox.metering import Attribution, UsageEvents
from farebox.prices import PriceBook

__all__ = ["BATCH", "Made", "MadeAccount", "MadeKey", "MadeMember", "MadeWorkload", "fill", "plan", "unpriced"]

BATCH = 5_000
"""Events per `record_many` (whole hours of traffic, so a little more)."""
_NANO_PER_CENT = 10_000_000
_CAP_USED = {CapLevel.NEAR: (0.85, 0.97), CapLevel.COMFORTABLE: (0.4, 0.6)}
_VM_SIZES = ("vm-small", "vm-medium", "vm-large")


@dataclass(frozen=True, slots=True)
class MadeMember:
    member: Member
    token: str | None
    """The secret of the API token made for an owner (shown once); None for the other roles."""


@dataclass(frozen=True, slots=True)
class MadeKey:
    key: VirtualKey
    secret: str
    owner: Member
    last_month_nano: int
    """What it spent in its account's calendar month of the window's last day (what its monthly cap counts)."""


@dataclass(frozen=True, slots=True)
class MadeWorkload:
    spec: WorkloadSpec
    id: str


@dataclass(slots=True)
class MadeAccount:
    account: Account
    members: list[MadeMember] = field(default_factory=list)
    keys: list[MadeKey] = field(default_factory=list)
    workloads: list[MadeWorkload] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Made:
    """What `fill` made: the directory's new objects, the events' tally, the two incidents, and how long it took."""

    window: Window
    seed: int
    accounts: list[MadeAccount]
    tally: Tally
    budget: Budget
    leak: Incident
    runaway: Incident
    seconds: float


def plan(*, events: int, days: int, end: date, now: datetime) -> tuple[Window, Budget]:
    """The window and how its events split.

    Raises:
        InvalidRequest: `end` is after today (UTC), or too few events for the VM hours of so many days (half of
            them must be LLM calls).
    """
    if end > now.astimezone(UTC).date():
        raise InvalidRequest(f"the last day {end} is after today ({now.astimezone(UTC).date()}, UTC)")
    window = Window.ending(end, days=days, now=now)
    stretches = sum(
        len(vm_stretches(workload, window, ZoneInfo(account.timezone)))
        for account in CAST
        for workload in account.workloads
    )
    budget = Budget.of(events, stretches=stretches)
    if budget.llm < events // 2:
        least = 2 * (budget.compute + budget.voice + budget.spike + budget.runaway)
        raise InvalidRequest(f"{events:,} events are too few for {days} days of VM hours: give at least {least:,}")
    return window, budget


def unpriced(prices: PriceBook, *, at: datetime) -> list[str]:
    """The demo's models (and VM meters) the price book does not price, as `provider/model (operation)`."""
    wanted: set[tuple[str | None, str, str]] = {
        (s.provider, s.model, s.operation) for s in map(model_spec, _model_names())
    }
    wanted |= {(None, size, f"compute.vm.{state}") for size in _VM_SIZES for state in ("running", "paused")}
    usage = Usage(input_tokens=1)
    return sorted(
        f"{provider or '*'}/{model} ({operation})"
        for provider, model, operation in wanted
        if not prices.price(provider=provider, model=model, operation=operation, usage=usage, at=at).priced
    )


def _model_names() -> set[str]:
    names = {"claude-opus-4-1", "gpt-4o"}  # the leaked key's hour
    for account in CAST:
        for key in account.keys:
            names |= {model for model, _ in key.models} | {model for model, _ in key.voice}
    return names


async def _cast(directory: Directory, *, seed: int) -> tuple[list[MadeAccount], list[BoundAccount]]:
    """The accounts, members, owners' tokens and keys, created in the directory."""
    ids = workload_ids(seed)
    tokens = MemberTokens(directory)
    registry = Workloads(directory)
    made, bound = [], []
    for spec in CAST:
        account = await directory.create_account(name=spec.name, plan=spec.plan, timezone=spec.timezone)
        entry = MadeAccount(account)
        by_email: dict[str, Member] = {}
        for person in spec.members:
            member = await directory.create_member(account.id, email=person.email, name=person.name, role=person.role)
            by_email[member.email] = member
            secret = None
            if person.role is Role.OWNER:
                _, secret = await tokens.create(member.id, name="demo")
            entry.members.append(MadeMember(member, secret))
        workloads = {workload.name: ids[(spec.name, workload.name)] for workload in spec.workloads}
        entry.workloads = [MadeWorkload(workload, workloads[workload.name]) for workload in spec.workloads]
        for workload in spec.workloads:
            await registry.set(account.id, workloads[workload.name], name=workload.name, kind=workload.kind)
        keys = []
        for key_spec in spec.keys:
            owner = by_email[key_spec.owner]
            agent_id = workloads[key_spec.agent] if key_spec.agent else None
            key, secret = await directory.create_key(
                account.id, member_id=owner.id, name=key_spec.name, app=key_spec.app, agent_id=agent_id
            )
            keys.append(
                BoundKey(key_spec, key.id, owner.id, Attribution(account.id, key.id, owner.id, agent_id, key.app))
            )
            entry.keys.append(MadeKey(key, secret, owner, 0))
        made.append(entry)
        bound.append(BoundAccount(spec, account.id, tuple(keys), workloads))
    return made, bound


async def _record(ledger: Ledger, traffic: Traffic, *, progress: Callable[[int], None]) -> None:
    """Record every batch, one after the other.

    Building the next batch while the writer thread commits one gained nothing measurable: both hold the GIL
    for most of their work, and the writer then waits for it after each statement.
    """
    for batch in traffic.batches(BATCH):
        results = await ledger.record_many(batch)
        if any(result is not RecordResult.RECORDED for result in results):
            raise Conflict("a demo event id was already in the ledger", code="duplicate_event")
        progress(len(batch))


async def _set_caps(directory: Directory, made: list[MadeAccount], tally: Tally, *, seed: int) -> None:
    """Cap the capped keys monthly so that what they spent in the last month is near the cap, or well under it."""
    rng = random.Random(f"caps-{seed}")
    for entry, spec in zip(made, CAST, strict=True):
        for index, (made_key, key_spec) in enumerate(zip(entry.keys, spec.keys, strict=True)):
            spent = tally.last_month_nano.get(made_key.key.id, 0)
            key = made_key.key
            if key_spec.cap is not None:
                used = rng.uniform(*_CAP_USED[key_spec.cap])
                cents = max(1, -(-int(spent / used) // _NANO_PER_CENT))
                key = await directory.update_key(
                    key.id, spend_cap_nano=cents * _NANO_PER_CENT, cap_period=Period.MONTHLY
                )
            entry.keys[index] = MadeKey(key, made_key.secret, made_key.owner, spent)


async def fill(
    ledger: Ledger,
    *,
    prices: PriceBook,
    events: int,
    days: int,
    seed: int,
    end: date,
    force: bool = False,
    progress: Callable[[int], None] = lambda done: None,
) -> Made:
    """Write the demo month into the ledger; what was made.

    Raises:
        Conflict: the ledger already has accounts and `force` is not set (nothing is written).
        InvalidRequest: too few events for the window (`plan`; nothing is written).
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    directory = Directory(ledger)
    window, _ = plan(events=events, days=days, end=end, now=directory.now())
    if not force and await directory.list_accounts():
        raise Conflict(
            "the ledger already has accounts: the demo fills an empty ledger (--force adds it anyway)",
            code="ledger_not_empty",
        )
    made, bound = await _cast(directory, seed=seed)
    run = uuid.uuid4().hex[:8]
    traffic = Traffic(bound, window=window, total=events, seed=seed, run=run, events=UsageEvents(prices))
    await _record(ledger, traffic, progress=progress)
    await _set_caps(directory, made, traffic.tally, seed=seed)
    seconds = loop.time() - started
    return Made(window, seed, made, traffic.tally, traffic.budget, traffic.leak, traffic.runaway, seconds)
