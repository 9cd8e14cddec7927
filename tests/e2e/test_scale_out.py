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
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import psycopg
import pytest
from stream_race import CLIENTS, HEADERS, MESSAGES, REQUESTS_PER_CLIENT

from farebox.core.money import parse_usd
from served_process import free_port, wait_healthy  # tests/served_process.py

pytestmark = pytest.mark.postgres

MASTER = "fbx_master_scale-out-e2e-0123456789"
SECRET = "a-server-secret-for-the-scale-out-tests-0123456789"
CAP_USD = "0.0008"  # gpt-4o-mini: ~31 µUSD per request, so about 25 of the 192 fit
PROCESSES = 3


@pytest.fixture
def served(pg_ledger_url: str, redis_url: str, tmp_path: Path) -> Iterator[list[str]]:
    """The URLs of three gateway processes sharing the ledger and Redis (the first one migrates the ledger)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "FAREBOX_DATABASE_URL": pg_ledger_url,
        "FAREBOX_REDIS_URL": redis_url,
        "FAREBOX_MASTER_KEY": MASTER,
        "FAREBOX_SECRET_KEY": SECRET,
    }
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for _ in range(PROCESSES):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "farebox", "serve", "--port", str(port)],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            processes.append(process)
            urls.append(f"http://127.0.0.1:{port}")
            wait_healthy(urls[-1], process, seconds=60)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def capped_key(url: str) -> tuple[str, str]:
    """A new key capped at `CAP_USD`: (its secret, its id)."""
    headers = {"Authorization": f"Bearer {MASTER}"}
    account = httpx.post(f"{url}/api/admin/accounts", json={"name": "scale-out"}, headers=headers, timeout=10)
    created = httpx.post(
        f"{url}/api/admin/virtual-keys",
        json={"account_id": account.json()["id"], "name": "k", "spend_cap": CAP_USD},
        headers=headers,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    return created.json()["key"], created.json()["id"]


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


def test_a_cap_holds_across_three_processes_sharing_redis(served: list[str], pg_ledger_url: str) -> None:
    secret, key_id = capped_key(served[0])
    successes, refusals = asyncio.run(hammer(served, secret))
    with psycopg.connect(pg_ledger_url) as connection:
        costs = [
            int(cost)
            for (cost,) in connection.execute("SELECT cost_nano FROM usage_events WHERE key_id = %s", (key_id,))
        ]
    cap = parse_usd(CAP_USD)
    assert refusals, "the cap never refused a request"
    assert {(exc.status_code, exc.code) for exc in refusals} == {(402, "budget_exceeded")}
    assert len(costs) == successes, "a refused request was forwarded (or a forwarded one not recorded)"
    assert sum(costs) <= cap
    assert sum(costs) > cap // 2, "the cap refused far too early"
    for url in served:  # each process shows the one spend the ledger holds
        shown = httpx.get(f"{url}/api/admin/virtual-keys/{key_id}", headers={"Authorization": f"Bearer {MASTER}"})
        assert parse_usd(shown.json()["spend"]) == sum(costs)
