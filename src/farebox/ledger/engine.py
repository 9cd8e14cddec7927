"""Database engines for the ledger: URL handling, SQLite pragmas, and migrations.

SQLite gets two engines on one file: a writer whose every transaction is `BEGIN IMMEDIATE` (a
deferred write transaction in WAL mode fails with SQLITE_BUSY_SNAPSHOT whatever the busy timeout),
and a reader pool, plus a `WalCheckpointer` thread. PostgreSQL gets one pooled engine for both.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from farebox.ledger.errors import database_errors

__all__ = [
    "Engines",
    "WalCheckpointer",
    "display_url",
    "head_revision",
    "migrate",
    "normalise_url",
    "schema_is_current",
    "sqlite_path",
]

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"
_SQLITE_BUSY_TIMEOUT_MS = 10_000
_MIGRATE_ATTEMPTS = 8
_CHECKPOINT_INTERVAL_S = 0.1


def normalise_url(url: str) -> URL:
    """The SQLAlchemy URL for a farebox database URL (`sqlite:///file.db` or `postgresql://...`).

    Raises:
        ValueError: the URL names a database farebox does not support.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError("the SQLite ledger needs a file path, e.g. sqlite:///farebox.db")
        return parsed.set(drivername="sqlite")
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql://")


def display_url(url: str) -> str:
    """A database URL safe to print: the password masked."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL, None for other databases."""
    return Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None


def _null(_none: None) -> None:
    return None


# sqlite3 (Python 3.11) binds a None parameter after failing to find an adapter for it, the slow way: 0.19 µs
# against 0.05 µs for an int or a str. A ledger row holds several (no app, no error, no latency for ingested
# usage): with this adapter, which still binds NULL, a 1,000-event batch spends ~0.8 ms less holding the GIL.
sqlite3.register_adapter(type(None), _null)


def _sqlite_engine(url: URL, *, writer: bool) -> Engine:
    # Statements' parameters hold password hashes and secrets' digests: SQLAlchemy's statement log (when an
    # operator turns it on) and its errors, which a logged traceback carries, leave them out.
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000},
        hide_parameters=True,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so that the "begin" hook decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints run on the WalCheckpointer's thread, never inside a commit a caller waits for.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


class WalCheckpointer:
    """Checkpoints a SQLite WAL from a thread of its own, so that the writer never pays for it.

    A checkpoint copies committed pages from the WAL into the database file and syncs the file:
    milliseconds. Left to SQLite (`wal_autocheckpoint`), the commit that crosses 1,000 WAL pages pays
    for it while every caller grouped into that commit waits. Here a PASSIVE checkpoint runs every
    `interval` seconds beside the writer instead (SQLite releases the GIL while it works); the writer
    reuses the WAL from its start once a checkpoint has caught up, so the file stays small.
    """

    def __init__(self, path: Path, *, interval: float = _CHECKPOINT_INTERVAL_S):
        self._path = path
        self._interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start checkpointing (once; a second call does nothing)."""
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="farebox-ledger-checkpointer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread (a checkpoint under way finishes first)."""
        if self._thread is not None:
            self._stopping.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None, timeout=_SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            while not self._stopping.wait(self._interval):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # a busy or failing checkpoint is retried at the next interval
                    log.warning("SQLite WAL checkpoint failed: %s", exc)
        finally:
            connection.close()


def _create_private(path: Path) -> None:
    """Create a new SQLite ledger file readable by its owner only (mode 0600): it holds usage, key digests and
    webhook signing secrets. SQLite gives its `-wal` and `-shm` files the database file's mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass  # an existing ledger keeps the mode its operator gave it


class Engines:
    """The writer and reader engines of one ledger database (and, for SQLite, its WAL checkpointer)."""

    def __init__(self, url: str):
        self.url = normalise_url(url)
        self.dialect = self.url.get_backend_name()
        if self.dialect == "sqlite":
            path = sqlite_path(self.url)
            assert path is not None
            path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(path)
            self.writer = _sqlite_engine(self.url, writer=True)
            self.reader = _sqlite_engine(self.url, writer=False)
            self.checkpointer: WalCheckpointer | None = WalCheckpointer(path)
        else:
            self.checkpointer = None
            # Parameters hidden from logs and errors, as for SQLite (`_sqlite_engine`).
            self.writer = create_engine(self.url, pool_size=2, max_overflow=0, pool_pre_ping=True, hide_parameters=True)
            self.reader = create_engine(self.url, pool_size=8, max_overflow=8, pool_pre_ping=True, hide_parameters=True)

    def dispose(self) -> None:
        self.writer.dispose()
        self.reader.dispose()


def head_revision() -> str:
    """The newest packaged migration's revision.

    Migrations are files `NNNN_description.py` whose revision is `NNNN`, each revising the one before
    (a test holds them to it), so the head is the highest prefix and finding it needs no Alembic.
    """
    return max(path.name.split("_", 1)[0] for path in (_MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def schema_is_current(engines: Engines) -> bool:
    """Whether the database's schema is at the newest packaged migration.

    A new database is not, nor a new SQLite file that another process is turning to WAL this moment.

    Raises:
        DatabaseUnusable: the database could not be read.
    """
    with database_errors():
        try:
            with engines.reader.connect() as connection:
                if not inspect(connection).has_table("alembic_version"):
                    return False
                current = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        except OperationalError as exc:
            if "database is locked" in str(exc):
                return False
            raise
    return current == head_revision()


_MIGRATION_LOCK = 0x6D69_6772_6174_65  # "migrate": the PostgreSQL advisory lock a migration runs under


def migrate(engines: Engines, *, revision: str = "head") -> None:
    """Bring the database schema up to `revision` with the packaged Alembic migrations.

    A schema already at the head returns at once, without importing Alembic (about 10 MB resident).

    Several processes may start on one new SQLite file at once (gateway replicas, a CLI beside the
    server). Turning a new file to WAL can answer "database is locked" at once rather than wait, so
    a locked attempt is retried; each attempt re-reads the schema version, so a migration another
    process finished meanwhile is not run twice. On PostgreSQL they take turns on an advisory lock.

    Raises:
        DatabaseUnusable: the database could not be migrated.
    """
    if revision == "head" and schema_is_current(engines):
        return
    with database_errors():
        _upgrade(engines, revision)


def _upgrade(engines: Engines, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    for attempt in range(_MIGRATE_ATTEMPTS):
        try:
            with engines.writer.begin() as connection:
                if engines.dialect == "postgresql":
                    # Processes starting at once on one database take turns; each reads the version after its turn
                    # comes, so a migration another finished meanwhile is not run twice.
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
            return
        except OperationalError as exc:
            if "database is locked" not in str(exc) or attempt == _MIGRATE_ATTEMPTS - 1:
                raise
            engines.writer.dispose()
            time.sleep(0.1 * (attempt + 1))
