"""The ledger: the one place farebox writes to its database, and the source of truth.

`Ledger` is the SQL implementation shared by SQLite (default) and PostgreSQL. Writes go through the
group-commit writer; reads run on a thread pool so that no database call blocks the event loop. The
ledger's other modules (directory, outbox, alert state, usage feed, reader) run their queries through
`_read` and `_write`; nothing outside `farebox.ledger` does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from contextlib import closing
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from farebox.core.events import RecordResult, UsageEvent
from farebox.core.ingestion import IngestionStats
from farebox.core.periods import Period, period_start
from farebox.core.spend import CounterId
from farebox.ledger.engine import Engines, migrate
from farebox.ledger.errors import DatabaseUnusable, database_errors
from farebox.ledger.recording import Recorder
from farebox.ledger.schema import spend_counters, usage_events
from farebox.ledger.spend import lock_counter, read_counters
from farebox.ledger.writer import Committed, GroupCommitWriter

__all__ = ["Ledger"]

T = TypeVar("T")


class Ledger:
    """A ledger database: `await ledger.record(event)` returns once the event is committed."""

    def __init__(self, url: str):
        self.engines = Engines(url)
        self.recorder = Recorder(dialect=self.engines.dialect)
        self.ingestion = IngestionStats(since=datetime.now(UTC))
        """What this process has committed per source, and the events refused (`farebox.core.ingestion`)."""
        self._writer = GroupCommitWriter(self.engines.writer, recorder=self.recorder, ingestion=self.ingestion)

    @property
    def dialect(self) -> str:
        return self.engines.dialect

    @property
    def commits(self) -> int:
        """Transactions the writer has committed (many concurrent records share one)."""
        return self._writer.commits

    @property
    def writer_queue_depth(self) -> int:
        """Writes waiting for the writer's next transaction."""
        return self._writer.queue_depth

    @property
    def writer_running(self) -> bool:
        return self._writer.running

    async def start(self, *, run_migrations: bool = True) -> None:
        """Migrate the schema (unless told not to) and start the writer."""
        if run_migrations:
            await asyncio.to_thread(migrate, self.engines)
        self._writer.start()
        if self.engines.checkpointer is not None:
            self.engines.checkpointer.start()

    async def close(self) -> None:
        """Commit everything queued, then release the database."""
        await self._writer.stop()
        if self.engines.checkpointer is not None:
            await asyncio.to_thread(self.engines.checkpointer.stop)
        self.engines.dispose()

    async def __aenter__(self) -> Ledger:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def record(self, event: UsageEvent) -> RecordResult:
        """Record one event (its rollups and spend counters with it); idempotent on `event.id`."""
        (result,) = await self._writer.record((event,))
        return result

    async def record_many(self, events: Sequence[UsageEvent]) -> list[RecordResult]:
        """Record events all together or not at all; each result says recorded or duplicate."""
        if not events:
            return []
        return await self._writer.record(events)

    def on_commit(self, listener: Callable[[Mapping[CounterId, int]], None]) -> None:
        """Call `listener` on the writer thread after every commit, with what it added to the spend counters."""
        self._writer.on_commit.append(listener)

    def on_committed(self, listener: Callable[[Committed], None]) -> None:
        """Call `listener` on the writer thread after every commit, with what it took and recorded."""
        self._writer.on_committed.append(listener)

    def before_commit(self, listener: Callable[[Mapping[CounterId, int]], None]) -> None:
        """Call `listener` on the writer thread inside every transaction that moves spend counters, after its
        writes and before its commit, with what it adds to them. The transaction then holds the counters' rows
        locked, so `seed_counter` cannot read them between its writes and `listener`: a store that adds what
        `listener` hears to the counters it was seeded with counts every commit once (`RedisCounters`). The
        listener must not raise: an error would undo the commit."""
        self._writer.before_commit.append(listener)

    async def seed_counter(self, counter: CounterId, *, apply: Callable[[int], None]) -> None:
        """Read one spend counter with its row locked, and hand its value to `apply` before the lock is let go
        (PostgreSQL: `SELECT … FOR UPDATE`, after creating the row at 0 if nothing was spent yet, so that a
        transaction creating it first is waited for). A transaction moving the counter is either in the value or
        runs its `before_commit` listeners after `apply`. One counter a transaction, so two seeds and the writer
        never wait on each other in a cycle.

        Raises:
            DatabaseUnusable: the database could not be read.
        """

        def seed(connection: Connection) -> None:
            with connection.begin():
                apply(lock_counter(connection, counter))

        await self._read(seed)

    async def ping(self, *, timeout: float = 2.0) -> bool:
        """Whether the database answers a read within `timeout` seconds (for `/readyz`)."""
        try:
            await asyncio.wait_for(self._read(lambda connection: connection.execute(select(1)).scalar()), timeout)
        except (DatabaseUnusable, TimeoutError):
            return False
        return True

    async def counters(self, ids: Sequence[CounterId]) -> dict[CounterId, int]:
        """The spend counters that exist among `ids` (a missing one means nothing was spent), from the reader pool."""
        return await self._read(lambda connection: read_counters(connection, ids))

    async def load_counters(self, ids: Sequence[CounterId], *, apply: Callable[[dict[CounterId, int]], None]) -> None:
        """Read counters in order with the commits: `apply(found)` runs on the writer thread, before any later
        commit's `on_commit` listeners, so a holder of counters that adds what commits add misses no commit.
        Every id is in `found`, 0 for a counter nothing was spent on."""

        def load(connection: Connection) -> None:
            found = read_counters(connection, ids)
            apply({counter: found.get(counter, 0) for counter in ids})

        await self._write(load)

    async def _write(self, fn: Callable[[Connection], T]) -> T:
        """Run a write function in the writer's next transaction (in its own savepoint).

        Plumbing for the ledger's own modules: everything else reaches the database through their named
        methods, so that every query against the ledger's tables lives in `farebox.ledger`.

        Raises:
            DatabaseUnusable: the database refused a statement of `fn`.
        """
        with database_errors():
            return await self._writer.run(fn)

    async def _write_moving_counters(self, fn: Callable[[Connection], tuple[T, Mapping[CounterId, int]]]) -> T:
        """Run a write function that moves spend counters; it returns its outcome and what it added to them.

        Plumbing like `_write`. The function runs after the group's plain functions (a counter read in the same
        group does not see its change), and the commit listeners hear what it added, as they hear a recorded
        event's cost.

        Raises:
            DatabaseUnusable: the database refused a statement of `fn`.
        """
        with database_errors():
            return await self._writer.run_moving_counters(fn)

    async def _read(self, fn: Callable[[Connection], T]) -> T:
        """Run a read function on a pooled reader connection, off the event loop (plumbing, like `_write`).

        Raises:
            DatabaseUnusable: the database could not be read.
        """
        return await asyncio.to_thread(self._read_sync, fn)

    async def _read_stream(self, produce: Callable[[Connection], Generator[T, None, None]]) -> AsyncIterator[T]:
        """Run a generator on a pooled reader connection, off the event loop, and yield what it yields (plumbing,
        like `_read`), for reads too large to hold at once.

        The reader thread runs at most two items ahead of the consumer, so memory holds a few items however many
        the generator makes. When the consumer stops early, the generator is closed where it stands.

        Raises:
            DatabaseUnusable: the database could not be read.
        """
        loop = asyncio.get_running_loop()
        handoff: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue(maxsize=2)
        stopped = threading.Event()

        def put(done: bool, value: Any) -> None:
            asyncio.run_coroutine_threadsafe(handoff.put((done, value)), loop).result()

        def run() -> None:
            try:
                with database_errors(), self.engines.reader.connect() as connection:
                    with closing(produce(connection)) as items:
                        for item in items:
                            if stopped.is_set():
                                return
                            put(False, item)
            except Exception as error:  # handed to the consumer, which raises it
                if not stopped.is_set():
                    put(True, error)
                return
            if not stopped.is_set():
                put(True, None)

        worker = loop.run_in_executor(None, run)
        try:
            while True:
                done, value = await handoff.get()
                if done:
                    if value is not None:
                        raise value
                    return
                yield value
        finally:
            stopped.set()
            while not handoff.empty():  # room for the item the thread may be waiting to hand over
                handoff.get_nowait()
            await worker

    def _read_sync(self, fn: Callable[[Connection], T]) -> T:
        with database_errors(), self.engines.reader.connect() as connection:
            return fn(connection)

    async def recorded_costs(self, event_ids: Sequence[str]) -> dict[str, int]:
        """The cost (nano-USD) each of these events was recorded at; ids not in the ledger are absent."""
        if not event_ids:
            return {}
        query = select(usage_events.c.id, usage_events.c.cost_nano).where(usage_events.c.id.in_(list(event_ids)))
        return await self._read(lambda c: {row.id: int(row.cost_nano) for row in c.execute(query)})

    async def spent(self, *, scope: str, scope_id: str, period: Period, at: datetime, tz: ZoneInfo) -> int:
        """Nano-USD spent by a key, member or account in the period containing `at`."""
        start = int(period_start(period, at=at, tz=tz).timestamp())

        def fetch(connection: Connection) -> int:
            value = connection.scalar(
                select(spend_counters.c.spent_nano).where(
                    spend_counters.c.scope == scope,
                    spend_counters.c.scope_id == scope_id,
                    spend_counters.c.period == period.value,
                    spend_counters.c.period_start == start,
                )
            )
            return int(value or 0)

        return await self._read(fetch)
