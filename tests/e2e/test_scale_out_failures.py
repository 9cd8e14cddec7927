"""Three `farebox serve` processes on one PostgreSQL ledger and one Redis, under load, when something fails: one
process killed with SIGKILL loses no event of any response a client received in full; Redis stopped moves the
reservations into the ledger, where every cap goes on holding (a capped request is refused with 503
`counters_unavailable` only during the switch), and Redis started again (empty) takes them back, its counters
read from the ledger.

Clients stream chat requests round-robin to the processes until a deadline, so the failure lands mid-load.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from scale_out_servers import CAP_USD, Servers, admin, capped_key, key_costs
from scrape import scrape, value
from stream_race import HEADERS, MESSAGES

from farebox.core.money import parse_usd
from redis_server import RedisServer

pytestmark = pytest.mark.postgres

PROCESSES = 3
CLIENTS = 32
WIDE_CAP_USD = "0.01"  # ~320 requests: room left when Redis goes away


async def stream_until(urls: list[str], secret: str, *, seconds: float) -> tuple[list[str], list[tuple[int, str]]]:
    """`CLIENTS` clients streaming one request after another, each to the next process, for `seconds`: the request
    ids of the streams received in full (to `data: [DONE]`), and (status, error code) of every refusal."""
    turn = itertools.cycle(urls)
    done: list[str] = []
    refused: list[tuple[int, str]] = []
    deadline = time.monotonic() + seconds
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 50, "stream": True}

    async def client(http: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            url = next(turn)
            try:
                async with http.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
                    if response.status_code != 200:
                        refused.append((response.status_code, (await response.aread()).decode()))
                        continue
                    lines = [line async for line in response.aiter_lines()]
                    if "data: [DONE]" in lines:
                        done.append(response.headers["x-farebox-request-id"])
            except httpx.TransportError:
                await asyncio.sleep(0.05)  # the process died under this request: not received in full

    headers = {"Authorization": f"Bearer {secret}", **HEADERS}
    async with httpx.AsyncClient(headers=headers, timeout=10) as http:
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))
    return done, refused


def recorded(pg_ledger_url: str, ids: list[str]) -> set[str]:
    with psycopg.connect(pg_ledger_url) as connection:
        return {row[0] for row in connection.execute("SELECT id FROM usage_events WHERE id = ANY(%s)", (ids,))}


def after(seconds: float, action: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_a_process_killed_mid_load_loses_no_event_of_a_response_received_in_full(
    pg_ledger_url: str, redis_url: str, tmp_path: Path
) -> None:
    servers = Servers(pg_ledger_url, redis_url, tmp_path)
    try:
        started = [servers.start() for _ in range(PROCESSES)]
        urls = [url for url, _process in started]
        secret = uncapped_key(urls[0])
        victim = started[1][1]
        timer = after(0.8, lambda: os.kill(victim.pid, signal.SIGKILL))
        done, refused = asyncio.run(stream_until(urls, secret, seconds=2.0))
        timer.join()
        assert victim.wait(timeout=10) == -signal.SIGKILL
        assert not refused, refused[:3]
        assert len(done) > 100
        assert recorded(pg_ledger_url, done) == set(done), "a response received in full has no event"
    finally:
        servers.stop()


def test_redis_stopped_mid_load_moves_the_caps_to_the_ledger_and_started_again_moves_them_back(
    pg_ledger_url: str, own_redis: RedisServer, tmp_path: Path
) -> None:
    servers = Servers(pg_ledger_url, own_redis.url, tmp_path)
    try:
        urls = [servers.start()[0] for _ in range(PROCESSES)]
        # Redis goes away mid-load, with room left under the cap: the requests of the switch are refused with
        # 503 for a moment, then the ledger holds them to the cap.
        during = capped_key(urls[0], WIDE_CAP_USD)
        timer = after(0.3, own_redis.stop)
        done, refused = asyncio.run(stream_until(urls, during[0], seconds=2.5))
        timer.join()
        assert_held(pg_ledger_url, during[1], WIDE_CAP_USD, done, refused, allowed={402, 503}, reached=False)
        wait_for_counters(urls, "ledger")
        assert httpx.get(f"{urls[1]}/readyz").json() == {"status": "degraded", "ledger": "ok", "counters": "ledger"}
        assert value(scrape(httpx.get(f"{urls[2]}/metrics").text), "farebox_counters_on_ledger") == 1

        # While Redis is down, a capped key is served from the ledger up to its cap, and no further.
        down = capped_key(urls[0])
        done_down, refused_down = asyncio.run(stream_until(urls, down[0], seconds=1.5))
        assert_held(pg_ledger_url, down[1], CAP_USD, done_down, refused_down, allowed={402})

        # Back (empty): the counters are read from the ledger again, and every cap still holds.
        own_redis.start()
        wait_for_counters(urls, "redis")
        done_after, refused_after = asyncio.run(stream_until(urls, down[0], seconds=0.5))
        assert not done_after and {status for status, _text in refused_after} == {402}, refused_after[:3]
        assert shared_spend(own_redis, pg_ledger_url, down[1]) == sum(key_costs(pg_ledger_url, down[1]))
        back = capped_key(urls[0])
        done_back, refused_back = asyncio.run(stream_until(urls, back[0], seconds=1.5))
        assert_held(pg_ledger_url, back[1], CAP_USD, done_back, refused_back, allowed={402})
        assert httpx.get(f"{urls[0]}/readyz").json() == {"status": "ready", "ledger": "ok", "counters": "redis"}
    finally:
        servers.stop()


def assert_held(
    pg_ledger_url: str,
    key_id: str,
    cap_usd: str,
    done: list[str],
    refused: list[tuple[int, str]],
    *,
    allowed: set[int],
    reached: bool = True,
) -> None:
    """Requests were served, each refusal one of `allowed` (402 `budget_exceeded`, 503 `counters_unavailable`),
    every request served recorded, and the key's spend within its cap (and, `reached`, near it)."""
    codes = {status for status, _text in refused}
    assert done and codes <= allowed, refused[:3]
    assert all("budget_exceeded" in text or "counters_unavailable" in text for _status, text in refused), refused[:3]
    costs = key_costs(pg_ledger_url, key_id)
    assert len(costs) == len(done)
    assert sum(costs) <= parse_usd(cap_usd)
    if reached:
        assert 402 in codes and sum(costs) > parse_usd(cap_usd) // 2


