"""Spend counters shared through Redis by every farebox process of one PostgreSQL ledger.

Several gateway processes (`farebox serve --workers N`, or processes on several hosts) hold their requests
against the same counters, so a cap holds across all of them: each reservation is one Lua script that checks
every limit and holds the amount on every counter, or on none, atomically in Redis.

Each counter is two keys: its spend (`…:spent:…`, a string of nano-USD) and what requests in flight hold on it
(`…:held:…`, a hash of nano-USD per process). The ledger stays the truth, and the spend is kept exact with it:

- a counter missing from Redis is seeded by `Ledger.seed_counter`, which reads it with its row locked and sets
  the key (if still missing) before letting the lock go;
- every transaction that moves counters adds what it adds to the keys that exist, from inside the transaction,
  while it holds those rows locked (`Ledger.before_commit`).

So a commit is either in the seeded value (it committed before the seed read) or is added after the seed set
the key (the seed waited for its lock): counted once, whatever the order of processes. A transaction that
fails to commit after adding makes the spend too high (a cap refuses early, never late), and every spend key
expires an hour after it was seeded (`SPENT_TTL_SECONDS`), so each counter is read from the ledger again at
least that often. Losing a key is always safe: the next request seeds it again.

What a process holds is under its own field, and each process says it is alive (`…:live`, refreshed by every
reservation and by `run` every few seconds): the holds of a process that stopped saying so, because it died
mid-request, are dropped by the next reservation that reads them, instead of holding the cap forever. A key names
this life of Redis (`…:epoch`, set by the first reservation): a reservation made before Redis restarted empty is not
given back after, where it would take from holds made since.

When Redis cannot be reached, a reservation here is refused with 503 `counters_unavailable` (a request without
limits is unaffected): no spend goes unchecked. `metering.fallback.FallbackCounters` then moves reservations into
the ledger until Redis answers again, and holds the ones in flight there again (`hold_again`). A commit whose
addition did not reach Redis leaves the shared spend short, so the first call that reaches Redis again drops
every spend key, to be seeded again from the ledger. Values are exact up to 2^53 nano-USD per counter
(about 9 million USD), the integers Redis's Lua numbers hold.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from farebox.core.spend import CounterId
from farebox.errors import FareboxError
from farebox.ledger.base import Ledger
from farebox.metering.batched import Batched
from farebox.metering.counters import Holds, Reservation

__all__ = ["SPENT_TTL_SECONDS", "CountersUnavailable", "RedisCounters"]

log = logging.getLogger(__name__)

SPENT_TTL_SECONDS = 3600
"""How long a seeded spend stays in Redis before it is read from the ledger again (a periodic reconciliation)."""
LIVE_SECONDS = 15
"""How long a process counts as alive after it last said so; `run` says so every third of it."""
_TIMEOUT_SECONDS = 0.5
"""How long one Redis call may take: the writer calls it inside its transaction."""

_RESERVE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local process = ARGV[1]
redis.call('HSET', KEYS[1], process, now_ms + tonumber(ARGV[2]))
redis.call('SET', KEYS[2], ARGV[3], 'NX')
local epoch = redis.call('GET', KEYS[2])
local live = redis.call('HGETALL', KEYS[1])
local alive = {}
for j = 1, #live, 2 do
  if tonumber(live[j + 1]) >= now_ms then alive[live[j]] = true else redis.call('HDEL', KEYS[1], live[j]) end
end
local answers = {}
local k, a = 3, 4
while a <= #ARGV do
  local amount, n, m = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local missing = {}
  for i = 0, n - 1 do
    if redis.call('EXISTS', KEYS[k + i]) == 0 then missing[#missing + 1] = i + 1 end
  end
  if #missing > 0 then
    answers[#answers + 1] = {1, missing}
  else
    local used = {}
    for i = 0, n - 1 do
      local u = tonumber(redis.call('GET', KEYS[k + i]))
      local held = redis.call('HGETALL', KEYS[k + n + i])
      for j = 1, #held, 2 do
        if alive[held[j]] then u = u + tonumber(held[j + 1]) else redis.call('HDEL', KEYS[k + n + i], held[j]) end
      end
      used[i + 1] = u
    end
    local refused = false
    for l = 1, m do
      local u = used[tonumber(ARGV[a + 1 + 2 * l])]
      local limit = tonumber(ARGV[a + 2 + 2 * l])
      if not (u < limit and u + amount <= limit) then
        refused = {2, l, u}
        break
      end
    end
    if refused then
      answers[#answers + 1] = refused
    else
      for i = 0, n - 1 do redis.call('HINCRBY', KEYS[k + n + i], process, amount) end
      answers[#answers + 1] = {0, epoch}
    end
  end
  k = k + 2 * n
  a = a + 3 + 2 * m
end
return answers
"""
"""Reservations, each on all its counters or none, in order. KEYS: the live hash, the epoch key, then per request
its counters' spent keys and their held keys. ARGV: process, live milliseconds, an epoch to start if Redis has none,
then per request its amount, its counters, its limits and (counter's position, limit) per limit. Answers per
request {0, epoch} (held in this life of Redis), {1, missing positions} (seed them and ask again) or {2, the
limit's position, its counter's use} (refused; nothing held)."""

