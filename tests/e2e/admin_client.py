"""The admin API as a test drives it: an in-process farebox (httpx's ASGI transport) on a SQLite ledger.

`open_api(tmp_path)` starts one (hashing members' passwords with cheap argon2 parameters); `Api.call` sends a
request with a credential (the master key unless told), `Api.ok` checks its status and returns its JSON, and
`assert_error` checks an error's envelope.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from argon2 import profiles

from farebox.app import create_app
from farebox.core.passwords import PasswordHashes
from farebox.ledger.base import Ledger
from farebox.services import Services
from farebox.settings import Settings

__all__ = ["CHEAP_HASHES", "MASTER", "Api", "Clock", "assert_error", "open_api"]

MASTER = "fbx_master_test-admin-0123456789"
CHEAP_HASHES = PasswordHashes(profiles.CHEAPEST)
"""argon2id at its cheapest (8 KiB, one pass): members' passwords hashed in microseconds, not a third of a second."""


@dataclass
class Clock:
    at: datetime | None
    """None: the real time."""

    def __call__(self) -> datetime:
        return self.at or datetime.now(UTC)


@dataclass
class Api:
    client: httpx.AsyncClient
    ledger: Ledger
    clock: Clock
    services: Services
    transport: httpx.AsyncBaseTransport

    def browser(self, base_url: str = "http://farebox.test") -> httpx.AsyncClient:
        """Another client of the same farebox, with cookies of its own (another browser)."""
        return httpx.AsyncClient(transport=self.transport, base_url=base_url)

    async def call(
        self, method: str, path: str, body: Any = None, *, token: str | None = MASTER, raw: bytes | None = None
    ) -> httpx.Response:
        headers = {"content-type": "application/json"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        content = raw if raw is not None else None if body is None else orjson.dumps(body)
        return await self.client.request(method, "/api/admin" + path, content=content, headers=headers)

    async def ok(self, method: str, path: str, body: Any = None, *, token: str = MASTER, status: int = 200) -> Any:
        response = await self.call(method, path, body, token=token)
        assert response.status_code == status, response.text
        return response.json()

    async def account(self, name: str = "Acme", **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.ok("POST", "/accounts", {"name": name, **fields}, status=201)
        return result

    async def member(self, account_id: str, email: str, role: str = "member", **fields: Any) -> dict[str, Any]:
        body = {"email": email, "name": email.split("@")[0], "role": role, **fields}
        result: dict[str, Any] = await self.ok("POST", f"/accounts/{account_id}/members", body, status=201)
        return result

    async def key(self, account_id: str, *, token: str = MASTER, **fields: Any) -> dict[str, Any]:
        body = {"account_id": account_id, "name": "k", **fields}
        result: dict[str, Any] = await self.ok("POST", "/virtual-keys", body, token=token, status=201)
        return result

    async def token(self, account_id: str, member_id: str, *, token: str = MASTER, **fields: Any) -> str:
        """A new API token of the member: its secret."""
        path = f"/accounts/{account_id}/members/{member_id}/tokens"
        created = await self.ok("POST", path, {"name": "laptop", **fields}, token=token, status=201)
        secret: str = created["token"]
        return secret

    async def key_call(self, key: dict[str, Any], secret: str | None = None) -> httpx.Response:
        """A key reading its own budget (what a virtual key may do besides calling models)."""
        return await self.call("GET", f"/virtual-keys/{key['id']}/budget", token=secret or key["key"])


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert {"type", "code", "message"} <= set(error) <= {"type", "code", "message", "details"}
    assert all(isinstance(error[field], str) for field in ("type", "code", "message"))
    if code is not None:
        assert error["code"] == code
    assert "Traceback" not in response.text
    return error


@asynccontextmanager
async def open_api(tmp_path: Path, *, database_url: str | None = None, **settings: Any) -> AsyncIterator[Api]:
    """A farebox app on a new ledger (SQLite in `tmp_path` unless `database_url` names another), with a
    controllable clock, served in-process."""
    config = Settings(database_url=database_url or f"sqlite:///{tmp_path / 'l.db'}", **settings)
    ledger = Ledger(config.database_url)
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    app = create_app(config, ledger=ledger, master_key=MASTER, clock=clock, password_hashes=CHEAP_HASHES)
    await ledger.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://farebox.test") as client:
            yield Api(client, ledger, clock, app.state.services, transport)
    finally:
        await ledger.close()
