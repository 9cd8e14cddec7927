"""The shared spend counters with the ledger behind Redis: caps and balances hold whether Redis answers or not.

`FallbackCounters` is the `CounterStore` of processes sharing a PostgreSQL ledger and a Redis. While Redis answers,
reservations are held there (`RedisCounters`). When a call to it fails, or a process's heartbeat finds it gone, the
process declares the ledger the place (`ledger.counter_holds`, a new generation of the mode row); every process
switches within a second, first carrying its reservations in flight into the ledger, and database reservations
are let through once every live process has switched. When Redis answers again, a process drops the spend it holds
(commits it missed are read from the ledger again) and declares Redis the place: every process holds its
reservations in flight there again (`RedisCounters.hold_again`), and Redis reservations are let through once every
live process has done so.

So no hold is ever in a place a reservation does not look: a request is refused with `503 counters_unavailable`
only during a switch (about a second), and while neither Redis nor the ledger answers. A reservation knows where it
is held (Redis, the ledger, or both after a switch) and is released from each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import anyio

from farebox.core.spend import CounterId, fits
from farebox.ledger.counter_holds import DATABASE, REDIS, CounterHolds, Mode
from farebox.ledger.errors import DatabaseUnusable
from farebox.metering.counters import Holds, Reservation
from farebox.metering.redis_counters import LIVE_SECONDS, CountersUnavailable, RedisCounters

__all__ = ["BEAT_SECONDS", "FallbackCounters"]

BEAT_SECONDS = 1.0
"""How often a process says it is alive in the ledger and looks at the mode (at once when a Redis call fails)."""
_FORGET_DEAD_SECONDS = 600.0

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Held:
    """A reservation in flight and where it is held."""

    reservation: Reservation
    in_redis: bool = False
    hold_id: str | None = None
    """Its holds' id in the ledger, when held there."""


