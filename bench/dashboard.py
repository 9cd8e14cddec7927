"""Dashboard benchmark: how long `/dashboard/usage` takes to become usable, measured in the browser. Prints
figures, asserts nothing.

    .venv/bin/python bench/dashboard.py [--events N] [--days D] [--rounds R] [--chromium /usr/bin/chromium]

It records N events over the last D days into a new SQLite ledger (default 10,000,000 over 90, as
`bench/analytics.py` does: 3 accounts, the first holding 80% of the traffic), starts a real `farebox serve` on it,
signs in to the dashboard as the operator in Debian's Chromium (Playwright), and opens the big account's usage
page R times for each of two ranges: this month (the page's default) and the last 30 days. Each load is timed
from the navigation's start to the page's `farebox:ready` mark — its cards, chart and table drawn from the API's
answers, the page usable — and to its first contentful paint. The browser cache is warm after the first load,
as it is for a person who comes back; the server's answers are never cached.

Target (issue 17, this 2-core machine): `/dashboard/usage` usable in under 1 s on a 10-million-event month.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from analytics import MASTER_KEY, _directory, _fill  # bench/analytics.py, beside this script
from farebox.ledger.base import Ledger

__all__ = ["main"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _ledger(url: str, events: int, days: int) -> tuple[str, float]:
    """Fill the ledger: (the big account's id, seconds taken)."""
    async with Ledger(url) as ledger:
        accounts = await _directory(ledger)
        seconds = await _fill(ledger, accounts, events, days)
    return accounts[0][0], seconds


def _serve(url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    env |= {"FAREBOX_DATABASE_URL": url, "FAREBOX_MASTER_KEY": MASTER_KEY}
    process = subprocess.Popen(
        [sys.executable, "-m", "farebox", "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("farebox serve did not start")


def _load(page: Page, url: str) -> tuple[float, float]:
    """Open `url`: (ms to the `farebox:ready` mark, ms to the first contentful paint), from the navigation's start."""
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    ready, paint = page.evaluate(
        """() => [
            performance.getEntriesByName("farebox:ready")[0].startTime,
            (performance.getEntriesByName("first-contentful-paint")[0] || {startTime: NaN}).startTime,
        ]"""
    )
    return float(ready), float(paint)


def _figures(name: str, loads: list[tuple[float, float]]) -> str:
    ready = sorted(r for r, _ in loads)
    paint = [p for _, p in loads]
    p95 = ready[min(len(ready) - 1, int(0.95 * len(ready)))]
    return (
        f"{name:<36} usable p50 {statistics.median(ready):7.1f} ms  p95 {p95:7.1f} ms  max {ready[-1]:7.1f} ms  "
        f"(first paint p50 {statistics.median(paint):6.1f} ms; {len(loads)} loads)"
    )


def run(args: argparse.Namespace) -> None:
    print(
        f"farebox dashboard benchmark: {args.events:,} events over {args.days} days, {args.rounds} loads per range; "
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="farebox-dashboard-") as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir / 'ledger.db'}"
        account, seconds = asyncio.run(_ledger(url, args.events, args.days))
        print(f"fill: {args.events:,} events in {seconds:.1f} s", flush=True)
        process, base = _serve(url, workdir)
        try:
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=args.chromium)
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                page.goto(f"{base}/dashboard/sign-in")
                page.get_by_label("Master key").fill(MASTER_KEY)
                page.get_by_role("button", name="Sign in with the master key").click()
                page.wait_for_url("**/dashboard/usage**")
                today = datetime.now(UTC).date()
                last30 = f"&from={(today - timedelta(days=29)).isoformat()}&to={today.isoformat()}"
                for name, query in [("this month", ""), ("the last 30 days", last30)]:
                    target = f"{base}/dashboard/usage?account_id={account}{query}"
                    _load(page, target)  # the browser fetches the scripts once
                    loads = [_load(page, target) for _ in range(args.rounds)]
                    print(_figures(f"/dashboard/usage, {name}", loads), flush=True)
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--chromium", default=os.environ.get("FAREBOX_CHROMIUM", "/usr/bin/chromium"))
    run(parser.parse_args())


if __name__ == "__main__":
    main()
