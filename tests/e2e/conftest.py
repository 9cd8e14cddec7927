"""The gateway end to end: farebox served by uvicorn in a thread on a free loopback port, a SQLite ledger in
a temporary directory, and the mock provider reached over loopback HTTP (STYLE R24).

One farebox serves every gateway test of the session (its start-up is the slow part); each test makes its
own account and key, so tests see only their own events. A second, slow mock (50 ms between stream
chunks) stands in for an upstream that streams slowly, for client disconnects mid-stream.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from admin_client import Api, open_api
from starlette.types import ASGIApp
from typer.testing import CliRunner, Result

from farebox.app import create_app
from farebox.cli import app as cli_app
from farebox.errors import AuthenticationFailed
from farebox.gateway.providers.mock import create_mock_app
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.settings import Settings

GATEWAY_MASTER = "fbx_master_gateway-e2e-0123456789"
# Generous enough that 64 parallel streams on a loaded 2-core box never stall this long between bytes.
UPSTREAM_TIMEOUT_SECONDS = 2.0
MAX_BODY_BYTES = 64 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """An ASGI app served by uvicorn in a daemon thread, with its lifespan."""

    def __init__(self, app: ASGIApp, port: int, *, grace: int | None = None) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=grace
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass(frozen=True)
class Gateway:
    """The running farebox: its URL and ledger file, and helpers to make keys and read events."""

    url: str
    database: Path
    upstream_timeout: float = UPSTREAM_TIMEOUT_SECONDS

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {GATEWAY_MASTER}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)

    def new_key(self, **fields: Any) -> tuple[str, dict[str, Any]]:
        """A new account and a virtual key in it: (secret, key record)."""
        account = self.admin("POST", "/api/admin/accounts", json={"name": "e2e"}).json()
        created = self.admin(
            "POST", "/api/admin/virtual-keys", json={"account_id": account["id"], "name": "k", **fields}
        )
        assert created.status_code == 201, created.text
        record = created.json()
        return record["key"], record

    def event(self, request_id: str) -> dict[str, Any]:
        """The event of a request as `GET /api/admin/requests/{id}` answers it (must exist)."""
        response = self.admin("GET", f"/api/admin/requests/{request_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def events_of(self, key_id: str) -> list[dict[str, Any]]:
        """Every event of a key, read straight from the ledger file."""
        with sqlite3.connect(self.database) as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute("SELECT * FROM usage_events WHERE key_id = ? ORDER BY ts_us", (key_id,))
            return [dict(row) for row in rows]

    def wait_events(self, key_id: str, count: int, *, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The key's events once there are `count` of them (for events recorded after the client left)."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events_of(key_id)
            if len(events) >= count or time.monotonic() > deadline:
                return events
            time.sleep(0.02)


def _models(slow_mock: str, closed_port: int) -> list[dict[str, Any]]:
    return [
        {"name": "gpt-4o-mini", "provider": "mock", "price_as": "openai/gpt-4o-mini"},
        {"name": "text-embedding-3-small", "provider": "mock", "price_as": "openai/text-embedding-3-small"},
        {"name": "tts-1", "provider": "mock", "price_as": "openai/tts-1"},
        {"name": "whisper-1", "provider": "mock", "price_as": "openai/whisper-1"},
        {"name": "gpt-image-1", "provider": "mock", "price_as": "openai/gpt-image-1"},
        # claude-sonnet-4-5 makes anthropic 2.12 raise a DeprecationWarning: its successor is served instead.
        {"name": "claude-sonnet-4-6", "provider": "mock", "price_as": "anthropic/claude-sonnet-4-6"},
        {"name": "gemini-2.5-flash", "provider": "mock", "price_as": "google/gemini-2.5-flash"},
        {
            "name": "slow-gpt",
            "provider": "openai_compatible",
            "upstream_model": "gpt-4o-mini",
            "base_url": f"{slow_mock}/openai/v1",
            "price_as": "openai/gpt-4o-mini",
        },
        {
            "name": "slow-claude",
            "provider": "anthropic",
            "base_url": f"{slow_mock}/anthropic",
            "api_key_env": "FAREBOX_E2E_ANTHROPIC_KEY",
            "price_as": "anthropic/claude-sonnet-4-6",
        },
        {
            "name": "slow-gemini",
            "provider": "gemini",
            "upstream_model": "gemini-2.5-flash",
            "base_url": f"{slow_mock}/gemini/v1beta",
            "api_key_env": "FAREBOX_E2E_GEMINI_KEY",
        },
        {
            "name": "dead-gpt",
            "provider": "openai_compatible",
            "base_url": f"http://127.0.0.1:{closed_port}/v1",
            "price_as": "openai/gpt-4o-mini",
        },
    ]


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("gateway")
    database = directory / "ledger.db"
    slow_port, port, closed_port = free_port(), free_port(), free_port()
    slow_mock = f"http://127.0.0.1:{slow_port}/mock"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)  # no developer farebox.toml
        patch.delenv("FAREBOX_CONFIG", raising=False)
        for name in Settings.model_fields:
            patch.delenv(f"FAREBOX_{name.upper()}", raising=False)
        patch.setenv("FAREBOX_E2E_ANTHROPIC_KEY", "sk-ant-e2e")
        patch.setenv("FAREBOX_E2E_GEMINI_KEY", "gemini-e2e-credential")
        settings = Settings(
            database_url=f"sqlite:///{database}",
            port=port,
            models=_models(slow_mock, closed_port),  # type: ignore[arg-type]  # validated into ModelRoute
            upstream_timeout_seconds=UPSTREAM_TIMEOUT_SECONDS,
            max_body_bytes=MAX_BODY_BYTES,
        )
        app = create_app(settings, master_key=GATEWAY_MASTER)
    with ServerThread(create_mock_app(chunk_delay_ms=50), slow_port), ServerThread(app, port):
        yield Gateway(f"http://127.0.0.1:{port}", database)


@pytest.fixture
def new_key(gateway: Gateway) -> Callable[..., tuple[str, dict[str, Any]]]:
    return gateway.new_key


@pytest.fixture(scope="session")
def port_factory() -> Callable[[], int]:
    """`free_port()`: a loopback port nobody listens on, for servers a test starts itself."""
    return free_port


@pytest.fixture(scope="session")
def server_thread() -> type[ServerThread]:
    """`ServerThread(app, port)`: serve an ASGI app of a test's own with uvicorn in a thread."""
    return ServerThread


