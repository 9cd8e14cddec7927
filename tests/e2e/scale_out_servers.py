"""Gateway processes on one PostgreSQL ledger and one Redis, for the scale-out tests: `farebox serve` started as
real processes, a key capped at `CAP_USD`, streaming SDK clients sent round-robin to the processes, and what the
ledger recorded.

"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import psycopg
from stream_race import race, sdk

from farebox.core.money import parse_usd
from served_process import free_port, wait_healthy  # tests/served_process.py

__all__ = [
    "CAP_USD",
    "MASTER",
    "Servers",
    "admin",
    "assert_capped",
    "capped_key",
    "hammer",
    "key_costs",
]

MASTER = "fbx_master_scale-out-e2e-0123456789"
SECRET = "a-server-secret-for-the-scale-out-tests-0123456789"
CAP_USD = "0.0008"  # gpt-4o-mini: ~31 µUSD per request, so about 25 of the 192 fit


class Servers:
    """`farebox serve` processes on one PostgreSQL ledger and one Redis, stopped at the end of the test."""

    def __init__(self, pg_ledger_url: str, redis_url: str, workdir: Path) -> None:
        self.env = {
            "PATH": "/usr/bin:/bin",
            "FAREBOX_DATABASE_URL": pg_ledger_url,
            "FAREBOX_REDIS_URL": redis_url,
            "FAREBOX_MASTER_KEY": MASTER,
            "FAREBOX_SECRET_KEY": SECRET,
            "FAREBOX_ALLOW_PRIVATE_WEBHOOK_URLS": "true",
        }
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *flags: str) -> tuple[str, subprocess.Popen[bytes]]:
        """One more `farebox serve` on a port of its own, once it answers: (its URL, its process)."""
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "farebox", "serve", "--port", str(port), *flags],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process, seconds=60)
        return url, process

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def admin(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{url}{path}", headers={"Authorization": f"Bearer {MASTER}"}, timeout=10, **kwargs)


def capped_key(url: str, cap_usd: str = CAP_USD) -> tuple[str, str, str]:
    """A new account and a key in it capped at `cap_usd`: (the key's secret, its id, the account's id)."""
    account = admin(url, "POST", "/api/admin/accounts", json={"name": "scale-out"}).json()["id"]
    created = admin(
        url, "POST", "/api/admin/virtual-keys", json={"account_id": account, "name": "k", "spend_cap": cap_usd}
    )
    assert created.status_code == 201, created.text
    return created.json()["key"], created.json()["id"], account


def key_costs(pg_ledger_url: str, key_id: str) -> list[int]:
    with psycopg.connect(pg_ledger_url) as connection:
        rows = connection.execute("SELECT cost_nano FROM usage_events WHERE key_id = %s", (key_id,))
        return [int(cost) for (cost,) in rows]


def assert_capped(costs: list[int], successes: int, refusals: list[openai.APIStatusError]) -> None:
    cap = parse_usd(CAP_USD)
    assert refusals, "the cap never refused a request"
    assert {(exc.status_code, exc.code) for exc in refusals} == {(402, "budget_exceeded")}
    assert len(costs) == successes, "a refused request was forwarded (or a forwarded one not recorded)"
    assert sum(costs) <= cap
    assert sum(costs) > cap // 2, "the cap refused far too early"


async def hammer(urls: list[str], secret: str) -> tuple[int, list[openai.APIStatusError]]:
    """64 streaming clients, each request sent to the next process in turn: (successes, refusals)."""
    return await race([sdk(url, secret) for url in urls], per_request=True)
