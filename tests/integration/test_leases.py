"""Leases on a real ledger (SQLite and PostgreSQL): one holder at a time, renewed by its holder, taken over once
it has ended; and the anomaly scan, which several processes of one ledger run once, handed over when its holder
stops."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from farebox.alerts.actions import Alerter
from farebox.alerts.scanner import AnomalyScanner
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.leases import Leases

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)


async def test_a_lease_has_one_holder_until_it_ends(ledger: Ledger) -> None:
    now = [T0]
    a = Leases(ledger, holder="a", clock=lambda: now[0])
    b = Leases(ledger, holder="b", clock=lambda: now[0])
    assert await a.hold("scan", seconds=10)
    assert not await b.hold("scan", seconds=10)
    now[0] = T0 + timedelta(seconds=9)
    assert await a.hold("scan", seconds=10)  # renewed: until T0 + 19 s
    now[0] = T0 + timedelta(seconds=18)
    assert not await b.hold("scan", seconds=10)
    assert await b.hold("other", seconds=10), "each name is a lease of its own"
    now[0] = T0 + timedelta(seconds=19)  # a stopped renewing: the lease has ended
    assert await b.hold("scan", seconds=10)
    assert not await a.hold("scan", seconds=10)


async def test_two_processes_asking_at_once_get_it_once(ledger: Ledger) -> None:
    contenders = [Leases(ledger, holder=f"p{n}", clock=lambda: T0) for n in range(8)]
    held = await asyncio.gather(*(leases.hold("scan", seconds=5) for leases in contenders))
    assert sorted(held) == [False] * 7 + [True]


async def test_the_anomaly_scan_runs_in_one_process_and_moves_when_it_stops(ledger: Ledger) -> None:
    directory = Directory(ledger)
    scanners = [
        AnomalyScanner(ledger, Alerter(ledger, directory), interval=0.05, leases=Leases(ledger, holder=name))
        for name in ("first", "second")
    ]
    first = asyncio.ensure_future(scanners[0].run())
    await asyncio.sleep(0.1)  # the first takes the lease
    second = asyncio.ensure_future(scanners[1].run())
    await asyncio.sleep(0.5)
    assert scanners[0].rounds >= 5 and scanners[1].rounds == 0, "both processes scanned"
    first.cancel()  # the holder dies: its lease ends three rounds after its last
    await asyncio.sleep(0.5)
    assert scanners[1].rounds >= 3, "no process took the scan over"
    second.cancel()
    await asyncio.gather(first, second, return_exceptions=True)
