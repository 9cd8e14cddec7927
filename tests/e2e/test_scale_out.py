"""Three `farebox serve` processes on one PostgreSQL ledger and one Redis, as a load balancer spreads traffic over
them: 64 streaming SDK clients, each sent round-robin to the next process, cannot push a key past its cap.

The processes are real (`python -m farebox serve`), and so are PostgreSQL and Redis; the upstream is each
process's built-in mock, which answers after 40 ms, so many requests are in flight on every process at once.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import psycopg
import pytest
from notify_server import Receiver
from stream_race import CLIENTS, HEADERS, MESSAGES, REQUESTS_PER_CLIENT

from farebox.core.money import parse_usd
from served_process import free_port, wait_healthy  # tests/served_process.py

pytestmark = pytest.mark.postgres

MASTER = "fbx_master_scale-out-e2e-0123456789"
SECRET = "a-server-secret-for-the-scale-out-tests-0123456789"
CAP_USD = "0.0008"  # gpt-4o-mini: ~31 µUSD per request, so about 25 of the 192 fit
PROCESSES = 3


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


@pytest.fixture
def servers(pg_ledger_url: str, redis_url: str, tmp_path: Path) -> Iterator[Servers]:
    started = Servers(pg_ledger_url, redis_url, tmp_path)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def served(servers: Servers) -> list[str]:
    """The URLs of three gateway processes sharing the ledger and Redis (the first one migrates the ledger)."""
    return [servers.start()[0] for _ in range(PROCESSES)]


@pytest.fixture
def receiver(port_factory: Callable[[], int]) -> Iterator[Receiver]:
    started = Receiver(port_factory)
    try:
        yield started
    finally:
        started.close()


def admin(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{url}{path}", headers={"Authorization": f"Bearer {MASTER}"}, timeout=10, **kwargs)


def capped_key(url: str) -> tuple[str, str, str]:
    """A new account and a key in it capped at `CAP_USD`: (the key's secret, its id, the account's id)."""
    account = admin(url, "POST", "/api/admin/accounts", json={"name": "scale-out"}).json()["id"]
    created = admin(
        url, "POST", "/api/admin/virtual-keys", json={"account_id": account, "name": "k", "spend_cap": CAP_USD}
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
    clients = [
        openai.AsyncOpenAI(api_key=secret, base_url=f"{url}/v1", max_retries=0, default_headers=HEADERS) for url in urls
    ]
    turn = itertools.cycle(clients)
    refusals: list[openai.APIStatusError] = []
    successes = 0

    async def client() -> None:
        nonlocal successes
        for _ in range(REQUESTS_PER_CLIENT):
            try:
                stream = await next(turn).chat.completions.create(
                    model="gpt-4o-mini",
                    messages=MESSAGES,
                    max_tokens=50,
                    stream=True,  # type: ignore[arg-type]
                )
                async for _chunk in stream:
                    pass
                successes += 1
            except openai.APIStatusError as exc:
                refusals.append(exc)

    try:
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
    finally:
        for sdk in clients:
            await sdk.close()
    return successes, refusals


def test_a_cap_holds_across_three_processes_sharing_redis_and_each_alert_fires_once(
    served: list[str], pg_ledger_url: str, receiver: Receiver
) -> None:
    secret, key_id, account = capped_key(served[0])
    hook = receiver.path()
    body = {"account_id": account, "url": receiver.url + hook, "events": ["usage.threshold"]}
    assert admin(served[1], "POST", "/api/admin/webhooks", json=body).status_code == 201
    successes, refusals = asyncio.run(hammer(served, secret))
    costs = key_costs(pg_ledger_url, key_id)
    assert_capped(costs, successes, refusals)
    for url in served:  # each process shows the one spend the ledger holds
        assert parse_usd(admin(url, "GET", f"/api/admin/virtual-keys/{key_id}").json()["spend"]) == sum(costs)
    # The key's spend crossed its alert thresholds on every process: each threshold is delivered once.
    receiver.wait(hook, 1)
    time.sleep(2)  # a second delivery of one, from another process, would have come by now
    alerts = [received.body["data"]["alert"] for received in receiver.delivered(hook)]
    assert len(alerts) == len(set(alerts)), alerts


def test_a_key_revoked_on_one_process_stops_working_on_every_process_within_a_second(served: list[str]) -> None:
    secret, key_id, _account = capped_key(served[0])
    for url in served:  # each process has the key in its cache
        assert httpx.get(f"{url}/v1/usage", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert admin(served[0], "POST", f"/api/admin/virtual-keys/{key_id}/revoke").status_code == 200
    revoked_at = time.monotonic()
    for url in served[1:]:
        while (
            status := httpx.get(f"{url}/v1/usage", headers={"Authorization": f"Bearer {secret}"}).status_code
        ) == 200:
            assert time.monotonic() - revoked_at < 1.5, "a revoked key still works on another process"
            time.sleep(0.05)
        assert status == 401


def test_serve_workers_runs_that_many_processes_on_one_port_holding_one_cap(
    servers: Servers, pg_ledger_url: str
) -> None:
    url, parent = servers.start("--workers", "2")
    children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
    serving = [pid for pid in children if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(serving) == 2, children
    secret, key_id, _account = capped_key(url)
    successes, refusals = asyncio.run(hammer([url], secret))
    assert_capped(key_costs(pg_ledger_url, key_id), successes, refusals)


def test_more_than_one_worker_without_redis_is_refused(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "FAREBOX_MASTER_KEY": MASTER}
    done = subprocess.run(
        [sys.executable, "-m", "farebox", "serve", "--workers", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "more than one process needs redis_url" in done.stderr
