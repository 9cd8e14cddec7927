"""Reservations held in the PostgreSQL ledger while the shared counters' Redis cannot be reached.

The processes sharing their spend counters (`metering.fallback.FallbackCounters`) agree on where reservations are
held through one row (`counters_mode`): `redis`, or `database`. Every change of mode is a new generation, and each
process says, with its heartbeat (`counters_processes`), the latest generation it has switched to, after carrying
its reservations in flight over to the new place. A reservation in the database is let through only when every
live process has switched, so no hold made before the switch can be missed; until then it is refused.

A database reservation runs in a transaction of its own under an advisory lock (reservations take turns; a
process's commits do not wait for them): it reads the counters' spend (committed: a request's hold is released
only after its event committed, so at every moment its cost is in the spend, in its hold, or in both) and the holds
of the live processes, checks the limits, and inserts its holds. Liveness and expiry are measured on the database's
clock, the one clock every host shares.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert

from farebox.core.spend import CounterId
from farebox.ledger.base import Ledger
from farebox.ledger.schema import counter_holds, counters_mode, counters_processes, spend_counters

__all__ = ["REDIS", "DATABASE", "CounterHolds", "Mode"]

REDIS = "redis"
DATABASE = "database"
_RESERVATIONS_LOCK = 0x686F_6C64  # "hold": database reservations take turns on it
_NOW_US = func.floor(func.extract("epoch", func.clock_timestamp()) * 1_000_000).cast(counters_processes.c.acked.type)

_holds = counter_holds.c
_processes = counters_processes.c


@dataclass(frozen=True, slots=True)
class Mode:
    """Where reservations are held now, and the generation of that decision."""

    mode: str
    generation: int


class CounterHolds:
    """The mode, the processes' heartbeats and the database's holds, of one PostgreSQL ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def heartbeat(self, process: str, *, seconds: float, acked: int) -> Mode:
        """Say `process` is alive for `seconds` more and has switched to generation `acked`; the mode now."""

        def beat(connection: Connection) -> Mode:
            with connection.begin():
                until = _NOW_US + int(seconds * 1_000_000)
                values = {"process": process, "alive_until_us": until, "acked": acked}
                statement = pg_insert(counters_processes).values(**values)
                connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=[_processes.process],
                        set_={"alive_until_us": statement.excluded.alive_until_us, "acked": statement.excluded.acked},
                    )
                )
                return _mode(connection)

        return await self._ledger._read(beat)

    async def declare(self, mode: str, *, after: int) -> Mode:
        """Make `mode` the mode, as generation `after + 1`, unless another process changed it since generation
        `after`; the mode now."""

        def change(connection: Connection) -> Mode:
            with connection.begin():
                current = _mode(connection, lock=True)
                if current.generation != after or current.mode == mode:
                    return current
                connection.execute(counters_mode.update().values(mode=mode, generation=after + 1))
                return Mode(mode, after + 1)

        return await self._ledger._read(change)

    async def carry_over(
        self, process: str, *, generation: int, holds: Sequence[tuple[str, Sequence[CounterId], int]]
    ) -> None:
        """Hold these reservations in the database (hold id, counters, amount) and say `process` has switched to
        `generation`, in one transaction: a reservation that sees the one sees the other."""

        def carry(connection: Connection) -> None:
            with connection.begin():
                rows = [
                    _row(hold_id, process, counter, amount)
                    for hold_id, counters, amount in holds
                    for counter in counters
                ]
                if rows:
                    connection.execute(pg_insert(counter_holds).values(rows).on_conflict_do_nothing())
                connection.execute(
                    counters_processes.update().where(_processes.process == process).values(acked=generation)
                )

        await self._ledger._read(carry)

    async def switched(self, generation: int) -> bool:
        """Whether every live process has switched to `generation` (or a later one)."""

        def count(connection: Connection) -> bool:
            return _laggards(connection, generation) == 0

        return await self._ledger._read(count)

    async def reserve(
        self,
        process: str,
        *,
        generation: int,
        hold_id: str,
        counters: Sequence[CounterId],
        amount_nano: int,
        check: Callable[[dict[CounterId, int]], None],
    ) -> bool:
        """Hold `amount_nano` on every counter when `check` (given each counter's spend plus the live holds on
        it) passes; whether the mode still is the database's generation `generation` with every live process
        switched to it (else nothing is held: the caller refuses).

        Raises:
            What `check` raises (a limit refusing); nothing is held.
        """

        def hold(connection: Connection) -> bool:
            with connection.begin():
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_RESERVATIONS_LOCK})")
                if _mode(connection) != Mode(DATABASE, generation) or _laggards(connection, generation):
                    return False
                check(_used(connection, counters))
                connection.execute(
                    counter_holds.insert(), [_row(hold_id, process, counter, amount_nano) for counter in counters]
                )
                return True

        return await self._ledger._read(hold)

    async def release(self, hold_ids: Sequence[str]) -> None:
        """Drop these reservations' holds."""

        def drop(connection: Connection) -> None:
            with connection.begin():
                connection.execute(delete(counter_holds).where(_holds.hold_id.in_(list(hold_ids))))

        await self._ledger._read(drop)

    async def used(self, counters: Sequence[CounterId]) -> list[tuple[int, int]]:
        """(spent, held by live processes) of each counter."""

        def read(connection: Connection) -> list[tuple[int, int]]:
            spent = _spent(connection, counters)
            held = _held(connection, counters)
            return [(spent.get(counter, 0), held.get(counter, 0)) for counter in counters]

        return await self._ledger._read(read)

    async def leave(self, process: str) -> None:
        """`process` stops: its holds go, and it no longer counts among the processes that must switch."""

        def forget(connection: Connection) -> None:
            with connection.begin():
                connection.execute(delete(counter_holds).where(_holds.process == process))
                connection.execute(delete(counters_processes).where(_processes.process == process))

        await self._ledger._read(forget)

    async def sweep(self, *, dead_for_seconds: float) -> int:
        """Forget the processes dead for `dead_for_seconds`, and their holds; how many."""

        def forget(connection: Connection) -> int:
            with connection.begin():
                dead = select(_processes.process).where(
                    _processes.alive_until_us < _NOW_US - int(dead_for_seconds * 1_000_000)
                )
                gone = list(connection.scalars(dead))
                if gone:
                    connection.execute(delete(counter_holds).where(_holds.process.in_(gone)))
                    connection.execute(delete(counters_processes).where(_processes.process.in_(gone)))
                return len(gone)

        return await self._ledger._read(forget)


