"""Durable before done: a ledger killed with SIGKILL keeps every event whose `record()` had returned.

Also: the SQLite WAL is checkpointed beside the writer, so the file stays healthy while it runs.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select

from farebox.core.events import UsageEvent
from farebox.ledger.base import Ledger
from farebox.ledger.schema import spend_counters, usage_events, usage_rollups

__all__: list[str] = []

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

EventFactory = Callable[..., UsageEvent]
CALLERS = 64
ENOUGH_IDS = 3_000
MAX_WAIT_S = 20.0

# The child: CALLERS tasks record events for ever; each id goes to stdout, flushed, once record() returned.
CHILD = """
import asyncio, sys
from datetime import UTC, datetime
from farebox.core.events import Axis, UsageEvent
from farebox.core.events import UsageEvent
from farebox.ledger.base import Ledger

async def caller(ledger, n):
    i = 0
    while True:
        event = UsageEvent(
            id=f"c{n}-{i}", timestamp=datetime.now(UTC), account_id="acct-1", key_id=f"key-{n % 4}",
            member_id="mem-1", axis=Axis.LLM, provider="openai", model="gpt-4o", canonical_model="gpt-4o",
            operation="chat.completions", input_tokens=100, output_tokens=10, cost_nano=1_000 + i,
        )
        await ledger.record(event)
        sys.stdout.write(event.id + "\\n")
        sys.stdout.flush()
        i += 1

async def main(url, callers):
    ledger = Ledger(url)
    await ledger.start()
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    await asyncio.gather(*(caller(ledger, n) for n in range(callers)))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


class Reporter:
    """Collects the complete lines a child process writes to stdout, on a thread of its own."""

    def __init__(self, process: subprocess.Popen[bytes]):
        self.lines: list[str] = []
        self._process = process
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.endswith(b"\n"):  # a line cut by the kill was never fully reported
                self.lines.append(line.decode().rstrip("\n"))

    def wait_for(self, n: int, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.lines) < n and time.monotonic() < deadline and self._process.poll() is None:
            time.sleep(0.01)

    def join(self) -> None:
        self._thread.join(timeout=10)
        assert not self._thread.is_alive()


def run_and_kill(url: str, tmp_path: Path) -> list[str]:
    """Start the child, let it record for a while, SIGKILL it mid-stream; the ids it reported."""
    stderr_path = tmp_path / "child-stderr.txt"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(CALLERS)], stdout=subprocess.PIPE, stderr=stderr, cwd=tmp_path
        )
        try:
            reporter = Reporter(process)
            reporter.wait_for(1 + ENOUGH_IDS, timeout=MAX_WAIT_S)
            still_running = process.poll() is None
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            reporter.join()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            assert process.stdout is not None
            process.stdout.close()
    assert still_running, f"the child stopped on its own:\n{stderr_path.read_text()}"
    assert process.returncode == -signal.SIGKILL
    assert reporter.lines[:1] == ["ready"], stderr_path.read_text()
    return reporter.lines[1:]


async def test_every_returned_record_survives_sigkill(ledger_url: str, tmp_path: Path) -> None:
    reported = run_and_kill(ledger_url, tmp_path)

    def read(connection: Connection) -> tuple[set[str], int, int, int]:
        ids = set(connection.scalars(select(usage_events.c.id)))
        costs = connection.scalar(select(func.coalesce(func.sum(usage_events.c.cost_nano), 0)))
        requests = connection.scalar(select(func.coalesce(func.sum(usage_rollups.c.requests), 0)))
        spent = connection.scalar(
            select(func.coalesce(func.sum(spend_counters.c.spent_nano), 0)).where(
                spend_counters.c.scope == "account", spend_counters.c.period == "total"
            )
        )
        return ids, int(costs or 0), int(requests or 0), int(spent or 0)

    async with Ledger(ledger_url) as ledger:
        stored, costs, requests, spent = await ledger._read(read)

    assert len(reported) >= 100, "the child was killed before it had recorded much: nothing was tested"
    missing = set(reported) - stored
    assert not missing, f"{len(missing)} of {len(reported)} acknowledged events were lost, e.g. {sorted(missing)[:5]}"
    # The crash cut between transactions, never through one: derived tables match the events exactly.
    assert requests == len(stored)
    assert spent == costs


async def test_sqlite_wal_is_checkpointed_while_the_ledger_runs(tmp_path: Path, make_event: EventFactory) -> None:
    # The writer never checkpoints (a checkpoint syncs the database file: a stall for every caller in
    # the group); a thread beside it does. Without it the WAL would hold every page until close.
    path = tmp_path / "ledger.db"
    async with Ledger(f"sqlite:///{path}") as ledger:
        empty = path.stat().st_size
        for _ in range(5):
            await ledger.record_many([make_event() for _ in range(1_000)])
        deadline = time.monotonic() + 10
        # Passive checkpoints may copy the pages over several rounds: wait for the whole amount.
        while path.stat().st_size <= empty + 500_000 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        grown = path.stat().st_size

    assert grown > empty + 500_000, f"the database file stayed at {grown} bytes: nothing was checkpointed"


def test_several_processes_can_start_on_one_new_sqlite_file(tmp_path: Path) -> None:
    # Replicas (or a CLI beside the server) starting at once all migrate the same new file.
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    script = (
        "import asyncio, sys\n"
        "from farebox.ledger.base import Ledger\n"
        "from farebox.ledger.engine import Engines, migrate\n"
        "migrate(Engines(sys.argv[1]))\n"
        "async def main():\n"
        "    async with Ledger(sys.argv[1]):\n"
        "        await asyncio.sleep(0.2)\n"
        "asyncio.run(main())"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, url], stderr=subprocess.PIPE, text=True) for _ in range(6)
    ]
    errors = [process.communicate(timeout=60)[1] for process in processes]
    assert [process.returncode for process in processes] == [0] * 6, errors
