"""Ledger throughput benchmark: prints figures, asserts nothing.

    .venv/bin/python bench/ledger.py [--events N] [--pg-url postgresql://...] [--callers 64] [--no-http]

For SQLite (a new file in a temporary directory) and, with --pg-url, PostgreSQL (a new schema in that
database, dropped afterwards), it measures:

- `record()` with --callers concurrent callers (each awaits one event at a time): events/s, and the
  p50/p99/max time a caller waits for its event to be committed; commits shows the grouping.
- `record_many()` in 1,000-event batches from one caller: events/s.
- `POST /api/events` in 1,000-event bodies from --http-clients concurrent clients against
  `farebox serve` (uvicorn) in a subprocess, master key auth, events attributed through a virtual key
  and priced by the price book: events/s as the client sees them.

Each figure follows a warm-up of the same path. Targets (issue 2, 2-core machine): batches on SQLite
>= 50,000 events/s, concurrent record() on SQLite >= 10,000 events/s, p99 wait < 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import psycopg

from farebox.core.events import Axis, UsageEvent
from farebox.ledger.base import Ledger

__all__ = ["main"]

BATCH = 1_000
MASTER_KEY = "fbx_master_bench_" + "x" * 24


@dataclass(frozen=True, slots=True)
class Figure:
    path: str
    events: int
    seconds: float
    detail: str = ""

    def line(self, backend: str) -> str:
        rate = self.events / self.seconds
        figures = f"{rate:>10,.0f} events/s  ({self.events:,} in {self.seconds:.2f} s)"
        return f"{backend:<10} {self.path:<24} {figures}{self.detail}"


def make_events(n: int, *, run: str) -> list[UsageEvent]:
    now = datetime.now(UTC)
    return [
        UsageEvent(
            id=f"{run}-{i}",
            timestamp=now,
            account_id="acct-bench",
            key_id=f"key-{i % 8}",
            member_id=f"mem-{i % 4}",
            agent_id=f"agent-{i % 3}",
            axis=Axis.LLM,
            provider="openai",
            model="gpt-4o-2024-08-06",
            canonical_model="gpt-4o",
            operation="chat.completions",
            input_tokens=1_200,
            output_tokens=350,
            cached_input_tokens=200,
            cost_nano=6_500_000,
            unit_prices={"input_mtok": "2.5", "cached_input_mtok": "1.25", "output_mtok": "10"},
            latency_ms=900,
            metadata={"request_id": f"req-{i}"},
        )
        for i in range(n)
    ]


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


async def bench_record(ledger: Ledger, events: list[UsageEvent], *, callers: int) -> Figure:
    waits: list[float] = []
    shares = [events[i::callers] for i in range(callers)]

    async def caller(mine: list[UsageEvent]) -> None:
        clock = time.perf_counter
        for event in mine:
            started = clock()
            await ledger.record(event)
            waits.append(clock() - started)

    commits = ledger.commits
    started = time.perf_counter()
    await asyncio.gather(*(caller(mine) for mine in shares))
    elapsed = time.perf_counter() - started
    waits.sort()
    p50, p99 = percentile(waits, 0.50) * 1e3, percentile(waits, 0.99) * 1e3
    detail = (
        f"\n{'':<35} wait p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {waits[-1] * 1e3:.2f} ms  "
        f"commits {ledger.commits - commits:,} ({len(events) / max(1, ledger.commits - commits):.0f} events each)"
    )
    return Figure(f"record() x{callers} callers", len(events), elapsed, detail)


async def bench_record_many(ledger: Ledger, events: list[UsageEvent]) -> Figure:
    started = time.perf_counter()
    for start in range(0, len(events), BATCH):
        await ledger.record_many(events[start : start + BATCH])
    return Figure(f"record_many({BATCH:,})", len(events), time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def farebox_server(database_url: str, workdir: Path) -> Iterator[str]:
    """`farebox serve` in a subprocess; yields its base URL once /healthz answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    env |= {"FAREBOX_DATABASE_URL": database_url, "FAREBOX_MASTER_KEY": MASTER_KEY, "FAREBOX_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "farebox", "serve", "--port", str(port)]
    log = (workdir / "server.log").open("wb")
    server = subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"farebox serve did not start: {(workdir / 'server.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


async def bench_http(base: str, n: int, *, clients: int, run: str) -> tuple[Figure, Figure]:
    headers = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
        account = (await client.post("/api/admin/accounts", json={"name": f"bench-{run}"})).raise_for_status().json()
        body = {"account_id": account["id"], "name": "bench"}
        key = (await client.post("/api/admin/virtual-keys", json=body)).raise_for_status().json()

        def bodies(prefix: str, count: int) -> list[bytes]:
            events = [
                {"id": f"{prefix}-{i}", "axis": "llm", "key_id": key["id"], "provider": "openai", "model": "gpt-4o"}
                | {"input_tokens": 1_200, "output_tokens": 350, "cached_input_tokens": 200, "agent_id": f"a{i % 3}"}
                for i in range(count)
            ]
            return [orjson.dumps({"events": events[s : s + BATCH]}) for s in range(0, count, BATCH)]

        async def post_all(payloads: list[bytes], concurrency: int) -> float:
            queue = list(reversed(payloads))

            async def worker() -> None:
                while queue:
                    response = await client.post("/api/events", content=queue.pop())
                    response.raise_for_status()
                    assert orjson.loads(response.content)["recorded"] == BATCH, response.text[:300]

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - started

        await post_all(bodies(f"{run}-warm", min(n, 5 * BATCH)), clients)
        one = await post_all(bodies(f"{run}-one", n), 1)
        many = await post_all(bodies(f"{run}-many", n), clients)
    return (
        Figure("POST /api/events x1", n, one, " (1 client)"),
        Figure(f"POST /api/events x{clients}", n, many, f" ({clients} concurrent clients)"),
    )


@asynccontextmanager
async def pg_schema(pg_url: str, *, kept: str | None = None) -> AsyncIterator[str]:
    """A new, empty schema in the given PostgreSQL database, dropped afterwards; or, with `kept`, the schema of that
    name, created if missing and kept. Yields a URL whose search_path names it."""
    schema = kept or f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {'IF NOT EXISTS ' if kept else ''}{schema}")
    try:
        yield f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{schema}"
    finally:
        if kept is None:
            with psycopg.connect(pg_url, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA {schema} CASCADE")


async def bench_backend(name: str, url: str, args: argparse.Namespace, workdir: Path) -> None:
    n = args.events
    async with Ledger(url) as ledger:
        await bench_record(ledger, make_events(min(n, 4_000), run="warm-r"), callers=args.callers)
        figure = await bench_record(ledger, make_events(n, run="rec"), callers=args.callers)
        print(figure.line(name), flush=True)
        await bench_record_many(ledger, make_events(min(n, 5 * BATCH), run="warm-b"))
        print((await bench_record_many(ledger, make_events(n, run="batch"))).line(name), flush=True)
    if not args.no_http:
        with farebox_server(url, workdir) as base:
            for figure in await bench_http(base, n, clients=args.http_clients, run=uuid.uuid4().hex[:8]):
                print(figure.line(name), flush=True)


async def run(args: argparse.Namespace) -> None:
    print(
        f"farebox ledger benchmark: {args.events:,} events per figure; Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="farebox-bench-") as tmp:
        workdir = Path(tmp)
        await bench_backend("sqlite", f"sqlite:///{workdir / 'ledger.db'}", args, workdir)
        if args.pg_url:
            async with pg_schema(args.pg_url) as url:
                await bench_backend("postgresql", url, args, workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="events per figure (default 20,000)")
    parser.add_argument("--pg-url", help="also run on this PostgreSQL database (a temporary schema is used)")
    parser.add_argument("--callers", type=int, default=64, help="concurrent record() callers (default 64)")
    parser.add_argument("--http-clients", type=int, default=4, help="concurrent HTTP clients (default 4)")
    parser.add_argument("--no-http", action="store_true", help="skip the POST /api/events figures")
    args = parser.parse_args()
    if args.events < BATCH or args.events % BATCH:
        parser.error(f"--events must be a multiple of {BATCH:,}")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
