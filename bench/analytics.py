"""Analytics read benchmark: prints figures, asserts nothing.

    .venv/bin/python bench/analytics.py [--events N] [--days D] [--pg-url postgresql://...] [--rounds R] [--export]
        [--admin] [--keep DIR]

For SQLite (a new file in a temporary directory) and, with --pg-url, PostgreSQL (a new schema, dropped
afterwards), it records N events spread evenly over the last D days (default 1,000,000 over 90), in time
order as traffic arrives, through the ledger's batch path in 1,000-event batches — 3 accounts (the first,
"big", holds 80% of the traffic), 40 keys and 20 members each, 8 models of 3 providers, 6 agents, 4 apps (each
key has an agent and an app, which its requests carry, as the proxy attributes them), 2% errors — then times
each usage endpoint warm, in-process over HTTP (httpx's ASGI transport, the master key), with the garbage collector
set as `farebox serve` sets it (`tune_collector`), R rounds each:

- `GET /api/analytics/models` over the 90 days of the big account;
- `GET /api/analytics/models/over-time?grain=day` over the 90 days;
- `GET /api/analytics/members` for the last month;
- `GET /api/usage` and `GET /v1/usage` for this month;
- `GET /api/analytics/requests` first page (50) of one day;
- with `--admin`, seed 004's admin analytics of the big account (`ADMIN_ENDPOINTS`).

With `--keep DIR` the filled ledgers stay (the SQLite file in DIR, a PostgreSQL schema named after the fill) and a
later run with the same N and D times them again without filling; their events then end when the fill ended.

With `--export`, it then streams `GET /v1/usage/export` of the big account's last days holding about a million
of its events (its whole range when it holds fewer), as CSV and as JSON,
straight through the app (an ASGI call whose `send` counts the bytes and throws them away, so nothing but the
route holds them), and prints rows/s and how far resident memory rose above where it stood before the request
(sampled at every chunk, from /proc/self/statm); and, first, how fast the database driver alone reads the
export's columns of those events (a day more), formatting nothing: the floor of an export that formats in
Python. Then `POST /api/admin/analytics/export` of the same days, the same way (`ADMIN_EXPORTS`).

Targets (issues 16 and 18, 2-core machine, both backends, at 10 million events): p95 <= 100 ms for the month
and 90-day views, <= 50 ms for a day's first page, <= 200 ms for each admin analytics endpoint (live <= 50 ms,
forecast <= 1 s); an export of 1,000,000 events at >= 200,000 rows/s with resident memory growing less than
50 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from farebox.app import create_app
from farebox.cli.server import tune_collector
from farebox.core.events import Axis, Status, UsageEvent, epoch_us
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.exports import EXPORT_COLUMNS
from farebox.settings import Settings
from ledger import pg_schema  # bench/ledger.py, beside this script

__all__ = ["main"]

BATCH = 1_000
_BIG = {"account_id": "{account}"}
ADMIN_ENDPOINTS = [
    ("trends, 2h by minute", "/api/admin/analytics/usage/trends", _BIG | {"period": "2h", "granularity": "minute"}),
    ("trends, 24h by hour", "/api/admin/analytics/usage/trends", _BIG | {"period": "24h", "granularity": "hour"}),
    ("trends, 7d by hour", "/api/admin/analytics/usage/trends", _BIG | {"period": "7d", "granularity": "hour"}),
    ("trends, 30d by hour", "/api/admin/analytics/usage/trends", _BIG | {"period": "30d", "granularity": "hour"}),
    ("trends, 30d by day", "/api/admin/analytics/usage/trends", _BIG | {"period": "30d", "granularity": "day"}),
    ("providers, 30d", "/api/admin/providers/analytics", _BIG | {"period": "30d"}),
    ("performance, 30d by provider", "/api/admin/analytics/performance", _BIG | {"period": "30d"}),
    ("performance, 30d by key", "/api/admin/analytics/performance", _BIG | {"period": "30d", "breakdown": "key"}),
    ("performance, 24h by model", "/api/admin/analytics/performance", _BIG | {"period": "24h", "breakdown": "model"}),
    ("a key, 30d", "/api/admin/virtual-keys/{key}/analytics", _BIG | {"period": "30d"}),
    ("patterns, 30d", "/api/admin/analytics/patterns", _BIG | {"period": "30d"}),
    ("budgets status", "/api/admin/budgets/status", _BIG),
    ("live", "/api/admin/analytics/usage/live", _BIG),
    ("live, every account", "/api/admin/analytics/usage/live", {}),
    ("cost optimization, 30d", "/api/admin/analytics/cost-optimization", _BIG | {"period": "30d"}),
    ("budget forecast, 90d", "/api/admin/analytics/budget-forecast", _BIG | {"horizon": "90d"}),
]
"""Seed 004's endpoints timed with `--admin`: (label, path, parameters), for the big account (`{account}`) unless
said, `{key}` its first key."""
FAILURES = [(429, "rate_limit_error"), (503, "http_503"), (504, "upstream_timeout"), (400, "invalid_request_error")]
"""(HTTP status, error type) of the 2% of requests that fail."""
MASTER_KEY = "fbx_master_bench_" + "x" * 24
MODELS = [
    ("openai", "gpt-4o", 4_500),
    ("openai", "gpt-4o-mini", 300),
    ("openai", "o3", 9_000),
    ("anthropic", "claude-sonnet-4-6", 6_000),
    ("anthropic", "claude-haiku-4-5", 1_200),
    ("google", "gemini-2.5-flash", 400),
    ("google", "gemini-2.5-pro", 5_000),
    ("openai", "text-embedding-3-small", 20),
]


Keys = list[tuple[str, str, str, str]]
"""An account's keys: (key id, member id, agent id, app)."""


