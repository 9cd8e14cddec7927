"""A farebox that notifies, for end-to-end tests of alerts: served by uvicorn in a thread on a SQLite ledger,
with a real HTTP receiver on loopback (webhooks checked with the `standardwebhooks` library, an implementation
independent of farebox's; Slack; PagerDuty's enqueue URL at `PAGERDUTY_PATH`) and a real SMTP server (aiosmtpd).

The receiver answers each path as planned: a list of status codes (or `SLOW`, an answer later than farebox's
timeout) used up one request at a time, then 200. A delivery counts as delivered when the receiver answered
it 2xx.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import standardwebhooks
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler

from farebox.app import create_app
from farebox.settings import Settings

if TYPE_CHECKING:
    from tests.e2e.conftest import ServerThread

__all__ = [
    "MASTER",
    "PAGERDUTY_PATH",
    "SETTINGS",
    "SLOW",
    "TIMEOUT_S",
    "Farebox",
    "Mailbox",
    "Received",
    "Receiver",
    "serve",
]

MASTER = "fbx_master_notifications-e2e-0123456789"
TIMEOUT_S = 0.5
SLOW = -1
SETTINGS = {
    "allow_private_webhook_urls": True,
    "webhook_timeout_seconds": TIMEOUT_S,
    "webhook_retry_base_seconds": 0.2,
    "webhook_retry_max_seconds": 0.4,
    "webhook_max_attempts": 6,
    "anomaly_scan_interval_seconds": 0.3,
}


@dataclass(frozen=True)
class Received:
    path: str
    msg_id: str
    body: dict[str, Any]
    verified: bool
    status: int
    """What the receiver answered; SLOW: it answered after farebox gave up."""
    authorization: str | None = None
    """The request's `Authorization` header, if any."""


class Receiver:
    """A webhook (and Slack) receiver on loopback."""

    def __init__(self, free_port: Callable[[], int]) -> None:
        self.secrets: dict[str, str] = {}
        self.plans: dict[str, list[int]] = {}
        self.received: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the http.server hook name
                raw = self.rfile.read(int(self.headers["content-length"]))
                receiver.handle(self, raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, request: BaseHTTPRequestHandler, raw: bytes) -> None:
        path = request.path
        with self.lock:
            plan = self.plans.get(path, [])
            status = plan.pop(0) if plan else 200
        verified = False
        if path in self.secrets:
            try:
                standardwebhooks.Webhook(self.secrets[path]).verify(raw, dict(request.headers))
                verified = True
            except standardwebhooks.WebhookVerificationError:
                status = 400
        with self.lock:
            self.received.append(
                Received(
                    path,
                    request.headers.get("webhook-id", ""),
                    json.loads(raw),
                    verified,
                    status,
                    request.headers.get("authorization"),
                )
            )
        if status == SLOW:
            time.sleep(TIMEOUT_S * 3)
            status = 200
        try:
            request.send_response(status)
            request.send_header("content-length", "2")
            request.end_headers()
            request.wfile.write(b"ok")
        except OSError:
            pass  # farebox gave up waiting and closed the connection

    def path(self, *, secret: str | None = None, plan: list[int] | None = None) -> str:
        path = f"/hooks/{uuid.uuid4().hex}"
        if secret is not None:
            self.secrets[path] = secret
        self.plans[path] = list(plan or [])
        return path

    def delivered(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path and 200 <= r.status < 300]

    def attempts(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def wait(self, path: str, count: int, *, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.delivered(path)) < count:
            assert time.monotonic() < deadline, f"{len(self.delivered(path))} of {count} deliveries arrived"
            time.sleep(0.02)
        return self.delivered(path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox(MessageHandler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[Message] = []

    def handle_message(self, message: Message) -> None:
        self.messages.append(message)


@dataclass
class Farebox:
    url: str
    receiver: Receiver
    mailbox: Mailbox
    database: Path | None = None
    """The ledger file (SQLite)."""

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {MASTER}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)

    def account(self, **fields: Any) -> str:
        response = self.admin("POST", "/api/admin/accounts", json={"name": "notify", **fields})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def key(self, account_id: str, **fields: Any) -> dict[str, Any]:
        response = self.admin("POST", "/api/admin/virtual-keys", json={"account_id": account_id, "name": "k", **fields})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def webhook(self, account_id: str, path: str, events: list[str], **fields: Any) -> dict[str, Any]:
        body = {"account_id": account_id, "url": self.receiver.url + path, "events": events, **fields}
        response = self.admin("POST", "/api/admin/webhooks", json=body)
        assert response.status_code == 201, response.text
        created = dict(response.json())
        self.receiver.secrets[path] = created["secret"]
        return created

    def alerts(self, account_id: str, rules: dict[str, Any]) -> None:
        response = self.admin("PUT", f"/api/admin/accounts/{account_id}/alerts", json=rules)
        assert response.status_code == 200, response.text

    def spend(self, key: dict[str, Any], usd: str, *, at: datetime | None = None) -> None:
        event = {"id": uuid.uuid4().hex, "axis": "llm", "model": "gpt-4o", "key_id": key["id"], "cost_usd": usd}
        if at is not None:
            event["timestamp"] = at.isoformat()
        response = self.admin("POST", "/api/events", json={"events": [event]})
        assert response.status_code == 200, response.text


PAGERDUTY_PATH = "/pagerduty/v2/enqueue"
"""Where the served farebox sends PagerDuty events (its `pagerduty_url`), on the receiver."""


@contextmanager
def serve(
    directory: Path,
    free_port: Callable[[], int],
    server_thread: type[ServerThread],
    *,
    clock: Callable[[], datetime] | None = None,
    **overrides: Any,
) -> Iterator[Farebox]:
    """A farebox on a ledger in `directory`, its receiver and its SMTP server, until the block ends; `clock` and
    settings `overrides` are the app's, if given."""
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    receiver = Receiver(free_port)
    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        for name in Settings.model_fields:
            patch.delenv(f"FAREBOX_{name.upper()}", raising=False)
        settings = Settings(
            database_url=f"sqlite:///{directory / 'ledger.db'}",
            port=port,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_security="none",
            smtp_from="farebox@example.test",
            pagerduty_url=receiver.url + PAGERDUTY_PATH,
            **(SETTINGS | overrides),  # type: ignore[arg-type]
        )
        app = create_app(settings, master_key=MASTER, **({} if clock is None else {"clock": clock}))
    try:
        with server_thread(app, port):
            yield Farebox(f"http://127.0.0.1:{port}", receiver, mailbox, directory / "ledger.db")
    finally:
        receiver.close()
        smtp.stop()
