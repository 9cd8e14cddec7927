"""Requests per second of `farebox serve --workers N` on PostgreSQL and Redis, for several N: prints figures,
asserts nothing.

    .venv/bin/python bench/scale_out.py --pg-url postgresql://... --redis-url redis://127.0.0.1:6379/0
                                        [--workers 1,2,4] [--concurrency 32] [--duration 10] [--repeats 2]
                                        [--modes nonstream,stream]

For each N, one `farebox serve --workers N` on a PostgreSQL ledger of its own (a new schema, dropped afterwards)
sharing its spend counters through Redis, routing `fake-gpt` to a fake upstream of the side-by-side harness
(`../shared/bench/`). Two keys each: `wN` (no cap) and `wN-capped` (held to three caps the run cannot reach,
so every request makes its two Redis round trips: the reservation and the release). The harness's runner
(`run_bench.py`, wrk) measures every target round by round, the order reversed every other round, so drift
moves all of them; it prints the medians (requests/s, latency, CPU of each process tree) and the ratio of each N
to N = 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from processes import Service, Services, free_port, wait_ready
from proxy import (
    DEFAULT_HARNESS,
    MODEL,
    MODELS_TOML,
    PRICE_AS,
    capped_key,
    clean_env,
    http_json,
    run_runner,
    smoke_farebox,
    start_upstream,
    summary_table,
)

__all__ = ["main"]

SECRET = "a-server-secret-for-the-scale-out-bench-0123456789"
TOML = (
    """\
# Written by bench/scale_out.py for one run.
database_url = "{database_url}"
redis_url = "{redis_url}"
workers = {workers}
log_level = "warning"
"""
    + MODELS_TOML
)


@contextlib.contextmanager
def schemas(pg_url: str) -> Iterator[list[str]]:
    """Schemas made on demand (append a name), dropped at the end."""
    made: list[str] = []
    try:
        yield made
    finally:
        with psycopg.connect(pg_url, autocommit=True) as connection:
            for schema in made:
                connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def start_farebox(
    services: Services, workdir: Path, *, pg_url: str, schema: str, redis_url: str, workers: int, upstream: str
) -> tuple[Service, str, str, str]:
    """`farebox serve --workers N` on its own schema: the service, its /v1 base, a plain key, a capped key."""
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    workdir.mkdir()
    database_url = f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{schema}"
    (workdir / "farebox.toml").write_text(
        TOML.format(
            database_url=database_url,
            redis_url=redis_url,
            workers=workers,
            model=MODEL,
            base_url=f"{upstream}/v1",
            price_as=PRICE_AS,
        )
    )
    port = free_port()
    master = "fbx_master_bench_" + uuid.uuid4().hex
    env = clean_env(FAREBOX_MASTER_KEY=master, FAREBOX_SECRET_KEY=SECRET, FAKE_UPSTREAM_API_KEY="sk-fake-upstream")
    serve = [str(Path(sys.executable).with_name("farebox")), "serve", "--port", str(port)]
    service = services.start(f"w{workers}", serve, cwd=workdir, env=env)
    root = f"http://127.0.0.1:{port}"
    seconds = wait_ready(service, f"{root}/readyz", port, timeout=90)
    print(f"  w{workers:<3} pid {service.pid:<7} {root}  ready in {seconds:.1f} s", flush=True)
    status, account, _ = http_json(f"{root}/api/admin/accounts", {"name": "bench"}, key=master)
    assert status == 201, account
    status, key, _ = http_json(f"{root}/api/admin/virtual-keys", {"account_id": account["id"], "name": "b"}, key=master)
    assert status == 201, key
    base = f"{root}/v1"
    capped = capped_key(base, master)
    smoke_farebox(base, key["key"])
    smoke_farebox(base, capped)
    return service, base, key["key"], capped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", required=True, help="PostgreSQL database (a schema per N, dropped afterwards)")
    parser.add_argument("--redis-url", required=True, help="the Redis every process shares its counters through")
    parser.add_argument("--workers", default="1,2,4", help="the N to measure (default 1,2,4)")
    parser.add_argument("--concurrency", default="32")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--modes", default="nonstream")
    parser.add_argument("--harness", type=Path, default=DEFAULT_HARNESS)
    args = parser.parse_args(argv)
    harness = args.harness.resolve()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install -y wrk")
    counts = [int(n) for n in args.workers.split(",")]
    services = Services()
    tmp = Path(tempfile.mkdtemp(prefix="farebox-scale-out-bench-"))
    try:
        with schemas(args.pg_url) as made:
            print("== starting", flush=True)
            upstream, upstream_root = start_upstream(services, harness, tmp, "upstream")
            cmd = [
                sys.executable, str(harness / "run_bench.py"),
                "--upstream", upstream_root, "--upstream-pid", str(upstream.pid),
            ]  # fmt: skip
            for n in counts:
                made.append(f"bench_scale_{n}_{uuid.uuid4().hex[:8]}")
                service, base, key, capped = start_farebox(
                    services,
                    tmp / f"w{n}",
                    pg_url=args.pg_url,
                    schema=made[-1],
                    redis_url=args.redis_url,
                    workers=n,
                    upstream=upstream_root,
                )
                for name, secret in ((f"w{n}", key), (f"w{n}-capped", capped)):
                    cmd += ["--target", f"{name}={base}", "--key", f"{name}={secret}", "--pid", f"{name}={service.pid}"]
            out_dir = tmp / "results"
            cmd += [
                "--model", MODEL, "--modes", args.modes, "--concurrency", args.concurrency,
                "--duration", str(args.duration), "--repeats", str(args.repeats), "--warmup", str(args.warmup),
                "--out-dir", str(out_dir), "--label", "bench/scale_out.py",
            ]  # fmt: skip
            print("== run_bench.py " + " ".join(cmd[2:]), flush=True)
            with (tmp / "runner.log").open("w") as log:
                code = run_runner(cmd, log)
            services.stop_all()
        if code != 0:
            return code
        results = json.loads((out_dir / "results.json").read_text())
        print()
        print(f"== medians of {args.repeats} rounds, {os.cpu_count()} CPUs, PostgreSQL ledger, Redis counters")
        print(summary_table(results["summary"]))
        print()
        print("== requests/s against one process, per mode and concurrency")
        for row in results["summary"]:
            name = row["target"]
            if not name.startswith("w"):
                continue
            n = int(name.removeprefix("w").removesuffix("-capped"))
            first = next(
                r["rps"]
                for r in results["summary"]
                if r["target"] == name.replace(f"w{n}", f"w{counts[0]}", 1)
                and (r["mode"], r["concurrency"]) == (row["mode"], row["concurrency"])
            )
            print(f"  {row['mode']:<9} c={row['concurrency']:<3} {name:<10} {row['rps'] / first:5.2f}x")
        return 0
    finally:
        services.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
