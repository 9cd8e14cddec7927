"""What a lone commit costs, and which derived tables cost it what: prints figures, asserts nothing.

    .venv/bin/python bench/lone_commit.py [--rounds 4] [--events 1500]

For each variant of the recorder, in interleaved rounds (the order reversed every other round), it records
`--events` proxied-like events into a new SQLite ledger one `Ledger.record` at a time (each its own commit, as
one request at a time makes them; 200 more first, to warm up), 4 keys, half of them streamed with a time to first
token, and prints the median time a caller waits for its commit and the process CPU per event:

- `full`: the recorder as it is;
- `no sketches`: the latency sketches never told of the events (`LatencyBook.record` does nothing);
- `no key rollups`: the key rollups not written (`usage_key_rollups`);
- `neither`: both.

The differences between variants are what the sketches and the key rollups add to a lone commit.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from farebox.core.events import Axis, Status, UsageEvent
from farebox.ledger.base import Ledger
from farebox.ledger.daily import cube_rows
from farebox.ledger.latency import LatencyBook
from farebox.ledger.recording import Recorder

__all__ = ["main"]

_RECORD = LatencyBook.record
_ADD_ROLLUP_ROWS = Recorder._add_rollup_rows


def _without_key_rollups(self: Recorder, connection: Any, rollups: list[tuple[Any, ...]]) -> None:
    """`Recorder._add_rollup_rows` but for the key rollups."""
    self._upsert(connection, self._upsert_rollups, rollups)
    cube, errors = cube_rows(rollups, self._day_of(connection))
    self._upsert(connection, self._upsert_daily, cube)
    if errors:
        self._upsert(connection, self._upsert_daily_errors, errors)


def _ignore(self: LatencyBook, rows: Any) -> None:
    """`LatencyBook.record` told nothing."""


VARIANTS: dict[str, tuple[Callable[..., None], Callable[..., None]]] = {
    "full": (_RECORD, _ADD_ROLLUP_ROWS),
    "no sketches": (_ignore, _ADD_ROLLUP_ROWS),
    "no key rollups": (_RECORD, _without_key_rollups),
    "neither": (_ignore, _without_key_rollups),
}
"""Variant -> (`LatencyBook.record`, `Recorder._add_rollup_rows`)."""


def _events(n: int) -> list[UsageEvent]:
    start = datetime.now(UTC) - timedelta(minutes=5)
    return [
        UsageEvent(
            id=uuid.uuid4().hex,
            timestamp=start + timedelta(milliseconds=i),
            account_id="acct-1",
            key_id=f"key-{i % 4}",
            member_id="mem-1",
            axis=Axis.LLM,
            provider="openai",
            model="gpt-4o",
            canonical_model="gpt-4o",
            operation="chat.completions",
            input_tokens=100,
            output_tokens=20,
            cost_nano=1_000 + i,
            status=Status.OK,
            http_status=200,
            latency_ms=100 + i % 500,
            ttft_ms=50 if i % 2 else None,
            streamed=bool(i % 2),
        )
        for i in range(n)
    ]


async def _one(variant: str, n: int, workdir: Path) -> tuple[float, float]:
    """(median wait, CPU per event) in µs."""
    LatencyBook.record, Recorder._add_rollup_rows = VARIANTS[variant]  # type: ignore[method-assign]
    try:
        async with Ledger(f"sqlite:///{workdir / (uuid.uuid4().hex + '.db')}") as ledger:
            events = _events(n + 200)
            for event in events[:200]:
                await ledger.record(event)
            waits = []
            cpu = time.process_time()
            for event in events[200:]:
                started = time.perf_counter()
                await ledger.record(event)
                waits.append(time.perf_counter() - started)
            cpu_us = (time.process_time() - cpu) / n * 1e6
    finally:
        LatencyBook.record, Recorder._add_rollup_rows = _RECORD, _ADD_ROLLUP_ROWS  # type: ignore[method-assign]
    return statistics.median(waits) * 1e6, cpu_us


async def run(args: argparse.Namespace) -> None:
    found: dict[str, list[tuple[float, float]]] = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="farebox-lone-") as tmp:
        for round_number in range(args.rounds):
            order = list(VARIANTS) if round_number % 2 == 0 else list(reversed(VARIANTS))
            for variant in order:
                found[variant].append(await _one(variant, args.events, Path(tmp)))
    print(f"{args.events:,} lone commits per variant and round, {args.rounds} interleaved rounds (µs per event)")
    for variant, rounds in found.items():
        waits = " ".join(f"{wait:5.0f}" for wait, _cpu in rounds)
        cpus = " ".join(f"{cpu:5.0f}" for _wait, cpu in rounds)
        print(f"{variant:<16} median wait {waits}   CPU {cpus}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    parser.add_argument("--events", type=int, default=1_500, help="lone commits per variant and round (default 1,500)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
