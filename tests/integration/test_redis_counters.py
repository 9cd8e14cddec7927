"""Spend counters shared through a real Redis by several ledgers on one real PostgreSQL database, as several
farebox processes share them: caps hold across the processes, the spend in Redis equals the ledger's whatever
the order of seeds and commits, a dead process's holds are dropped, and Redis going away refuses capped
requests without losing a commit.

Two `Ledger`s on one database are two writers, each with its own `RedisCounters`, as two processes have."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from capped_keys import capped_key, total_counter
from farebox.core.events import UsageEvent
from farebox.core.money import NANO_PER_USD
from farebox.core.owners import VirtualKey
from farebox.core.spend import CounterId
from farebox.errors import BudgetExceeded
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.metering import Budgets
from farebox.metering.redis_counters import CountersUnavailable, RedisCounters

if TYPE_CHECKING:
    from tests.conftest import EventFactory

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

USD = NANO_PER_USD
NOW = datetime.now(UTC)


@dataclass
class Process:
    """What one farebox process holds of the shared counters: its ledger, its store and its budgets."""

    ledger: Ledger
    counters: RedisCounters
    budgets: Budgets
    directory: Directory


@pytest.fixture
async def processes(pg_ledger_url: str, redis_url: str) -> AsyncIterator[list[Process]]:
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    started: list[Process] = []
    try:
        for _ in range(2):
            ledger = Ledger(pg_ledger_url)
            await ledger.start()
            counters = RedisCounters(ledger, redis_url, prefix=prefix)
            directory = Directory(ledger)
            started.append(Process(ledger, counters, Budgets(directory, counters), directory))
        yield started
    finally:
        for process in started:
            await process.counters.aclose()
            await process.ledger.close()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


Spend = Callable[[VirtualKey, int], UsageEvent]


@pytest.fixture
def spend(make_event: EventFactory) -> Spend:
    """`spend(key, cost_nano)`: a usage event of the key, now."""

    def event(key: VirtualKey, cost_nano: int) -> UsageEvent:
        return make_event(
            timestamp=NOW, account_id=key.account_id, key_id=key.id, member_id=key.member_id, cost_nano=cost_nano
        )

    return event


async def shared_spent(process: Process, key: VirtualKey) -> int:
    """The key's spend as Redis holds it (None when the key is not seeded)."""
    value = await process.counters._client.get(process.counters._spent_key(total_counter(key)))
    assert value is not None, "the counter is not in Redis"
    return int(value)


async def test_two_processes_racing_for_one_cap_never_spend_past_it(processes: list[Process], spend: Spend) -> None:
    a, b = processes
    key = await capped_key(a.directory, cap_nano=25 * USD)
    refused = 0

    async def request(process: Process, n: int) -> None:
        nonlocal refused
        caps = await process.budgets.caps_for(key)
        try:
            reservation = await process.budgets.reserve(caps, 2 * USD, at=NOW)
        except BudgetExceeded:
            refused += 1
            return
        await asyncio.sleep(0.01 * (n % 5))  # the upstream's time
        await process.ledger.record(spend(key, 2 * USD - n % 3))  # the true cost, a little under the worst case
        await process.budgets.release(reservation)

    await asyncio.gather(*(request(processes[n % 2], n) for n in range(64)))
    spent = await a.directory.spend(key)
    assert refused > 0
    assert 20 * USD < spent <= 25 * USD
    assert await shared_spent(a, key) == await shared_spent(b, key) == spent
    assert await a.counters.standing([total_counter(key)]) == [(spent, 0)]


async def test_a_counter_seeded_while_another_process_commits_counts_that_commit_once(
    processes: list[Process], spend: Spend
) -> None:
    a, b = processes
    key = await capped_key(a.directory, cap_nano=100 * USD)
    await b.ledger.record(spend(key, 3 * USD))  # spent before Redis knew the counter
    # B's next commit stops after adding to Redis (the key is not there yet, so nothing is added) and before
    # committing, its counter row locked.
    in_commit, go_on = threading.Event(), threading.Event()

    def hold(added: Mapping[CounterId, int]) -> None:
        in_commit.set()
        assert go_on.wait(10)

    b.ledger.before_commit(hold)
    committing = asyncio.ensure_future(b.ledger.record(spend(key, 5 * USD)))
    assert await asyncio.to_thread(in_commit.wait, 10)
    caps = await a.budgets.caps_for(key)
    seeding = asyncio.ensure_future(a.budgets.reserve(caps, 1 * USD, at=NOW))
    await asyncio.sleep(0.5)
    assert not seeding.done(), "the seed read the counter without waiting for the commit that holds it"
    go_on.set()
    await committing
    reservation = await seeding
    assert await shared_spent(a, key) == 8 * USD == await a.directory.spend(key)
    await b.ledger.record(spend(key, 2 * USD))  # after the seed: added to Redis by B's commit
    await a.budgets.release(reservation)
    assert await a.counters.standing([total_counter(key)]) == [(10 * USD, 0)]


