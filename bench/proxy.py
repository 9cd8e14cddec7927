"""Proxy benchmark: farebox beside the ceiling and LiteLLM, on a 0 ms fake upstream. Prints figures, asserts nothing.

    .venv/bin/python bench/proxy.py [--concurrency 1,8,32] [--duration 10] [--repeats 2]
                                    [--with-ceiling] [--with-litellm] [--modes nonstream,stream]

It uses the side-by-side harness in `../shared/bench/` (`--harness DIR`): its fake upstream, its runner
`run_bench.py` (wrk, 1 thread) and, when asked, its ceiling pass-through and LiteLLM. Everything runs on
127.0.0.1 on free ports, in a temporary directory, and is stopped when the run ends (process groups).

- `direct`: the fake upstream with no gateway in front, the baseline for "added" latency.
- `farebox`: `farebox serve` (one uvicorn worker) in a temporary working directory whose `farebox.toml`
  routes `fake-gpt` to provider `openai_compatible`, priced as `openai/gpt-4o`, with a SQLite ledger.
  Requests carry a virtual key created through the admin API: auth, pricing and the ledger are on.
  farebox gets a fake upstream of its own (same script, same flags), so that upstream's request count is
  exactly what farebox forwarded, and the ledger check below is exact.
- `ceiling` (`--with-ceiling`): `../shared/bench/ceiling/proxy.py` under uvicorn + uvloop + httptools. It
  needs `uvicorn uvloop httptools aiohttp orjson`, all of them farebox dependencies, so it runs on this
  Python unless `--ceiling-python` (or `CEILING_PYTHON`) names another one.
- `litellm` (`--with-litellm`): LiteLLM's proxy, one worker, no database, started by
  `../shared/bench/litellm/start.sh` from the venv `litellm/install.sh` made (`--litellm-venv`).

After the load, it checks the ledger: every request farebox forwarded has one row in `usage_events`, and
there are at least as many `ok` rows as the 200s the runner counted for farebox (the rest are the runner's
warm-up and smoke requests, and requests wrk abandoned when a run's time was up).

Targets (issue 3, 2-core machine, with the ledger, auth and pricing on): at concurrency 32 at least
2,500 requests/s non-streaming and 1,500 streaming; added p50 under 1 ms at concurrency 1; peak RSS
under 150 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ab import ab_lines
from processes import Service, Services, free_port, signal_group, wait_ready

__all__ = ["MODELS_TOML", "main"]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_HARNESS = Path(os.environ.get("FAREBOX_BENCH_HARNESS", REPO.parent / "shared" / "bench"))
MODEL = "fake-gpt"
PRICE_AS = "openai/gpt-4o"
LITELLM_KEY = "sk-bench-master-1234"
LITELLM_DEFAULT_UPSTREAM = "http://127.0.0.1:8900/v1"
CEILING_MODULES = ("uvicorn", "uvloop", "httptools", "aiohttp", "orjson")

TARGET_RPS = {"nonstream": 2_500.0, "stream": 1_500.0}
TARGET_ADDED_P50_MS = 1.0
TARGET_RSS_MB = 150.0


# --------------------------------------------------------------------------- HTTP helpers


def http_json(
    url: str, body: dict[str, Any] | None = None, *, key: str | None = None, timeout: float = 30
) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}"), dict(response.headers)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = {"raw": raw[:500].decode(errors="replace")}
        return exc.code, payload, dict(exc.headers)


def chat_body(stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}],
        "max_tokens": 20,
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


def upstream_stats(root: str) -> dict[str, int]:
    status, stats, _ = http_json(f"{root}/stats", timeout=5)
    if status != 200:
        raise RuntimeError(f"{root}/stats answered {status}")
    return stats


# --------------------------------------------------------------------------- farebox


MODELS_TOML = """
[[models]]
name = "{model}"
provider = "openai_compatible"
base_url = "{base_url}"
api_key_env = "FAKE_UPSTREAM_API_KEY"
price_as = "{price_as}"
"""
"""The route of the fake model to a fake upstream (`FAKE_UPSTREAM_API_KEY` in the environment)."""

FAREBOX_TOML = (
    """\