async def _directory(ledger: Ledger) -> list[tuple[str, Keys]]:
    """3 accounts, each with 20 members and 40 keys: [(account id, keys)]."""
    directory = Directory(ledger)
    accounts = []
    for n in range(3):
        account = await directory.create_account(name=f"bench-{n}", plan="enterprise", timezone="Asia/Kolkata")
        members = [
            await directory.create_member(account.id, email=f"m{i}@bench.test", name=f"Member {i}") for i in range(20)
        ]
        keys = [
            (
                await directory.create_key(
                    account.id,
                    member_id=members[i % 20].id,
                    name=f"key-{i}",
                    agent_id=f"agent-{i % 6}",
                    app=f"app-{i % 4}",
                )
            )[0]
            for i in range(40)
        ]
        accounts.append(
            (account.id, [(key.id, key.member_id or "", key.agent_id or "", key.app or "") for key in keys])
        )
    return accounts


def _events(accounts: list[tuple[str, Keys]], n: int, *, start: datetime, span: float, seed: int) -> list[UsageEvent]:
    """`n` events from `start` over `span` seconds, in time order (as traffic arrives)."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        account_id, keys = accounts[0] if rng.random() < 0.8 else rng.choice(accounts[1:])
        key_id, member_id, agent_id, app = rng.choice(keys)
        provider, model, micro = rng.choice(MODELS)
        failure = rng.choice(FAILURES) if rng.random() < 0.02 else None
        events.append(
            UsageEvent(
                id=uuid.uuid4().hex,
                timestamp=start + timedelta(seconds=span * i / n),
                account_id=account_id,
                key_id=key_id,
                member_id=member_id,
                agent_id=agent_id,
                app=app,
                axis=Axis.LLM,
                provider=provider,
                model=model,
                canonical_model=model,
                operation="chat.completions",
                input_tokens=rng.randrange(50, 4_000),
                output_tokens=rng.randrange(0, 1_000),
                cost_nano=micro * rng.randrange(1, 400),
                status=Status.ERROR if failure else Status.OK,
                http_status=failure[0] if failure else 200,
                error_type=failure[1] if failure else None,
                latency_ms=(latency := rng.randrange(100, 4_000)),
                ttft_ms=(ttft := rng.randrange(50, latency)),
                streamed=ttft % 5 < 2,  # 40% streamed, with a time to first token (the performance endpoint's)
            )
        )
    return events


async def _fill(ledger: Ledger, accounts: list[tuple[str, Keys]], n: int, days: int) -> float:
    started = time.perf_counter()
    chunk = 50_000
    first = datetime.now(UTC) - timedelta(days=days)
    per_event = days * 86_400 / n
    for seed, offset in enumerate(range(0, n, chunk)):
        count = min(chunk, n - offset)
        start = first + timedelta(seconds=offset * per_event)
        events = _events(accounts, count, start=start, span=count * per_event, seed=seed)
        for at in range(0, len(events), BATCH):
            await ledger.record_many(events[at : at + BATCH])
    return time.perf_counter() - started


ROWS_COUNTED = (
    "usage_events",
    "usage_rollups",
    "usage_key_rollups",
    "usage_daily",
    "usage_daily_errors",
    "latency_sketches",
)
"""The tables whose sizes a run prints."""
EXPORT_ROWS = 1_000_000
"""About how many events `--export` exports."""
_SEED_FIELDS = ["timestamp", "virtual_key_id", "virtual_key_name", "provider", "model", "operation", "requests"]
_SEED_FIELDS += ["tokens", "cost", "latency", "errors"]
ADMIN_EXPORTS = [
    ("raw csv", {"format": "csv"}),
    ("raw json", {"format": "json"}),
    ("raw ndjson", {"format": "ndjson"}),
    ("raw csv, seed fields", {"format": "csv", "includeFields": _SEED_FIELDS}),
    ("hourly csv", {"format": "csv", "granularity": "hourly"}),
]
"""`POST /api/admin/analytics/export` bodies timed by `--export` over the same days (a JSON array's rows are counted
from the raw CSV's, the one before it)."""


async def _time(client: httpx.AsyncClient, path: str, params: dict[str, str], rounds: int) -> str:
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    answer = await client.get(path, params=params, headers=headers)  # warm
    answer.raise_for_status()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        (await client.get(path, params=params, headers=headers)).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    return f"p50 {statistics.median(times):7.1f} ms  p95 {p95:7.1f} ms  ({len(answer.content):,} bytes)"


def _rss() -> int:
    """Resident memory now, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _export(app: Any, path: str, params: dict[str, str], body: dict[str, Any] | None = None) -> tuple[str, int]:
    """Stream one export through the ASGI app (a GET, or a POST of `body`): its time, size and rise in resident
    memory, and its line count."""
    done = asyncio.Event()
    asked = False
    seen = {"bytes": 0, "lines": 0, "peak": 0, "status": 0}

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {
                "type": "http.request",
                "body": b"" if body is None else json.dumps(body).encode(),
                "more_body": False,
            }
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]
            return
        body = message.get("body", b"")
        seen["bytes"] += len(body)
        seen["lines"] += body.count(b"\n")
        seen["peak"] = max(seen["peak"], _rss())

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET" if body is None else "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": urlencode(params).encode(),
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"authorization", f"Bearer {MASTER_KEY}".encode()),
            (b"content-type", b"application/json"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
    }
    gc.collect()
    before = seen["peak"] = _rss()
    started, cpu = time.perf_counter(), time.process_time()
    await app(scope, receive, send)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    done.set()
    assert seen["status"] == 200, seen
    return (
        f"{seconds:6.2f} s ({cpu:.2f} s of CPU in this process), {seen['bytes'] / 1e6:,.0f} MB, "
        f"RSS +{(seen['peak'] - before) / 2**20:.1f} MB (from {before / 2**20:.0f} MB)"
    ), seen["lines"]


async def _driver_alone(ledger: Ledger, account_id: str, since: datetime) -> float:
    """Rows/s of the export's read alone: its columns of the same events, fetched on the driver's cursor in pages
    of 5,000 and thrown away, nothing formatted. What the driver costs per row, the floor of any export in
    Python."""

    def read(connection: Any) -> int:
        cursor = connection.connection.dbapi_connection.cursor()
        placeholder = "?" if ledger.dialect == "sqlite" else "%s"
        cursor.execute(
            f"SELECT {', '.join(EXPORT_COLUMNS)} FROM usage_events WHERE account_id = {placeholder} "
            f"AND ts_us >= {placeholder} ORDER BY ts_us, id",
            (account_id, epoch_us(since)),
        )
        rows = 0
        while page := cursor.fetchmany(5_000):
            rows += len(page)
        cursor.close()
        return rows

    started = time.perf_counter()
    rows = await ledger._read(read)
    return rows / (time.perf_counter() - started)


async def bench_backend(name: str, url: str, args: argparse.Namespace, workdir: Path) -> None:
    settings = Settings(database_url=url, secret_key="bench-server-secret-" + "y" * 24)
    ledger = Ledger(url)
    app = create_app(settings, ledger=ledger, master_key=MASTER_KEY)
    kept = args.keep / f"{name}-{args.events}-{args.days}.json" if args.keep else None
    async with ledger:
        if kept is not None and kept.exists():
            accounts = [(account_id, [tuple(key) for key in keys]) for account_id, keys in json.loads(kept.read_text())]
            print(f"{name:<10} fill: the ledger kept in {args.keep}, filled {time.ctime(kept.stat().st_mtime)}")
        else:
            accounts = await _directory(ledger)
            seconds = await _fill(ledger, accounts, args.events, args.days)
            print(
                f"{name:<10} fill: {args.events:,} events in {seconds:.1f} s ({args.events / seconds:,.0f} events/s)",
                flush=True,
            )
            if kept is not None:
                kept.write_text(json.dumps(accounts))
        counts = await ledger._read(
            lambda c: [c.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() for table in ROWS_COUNTED]
        )
        print(f"{name:<10} rows: " + ", ".join(f"{n:,} {table}" for table, n in zip(ROWS_COUNTED, counts, strict=True)))
        tune_collector()  # as `farebox serve` does before it serves
        big = accounts[0][0]
        today = datetime.now(UTC).date()
        ninety = {
            "account_id": big,
            "from": (today - timedelta(days=args.days - 1)).isoformat(),
            "to": today.isoformat(),
        }
        month = {"account_id": big, "from": (today - timedelta(days=30)).isoformat(), "to": today.isoformat()}
        day = {"account_id": big, "date": (today - timedelta(days=3)).isoformat()}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for label, path, params in [
                (f"models, {args.days} days", "/api/analytics/models", ninety),
                (f"over time by day, {args.days} days", "/api/analytics/models/over-time", ninety),
                ("members, a month", "/api/analytics/members", month),
                ("/api/usage, this month", "/api/usage", {"accountId": big}),
                ("/v1/usage, this month", "/v1/usage", {"account_id": big}),
                ("a day's first page", "/api/analytics/requests", day),
            ]:
                print(f"{name:<10} {label:<32} {await _time(client, path, params, args.rounds)}", flush=True)
            for label, path, params in ADMIN_ENDPOINTS if args.admin else []:
                at = path.format(key=accounts[0][1][0][0])
                given = {name: value.format(account=big) for name, value in params.items()}
                figures = await _time(client, at, given, args.rounds)
                print(f"{name:<10} {label:<32} {figures}", flush=True)
        if args.export:
            # The last days holding about a million of the big account's events (80% of the traffic).
            days = max(1, min(args.days, round(EXPORT_ROWS * args.days / (0.8 * args.events))))
            whole = ninety | {"from": (today - timedelta(days=days - 1)).isoformat()}
            since = datetime.combine(today - timedelta(days=days + 1), datetime.min.time(), tzinfo=UTC)
            alone = await _driver_alone(ledger, big, since)
            print(f"{name:<10} the driver alone reads the export's columns at {alone:,.0f} rows/s", flush=True)
            rows = 0
            for export_format in ("csv", "json"):
                started = time.perf_counter()
                figures, lines = await _export(app, "/v1/usage/export", whole | {"format": export_format})
                seconds = time.perf_counter() - started
                rows = lines - 1 if export_format == "csv" else rows  # the CSV's lines less its header
                print(
                    f"{name:<10} export {export_format:<4} {rows:,} rows: {figures}, {rows / seconds:,.0f} rows/s",
                    flush=True,
                )
            dates = {"startDate": whole["from"], "endDate": whole["to"]}
            count = 0
            for label, asked in ADMIN_EXPORTS:
                started = time.perf_counter()
                figures, lines = await _export(app, "/api/admin/analytics/export", {"account_id": big}, dates | asked)
                seconds = time.perf_counter() - started
                if asked["format"] != "json":
                    count = lines - (asked["format"] == "csv")  # the CSV's lines less its header
                print(
                    f"{name:<10} admin export {label:<24} {count:,} rows: {figures}, {count / seconds:,.0f} rows/s",
                    flush=True,
                )


async def run(args: argparse.Namespace) -> None:
    print(
        f"farebox analytics benchmark: {args.events:,} events over {args.days} days, {args.rounds} rounds; "
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="farebox-bench-") as tmp:
        workdir = Path(tmp)
        ledgers = args.keep or workdir
        await bench_backend("sqlite", f"sqlite:///{ledgers / f'ledger-{args.events}-{args.days}.db'}", args, workdir)
        if args.pg_url:
            kept = f"bench_kept_{args.events}_{args.days}" if args.keep else None
            async with pg_schema(args.pg_url, kept=kept) as url:
                await bench_backend("postgresql", url, args, workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to record (default 1,000,000)")
    parser.add_argument("--days", type=int, default=90, help="days they spread over, ending now (default 90)")
    parser.add_argument("--rounds", type=int, default=20, help="timed requests per endpoint (default 20)")
    parser.add_argument("--admin", action="store_true", help="also time seed 004's admin analytics endpoints")
    parser.add_argument("--export", action="store_true", help="also time the big account's exports")
    parser.add_argument("--pg-url", help="also run on this PostgreSQL database (a temporary schema is used)")
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep the filled ledgers in this directory (PostgreSQL: a schema named after the fill) and time them "
        "again, unfilled, when run with the same --events and --days",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
