"""`farebox serve` holds only what serving needs: proxied requests and usage reads load neither `cryptography`
(webhook signing secrets), argon2 (members' passwords), numpy (summing latency sketches) nor the forecast's
statistics (scipy, pandas, statsmodels), nor the report files' openpyxl and reportlab, nor the Redis client of
shared counters (no `redis_url`), nor any other command's
module; the first webhook endpoint, password,
percentile read or forecast loads what it needs then.

Every module a long-running server imports stays resident, so this keeps the gateway's memory from growing
back (bench/RESULTS.md: about 12 MB at start-up).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

MASTER = "fbx_master_serve-imports-e2e-0123456789"
FORECASTING = ("numpy", "pandas", "scipy", "statsmodels", "threadpoolctl")
"""What a spend forecast is computed with (about 60 MB): loaded by the first forecast asked for."""
SERVING = {"farebox.cli", "farebox.cli.output", "farebox.cli.runtime", "farebox.cli.server"}
"""The command line's modules a server holds: the group, `serve` itself and what it reports failures with."""

# The real `farebox serve`, which on a line on its standard input prints the modules it holds.
PROBE = """
import sys, threading

def report():
    for _ in sys.stdin:
        print("modules:", " ".join(sorted(sys.modules)), flush=True)

threading.Thread(target=report, daemon=True).start()
from farebox.cli import main

sys.argv = ["farebox", "serve", "--port", sys.argv[1]]
main()
"""


class Server:
    """A `farebox serve` process on its own SQLite ledger, which says which modules it has imported."""

    def __init__(self, process: subprocess.Popen[str], port: int):
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    def modules(self) -> set[str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        while not (line := self.process.stdout.readline()).startswith("modules:"):
            assert line, "farebox serve exited"
        return set(line.split()[1:])

    def admin(self, method: str, path: str, json: object = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {MASTER}"}
        return httpx.request(method, f"{self.url}{path}", json=json, headers=headers, timeout=30)


def _packages(modules: set[str], *names: str) -> set[str]:
    return {module for module in modules if module.split(".")[0] in names}


@pytest.fixture
def server(tmp_path: Path, port_factory: Callable[[], int]) -> Iterator[Server]:
    port = port_factory()
    env = {name: value for name, value in os.environ.items() if not name.startswith("FAREBOX_")}
    env |= {"FAREBOX_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}", "FAREBOX_MASTER_KEY": MASTER}
    process = subprocess.Popen(
        [sys.executable, "-c", PROBE, str(port)],
        cwd=tmp_path,
        env=env | {"FAREBOX_ALLOW_PRIVATE_WEBHOOK_URLS": "true"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    served = Server(process, port)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "farebox serve did not start"
            try:
                if httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield served
    finally:
        process.terminate()
        process.wait(timeout=10)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def test_serving_requests_loads_no_cipher_no_password_hashing_no_numpy_and_no_other_command(server: Server) -> None:
    account = server.admin("POST", "/api/admin/accounts", {"name": "Acme"}).json()["id"]
    member = server.admin(
        "POST", f"/api/admin/accounts/{account}/members", {"email": "ada@acme.test", "name": "Ada"}
    ).json()["id"]
    created = server.admin(
        "POST", "/api/admin/virtual-keys", {"account_id": account, "name": "ci", "member_id": member}
    )
    assert created.status_code == 201, created.text
    secret = created.json()["key"]
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=secret, max_retries=0) as client:
        reply = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
        )
    assert reply.headers["x-farebox-cost-usd"]
    assert httpx.get(f"{server.url}/v1/usage", headers={"Authorization": f"Bearer {secret}"}).is_success

    held = server.modules()
    assert "farebox.app" in held and "farebox.gateway.proxy" in held, "the probe sees the server's modules"
    assert _packages(held, "cryptography", "argon2", "numpy") == set(), "the latency sketches are written without numpy"
    assert _packages(held, *FORECASTING) == set()
    assert _packages(held, "openpyxl", "reportlab") == set(), "no report file was made"
    assert _packages(held, "redis", "hiredis") == set(), "a server without redis_url keeps its counters itself"
    assert {module for module in held if module.startswith(("farebox.cli.", "farebox.demo"))} <= SERVING

    hook = {"account_id": account, "url": "http://127.0.0.1:9/hook", "events": ["usage.threshold"]}
    assert server.admin("POST", "/api/admin/webhooks", hook).status_code == 201
    password = server.admin("PUT", f"/api/admin/accounts/{account}/members/{member}/password", {"password": "x" * 16})
    assert password.status_code == 204, password.text
    held = server.modules()
    assert "cryptography.hazmat.primitives.ciphers.aead" in held, "a webhook endpoint's secret is sealed"
    assert "argon2" in held, "a password is hashed"

    # The latency sketches are written within a second of the request's commit (`ledger.latency.FLUSH_SECONDS`).
    deadline = time.monotonic() + 10
    while True:
        performance = server.admin("GET", f"/api/admin/analytics/performance?account_id={account}").json()["data"]
        if performance["overall"]["latencyMs"]["samples"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert performance["overall"]["latencyMs"]["samples"] == 1
    assert "numpy" in server.modules(), "percentiles are read"
    forecast = server.admin("GET", f"/api/admin/analytics/budget-forecast?horizon=7d&account_id={account}")
    assert forecast.status_code == 200, forecast.text
    loaded = {module.split(".")[0] for module in _packages(server.modules(), *FORECASTING)}
    assert loaded == set(FORECASTING), "a forecast is asked for"
