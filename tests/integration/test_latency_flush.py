"""When a ledger writes its latency sketches (SQLite, and PostgreSQL with TEST_PG_URL): in memory with the events,
in rows at most `FLUSH_SECONDS` later, by the next commit or by one of their own, and at shutdown; a failed
transaction leaves memory as the committed events made it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from farebox.errors import LedgerUnavailable
from farebox.ledger import latency
from farebox.ledger.base import Ledger
from farebox.ledger.latency import LatencyQuery
from farebox.ledger.reader import LedgerReader

if TYPE_CHECKING:
    from tests.conftest import EventFactory, WriterGate

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
BUCKET = int(START.timestamp())


async def _counted(ledger: Ledger) -> int:
    """How many latencies the rows of START's quarter hour hold."""
    groups = await LedgerReader(ledger).latencies(LatencyQuery(BUCKET, BUCKET + 900))
    return sum(group.latency.count for group in groups)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_rows_lag_until_a_commit_after_the_flush_interval_and_shutdown_writes_them(
    monkeypatch: pytest.MonkeyPatch,
    ledger_url: str,
    make_event: EventFactory,
    writer_gate: type[WriterGate],
) -> None:
    monkeypatch.setattr(latency, "FLUSH_SECONDS", 3_600.0)
    clock = _Clock()
    async with Ledger(ledger_url) as ledger:
        book = ledger.recorder.latencies
        book._clock, book._flushed_at = clock, clock.now
        await ledger.record(make_event(timestamp=START, latency_ms=100))
        assert await _counted(ledger) == 0, "within the interval the rows lag"

        clock.now = 3_601.0
        await ledger.record(make_event(timestamp=START, latency_ms=200))
        assert await _counted(ledger) == 2, "the first commit after it writes every changed group"

        await ledger.record(make_event(timestamp=START, latency_ms=300))
        big = make_event(timestamp=START, latency_ms=5_000, cost_nano=2**62)
        async with writer_gate(ledger):  # a transaction that fails: its rollup's cost overflows
            outcome = asyncio.gather(ledger.record_many([big, replace(big, id="big-2")]), return_exceptions=True)
        (failed,) = await outcome
        assert isinstance(failed, LedgerUnavailable)
        assert await _counted(ledger) == 2
    async with Ledger(ledger_url) as reopened:
        assert await _counted(reopened) == 3, "shutdown wrote the rest; the failed events added nothing"


async def test_without_commits_the_rows_are_written_within_the_interval(
    monkeypatch: pytest.MonkeyPatch, ledger: Ledger, make_event: EventFactory
) -> None:
    monkeypatch.setattr(latency, "FLUSH_SECONDS", 0.2)
    await ledger.record(make_event(timestamp=START, latency_ms=100))
    deadline = time.monotonic() + 5
    while await _counted(ledger) == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert await _counted(ledger) == 1