_RELEASE = """
local epoch = redis.call('GET', KEYS[1])
local k, a = 2, 2
while a <= #ARGV do
  local amount, n = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  if epoch == ARGV[a] then
    for i = 0, n - 1 do
      if redis.call('HINCRBY', KEYS[k + i], ARGV[1], -amount) <= 0 then redis.call('HDEL', KEYS[k + i], ARGV[1]) end
    end
  end
  k = k + n
  a = a + 3
end
return 1
"""
"""Releases. KEYS: the epoch key, then per release its counters' held keys. ARGV: process, then per release its
epoch, amount and counters. A reservation of an earlier life of Redis (it restarted empty since) holds nothing now:
giving it back would take from holds made since."""

_HOLD_AGAIN = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], now_ms + tonumber(ARGV[2]))
redis.call('SET', KEYS[2], ARGV[3], 'NX')
local epoch = redis.call('GET', KEYS[2])
local k, a = 3, 4
while a <= #ARGV do
  local amount, n = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  if ARGV[a] ~= epoch then
    for i = 0, n - 1 do redis.call('HINCRBY', KEYS[k + i], ARGV[1], amount) end
  end
  k = k + n
  a = a + 3
end
return epoch
"""
"""Reservations held again, whatever the limits (they were let through already): each one not held in this life of
Redis. KEYS: the live hash, the epoch key, then per reservation its counters' held keys. ARGV: process, live
milliseconds, an epoch to start if Redis has none, then per reservation its epoch, amount and counters. Answers the
epoch they are all held in now."""

_ADD = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], ARGV[i]) end
end
"""
"""What a commit adds, to the spend keys that exist (a missing one is seeded from the ledger, the commit in it)."""

_STANDING = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local live = redis.call('HGETALL', KEYS[1])
local alive = {}
for j = 1, #live, 2 do
  if tonumber(live[j + 1]) >= now_ms then alive[live[j]] = true end