async def test_the_holds_of_a_process_that_stopped_saying_it_is_alive_are_dropped(processes: list[Process]) -> None:
    a, b = processes
    key = await capped_key(a.directory, cap_nano=10 * USD)
    await a.budgets.reserve(await a.budgets.caps_for(key), 9 * USD, at=NOW)  # A dies holding it
    caps = await b.budgets.caps_for(key)
    with pytest.raises(BudgetExceeded):
        await b.budgets.reserve(caps, 2 * USD, at=NOW)
    await b.counters._client.hset(b.counters._live, a.counters.process, 0)  # A's last word is long past
    reservation = await b.budgets.reserve(caps, 10 * USD, at=NOW)
    assert await b.counters.standing([total_counter(key)]) == [(0, 10 * USD)]
    await b.budgets.release(reservation)


async def test_without_redis_capped_requests_are_refused_and_commits_are_kept(pg_ledger_url: str, spend: Spend) -> None:
    async with Ledger(pg_ledger_url) as ledger:
        counters = RedisCounters(ledger, "redis://127.0.0.1:1/0", prefix=f"test-{uuid.uuid4().hex[:12]}:")
        directory = Directory(ledger)
        budgets = Budgets(directory, counters)
        key = await capped_key(directory, cap_nano=10 * USD)
        with pytest.raises(CountersUnavailable) as refused:
            await budgets.reserve(await budgets.caps_for(key), USD, at=NOW)
        assert (refused.value.status, refused.value.code) == (503, "counters_unavailable")
        await ledger.record(spend(key, 4 * USD))  # the commit goes on without Redis
        assert await directory.spend(key) == 4 * USD
        assert await counters.standing([total_counter(key)]) == [(4 * USD, 0)]  # from the ledger
        await counters.aclose()


async def test_a_commit_that_missed_redis_has_every_counter_read_again(processes: list[Process], spend: Spend) -> None:
    a, b = processes
    key = await capped_key(a.directory, cap_nano=100 * USD)
    caps = await a.budgets.caps_for(key)
    await a.budgets.release(await a.budgets.reserve(caps, USD, at=NOW))  # seeded at 0
    add = b.counters._add

    def unreachable(**_: object) -> None:
        raise RedisConnectionError("down")

    b.counters._add = unreachable  # type: ignore[method-assign]
    await b.ledger.record(spend(key, 7 * USD))
    b.counters._add = add  # type: ignore[method-assign]
    assert await shared_spent(a, key) == 0  # short by B's commit until B reaches Redis again
    await b.budgets.release(await b.budgets.reserve(await b.budgets.caps_for(key), USD, at=NOW))
    assert await shared_spent(a, key) == 7 * USD


async def test_forget_reads_every_counter_from_the_ledger_again(processes: list[Process], spend: Spend) -> None:
    a, _b = processes
    key = await capped_key(a.directory, cap_nano=100 * USD)
    caps = await a.budgets.caps_for(key)
    await a.budgets.release(await a.budgets.reserve(caps, USD, at=NOW))
    a.counters._add = lambda **_: None  # type: ignore[method-assign]  # a writer that does not tell Redis (the CLI)
    await a.ledger.record(spend(key, 6 * USD))
    assert await shared_spent(a, key) == 0
    a.counters.forget()
    await a.budgets.release(await a.budgets.reserve(caps, USD, at=NOW))
    assert await shared_spent(a, key) == 6 * USD


async def test_a_hold_made_before_redis_restarted_empty_is_not_given_back_after(processes: list[Process]) -> None:
    a, b = processes
    key = await capped_key(a.directory, cap_nano=10 * USD)
    before = await a.budgets.reserve(await a.budgets.caps_for(key), 4 * USD, at=NOW)
    async for name in a.counters._client.scan_iter(match=f"{a.counters._prefix}*"):  # Redis restarts empty
        await a.counters._client.delete(name)
    caps = await a.budgets.caps_for(key)
    after = await a.budgets.reserve(caps, 3 * USD, at=NOW)
    await a.budgets.release(before)  # held in the Redis that is gone: takes nothing from `after`
    assert await b.counters.standing([total_counter(key)]) == [(0, 3 * USD)]
    with pytest.raises(BudgetExceeded):
        await b.budgets.reserve(await b.budgets.caps_for(key), 8 * USD, at=NOW)
    await a.budgets.release(after)
    assert await b.counters.standing([total_counter(key)]) == [(0, 0)]


async def test_a_reservation_whose_request_is_cancelled_in_flight_is_given_back(processes: list[Process]) -> None:
    a, _b = processes
    key = await capped_key(a.directory, cap_nano=10 * USD)
    caps = await a.budgets.caps_for(key)
    await a.budgets.release(await a.budgets.reserve(caps, USD, at=NOW))  # seeded
    for turns in range(4):  # cancelled before its script call went out, and while it is out
        reserving = asyncio.ensure_future(a.budgets.reserve(caps, 9 * USD, at=NOW))
        for _ in range(turns):
            await asyncio.sleep(0)
        reserving.cancel()
        await asyncio.gather(reserving, return_exceptions=True)
        await asyncio.sleep(0.2)
        assert await a.counters.standing([total_counter(key)]) == [(0, 0)], f"held after {turns} turns"