class FallbackCounters:
    """Spend counters in Redis while it answers, in the ledger while it does not (`CounterStore`).

    Args:
        redis: the counters in Redis.
        holds: the ledger's mode row, heartbeats and holds.
    """

    def __init__(self, redis: RedisCounters, holds: CounterHolds) -> None:
        self.redis = redis
        self._holds = holds
        self.process = redis.process
        self.mode = Mode(REDIS, -1)
        """Where this process holds reservations now, and the generation it has switched to (-1: not yet)."""
        self.ready = False
        """Whether every live process has switched to this generation (Redis reservations wait for it)."""
        self._outstanding: dict[int, _Held] = {}
        self._redis_calls = 0
        self._ledger_calls = 0
        self._giving_back: set[asyncio.Future[None]] = set()
        self._unreleased: list[str] = []
        """Ledger holds whose release did not reach the ledger."""
        self._switching = asyncio.Lock()
        self._look = asyncio.Event()
        self._synced = asyncio.Event()

    @property
    def on_ledger(self) -> bool:
        """Whether reservations are held in the ledger now (Redis could not be reached)."""
        return self.mode.mode == DATABASE

    async def reserve(self, holds: Holds, amount_nano: int) -> Reservation:
        if not self._synced.is_set():  # the first heartbeat, at start
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._synced.wait(), 2 * BEAT_SECONDS)
        if self.mode.mode == REDIS:
            if not self.ready:
                raise _refused("the spend counters are moving to Redis: try again in a second")
            self._redis_calls += 1
            try:
                reservation = await self.redis.reserve(holds, amount_nano)
            except CountersUnavailable:
                self._look.set()
                raise
            finally:
                self._redis_calls -= 1
            self._outstanding[id(reservation)] = _Held(reservation, in_redis=True)
            return reservation
        return await self._reserve_in_ledger(holds, amount_nano)

    async def _reserve_in_ledger(self, holds: Holds, amount_nano: int) -> Reservation:
        asked = asyncio.ensure_future(self._hold_in_ledger(holds, amount_nano))
        try:
            reservation = await asyncio.shield(asked)
        except asyncio.CancelledError:  # the request went away: what the ledger holds for it is given back
            asked.add_done_callback(self._abandoned)
            raise
        if reservation is None:
            raise _refused("the spend counters are moving to the ledger: try again in a second")
        return reservation

    async def _hold_in_ledger(self, holds: Holds, amount_nano: int) -> Reservation | None:
        """Hold in the ledger, and count the reservation in flight before a switch can look (`None`: the mode is
        not the ledger's generation this process has switched to, or not every live process has)."""

        def check(used: dict[CounterId, int]) -> None:
            for limit, counter in zip(holds.limits, holds.counters, strict=True):
                if not fits(limit.limit_nano, used_nano=used[counter], amount_nano=amount_nano):
                    raise limit.refused(used_nano=used[counter], amount_nano=amount_nano)

        hold_id = str(uuid.uuid4())
        self._ledger_calls += 1
        try:
            held = await self._holds.reserve(
                self.process,
                generation=self.mode.generation,
                hold_id=hold_id,
                counters=holds.held,
                amount_nano=amount_nano,
                check=check,
            )
            if not held:
                return None
            reservation = Reservation(holds.held, amount_nano)
            self._outstanding[id(reservation)] = _Held(reservation, hold_id=hold_id)
            return reservation
        finally:
            self._ledger_calls -= 1

    def _abandoned(self, asked: asyncio.Future[Reservation | None]) -> None:
        if asked.cancelled() or asked.exception() is not None or (reservation := asked.result()) is None:
            return
        task = asyncio.ensure_future(self.release(reservation))
        self._giving_back.add(task)  # held until done: the loop keeps only a weak reference to a task
        task.add_done_callback(self._giving_back.discard)

    async def release(self, reservation: Reservation) -> None:
        held = self._outstanding.pop(id(reservation), None)
        if held is None:
            return
        if held.in_redis:
            await self.redis.release(reservation)
        if held.hold_id is not None:
            try:
                await asyncio.shield(self._holds.release([held.hold_id]))
            except DatabaseUnusable:
                self._unreleased.append(held.hold_id)

    async def standing(self, counters: Sequence[CounterId]) -> list[tuple[int, int]]:
        if self.mode.mode == REDIS and self.ready:
            return await self.redis.standing(counters)
        return await self._holds.used(counters)

    def forget(self) -> None:
        self.redis.forget()

    async def ping(self) -> bool:
        """Whether Redis answers now."""
        return await self.redis.ping()

    async def aclose(self) -> None:
        """When the process stops: leave the ledger's processes (a switch need not wait for this one to stop counting
        as alive) and Redis's."""
        try:
            await self._holds.leave(self.process)
        except DatabaseUnusable:
            log.warning("the shared counters' ledger did not hear this process leave")
        await self.redis.aclose()

    async def run(self) -> None:
        """Redis's own upkeep, and every `BEAT_SECONDS` (or at once when a Redis call failed): say this process is
        alive, follow the mode, and change it when Redis went away or came back; until cancelled."""
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self.redis.run)
            while True:
                try:
                    await self.beat()
                except Exception:
                    log.exception("the shared counters' heartbeat failed; trying again in a second")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._look.wait(), BEAT_SECONDS)
                self._look.clear()

    async def beat(self) -> None:
        """One heartbeat: say this process is alive, declare a new mode when Redis went away (in the Redis mode) or
        answers again (in the ledger's), and switch to the mode's generation."""
        mode = await self._holds.heartbeat(self.process, seconds=LIVE_SECONDS, acked=max(self.mode.generation, 0))
        self._synced.set()
        if mode.mode == REDIS and not await self.redis.ping():
            log.warning("the shared counters' Redis cannot be reached: reservations move to the ledger")
            mode = await self._holds.declare(DATABASE, after=mode.generation)
        elif mode.mode == DATABASE and await self.redis.ping():
            await self.redis.drop_spent()  # the commits it missed are read from the ledger again
            log.warning("the shared counters' Redis answers again: reservations move back to it")
            mode = await self._holds.declare(REDIS, after=mode.generation)
        if mode != self.mode:
            try:
                await self._switch(mode)
            except CountersUnavailable:  # Redis went away again while holding the reservations in flight
                self._look.set()
                return
        if self.mode.mode == REDIS and not self.ready:
            self.ready = await self._holds.switched(self.mode.generation)
        if self._unreleased:
            given, self._unreleased = self._unreleased, []
            try:
                await self._holds.release(given)
            except DatabaseUnusable:
                self._unreleased.extend(given)
        await self._holds.sweep(dead_for_seconds=_FORGET_DEAD_SECONDS)

    def _holding(self, held: _Held) -> bool:
        return self._outstanding.get(id(held.reservation)) is held

    async def _settled(self) -> None:
        """Until no reservation is under way in Redis or the ledger: each is carried over with the others."""
        while self._redis_calls or self._ledger_calls:
            await asyncio.sleep(0.005)

    async def _switch(self, mode: Mode) -> None:
        """Carry the reservations in flight over to where `mode` holds them, then say so (the ledger's acknowledgement
        is the heartbeat's `acked`, and the carrying-over's own)."""
        async with self._switching:
            self.mode, self.ready = Mode(mode.mode, self.mode.generation), False
            self.redis.adding = mode.mode == REDIS
            if mode.mode == DATABASE:
                await self._settled()
                carried = [(held, str(uuid.uuid4())) for held in self._outstanding.values() if held.hold_id is None]
                await self._holds.carry_over(
                    self.process,
                    generation=mode.generation,
                    holds=[
                        (hold_id, held.reservation.counters, held.reservation.amount_nano) for held, hold_id in carried
                    ],
                )
                for held, hold_id in carried:
                    held.hold_id = hold_id
                gone = [held.hold_id for held, _ in carried if not self._holding(held) and held.hold_id is not None]
                if gone:  # released while they were carried over
                    await self._holds.release(gone)
            else:
                await self._settled()
                kept = list(self._outstanding.values())
                await self.redis.hold_again([held.reservation for held in kept])
                for held in kept:
                    held.in_redis = True
                for held in kept:
                    if not self._holding(held):  # released while it was held again: given back once more
                        held.reservation.released = False
                        await self.redis.release(held.reservation)
                await self._holds.carry_over(self.process, generation=mode.generation, holds=[])
            self.mode = mode


def _refused(message: str) -> CountersUnavailable:
    """A request under a cap refused during a switch (or while a live process has not switched), said in the log."""
    log.warning("a request under a cap or balance is refused: %s", message)
    return CountersUnavailable(message)
