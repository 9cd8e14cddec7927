"""Webhook signing secrets at rest, as an operator meets them: `farebox serve` upgrading a ledger that holds a
secret in plain text, deliveries still verified by the `standardwebhooks` library, a rotation over the API, no
secret in the ledger file, a wrong server secret refused at start-up with one line, and the way back with
`farebox webhooks rotate-secret`."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import standardwebhooks
from typer.testing import CliRunner

from farebox.app import create_app
from farebox.cli import app as cli_app
from farebox.core.sealing import WrongServerSecret
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.settings import Settings
from farebox.webhooks.signing import new_secret

MASTER = "fbx_master_webhook-secrets-e2e-0123456789"


class Receiver:
    """A loopback HTTP server that keeps every request's headers and raw body."""

    def __init__(self, port: int) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the http.server hook name
                received.append((dict(self.headers), self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivery(self, msg_id: str, *, timeout: float = 10.0) -> tuple[dict[str, str], bytes]:
        deadline = time.monotonic() + timeout
        while True:
            for headers, body in list(self.received):
                if headers.get("webhook-id") == msg_id:
                    return headers, body
            assert time.monotonic() < deadline, f"delivery {msg_id} did not arrive"
            time.sleep(0.02)


@pytest.fixture
def receiver(port_factory: Callable[[], int]) -> Iterator[Receiver]:
    receiver = Receiver(port_factory())
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    try:
        standardwebhooks.Webhook(secret).verify(body, headers)
    except standardwebhooks.WebhookVerificationError:
        return False
    return True


def environment(database: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("FAREBOX_")}
    return env | {
        "FAREBOX_DATABASE_URL": f"sqlite:///{database}",
        "FAREBOX_MASTER_KEY": MASTER,
        "FAREBOX_ALLOW_PRIVATE_WEBHOOK_URLS": "true",
        **extra,
    }


def serve(database: Path, port: int, **extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    """`farebox serve` on the ledger, once healthy; and the lines it printed before it listened."""
    process = subprocess.Popen(
        [sys.executable, "-m", "farebox", "serve", "--port", str(port)],
        cwd=database.parent,
        env=environment(database, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None and time.monotonic() < deadline, "farebox serve did not start"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("farebox listening"):
        lines.append(process.stdout.readline().strip())
    return process, lines


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


def admin(port: int, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {MASTER}"}
    return httpx.request(method, f"http://127.0.0.1:{port}{path}", headers=headers, timeout=10, **kwargs)


def send_test(port: int, endpoint_id: str) -> str:
    sent = admin(port, "POST", f"/api/admin/webhooks/{endpoint_id}/test")
    assert sent.status_code == 202, sent.text
    return str(sent.json()["id"])


def ledger_bytes(database: Path) -> bytes:
    """The ledger file with its -wal and -shm files (and the key files beside it)."""
    return b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))


def older_ledger(database: Path, url: str, secret: str) -> str:
    """A ledger as an earlier farebox left it: an endpoint whose signing secret is stored in plain text."""

    async def account() -> str:
        async with Ledger(f"sqlite:///{database}") as ledger:
            return (await Directory(ledger).create_account(name="acme")).id

    account_id = asyncio.run(account())
    endpoint_id = str(uuid.uuid4())
    now = int(time.time())
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO webhook_endpoints (id, account_id, url, description, events, secret, enabled, batch_size,"
            " flush_interval_ms, feed_cursor_us, feed_cursor_id, created_at, updated_at)"
            " VALUES (?, ?, ?, '', '[\"usage.threshold\"]', ?, 1, 100, 5000, ?, '', ?, ?)",
            (endpoint_id, account_id, url, secret, now * 1_000_000, now, now),
        )
    return endpoint_id


def stored_secret(database: Path, endpoint_id: str) -> str:
    with sqlite3.connect(database) as connection:
        (value,) = connection.execute("SELECT secret FROM webhook_endpoints WHERE id = ?", (endpoint_id,)).fetchone()
    return str(value)


def test_an_upgraded_ledger_keeps_signing_and_holds_no_secret_in_plain_text(
    tmp_path: Path, receiver: Receiver, port_factory: Callable[[], int]
) -> None:
    database = tmp_path / "ledger.db"
    old = new_secret()
    endpoint_id = older_ledger(database, receiver.url, old)
    assert old.encode() in ledger_bytes(database)

    port = port_factory()
    process, lines = serve(database, port)
    try:
        kept = tmp_path / "ledger.db.secret-key"
        assert f"secret key: generated, saved to {kept} (back it up with the ledger)" in lines
        assert all(kept.read_text().strip() not in line for line in lines)
        assert kept.stat().st_mode & 0o777 == 0o600

        headers, body = receiver.delivery(send_test(port, endpoint_id))
        assert verifies(old, headers, body), "the upgraded secret no longer signs deliveries"

        rotated = admin(port, "POST", f"/api/admin/webhooks/{endpoint_id}/rotate-secret").json()["secret"]
        headers, body = receiver.delivery(send_test(port, endpoint_id))
        assert verifies(rotated, headers, body) and not verifies(old, headers, body)
        shown = admin(port, "GET", f"/api/admin/webhooks/{endpoint_id}").text
        assert old not in shown and rotated not in shown
    finally:
        stop(process)

    assert stored_secret(database, endpoint_id).startswith("sealed:v1:")
    files = ledger_bytes(database)
    for secret in (old, rotated):
        assert secret.encode() not in files and secret.removeprefix("whsec_").encode() not in files


def test_a_wrong_server_secret_stops_start_up_and_rotate_secret_recovers(
    tmp_path: Path, receiver: Receiver, port_factory: Callable[[], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the in-process CLI reads no developer farebox.toml
    database = tmp_path / "ledger.db"
    endpoint_id = older_ledger(database, receiver.url, new_secret())
    process, _ = serve(database, port_factory())  # seals it under the generated server secret
    stop(process)

    wrong = {"FAREBOX_SECRET_KEY": "a-server-secret-that-is-not-the-one-0123456789"}
    refused = subprocess.run(
        [sys.executable, "-m", "farebox", "serve", "--port", str(port_factory())],
        cwd=tmp_path,
        env=environment(database, **wrong),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: the webhook signing secrets of endpoints {endpoint_id} are sealed under another")
    assert line.endswith("(farebox webhooks rotate-secret ENDPOINT_ID)")

    result = CliRunner().invoke(
        cli_app, ["webhooks", "rotate-secret", endpoint_id, "--json"], env=environment(database, **wrong)
    )
    assert result.exit_code == 0, result.output
    new = orjson.loads(result.stdout)["secret"]

    port = port_factory()
    process, lines = serve(database, port, **wrong)
    try:
        assert "secret key: from FAREBOX_SECRET_KEY" in lines
        headers, body = receiver.delivery(send_test(port, endpoint_id))
        assert verifies(new, headers, body)
    finally:
        stop(process)


async def _start(settings: Settings, secret_key: str) -> None:
    app = create_app(settings, master_key=MASTER, secret_key=secret_key)
    async with app.router.lifespan_context(app):
        pass


def test_an_embedded_app_refuses_to_start_under_another_server_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    database = tmp_path / "ledger.db"
    endpoint_id = older_ledger(database, "https://hooks.example.com/", new_secret())
    settings = Settings(database_url=f"sqlite:///{database}")
    asyncio.run(_start(settings, "the-first-server-secret-0123456789abcdef"))
    sealed = stored_secret(database, endpoint_id)
    assert sealed.startswith("sealed:v1:")

    with pytest.raises(WrongServerSecret, match=f"endpoints {endpoint_id} are sealed under another server secret"):
        asyncio.run(_start(settings, "the-second-server-secret-0123456789abcdef"))
    assert stored_secret(database, endpoint_id) == sealed