def wait_for_counters(urls: list[str], where: str) -> None:
    """Until every process says its reservations are held at `where` (`/readyz`), within 10 seconds."""
    deadline = time.monotonic() + 10
    while {httpx.get(f"{url}/readyz").json()["counters"] for url in urls} != {where}:
        assert time.monotonic() < deadline, f"the processes did not all move their counters to {where}"
        time.sleep(0.1)


def shared_spend(server: RedisServer, pg_ledger_url: str, key_id: str) -> int:
    """The key's monthly spend as Redis holds it now."""
    with psycopg.connect(pg_ledger_url) as connection:
        (start,) = connection.execute(
            "SELECT period_start FROM spend_counters WHERE scope = 'key' AND scope_id = %s AND period = 'monthly'",
            (key_id,),
        ).fetchone() or (None,)
    client = redis.Redis.from_url(server.url)
    try:
        value = client.get(f"farebox:spent:key:{key_id}:monthly:{start}")
    finally:
        client.close()
    assert value is not None, "the key's spend is not in Redis"
    return int(value)


def uncapped_key(url: str) -> str:
    """A new account and a key in it with no cap: the key's secret."""
    account = admin(url, "POST", "/api/admin/accounts", json={"name": "kill"}).json()["id"]
    created = admin(url, "POST", "/api/admin/virtual-keys", json={"account_id": account, "name": "k"})
    assert created.status_code == 201, created.text
    return str(created.json()["key"])