class Cli:
    """The `farebox` command, run in-process (typer's runner) on one SQLite ledger."""

    def __init__(self, database_url: str):
        self.database_url = database_url
        self.runner = CliRunner()

    def run(self, *args: str, input: str | None = None) -> Result:
        """Run `farebox ARGS`, with `input` as what is typed (or piped) on standard input."""
        return self.runner.invoke(cli_app, list(args), input=input, env={"FAREBOX_DATABASE_URL": self.database_url})

    def json(self, *args: str, input: str | None = None) -> Any:
        result = self.run(*args, "--json", input=input)
        assert result.exit_code == 0, result.output
        return orjson.loads(result.stdout)

    def fails(self, *args: str, code: int = 1) -> str:
        result = self.run(*args)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.stderr

    def json_error(self, *args: str, code: int = 1) -> Any:
        """The `error` object a command given `--json` prints when it fails: nothing on stdout, one line of
        JSON (no colour, no panel) on stderr, exit code `code`."""
        result = self.run(*args, "--json")
        assert result.exit_code == code, result.output
        assert result.stdout == "", result.stdout
        assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
        assert "\x1b" not in result.stderr, "no terminal colour codes"
        body = orjson.loads(result.stderr)
        assert list(body) == ["error"], body
        return body["error"]

    def authenticate(self, secret: str) -> str:
        """The id of the key a secret opens, or the reason it is refused."""

        async def check() -> str:
            async with Ledger(self.database_url) as ledger:
                try:
                    return (await Directory(ledger).authenticate(secret)).id
                except AuthenticationFailed as exc:
                    return exc.message

        return asyncio.run(check())


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FAREBOX_CONFIG", raising=False)
    return Cli(f"sqlite:///{tmp_path / 'ledger.db'}")


@pytest.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    """The admin API of a new farebox on its own SQLite ledger (tests marked `anyio`)."""
    monkeypatch.chdir(tmp_path)
    async with open_api(tmp_path) as opened:
        yield opened


@pytest.fixture
async def api_each_backend(ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    """The admin API on a new ledger of each backend in turn (PostgreSQL when TEST_PG_URL is set), for the modules
    whose views read the ledger through SQL of their own: such a module's `api` fixture hands it on."""
    monkeypatch.chdir(tmp_path)
    # A PostgreSQL ledger needs a server secret kept outside it (SQLite keeps one beside its file).
    async with open_api(
        tmp_path, database_url=ledger_url, secret_key="e2e-each-backend-server-secret-" + "s" * 16
    ) as opened:
        yield opened
