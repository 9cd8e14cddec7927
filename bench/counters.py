"""What holding a request against its caps costs, in this process's memory and through Redis: prints figures,
asserts nothing.

    .venv/bin/python bench/counters.py --pg-url postgresql://... --redis-url redis://127.0.0.1:6379/0 [--rounds 6]

On one PostgreSQL ledger (a new schema, dropped afterwards) with a key capped on its own, its member's and its
account's monthly spend (three counters, as a proxied request of a member's key holds), times `Budgets.reserve` then
`Budgets.release`, one request after another and 64 at once, with `LocalCounters`, with `RedisCounters` (keys under
a prefix of their own, deleted afterwards), with `FallbackCounters` on that Redis (`served`: what the servers use)
and with `FallbackCounters` whose Redis cannot be reached (`ledger`: reservations held in the ledger). The stores
take turns, in reverse order every other round (A B C D D C B A …), so drift on this machine moves all; it prints
microseconds per request (reserve and release) for each round and the median ratios: Redis and the ledger to memory
(the added cost of their round trips on a request under caps), and `served` to Redis (what tracking the reservations
in flight for a switch adds)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime

import redis

from farebox.core.money import NANO_PER_USD
from farebox.core.periods import Period
from farebox.ledger.base import Ledger
from farebox.ledger.counter_holds import CounterHolds
from farebox.ledger.directory import Directory
from farebox.metering import Budgets, CounterStore, LocalCounters
from farebox.metering.fallback import FallbackCounters
from farebox.metering.redis_counters import RedisCounters
from ledger import pg_schema  # bench/ledger.py, beside this script

__all__ = ["main"]

_REQUESTS = 2_000
_CONCURRENT = 64


async def _per_request(budgets: Budgets, directory: Directory, key_id: str, *, concurrent: int) -> float:
    """Microseconds per reserve-and-release, `_REQUESTS` of them, `concurrent` at a time."""
    key = await directory.get_key(key_id)
    caps = await budgets.caps_for(key)
    now = datetime.now(UTC)
    await budgets.release(await budgets.reserve(caps, 1_000, at=now))  # seeded, warm

    async def one_after_another(count: int) -> None:
        for _ in range(count):
            await budgets.release(await budgets.reserve(caps, 1_000, at=now))

    started = time.perf_counter()
    await asyncio.gather(*(one_after_another(_REQUESTS // concurrent) for _ in range(concurrent)))
    return (time.perf_counter() - started) * 1e6 / (_REQUESTS // concurrent * concurrent)


async def _capped_key(directory: Directory) -> str:
    """A key held to three caps the run cannot reach: its own, its member's and its account's monthly spend."""
    account = await directory.create_account(name="bench", spend_cap_nano=10**6 * NANO_PER_USD)
    member = await directory.create_member(
        account.id, email="ada@example.com", name="Ada", spend_cap_nano=10**6 * NANO_PER_USD
    )
    key, _secret = await directory.create_key(
        account.id, name="k", member_id=member.id, spend_cap_nano=10**6 * NANO_PER_USD, cap_period=Period.MONTHLY
    )
    return key.id


async def run(pg_url: str, redis_url: str, rounds: int) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:12]}:"
    # The ledger's reservations on a ledger of their own: which place holds them is one row per ledger.
    async with pg_schema(pg_url) as url, Ledger(url) as ledger, pg_schema(pg_url) as apart, Ledger(apart) as other:
        directory, other_directory = Directory(ledger), Directory(other)
        key_id, other_key_id = await _capped_key(directory), await _capped_key(other_directory)
        shared = RedisCounters(ledger, redis_url, prefix=prefix)
        # What the servers use: Redis while it answers (`served`), the ledger when it does not (`fallback`, whose
        # Redis is unreachable: nothing listens on port 1, so its first heartbeat moves the reservations there).
        served = FallbackCounters(RedisCounters(ledger, redis_url, prefix=prefix), CounterHolds(ledger))
        fallback = FallbackCounters(RedisCounters(other, "redis://127.0.0.1:1/0", prefix=prefix), CounterHolds(other))
        await served.beat()
        await fallback.beat()
        assert served.ready and fallback.on_ledger
        stores: dict[str, tuple[CounterStore, Directory, str]] = {
            "memory": (LocalCounters(ledger), directory, key_id),
            "redis": (shared, directory, key_id),
            "served": (served, directory, key_id),
            "ledger": (fallback, other_directory, other_key_id),
        }
        try:
            for concurrent in (1, _CONCURRENT):
                figures: dict[str, list[float]] = {name: [] for name in stores}
                for round_ in range(rounds):
                    order = list(stores.items())
                    for name, (store, held_by, key) in order if round_ % 2 == 0 else reversed(order):
                        budgets = Budgets(held_by, store)
                        figures[name].append(await _per_request(budgets, held_by, key, concurrent=concurrent))
                for name, values in figures.items():
                    shown = " ".join(f"{value:7.1f}" for value in values)
                    print(f"{concurrent:>2} at once  {name:<6} µs per request: {shown}", flush=True)
                for name, base in (("redis", "memory"), ("ledger", "memory"), ("served", "redis")):
                    ratios = [r / m for r, m in zip(figures[name], figures[base], strict=True)]
                    added = statistics.median(figures[name]) - statistics.median(figures[base])
                    print(
                        f"{concurrent:>2} at once  {name} / {base}, median of {rounds} rounds: "
                        f"{statistics.median(ratios):.2f}x ({added:+.0f} µs)",
                        flush=True,
                    )
        finally:
            await shared.aclose()
            await served.aclose()
            await fallback.aclose()
            client = redis.Redis.from_url(redis_url)
            for name in client.scan_iter(match=f"{prefix}*"):
                client.delete(name)
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", required=True, help="PostgreSQL database (a temporary schema is used)")
    parser.add_argument("--redis-url", required=True, help="Redis (keys under a temporary prefix)")
    parser.add_argument("--rounds", type=int, default=6, help="paired rounds per figure")
    args = parser.parse_args()
    asyncio.run(run(args.pg_url, args.redis_url, args.rounds))


if __name__ == "__main__":
    main()