# Written by bench/proxy.py for one run.
database_url = "sqlite:///{db}"
log_level = "warning"
"""
    + MODELS_TOML
)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without farebox's or LiteLLM's own settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAREBOX_", "LITELLM_")) and k != "UP"}
    env["PYTHONUNBUFFERED"] = "1"
    return env | extra


def start_farebox(
    services: Services, workdir: Path, upstream_root: str, *, name: str = "farebox", src: Path | None = None
) -> tuple[Service, str, str, str]:
    """Start `farebox serve` (from the checkout `src` when given, on this venv's packages); returns the service,
    its /v1 base URL, a virtual key made for the run, the master key."""
    workdir.mkdir()
    db = workdir / "farebox.db"
    (workdir / "farebox.toml").write_text(
        FAREBOX_TOML.format(db=db, model=MODEL, base_url=f"{upstream_root}/v1", price_as=PRICE_AS)
    )
    port = free_port()
    master = "fbx_master_bench_" + secrets.token_hex(16)
    env = clean_env(FAREBOX_MASTER_KEY=master, FAKE_UPSTREAM_API_KEY="sk-fake-upstream-key")
    serve = [str(Path(sys.executable).with_name("farebox")), "serve", "--port", str(port)]
    if src is not None:
        env["PYTHONPATH"] = str(src / "src")
        serve = [sys.executable, "-m", "farebox", "serve", "--port", str(port)]
    service = services.start(name, serve, cwd=workdir, env=env)
    root = f"http://127.0.0.1:{port}"
    seconds = wait_ready(service, f"{root}/healthz", port, timeout=60)
    print(f"  {name:<11} pid {service.pid:<7} {root}  ready in {seconds:.1f} s  (ledger {db})", flush=True)
    status, account, _ = http_json(f"{root}/api/admin/accounts", {"name": "bench"}, key=master)
    if status != 201:
        raise RuntimeError(f"creating the account answered {status}: {account}")
    status, created, _ = http_json(
        f"{root}/api/admin/virtual-keys", {"account_id": account["id"], "name": "bench"}, key=master
    )
    if status != 201:
        raise RuntimeError(f"creating the virtual key answered {status}: {created}")
    return service, f"{root}/v1", created["key"], master


def capped_key(base: str, master: str) -> str:
    """A key held to three caps (its own, its member's, its account's), none of which the run can reach."""
    root = base.removesuffix("/v1")
    cap = {"spend_cap": "1000000.00", "cap_period": "monthly"}
    made = []
    for url, body in (
        (f"{root}/api/admin/accounts", {"name": "bench-capped"} | cap),
        (f"{root}/api/admin/accounts/{{account}}/members", {"email": "bench@example.com", "name": "Bench"} | cap),
        (
            f"{root}/api/admin/virtual-keys",
            {"account_id": "{account}", "member_id": "{member}", "name": "capped"} | cap,
        ),
    ):
        ids = {"account": made[0]["id"] if made else "", "member": made[1]["id"] if len(made) > 1 else ""}
        url = url.format(**ids)
        body = {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}
        status, record, _ = http_json(url, body, key=master)
        if status != 201:
            raise RuntimeError(f"POST {url} answered {status}: {record}")
        made.append(record)
    return str(made[2]["key"])


def smoke_farebox(base: str, key: str) -> None:
    """One non-streaming request through farebox: 200 with usage, or stop here with what it answered."""
    status, body, headers = http_json(f"{base}/chat/completions", chat_body(stream=False), key=key)
    if status != 200 or not body.get("usage"):
        raise RuntimeError(f"POST /v1/chat/completions through farebox answered {status}: {json.dumps(body)[:600]}")
    cost = headers.get("x-farebox-cost-usd", "-")
    print(f"  farebox     smoke: 200, usage {body['usage'].get('total_tokens')} tokens, cost ${cost}", flush=True)


@dataclass(frozen=True)
class LedgerCount:
    rows: int
    by_status: dict[str, int]
    streamed: int
    estimated: int
    priced: int


def count_ledger(db: Path) -> LedgerCount:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        rows = conn.execute(
            "SELECT status, streamed, estimated, priced, count(*) FROM usage_events GROUP BY 1, 2, 3, 4"
        ).fetchall()
    by_status: dict[str, int] = {}
    streamed = estimated = priced = total = 0
    for status, is_streamed, is_estimated, is_priced, n in rows:
        by_status[status] = by_status.get(status, 0) + n
        streamed += n if is_streamed else 0
        estimated += n if is_estimated else 0
        priced += n if is_priced else 0
        total += n
    return LedgerCount(total, by_status, streamed, estimated, priced)


def settled_ledger(db: Path, *, quiet_for: float = 1.0, timeout: float = 30.0) -> LedgerCount:
    """The ledger once its row count has not moved for `quiet_for` seconds (abandoned requests finish)."""
    last = count_ledger(db)
    stable_since = time.monotonic()
    deadline = stable_since + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = count_ledger(db)
        if now.rows != last.rows:
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= quiet_for:
            break
    return last


# --------------------------------------------------------------------------- peers


def start_upstream(services: Services, harness: Path, workdir: Path, name: str) -> tuple[Service, str]:
    port = free_port()
    cmd = [sys.executable, str(harness / "fake_upstream.py"), "--port", str(port)]
    service = services.start(name, cmd, cwd=workdir, env=clean_env())
    root = f"http://127.0.0.1:{port}"
    wait_ready(service, f"{root}/health", port, timeout=30)
    print(f"  {name:<11} pid {service.pid:<7} {root}", flush=True)
    return service, root


def start_ceiling(services: Services, harness: Path, workdir: Path, python: str, upstream_root: str) -> Service:
    workdir.mkdir()
    port = free_port()
    cmd = [
        python, "-m", "uvicorn", "proxy:app", "--app-dir", str(harness / "ceiling"),
        "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    service = services.start("ceiling", cmd, cwd=workdir, env=clean_env(UP=upstream_root))
    wait_ready(service, None, port, timeout=30)
    service.base = f"http://127.0.0.1:{port}/v1"
    print(f"  ceiling     pid {service.pid:<7} http://127.0.0.1:{port}  (ledger {workdir / 'ledger.db'})", flush=True)
    return service


def start_litellm(services: Services, harness: Path, workdir: Path, venv: Path, upstream_root: str) -> Service:
    """LiteLLM through the harness's start.sh, on a free port, its config pointed at our upstream."""
    workdir.mkdir()
    config = (harness / "litellm" / "config.yaml").read_text()
    if LITELLM_DEFAULT_UPSTREAM not in config:
        raise RuntimeError(f"{harness / 'litellm' / 'config.yaml'} no longer names {LITELLM_DEFAULT_UPSTREAM}")
    (workdir / "config.yaml").write_text(config.replace(LITELLM_DEFAULT_UPSTREAM, f"{upstream_root}/v1"))
    port = free_port()
    env = clean_env(LITELLM_VENV=str(venv), LITELLM_PORT=str(port), RUN_DIR=str(workdir))
    cmd = ["bash", str(harness / "litellm" / "start.sh"), str(workdir / "config.yaml")]
    service = services.start("litellm-start", cmd, cwd=workdir, env=env, pid_file=workdir / "litellm.pid")
    if service.proc.wait(timeout=180) != 0:
        log = (workdir / "litellm.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"litellm/start.sh failed:\n{service.tail()}\n{log}")
    service.base = f"http://127.0.0.1:{port}/v1"
    print(f"  litellm     pid {service.pid:<7} http://127.0.0.1:{port}  ({service.tail(1)})", flush=True)
    return service


def check_ceiling_python(python: str) -> None:
    probe = subprocess.run(
        [python, "-c", "import " + ", ".join(CEILING_MODULES)], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        raise SystemExit(
            f"--with-ceiling: {python} lacks one of {' '.join(CEILING_MODULES)}. Make a venv outside the project, "
            f"e.g. python3 -m venv /tmp/ceiling-venv && /tmp/ceiling-venv/bin/pip install {' '.join(CEILING_MODULES)}"
            ", and pass --ceiling-python /tmp/ceiling-venv/bin/python (or set CEILING_PYTHON)."
        )


# --------------------------------------------------------------------------- runner and report


def run_runner(cmd: list[str], log: TextIO) -> int:
    """Run run_bench.py in its own process group, echoing its output; kill the group if we are interrupted."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, bufsize=1
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            log.write(line)
        return proc.wait()
    finally:
        if proc.poll() is None:
            signal_group(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            signal_group(proc.pid, signal.SIGKILL)


def _f(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def summary_table(rows: list[dict[str, Any]]) -> str:
    ceiling = {(r["mode"], r["concurrency"]): r["rps"] for r in rows if r["target"] == "ceiling"}
    lines = [
        "| mode | conc | target | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | CPU % | peak RSS MB | errors"
        + (" | req/s vs ceiling |" if ceiling else " |"),
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if ceiling else ""),
    ]
    for r in rows:
        cells = [
            r["mode"], str(r["concurrency"]), r["target"], _f(r["rps"]), _f(r["p50_ms"], 2), _f(r["p99_ms"], 2),
            _f(r.get("added_p50_ms"), 2), _f(r.get("added_p99_ms"), 2), _f(r.get("cpu_pct")),
            _f(r.get("peak_rss_mb")), str(r["errors"]),
        ]  # fmt: skip
        if ceiling:
            base = ceiling.get((r["mode"], r["concurrency"]))
            cells.append(f"{r['rps'] / base:.0%}" if base and r["target"] != "direct" else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def target_lines(rows: list[dict[str, Any]], peak_rss_mb: float | None) -> list[str]:
    def row(mode: str, conc: int) -> dict[str, Any] | None:
        return next((r for r in rows if (r["target"], r["mode"], r["concurrency"]) == ("farebox", mode, conc)), None)

    lines = []
    for mode, floor in TARGET_RPS.items():
        r = row(mode, 32)
        got = None if r is None else r["rps"]
        lines.append(_verdict(f">= {floor:,.0f} req/s {mode} at c=32", got, got is not None and got >= floor, "req/s"))
    for mode in TARGET_RPS:
        r = row(mode, 1)
        got = None if r is None else r.get("added_p50_ms")
        ok = got is not None and got < TARGET_ADDED_P50_MS
        lines.append(_verdict(f"added p50 < {TARGET_ADDED_P50_MS:g} ms at c=1 ({mode})", got, ok, "ms", 2))
    ok = peak_rss_mb is not None and peak_rss_mb < TARGET_RSS_MB
    lines.append(_verdict(f"peak RSS < {TARGET_RSS_MB:.0f} MB", peak_rss_mb, ok, "MB"))
    return lines


def _verdict(what: str, got: float | None, ok: bool, unit: str, digits: int = 0) -> str:
    if got is None:
        return f"  -       {what:<40} not measured"
    return f"  {'met   ' if ok else 'MISSED'}  {what:<40} {got:,.{digits}f} {unit}"


def ledger_report(
    ledger: LedgerCount, forwarded: int, runs: list[dict[str, Any]], smoke_requests: int
) -> tuple[bool, list[str]]:
    mine = [r for r in runs if r["target"] in ("farebox", "capped")]
    answered_200 = sum(r["requests"] - r.get("non_2xx", 0) for r in mine)
    client_errors = sum(r["errors"] for r in mine)
    ok_rows = ledger.by_status.get("ok", 0)
    every_forwarded = ledger.rows == forwarded
    every_answered = ok_rows >= answered_200
    lines = [
        f"  upstream requests farebox forwarded (its own fake upstream's /stats): {forwarded:,}",
        f"  ledger rows (usage_events): {ledger.rows:,}  by status {ledger.by_status}  streamed {ledger.streamed:,}"
        f"  estimated {ledger.estimated:,}  priced {ledger.priced:,}",
        f"  200s the runner counted in measured farebox runs: {answered_200:,}  (client-side errors: {client_errors})",
        f"  -> every forwarded request has a row: {'yes' if every_forwarded else 'NO'} "
        f"({ledger.rows - forwarded:+,} rows vs forwarded)",
        f"  -> ok rows >= 200s answered: {'yes' if every_answered else 'NO'} "
        f"({ok_rows - answered_200:,} more ok rows: warm-up, smoke ({smoke_requests} + 2 per target) and requests "
        "wrk abandoned at the end of each run)",
    ]
    return every_forwarded and every_answered, lines


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated connection counts (default 1,8,32)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (default 10)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds; medians are reported (default 2)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per target and mode (default 3)")
    parser.add_argument("--modes", default="nonstream,stream")
    parser.add_argument(
        "--with-caps", action="store_true", help="also measure farebox through a key held to three spend caps"
    )
    parser.add_argument("--with-ceiling", action="store_true", help="also measure the bare ceiling pass-through")
    parser.add_argument("--with-litellm", action="store_true", help="also measure LiteLLM's proxy (1 worker, no DB)")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="also measure farebox from this checkout (e.g. a `git worktree` of an older commit), interleaved, "
        "and print per-round A/B ratios",
    )
    parser.add_argument("--harness", type=Path, default=DEFAULT_HARNESS, help=f"default {DEFAULT_HARNESS}")
    parser.add_argument("--ceiling-python", default=os.environ.get("CEILING_PYTHON", sys.executable))
    parser.add_argument(
        "--litellm-venv", type=Path, default=Path(os.environ.get("LITELLM_VENV", "/tmp/anchors/litellm-venv"))
    )
    parser.add_argument("--out-dir", type=Path, default=None, help="runner output (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, ledgers)")
    return parser.parse_args(argv)


def _raise_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="farebox-proxy-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness: Path = args.harness.resolve()
    if not (harness / "run_bench.py").is_file():
        raise SystemExit(f"no run_bench.py in {harness} (--harness)")
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install -y wrk")
    if args.with_ceiling:
        check_ceiling_python(args.ceiling_python)
    if args.with_litellm and not (args.litellm_venv / "bin" / "litellm").exists():
        raise SystemExit(f"no LiteLLM in {args.litellm_venv}: run {harness / 'litellm' / 'install.sh'} first")
    signal.signal(signal.SIGTERM, _raise_exit)

    started = dt.datetime.now(dt.UTC)
    print(
        f"farebox proxy benchmark {started:%Y-%m-%d %H:%M} UTC; Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        flush=True,
    )
    services = Services()
    with workspace(args.keep) as tmp:
        try:
            print("== starting", flush=True)
            upstream, upstream_root = start_upstream(services, harness, tmp, "upstream")
            fb_upstream, fb_upstream_root = start_upstream(services, harness, tmp, "fb-upstream")
            farebox, farebox_base, farebox_key, master = start_farebox(services, tmp / "farebox", fb_upstream_root)
            smoke_farebox(farebox_base, farebox_key)
            cmd = [
                sys.executable, str(harness / "run_bench.py"),
                "--upstream", upstream_root, "--upstream-pid", str(upstream.pid),
                "--target", f"farebox={farebox_base}", "--key", f"farebox={farebox_key}",
                "--pid", f"farebox={farebox.pid}",
            ]  # fmt: skip
            if args.with_caps:
                capped = capped_key(farebox_base, master)
                smoke_farebox(farebox_base, capped)
                cmd += [
                    "--target",
                    f"capped={farebox_base}",
                    "--key",
                    f"capped={capped}",
                    "--pid",
                    f"capped={farebox.pid}",
                ]
            if args.baseline is not None:
                base_up, base_up_root = start_upstream(services, harness, tmp, "base-upstream")
                base, base_url, base_key, base_master = start_farebox(
                    services, tmp / "baseline", base_up_root, name="baseline", src=args.baseline.resolve()
                )
                smoke_farebox(base_url, base_key)
                cmd += ["--target", f"baseline={base_url}", "--key", f"baseline={base_key}"]
                cmd += ["--pid", f"baseline={base.pid}"]
                if args.with_caps:
                    base_capped = capped_key(base_url, base_master)
                    smoke_farebox(base_url, base_capped)
                    cmd += ["--target", f"base-capped={base_url}", "--key", f"base-capped={base_capped}"]
                    cmd += ["--pid", f"base-capped={base.pid}"]
            if args.with_ceiling:
                ceiling = start_ceiling(services, harness, tmp / "ceiling", args.ceiling_python, upstream_root)
                cmd += ["--target", f"ceiling={ceiling.base}", "--key", "ceiling=x", "--pid", f"ceiling={ceiling.pid}"]
            if args.with_litellm:
                litellm = start_litellm(services, harness, tmp / "litellm", args.litellm_venv, upstream_root)
                cmd += [
                    "--target", f"litellm={litellm.base}",
                    "--key", f"litellm={LITELLM_KEY}", "--pid", f"litellm={litellm.pid}",
                ]  # fmt: skip
            out_dir = args.out_dir.resolve() if args.out_dir else tmp / "results"
            cmd += [
                "--model", MODEL, "--modes", args.modes, "--concurrency", args.concurrency,
                "--duration", str(args.duration), "--repeats", str(args.repeats), "--warmup", str(args.warmup),
                "--out-dir", str(out_dir), "--label", "bench/proxy.py",
            ]  # fmt: skip
            print("== run_bench.py " + " ".join(cmd[2:]), flush=True)
            with (tmp / "runner.log").open("w") as log:
                code = run_runner(cmd, log)
            if code != 0:
                print(f"run_bench.py exited with {code}", flush=True)
                return code
            results = json.loads((out_dir / "results.json").read_text())
            ledger = settled_ledger(tmp / "farebox" / "farebox.db")
            fb_stats = upstream_stats(fb_upstream_root)
        finally:
            print("== stopping everything this script started", flush=True)
            services.stop_all()

        rows = results["summary"]
        meta = results["meta"]
        farebox_proc = meta["process_summary"].get("farebox", {})
        peak = max(filter(None, [farebox_proc.get("peak_rss_mb"), farebox_proc.get("vmhwm_mb")]), default=None)
        forwarded = fb_stats["chat_nonstream"] + fb_stats["chat_stream"]
        ledger_ok, ledger_lines = ledger_report(
            ledger, forwarded, results["runs"], smoke_requests=2 if args.with_caps else 1
        )

        print()
        print(
            f"== summary: medians of {args.repeats} interleaved {args.duration} s runs per cell, wrk 1 thread, "
            f"{os.cpu_count()} CPUs; added = target minus direct"
        )
        print(summary_table(rows))
        print()
        print("== processes (peak RSS of the process tree during runs; VmHWM of the main process)")
        for name, proc in meta["process_summary"].items():
            print(
                f"  {name:<9} peak {_f(proc.get('peak_rss_mb'))} MB, VmHWM {_f(proc.get('vmhwm_mb'))} MB, "
                f"idle at start {_f(proc.get('rss_at_start_mb'))} MB, processes {proc.get('processes')}"
            )
        print()
        print("== smoke checks (run_bench.py)")
        for smoke in meta.get("smoke", []):
            ok = f"non-stream ok={smoke.get('nonstream_ok')} stream ok={smoke.get('stream_ok')}"
            print(f"  {smoke['target']:<9} {ok}")
        print()
        if args.baseline is not None:
            print(f"== A/B: farebox (this checkout) against baseline ({args.baseline}), per interleaved round")
            print("\n".join(ab_lines(results["runs"])))
            if args.with_caps:
                print("  through a key held to three caps:")
                print("\n".join(ab_lines(results["runs"], a="capped", b="base-capped")))
            print()
        print("== ledger check")
        print("\n".join(ledger_lines))
        print()
        print("== issue 3 targets (farebox)")
        print("\n".join(target_lines(rows, peak)))
        print()
        print(f"runner output: {out_dir}{'' if args.out_dir or args.keep else ' (temporary, removed)'}")
        return 0 if ledger_ok else 1


if __name__ == "__main__":
    sys.exit(main())
