"""The server's logs as an operator collects them: with `log_format = "json"` every line `farebox serve` writes to
standard error is one JSON object, a record logged while serving a request carries that request's id (and one
logged outside requests, none), and no secret (master key, server secret, virtual key, Redis password) appears in
any line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import psycopg
import pytest

from served_process import free_port, wait_healthy  # tests/served_process.py

pytestmark = pytest.mark.postgres

MASTER = "fbx_master_logs-e2e-0123456789abcdef"
SECRET = "a-server-secret-for-the-logs-test-0123456789"
REDIS_PASSWORD = "redis-password-0123456789"


def test_json_lines_carry_the_request_id_and_no_secret(pg_ledger_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "FAREBOX_DATABASE_URL": pg_ledger_url,
        # Nothing listens there: the reservations move to the ledger.
        "FAREBOX_REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0",
        "FAREBOX_MASTER_KEY": MASTER,
        "FAREBOX_SECRET_KEY": SECRET,
        "FAREBOX_LOG_FORMAT": "json",
    }
    errors = tmp_path / "stderr.log"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "farebox", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, seconds=60)
        # A process that says it is alive and never switches to the ledger: every reservation there is refused.
        with psycopg.connect(pg_ledger_url, autocommit=True) as connection:
            connection.execute("INSERT INTO counters_processes VALUES ('stuck', 9000000000000000, 0)")
        headers = {"Authorization": f"Bearer {MASTER}"}
        account = httpx.post(f"{url}/api/admin/accounts", json={"name": "logs"}, headers=headers).json()["id"]
        created = httpx.post(
            f"{url}/api/admin/virtual-keys",
            json={"account_id": account, "name": "k", "spend_cap": "1.00"},
            headers=headers,
        ).json()
        sdk = openai.OpenAI(api_key=created["key"], base_url=f"{url}/v1", max_retries=0)
        with pytest.raises(openai.APIStatusError) as refused:
            sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert (refused.value.status_code, refused.value.code) == (503, "counters_unavailable")
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = errors.read_text()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert any(line["logger"] == "uvicorn.error" and "startup complete" in line["message"] for line in lines)
    heartbeat = [line for line in lines if "cannot be reached" in line["message"]]
    assert heartbeat and not any("request_id" in line for line in heartbeat)  # outside requests: no request id
    warnings = [line for line in lines if line["logger"] == "farebox.metering.fallback" and "request_id" in line]
    warning = next(line for line in warnings if "is refused" in line["message"])
    assert warning["level"] == "WARNING" and "moving to the ledger" in warning["message"]
    assert len(warning["request_id"]) == 32 and int(warning["request_id"], 16) >= 0
    for secret in (MASTER, SECRET, created["key"], REDIS_PASSWORD):
        assert secret not in text
