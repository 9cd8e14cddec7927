"""Shared fixtures. Keep each group together; add new groups below the existing ones."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Connection, Table, select

from farebox.core.events import Axis, UsageEvent
from farebox.ledger import latency
from farebox.ledger.base import Ledger
from redis_server import RedisServer  # tests/redis_server.py

__all__ = ["EventFactory", "LedgerDatabases", "TableRows", "WriterGate"]

# CI (`CI=true`, as .ci/run runs) draws the same examples on every run, so that a submission's verdict does
# not depend on which examples this run happened to draw; local runs keep exploring new ones.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

# --- ledger: backends, databases, started ledgers, usage events ----------------------------------

EventFactory = Callable[..., UsageEvent]
"""`make_event(**fields)`: a valid usage event with a fresh id; keyword arguments override fields."""

TableRows = Callable[[Ledger, Table], Awaitable[list[dict[str, Any]]]]
"""`await table_rows(ledger, table)`: every row of a table, as dicts, read through the ledger's reader."""

_PG_SKIP_REASON = (
    "PostgreSQL backend: set TEST_PG_URL (e.g. postgresql://postgres:farebox@127.0.0.1:5432/farebox_test) to run it"
)


class LedgerDatabases:
    """Hands out empty ledger databases of one backend and removes them afterwards.

    SQLite: a new file under the test's tmp_path. PostgreSQL: a new schema, named in the URL's
    `search_path`, so tests (and concurrent test runs sharing the server) never see each other's rows.
    """

    def __init__(self, backend: str, *, tmp_path: Path, pg_url: str | None):
        self.backend = backend
        self._tmp_path = tmp_path
        self._pg_url = pg_url
        self._schemas: list[str] = []
        self._count = 0

    def new_url(self) -> str:
        """The URL of a database nobody has used yet (migrations run when a Ledger starts on it)."""
        self._count += 1
        if self.backend == "sqlite":
            return f"sqlite:///{self._tmp_path / f'ledger-{self._count}.db'}"
        assert self._pg_url is not None
        schema = f"test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self._pg_url, autocommit=True) as connection:
            connection.execute(f"CREATE SCHEMA {schema}")
        self._schemas.append(schema)
        separator = "&" if "?" in self._pg_url else "?"
        return f"{self._pg_url}{separator}options=-csearch_path%3D{schema}"

    def drop_all(self) -> None:
        if not self._schemas:
            return
        assert self._pg_url is not None
        with psycopg.connect(self._pg_url, autocommit=True) as connection:
            for schema in self._schemas:
                connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        self._schemas.clear()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerDatabases]:
    """Empty databases of each backend in turn (PostgreSQL skipped without TEST_PG_URL)."""
    pg_url = os.environ.get("TEST_PG_URL") or None
    if request.param == "postgresql" and pg_url is None:
        pytest.skip(_PG_SKIP_REASON)
    databases = LedgerDatabases(request.param, tmp_path=tmp_path, pg_url=pg_url)
    try:
        yield databases
    finally:
        databases.drop_all()


@pytest.fixture
def pg_ledger_url(tmp_path: Path) -> Iterator[str]:
    """The URL of an empty PostgreSQL ledger database, for what only PostgreSQL serves (skipped without
    TEST_PG_URL)."""
    pg_url = os.environ.get("TEST_PG_URL") or None
    if pg_url is None:
        pytest.skip(_PG_SKIP_REASON)
    databases = LedgerDatabases("postgresql", tmp_path=tmp_path, pg_url=pg_url)
    try:
        yield databases.new_url()
    finally:
        databases.drop_all()


@pytest.fixture
def redis_url() -> str:
    """The Redis that shared spend counters are tested on (skipped without TEST_REDIS_URL); each test keeps to
    keys of its own prefix."""
    url = os.environ.get("TEST_REDIS_URL") or None
    if url is None:
        pytest.skip("Redis: set TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run it")
    return url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A `redis-server` of the test's own, started, that the test may stop and start again."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ledger_url(ledger_databases: LedgerDatabases) -> str:
    """The URL of an empty ledger database, once per backend."""
    return ledger_databases.new_url()


@pytest.fixture
async def ledger(ledger_url: str) -> AsyncIterator[Ledger]:
    """A migrated, started ledger on an empty database, closed after the test."""
    async with Ledger(ledger_url) as started:
        yield started


def usage_event(**fields: Any) -> UsageEvent:
    """A priced LLM usage event with a fresh id, attributed to acct-1 / key-1 / mem-1."""
    values: dict[str, Any] = {
        "id": f"evt-{uuid.uuid4().hex}",
        "timestamp": datetime(2025, 6, 1, 12, 30, tzinfo=UTC),
        "account_id": "acct-1",
        "key_id": "key-1",
        "member_id": "mem-1",
        "agent_id": "agent-1",
        "axis": Axis.LLM,
        "provider": "openai",
        "model": "gpt-4o-2024-08-06",
        "canonical_model": "gpt-4o",
        "operation": "chat.completions",
        "input_tokens": 1_000,
        "output_tokens": 200,
        "cost_nano": 4_500_000,
        "unit_prices": {"input_mtok": "2.5", "output_mtok": "10"},
        "latency_ms": 850,
    }
    values.update(fields)
    return UsageEvent(**values)


@pytest.fixture
def make_event() -> EventFactory:
    return usage_event


@pytest.fixture
def table_rows() -> TableRows:
    async def read(ledger: Ledger, table: Table) -> list[dict[str, Any]]:
        def fetch(connection: Connection) -> list[dict[str, Any]]:
            return [dict(row) for row in connection.execute(select(table)).mappings()]

        return await ledger._read(fetch)

    return read


class WriterGate:
    """Holds the ledger's writer thread inside a write job while the block runs.

    Every job queued inside `async with WriterGate(ledger):` is therefore committed in the one group
    that follows the gate's own: the way to test what group commit does with jobs that share a transaction.
    """

    def __init__(self, ledger: Ledger):
        self._ledger = ledger
        self._entered = threading.Event()
        self._release = threading.Event()
        self._job: asyncio.Future[None] | None = None

    def _hold(self, _connection: Connection) -> None:
        self._entered.set()
        assert self._release.wait(10), "the test never released the writer"

    async def __aenter__(self) -> WriterGate:
        self._job = asyncio.ensure_future(self._ledger._write(self._hold))
        assert await asyncio.to_thread(self._entered.wait, 10), "the writer never ran the gate"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for _ in range(5):  # let every caller started inside the block reach its queue.put()
            await asyncio.sleep(0)
        self._release.set()
        assert self._job is not None
        await self._job


@pytest.fixture
def writer_gate() -> type[WriterGate]:
    return WriterGate


# --- latency sketches: rows written at every commit ------------------------------------------------


@pytest.fixture(autouse=True)
def latency_rows_at_every_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ledger writes its latency sketches' rows up to `FLUSH_SECONDS` after the events; tests that read
    percentiles right after recording would see them lag, so in tests they are written with every commit, as a
    second has passed. `tests/integration/test_latency_flush.py` tests the lag itself."""
    monkeypatch.setattr(latency, "FLUSH_SECONDS", 0.0)