end
local n = (#KEYS - 1) / 2
local answer = {}
for i = 1, n do
  local spent = redis.call('GET', KEYS[1 + i])
  local held = redis.call('HGETALL', KEYS[1 + n + i])
  local h = 0
  for j = 1, #held, 2 do
    if alive[held[j]] then h = h + tonumber(held[j + 1]) end
  end
  answer[#answer + 1] = spent or false
  answer[#answer + 1] = h
end
return answer
"""


@dataclass(frozen=True, slots=True)
class _Request:
    """One reservation asked of the script: its keys and arguments, and what a hold it gets is made of."""

    keys: list[str]
    args: list[Any]
    counters: tuple[CounterId, ...]
    amount_nano: int


class CountersUnavailable(FareboxError):
    """The shared spend counters (Redis) cannot be reached, so a request under a cap or balance is not let through."""

    status = 503
    openai_type = "api_error"
    default_code = "counters_unavailable"


class RedisCounters:
    """Spend counters and reservations in Redis, shared by every process of one ledger (`CounterStore`).

    Args:
        ledger: the PostgreSQL ledger whose counters these are.
        url: the Redis server's URL (`redis://host:port/db`).
        prefix: what every key of this ledger starts with, so that one Redis can serve several ledgers.
        process: this process's name in the holds (default: host, pid and a random part).
    """

    def __init__(self, ledger: Ledger, url: str, *, prefix: str = "farebox:", process: str | None = None) -> None:
        self._ledger = ledger
        self._prefix = prefix
        self.process = process or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        options: dict[str, Any] = {"socket_timeout": _TIMEOUT_SECONDS, "socket_connect_timeout": _TIMEOUT_SECONDS}
        # Once more at once on a broken connection (a pooled one Redis closed when it restarted), never on a
        # timeout, which may have run the script: the client's default of 10 tries with backoff would hold a
        # request for seconds while Redis is down.
        once = AsyncRetry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
        self._client = aioredis.Redis.from_url(url, retry=once, **options)
        # The writer thread's own, synchronous, and never retried: it is called inside the ledger's transaction.
        self._writer_client = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **options)
        self._reserve = self._client.register_script(_RESERVE)
        self._release = self._client.register_script(_RELEASE)
        # Reservations (and releases) made while one is out go together in the next script call.
        self._reservations: Batched[_Request, Any] = Batched(self._reserve_all, on_abandoned=self._abandoned)
        self._releases: Batched[Reservation, Any] = Batched(self._release_all)
        self._giving_back: set[asyncio.Future[None]] = set()
        self._standing = self._client.register_script(_STANDING)
        self._hold_again = self._client.register_script(_HOLD_AGAIN)
        self._add = self._writer_client.register_script(_ADD)
        self._live = f"{prefix}live"
        self._epoch = f"{prefix}epoch"
        self._lock = threading.Lock()
        self._lost = 0
        """Commits whose additions did not reach Redis since the spend keys were last dropped."""
        self._unreleased: list[Reservation] = []
        """Releases that did not reach Redis, given again by the next call that does."""
        self.adding = True
        """Whether commits add to the spend keys; off while reservations are held in the ledger
        (`metering.fallback`), when the keys are dropped before Redis is used again, so a commit need not wait on
        a Redis that is down."""
        self.on_call: list[Callable[[str, float], None]] = []
        """Told of each script call that Redis answered: the script (`reserve`, `release`, `standing`) and the
        round trip's seconds (`farebox.metrics`)."""
        ledger.before_commit(self._committing)

    def _spent_key(self, counter: CounterId) -> str:
        scope, owner_id, period, start = counter
        return f"{self._prefix}spent:{scope.value}:{owner_id}:{period.value}:{start}"

    def _held_key(self, counter: CounterId) -> str:
        scope, owner_id, period, start = counter
        return f"{self._prefix}held:{scope.value}:{owner_id}:{period.value}:{start}"

    async def reserve(self, holds: Holds, amount_nano: int) -> Reservation:
        counters = holds.held
        position = {counter: index for index, counter in enumerate(counters, start=1)}
        keys = [*map(self._spent_key, counters), *map(self._held_key, counters)]
        args = [amount_nano, len(counters), len(holds.limits)]
        for limit, counter in zip(holds.limits, holds.counters, strict=True):
            args += [position[counter], limit.limit_nano]
        while True:
            await self._heal()
            answer = await self._reservations.call(_Request(keys, args, counters, amount_nano))
            if answer[0] == 0:
                return Reservation(counters, amount_nano, epoch=_text(answer[1]))
            if answer[0] == 1:
                for index in answer[1]:
                    await self._seed(counters[int(index) - 1])
                continue
            limit = holds.limits[int(answer[1]) - 1]
            raise limit.refused(used_nano=int(answer[2]), amount_nano=amount_nano)

    async def release(self, reservation: Reservation) -> None:
        """Give a reservation back; sent by a task of its own, so a cancelled caller does not keep it held."""
        if reservation.released:
            return
        reservation.released = True
        try:
            await asyncio.shield(self._releases.call(reservation))
        except CountersUnavailable:
            with self._lock:
                self._unreleased.append(reservation)

    async def standing(self, counters: Sequence[CounterId]) -> list[tuple[int, int]]:
        """(spent, reserved) of each counter; while Redis cannot be reached, the spend from the ledger and nothing
        held (a response's `x-credits-remaining` must not fail a request already answered)."""
        keys = [self._live, *map(self._spent_key, counters), *map(self._held_key, counters)]
        try:
            await self._heal()
            answer = await self._call(self._standing, keys, [], name="standing")
        except CountersUnavailable:
            answer = [None, 0] * len(counters)
        spent = [None if value is None else int(value) for value in answer[0::2]]
        missing = [counters[index] for index, value in enumerate(spent) if value is None]
        read = await self._ledger.counters(missing) if missing else {}
        return [
            (read.get(counter, 0) if value is None else value, int(held))
            for counter, value, held in zip(counters, spent, answer[1::2], strict=True)
        ]

    async def hold_again(self, reservations: Sequence[Reservation]) -> None:
        """Hold reservations made elsewhere (in the ledger, while Redis could not be reached) or in an earlier life
        of Redis, whatever the limits: each is held in this life of Redis after, once.

        Raises:
            CountersUnavailable: Redis cannot be reached; some may be held, none is marked so.
        """
        keys = [self._live, self._epoch]
        args: list[Any] = [self.process, LIVE_SECONDS * 1000, os.urandom(8).hex()]
        for reservation in reservations:
            keys += [self._held_key(counter) for counter in reservation.counters]
            args += [reservation.epoch, reservation.amount_nano, len(reservation.counters)]
        epoch = _text(await self._call(self._hold_again, keys, args, name="hold_again"))
        for reservation in reservations:
            reservation.epoch = epoch

    async def drop_spent(self) -> None:
        """Drop every spend key now, to be seeded again from the ledger (after commits Redis may have missed).

        Raises:
            CountersUnavailable: Redis cannot be reached.
        """
        try:
            await self._drop_spent()
        except RedisError as exc:
            raise _unavailable(exc) from None

    def forget(self) -> None:
        """Drop every spend key (each is seeded again from the ledger when next needed; holds stay): for changes
        made by a process that does not add to Redis, such as `farebox events void`."""
        with self._lock:
            self._lost += 1

    async def run(self) -> None:
        """Say this process is alive every third of `LIVE_SECONDS`, give back releases Redis missed, and drop the
        spend keys when a commit's addition missed Redis; until cancelled."""
        while True:
            try:
                await self._heal()
                await self._client.hset(self._live, self.process, await self._expiry())
            except (RedisError, CountersUnavailable) as exc:
                log.warning("the shared spend counters (Redis) cannot be reached: %s", exc.__class__.__name__)
            await asyncio.sleep(LIVE_SECONDS / 3)

    async def ping(self) -> bool:
        """Whether Redis answers now (for `/readyz`)."""
        try:
            return bool(await self._client.ping())
        except RedisError:
            return False

    async def aclose(self) -> None:
        """Drop this process's holds and say it is gone, then close the connections."""
        try:
            await self._client.hdel(self._live, self.process)
        except RedisError:
            pass
        await self._client.aclose()
        self._writer_client.close()

    async def _expiry(self) -> int:
        seconds, micros = await self._client.time()
        return int(seconds) * 1000 + int(micros) // 1000 + LIVE_SECONDS * 1000

    async def _seed(self, counter: CounterId) -> None:
        key = self._spent_key(counter)

        def apply(spent: int) -> None:  # on a reader thread, the counter's row locked
            self._writer_client.set(key, spent, nx=True, ex=SPENT_TTL_SECONDS)

        try:
            await self._ledger.seed_counter(counter, apply=apply)
        except RedisError as exc:
            raise _unavailable(exc) from None

    async def _reserve_all(self, requests: Sequence[_Request]) -> list[Any]:
        keys = [self._live, self._epoch]
        args: list[Any] = [self.process, LIVE_SECONDS * 1000, os.urandom(8).hex()]
        for request in requests:
            keys += request.keys
            args += request.args
        return list(await self._call(self._reserve, keys, args, name="reserve"))

    async def _release_all(self, reservations: Sequence[Reservation]) -> list[Any]:
        keys: list[str] = [self._epoch]
        args: list[Any] = [self.process]
        for reservation in reservations:
            keys += [self._held_key(counter) for counter in reservation.counters]
            args += [reservation.epoch, reservation.amount_nano, len(reservation.counters)]
        await self._call(self._release, keys, args, name="release")
        return [None] * len(reservations)

    def _abandoned(self, request: _Request, answer: Any) -> None:
        """A reservation whose request was cancelled while Redis made it: given back at once."""
        if answer[0] == 0:
            reservation = Reservation(request.counters, request.amount_nano, epoch=_text(answer[1]))
            task = asyncio.ensure_future(self.release(reservation))
            self._giving_back.add(task)  # held until done: the loop keeps only a weak reference to a task
            task.add_done_callback(self._giving_back.discard)

    async def _give_back(self, reservation: Reservation) -> None:
        await self._release_all([reservation])

    async def _heal(self) -> None:
        """Before using the counters: drop the spend keys if a commit's addition missed Redis (or `forget` asked),
        and give back the releases that missed it."""
        with self._lock:
            lost, unreleased = self._lost, self._unreleased
            self._unreleased = []
        try:
            if lost:
                await self._drop_spent()
                with self._lock:
                    self._lost -= lost
            for index, reservation in enumerate(unreleased):
                try:
                    await self._give_back(reservation)
                except CountersUnavailable:
                    with self._lock:
                        self._unreleased.extend(unreleased[index:])
                    raise
        except RedisError as exc:
            raise _unavailable(exc) from None

    async def _drop_spent(self) -> None:
        async for key in self._client.scan_iter(match=f"{self._prefix}spent:*", count=1000):
            await self._client.delete(key)

    async def _call(self, script: Any, keys: list[str], args: list[Any], *, name: str) -> Any:
        started = time.perf_counter()
        try:
            answer = await script(keys=keys, args=args)
        except RedisError as exc:
            raise _unavailable(exc) from None
        seconds = time.perf_counter() - started
        for listener in self.on_call:
            listener(name, seconds)
        return answer

    def _committing(self, added: Mapping[CounterId, int]) -> None:
        """Add a commit's amounts to the spend keys that exist (the writer thread, the rows locked); when Redis
        cannot take them, the spend keys are dropped as soon as it can."""
        if not self.adding:
            with self._lock:
                self._lost += 1
            return
        keys = [self._spent_key(counter) for counter in added]
        try:
            self._add(keys=keys, args=list(added.values()))
        except RedisError as exc:
            log.warning(
                "a commit's spend did not reach Redis (%s): its counters are read again", exc.__class__.__name__
            )
            with self._lock:
                self._lost += 1


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _unavailable(exc: RedisError) -> CountersUnavailable:
    log.warning("the shared spend counters (Redis) cannot be reached: %s", exc.__class__.__name__)
    return CountersUnavailable(
        "the shared spend counters cannot be reached; requests under a spend cap or prepaid balance are refused "
        "until they can. Retry"
    )
