"""Group commit: one writer thread owns the write connection; concurrent callers share transactions.

Callers on the event loop put jobs on a queue and await a future. The writer thread takes every job
waiting, runs them all in ONE transaction, commits, then resolves their futures. While it commits, the
next group piles up, so the commit rate adapts to the load: one caller pays one commit, a thousand
concurrent callers pay a few. A caller's future resolves only after its commit, so "returned" always
means "durable".

Two kinds of job share a transaction: event batches (recorded together by `recording.record_events`)
and arbitrary write functions (directory changes), each of which runs in a SAVEPOINT so that one
failing function (a unique-constraint violation, say) does not undo the others. A write function may
move spend counters (a void does): it runs after the plain ones, like the events, and what it moved
reaches the commit listeners with what the events added.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from farebox.core.events import RecordResult, UsageEvent
from farebox.core.ingestion import IngestionStats
from farebox.core.spend import CounterId
from farebox.errors import FareboxError, LedgerUnavailable
from farebox.ledger.recording import Recorder

__all__ = ["Committed", "GroupCommitWriter"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_MAX_GROUP_EVENTS = 20_000
_STOP = object()


@dataclass(frozen=True, slots=True)
class Committed:
    """One commit of the writer, for its observers."""

    seconds: float
    """How long its transaction took, from its first statement to its commit."""
    events: list[UsageEvent]
    """The events it recorded (duplicates of recorded ones left out)."""
    queue_depth: int
    """The writes waiting for the next transaction when it committed."""


@dataclass(slots=True)
class _Job:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    events: Sequence[UsageEvent] = ()
    fn: Callable[[Connection], Any] | None = None
    moves_counters: bool = False
    """`fn` returns (outcome, what it added to the spend counters)."""
    outcome: Any = None
    error: BaseException | None = None
    results: list[RecordResult] = field(default_factory=list)


def _settle(job: _Job) -> None:
    if job.future.cancelled():
        return
    if job.error is not None:
        job.future.set_exception(job.error)
    else:
        job.future.set_result(job.results if job.fn is None else job.outcome)


class GroupCommitWriter:
    """The single writer of a ledger database."""

    def __init__(self, engine: Engine, *, recorder: Recorder, ingestion: IngestionStats):
        self._engine = engine
        self._recorder = recorder
        self._ingestion = ingestion
        self._added: dict[CounterId, int] = {}
        self.on_commit: list[Callable[[Mapping[CounterId, int]], None]] = []
        """Called on the writer thread after each commit, before any caller of the group resumes, with what the
        transaction added to the spend counters: in-memory budgets stay exact without reading the counters back."""
        self.on_committed: list[Callable[[Committed], None]] = []
        """Called on the writer thread after each commit, with what it took and recorded (`farebox.metrics`)."""
        self.before_commit: list[Callable[[Mapping[CounterId, int]], None]] = []
        """Called on the writer thread inside each transaction that moves spend counters, once its writes are made
        and before it commits, with what it adds to them; must not raise (see `Ledger.before_commit`)."""
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.commits = 0
        """Transactions committed so far (a group of jobs commits once)."""

    @property
    def queue_depth(self) -> int:
        """Jobs waiting for the next transaction (the group being committed is not counted)."""
        return self._queue.qsize()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="farebox-ledger-writer", daemon=True)
            self._thread.start()

    async def stop(self) -> None:
        """Finish every job already queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            thread, self._thread = self._thread, None
            await asyncio.to_thread(thread.join)

    async def record(self, events: Sequence[UsageEvent]) -> list[RecordResult]:
        """Record events atomically (all of them or none); return once committed."""
        results: list[RecordResult] = await self._submit(_Job(*self._new_future(), events=events))
        return results

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn(connection)` inside the next group's transaction; return its result once committed."""
        outcome: T = await self._submit(_Job(*self._new_future(), fn=fn))
        return outcome

    async def run_moving_counters(self, fn: Callable[[Connection], tuple[T, Mapping[CounterId, int]]]) -> T:
        """Run `fn(connection)`, which returns its outcome and what it added to the spend counters, inside the next
        group's transaction; return the outcome once committed. The commit listeners hear what it added."""
        outcome: T = await self._submit(_Job(*self._new_future(), fn=fn, moves_counters=True))
        return outcome

    def _new_future(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]:
        loop = asyncio.get_running_loop()
        return loop, loop.create_future()

    async def _submit(self, job: _Job) -> Any:
        if self._thread is None:
            raise LedgerUnavailable("the ledger writer is not running")
        self._queue.put(job)
        return await job.future

    def _run(self) -> None:
        with self._engine.connect() as connection:
            while True:
                try:
                    first = self._queue.get(timeout=self._recorder.latencies.wait())
                except queue.Empty:  # no commit came to write the latency sketches that changed: a commit of their own
                    self._flush_latencies(connection)
                    continue
                stop = first is _STOP
                if not stop:
                    group, stop = self._drain(first)
                    self._commit_group(connection, group)
                if stop:
                    self._flush_latencies(connection)
                    return

    def _flush_latencies(self, connection: Connection) -> None:
        if self._recorder.latencies.wait() is None:
            return
        try:
            with connection.begin():
                self._recorder.flush_latencies(connection)
        except Exception as exc:  # the sketches stay in memory, changed: the next commit tries again
            self._recorder.latencies.discard()
            log.error("writing the latency sketches failed: %s", exc.__class__.__name__, exc_info=exc)
        else:
            self._recorder.latencies.committed()

    def _drain(self, first: _Job) -> tuple[list[_Job], bool]:
        group = [first]
        n_events = len(first.events)
        while n_events < _MAX_GROUP_EVENTS:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return group, True
            group.append(job)
            n_events += len(job.events)
        return group, False

    def _commit_group(self, connection: Connection, group: list[_Job]) -> None:
        if not self._commit(connection, group) and len(group) > 1:
            # One job's events (a value the database refuses, say) must not fail the callers grouped with
            # it: give every job a transaction of its own, so that only the culprit fails.
            for job in group:
                self._commit(connection, [job])
        if self._recorder.latencies.wait() == 0:
            self._flush_latencies(connection)
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in group:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_all, jobs)
            except RuntimeError:
                log.warning("a caller's event loop closed before its ledger write committed")

    def _commit(self, connection: Connection, group: list[_Job]) -> bool:
        """Run the group's transaction; False (and every job failed) when it could not commit."""
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                self._transaction(connection, group)
            except IntegrityError as exc:
                # Another writer (a second replica on PostgreSQL) inserted one of these event ids
                # between our duplicate check and our insert: run the group again, which now sees it.
                if attempt == 2:
                    log.error("ledger transaction failed: %s", exc.__class__.__name__, exc_info=exc)
                    self._fail(group, LedgerUnavailable("the ledger could not record these events"))
                    return False
            except Exception as exc:  # the writer thread is a process boundary: fail the callers, keep running
                log.error("ledger transaction failed: %s", exc.__class__.__name__, exc_info=exc)
                self._fail(group, LedgerUnavailable("the ledger could not commit; nothing was recorded"))
                return False
            else:
                seconds = time.perf_counter() - started
                self.commits += 1
                recorded = [
                    event
                    for job in group
                    for event, result in zip(job.events, job.results, strict=False)
                    if result is RecordResult.RECORDED
                ]
                self._count_ingested(recorded)
                self._recorder.latencies.committed()
                if self._added:
                    self._notify(self._added)
                if self.on_committed:
                    self._observe(Committed(seconds, recorded, self.queue_depth))
                return True
        raise AssertionError("unreachable")

    def _count_ingested(self, recorded: list[UsageEvent]) -> None:
        """Tell the ingestion stats how many events of each source the commit recorded, and the latest of each."""
        counts: Counter[str] = Counter()
        latest: dict[str, datetime] = {}
        for event in recorded:
            counts[event.source] += 1
            if event.source not in latest or event.timestamp > latest[event.source]:
                latest[event.source] = event.timestamp
        if counts:
            self._ingestion.committed(datetime.now(UTC), counts, latest)

    def _observe(self, committed: Committed) -> None:
        for listener in self.on_committed:
            try:
                listener(committed)
            except Exception:  # an observer's bug must not fail the commit its callers are waiting for
                log.exception("an on_committed listener failed")

    def _transaction(self, connection: Connection, group: list[_Job]) -> None:
        self._added = {}
        for job in group:
            job.error, job.outcome, job.results = None, None, []
        added: dict[CounterId, int] = {}
        try:
            with connection.begin():
                # Plain functions first: one that reads the spend counters sees what earlier commits left, not what this
                # group's events and counter-moving functions add, which `on_commit` adds once this group commits.
                for job in group:
                    if job.fn is not None and not job.moves_counters:
                        self._call(connection, job)
                for job in group:
                    if job.moves_counters:
                        self._call(connection, job)
                        if job.error is None:
                            job.outcome, moved = job.outcome
                            _merge(added, moved)
                event_jobs = [job for job in group if job.fn is None]
                if event_jobs:
                    results = self._recorder.record_events(connection, [list(job.events) for job in event_jobs])
                    for job, job_results in zip(event_jobs, results, strict=True):
                        job.results = job_results
                    if added:
                        _merge(added, self._recorder.added)
                    else:  # the common case: events alone, whose sums need no copy
                        added = self._recorder.added
                if added:
                    for listener in self.before_commit:
                        listener(added)
        except BaseException:
            self._recorder.latencies.discard()  # what the events added to the latency sketches in memory
            raise
        self._added = added

    def _notify(self, added: Mapping[CounterId, int]) -> None:
        for listener in self.on_commit:
            try:
                listener(added)
            except Exception:  # a listener's bug must not fail the commit its callers are waiting for
                log.exception("an on_commit listener failed")

    @staticmethod
    def _call(connection: Connection, job: _Job) -> None:
        assert job.fn is not None
        savepoint = connection.begin_nested()
        try:
            job.outcome = job.fn(connection)
        except Exception as exc:  # handed to the caller's future, which re-raises it
            savepoint.rollback()
            job.error = exc
        else:
            savepoint.commit()

    @staticmethod
    def _fail(group: list[_Job], error: FareboxError) -> None:
        for job in group:
            job.error = error


def _merge(into: dict[CounterId, int], amounts: Mapping[CounterId, int]) -> None:
    for counter, amount in amounts.items():
        into[counter] = into.get(counter, 0) + amount


def _settle_all(jobs: list[_Job]) -> None:
    for job in jobs:
        _settle(job)