def _mode(connection: Connection, *, lock: bool = False) -> Mode:
    connection.execute(pg_insert(counters_mode).values(id=1, mode=REDIS, generation=0).on_conflict_do_nothing())
    query = select(counters_mode.c.mode, counters_mode.c.generation).where(counters_mode.c.id == 1)
    mode, generation = connection.execute(query.with_for_update() if lock else query).one()
    return Mode(mode, int(generation))


def _laggards(connection: Connection, generation: int) -> int:
    """The live processes not yet switched to `generation`."""
    query = select(func.count()).where(_processes.alive_until_us >= _NOW_US, _processes.acked < generation)
    return int(connection.execute(query).scalar_one())


def _row(hold_id: str, process: str, counter: CounterId, amount_nano: int) -> dict[str, object]:
    scope, owner_id, period, start = counter
    return {
        "hold_id": hold_id,
        "process": process,
        "scope": scope.value,
        "scope_id": owner_id,
        "period": period.value,
        "period_start": start,
        "amount_nano": amount_nano,
    }


def _keys(counters: Sequence[CounterId]) -> list[tuple[str, str, str, int]]:
    return [(scope.value, owner_id, period.value, start) for scope, owner_id, period, start in counters]


def _spent(connection: Connection, counters: Sequence[CounterId]) -> dict[CounterId, int]:
    c = spend_counters.c
    wanted = dict(zip(_keys(counters), counters, strict=True))
    query = select(c.scope, c.scope_id, c.period, c.period_start, c.spent_nano).where(
        tuple_(c.scope, c.scope_id, c.period, c.period_start).in_(list(wanted))
    )
    return {
        wanted[(scope, owner, period, start)]: int(spent)
        for scope, owner, period, start, spent in connection.execute(query)
    }


def _held(connection: Connection, counters: Sequence[CounterId]) -> dict[CounterId, int]:
    wanted = dict(zip(_keys(counters), counters, strict=True))
    live = select(_processes.process).where(_processes.alive_until_us >= _NOW_US)
    query = (
        select(_holds.scope, _holds.scope_id, _holds.period, _holds.period_start, func.sum(_holds.amount_nano))
        .where(
            tuple_(_holds.scope, _holds.scope_id, _holds.period, _holds.period_start).in_(list(wanted)),
            _holds.process.in_(live),
        )
        .group_by(_holds.scope, _holds.scope_id, _holds.period, _holds.period_start)
    )
    return {
        wanted[(scope, owner, period, start)]: int(held)
        for scope, owner, period, start, held in connection.execute(query)
    }


def _used(connection: Connection, counters: Sequence[CounterId]) -> dict[CounterId, int]:
    spent = _spent(connection, counters)
    held = _held(connection, counters)
    return {counter: spent.get(counter, 0) + held.get(counter, 0) for counter in counters}
