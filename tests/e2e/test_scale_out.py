"""Three `farebox serve` processes on one PostgreSQL ledger and one Redis, as a load balancer spreads traffic over
them: 64 streaming SDK clients, each request sent to the next process, cannot push a key past its cap, an alert
fires once, a revoked key stops working everywhere within a second; and `farebox serve --workers N`.

The processes are real (`python -m farebox serve`), and so are PostgreSQL and Redis; the upstream is each
process's built-in mock, which answers after 40 ms, so many requests are in flight on every process at once.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from notify_server import Receiver
from scale_out_servers import MASTER, Servers, admin, assert_capped, capped_key, hammer, key_costs
from scrape import scrape, value

from farebox.core.money import parse_usd

pytestmark = pytest.mark.postgres

PROCESSES = 3


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
    costs = key_costs(pg_ledger_url, key_id)
    assert_capped(costs, successes, refusals)
    # Whichever process a scrape reaches, it answers the sums of both (prometheus-client's multiprocess mode).
    for _ in range(4):
        samples = scrape(httpx.get(f"{url}/metrics").text)
        labels = {"provider": "mock", "model": "gpt-4o-mini"}
        assert value(samples, "farebox_requests_total", **labels, status="ok") == len(costs)
        assert value(samples, "farebox_cost_nano_usd_total", **labels) == sum(costs)
        assert value(samples, "farebox_reservations_refused_total", scope="key") == len(refusals)
        assert value(samples, "farebox_redis_up") == 1
        # Every request asked Redis for its reservation; those asked at once shared a script call.
        reserve_calls = value(samples, "farebox_redis_call_seconds_count", script="reserve")
        assert 1 <= reserve_calls <= successes + len(refusals)
        assert value(samples, "farebox_redis_call_seconds_sum", script="reserve") > 0
        assert value(samples, "farebox_redis_call_seconds_count", script="release") >= 1


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


def test_failed_sign_ins_spread_over_the_processes_lock_the_address_on_every_one(served: list[str]) -> None:
    """The dashboard's sign-in throttle counts in the ledger: five wrong passwords, each to the next process, and
    the sixth attempt is refused by every process, whichever one it reaches."""

    def sign_in(url: str) -> int:
        with httpx.Client(base_url=url, timeout=10) as client:
            page = client.get("/dashboard/sign-in", headers={"accept": "text/html"})
            (token,) = set(re.findall(r'name="csrf_token" value="([^"]+)"', page.text))
            form = {"csrf_token": token, "email": "mo@acme.test", "password": "not the password"}
            return client.post("/dashboard/sign-in", data=form).status_code

    assert [sign_in(served[attempt % PROCESSES]) for attempt in range(5)] == [401] * 5
    assert [sign_in(url) for url in served] == [429] * PROCESSES
