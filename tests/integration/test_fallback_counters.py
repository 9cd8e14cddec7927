"""The shared counters with the ledger behind Redis (`metering.fallback.FallbackCounters`), on a real PostgreSQL and
a `redis-server` of the test's own that it stops and starts: while Redis is down, caps hold across processes with
reservations held in the ledger; reservations in flight are carried over each way; the ledger lets a reservation
through only once every live process has switched.

Two `Ledger`s on one database are two processes; each heartbeat is driven by the test (`beat`), as `run` would
every second."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
import redis

from capped_keys import capped_key, total_counter
from farebox.core.money import NANO_PER_USD
from farebox.core.owners import VirtualKey
from farebox.errors import BudgetExceeded
from farebox.ledger.base import Ledger
from farebox.ledger.counter_holds import DATABASE, REDIS, CounterHolds
from farebox.ledger.directory import Directory
from farebox.metering import Budgets
from farebox.metering.counters import Reservation
from farebox.metering.fallback import FallbackCounters
from farebox.metering.redis_counters import CountersUnavailable, RedisCounters
from redis_server import RedisServer

if TYPE_CHECKING:
    from tests.conftest import EventFactory

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

USD = NANO_PER_USD
PAUSE_SECONDS = 6.0
NOW = datetime.now(UTC)


@dataclass
class Process:
    ledger: Ledger
    counters: FallbackCounters
    budgets: Budgets
    directory: Directory

    async def reserve(self, key: VirtualKey, amount_nano: int) -> Reservation | None:
        return await self.budgets.reserve(await self.budgets.caps_for(key), amount_nano, at=NOW)


@pytest.fixture
async def processes(pg_ledger_url: str, own_redis: RedisServer) -> AsyncIterator[list[Process]]:
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    started: list[Process] = []
    try:
        for _ in range(2):
            ledger = Ledger(pg_ledger_url)
            await ledger.start()
            counters = FallbackCounters(RedisCounters(ledger, own_redis.url, prefix=prefix), CounterHolds(ledger))
            directory = Directory(ledger)
            started.append(Process(ledger, counters, Budgets(directory, counters), directory))
        await beat(started)
        yield started
    finally:
        for process in started:
            await process.counters.aclose()
            await process.ledger.close()


async def beat(processes: list[Process]) -> None:
    """A heartbeat of each, in turn, twice: a switch one declares, the others follow, then each sees all switched."""
    for _ in range(2):
        for process in processes:
            await process.counters.beat()


async def test_with_redis_down_two_processes_racing_for_one_cap_hold_it_in_the_ledger(
    processes: list[Process], own_redis: RedisServer, make_event: EventFactory
) -> None:
    a, b = processes
    key = await capped_key(a.directory, cap_nano=25 * USD)
    own_redis.stop()
    await beat(processes)
    assert [process.counters.mode.mode for process in processes] == [DATABASE, DATABASE]
    refused = 0

    async def request(process: Process, n: int) -> None:
        nonlocal refused
        try:
            reservation = await process.reserve(key, 2 * USD)
        except BudgetExceeded:
            refused += 1
            return
        await asyncio.sleep(0.01 * (n % 5))
        event = make_event(timestamp=NOW, account_id=key.account_id, key_id=key.id, cost_nano=2 * USD - n % 3)
        await process.ledger.record(event)
        await process.budgets.release(reservation)

    await asyncio.gather(*(request(processes[n % 2], n) for n in range(64)))
    spent = await a.directory.spend(key)
    assert refused > 0
    assert 20 * USD < spent <= 25 * USD
    assert await b.counters.standing([total_counter(key)]) == [(spent, 0)]


async def test_a_reservation_held_in_redis_when_it_goes_down_is_carried_into_the_ledger(
    processes: list[Process], own_redis: RedisServer
) -> None:
    a, b = processes
    key = await capped_key(a.directory, cap_nano=10 * USD)
    held = await a.reserve(key, 9 * USD)  # in Redis, in flight as Redis goes away
    own_redis.stop()
    await beat(processes)

    with pytest.raises(BudgetExceeded):
        await b.reserve(key, 2 * USD)
    await a.budgets.release(held)
    await b.budgets.release(await b.reserve(key, 2 * USD))


async def test_the_ledger_lets_a_reservation_through_only_once_every_live_process_has_switched(
    processes: list[Process], own_redis: RedisServer
) -> None:
    a, b = processes
    key = await capped_key(a.directory, cap_nano=10 * USD)
    own_redis.stop()
    await a.counters.beat()  # A finds Redis gone and switches; B, alive, has not yet
    assert (a.counters.mode.mode, b.counters.mode.mode) == (DATABASE, REDIS)

    with pytest.raises(CountersUnavailable):
        await a.reserve(key, USD)
    await b.counters.beat()
    await a.budgets.release(await a.reserve(key, USD))


async def test_when_redis_is_back_ledger_holds_move_into_it_and_the_spend_is_read_from_the_ledger(
    processes: list[Process], own_redis: RedisServer, make_event: EventFactory
) -> None:
    a, b = processes
    key = await capped_key(a.directory, cap_nano=15 * USD)
    await b.budgets.release(await b.reserve(key, USD))  # seeded in Redis at 0
    own_redis.stop()
    await beat(processes)
    held = await a.reserve(key, 9 * USD)  # in the ledger
    await b.ledger.record(make_event(timestamp=NOW, account_id=key.account_id, key_id=key.id, cost_nano=3 * USD))
    own_redis.start()  # empty: it restarted
    await beat(processes)
    assert [(process.counters.mode.mode, process.counters.ready) for process in processes] == [(REDIS, True)] * 2

    with pytest.raises(BudgetExceeded):  # 3 spent + 9 held + 4 > 15
        await b.reserve(key, 4 * USD)
    await a.budgets.release(held)
    await b.budgets.release(await b.reserve(key, 4 * USD))
    assert await a.counters.standing([total_counter(key)]) == [(3 * USD, 0)]


async def test_after_redis_was_unreachable_every_spend_is_read_from_the_ledger_again(
    processes: list[Process], own_redis: RedisServer, make_event: EventFactory
) -> None:
    """Redis kept its data but did not answer (paused): the commits made meanwhile never reached it, so its spend
    is stale even for a process that committed nothing, and is dropped before Redis is used again."""
    a, b = processes
    key = await capped_key(a.directory, cap_nano=15 * USD)
    await a.budgets.release(await a.reserve(key, USD))  # seeded in Redis at 0
    admin = redis.Redis.from_url(own_redis.url)
    admin.execute_command("CLIENT", "PAUSE", int(PAUSE_SECONDS * 1000), "ALL")
    admin.close()
    paused_until = time.monotonic() + PAUSE_SECONDS
    await beat(processes)  # four pings of 0.5 s each, while Redis stays paused
    assert [process.counters.mode.mode for process in processes] == [DATABASE, DATABASE]
    await b.ledger.record(make_event(timestamp=NOW, account_id=key.account_id, key_id=key.id, cost_nano=3 * USD))
    await asyncio.sleep(paused_until - time.monotonic() + 0.2)  # the pause ends
    await beat(processes)
    assert a.counters.mode.mode == REDIS and a.counters.ready

    with pytest.raises(BudgetExceeded):  # 3 spent + 13 > 15, though Redis held 0 for the key
        await a.reserve(key, 13 * USD)
