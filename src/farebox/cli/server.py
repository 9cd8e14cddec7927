"""`farebox serve` and `farebox migrate`.

`serve` alone takes no `--json`: it runs until stopped, and what it prints is where it listens, not a result.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Annotated

import typer

from farebox.cli.output import Json
from farebox.cli.runtime import database_error, fail, load_or_exit, print_json
from farebox.core.sealing import SecretBox, UnreadableSecret
from farebox.core.server_secret import WEBHOOK_SECRETS
from farebox.gateway.tokens import Tokenizer
from farebox.ledger.base import Ledger
from farebox.ledger.engine import Engines, display_url, head_revision, schema_is_current
from farebox.ledger.engine import migrate as run_migrations
from farebox.ledger.errors import DatabaseUnusable
from farebox.ledger.webhooks import WebhookEndpoints
from farebox.prices import PriceOverridesError
from farebox.settings import (
    Settings,
    SettingsError,
    load_settings,
    master_key_file,
    resolve_master_key,
    resolve_secret_key,
    secret_key_file,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["migrate", "serve", "tune_collector", "worker_app"]


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (env FAREBOX_HOST, default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env FAREBOX_PORT, default 4000).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Gateway processes on the port (env FAREBOX_WORKERS, default 1); more than one needs PostgreSQL "
            "and FAREBOX_REDIS_URL."
        ),
    ] = None,
) -> None:
    """Start the gateway: admin API, ingestion and the ledger."""
    settings = load_or_exit(host=host, port=port, workers=workers)
    # The token counter's vocabulary is built before the app loads, not at the first estimate: building
    # holds the GIL for ~65 ms, which under traffic would stall every request in flight.
    Tokenizer().warm()
    # The server's stack is imported here, so that every other command starts without it.
    from farebox.app import create_app

    if not _schema_is_current(settings):
        # Upgrades run in a child process, so that Alembic (about 10 MB resident) never loads into the server.
        migration = [sys.executable, "-m", "farebox", "migrate"]
        code = subprocess.run(migration, stdout=subprocess.DEVNULL, check=False).returncode
        if code:
            raise typer.Exit(code)
    try:
        # Before the master key: a server secret missing for PostgreSQL must not stop start-up after a master
        # key was generated, and so never shown.
        secret_key, secret_generated = resolve_secret_key(settings)
        master_key, generated = resolve_master_key(settings)
        app = create_app(settings, master_key=master_key, secret_key=secret_key)
    except PriceOverridesError as exc:
        fail(str(exc), code="invalid_price_overrides", exit_code=2)
    except SettingsError as exc:
        fail(str(exc), code="invalid_setting", exit_code=2)
    # A generated key is shown once, when it is made; after that only its start, and where it is kept.
    if settings.master_key is not None:
        typer.echo(f"master key: from FAREBOX_MASTER_KEY ({master_key[:14]}…)")
    elif generated:
        typer.echo(f"master key: {master_key}  (generated, saved to {master_key_file(settings)})")
    else:
        typer.echo(f"master key: {master_key[:14]}…  (from {master_key_file(settings)})")
    # The server secret is never shown, not even its start: only where it comes from.
    if settings.secret_key is not None:
        typer.echo("secret key: from FAREBOX_SECRET_KEY")
    elif secret_generated:
        typer.echo(f"secret key: generated, saved to {secret_key_file(settings)} (back it up with the ledger)")
    else:
        typer.echo(f"secret key: from {secret_key_file(settings)}")
    _seal_stored_secrets(settings, secret_key)
    typer.echo(f"ledger: {display_url(settings.database_url)}")
    if settings.workers > 1:
        typer.echo(f"farebox listening on http://{settings.host}:{settings.port} ({settings.workers} processes)")
        del app  # each process builds its own (`worker_app`); this one only checked that it can be built
        # The processes read their settings as this one did, from the environment and farebox.toml, with the
        # flags and the keys resolved here.
        os.environ.update(
            FAREBOX_HOST=settings.host,
            FAREBOX_PORT=str(settings.port),
            FAREBOX_MASTER_KEY=master_key,
            FAREBOX_SECRET_KEY=secret_key,
        )
        from farebox.metrics import MULTIPROCESS_DIR

        # Each process writes its metrics to files here, and the one a scrape reaches sums them (`farebox.metrics`).
        with tempfile.TemporaryDirectory(prefix="farebox-metrics-") as shared_metrics:
            os.environ[MULTIPROCESS_DIR] = shared_metrics
            _run(settings, "farebox.cli.server:worker_app", workers=settings.workers)
        return
    typer.echo(f"farebox listening on http://{settings.host}:{settings.port}")
    tune_collector()
    _run(settings, app)


def worker_app() -> FastAPI:
    """The app of one of `farebox serve --workers N`'s processes: uvicorn builds one in each."""
    from farebox.app import create_app

    settings = load_settings()
    Tokenizer().warm()
    app = create_app(settings, master_key=resolve_master_key(settings)[0], secret_key=resolve_secret_key(settings)[0])
    tune_collector()
    return app


def _run(settings: Settings, app: FastAPI | str, *, workers: int | None = None) -> None:
    import uvicorn

    from farebox.logs import log_config

    uvicorn.run(
        app,
        factory=isinstance(app, str),
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level, settings.log_format),
        access_log=False,
        # farebox never reads the client's address, so uvicorn need not rewrite it from X-Forwarded-For on
        # every request (about 1% of the gateway's CPU per proxied request).
        proxy_headers=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )


def tune_collector() -> None:
    """Set Python's garbage collector for serving, once the app is loaded (the analytics benchmark does the same,
    to time what the server does)."""
    # Everything loaded so far (modules, the price catalog's models, the app) lives as long as the server.
    # Frozen out of the collector, it is no longer walked by every full collection: with ~120,000 objects
    # each one stalled the event loop for ~70 ms, the p99 of a busy gateway.
    gc.collect()
    gc.freeze()
    # A young generation of 10,000 objects instead of 700: an ingested batch keeps ~8 containers per event
    # alive until it is answered, and the default collected (and promoted) each of them about three times
    # over, ~12% of the ingest endpoint's CPU. A young collection still takes about a millisecond at most.
    gc.set_threshold(10_000, 10, 10)


def _seal_stored_secrets(settings: Settings, secret_key: str) -> None:
    """Seal the webhook signing secrets stored in plain text, or stop with one line when the stored ones are
    sealed under another server secret. The app's start-up does the same (finding nothing left to do), but
    a refusal there would end in uvicorn's traceback."""
    box = SecretBox.derived(secret_key, purpose=WEBHOOK_SECRETS)

    async def run() -> None:
        async with Ledger(settings.database_url) as ledger:
            await WebhookEndpoints(ledger, box).seal_stored_secrets()

    try:
        asyncio.run(run())
    except UnreadableSecret as exc:
        fail(
            f"{exc}: start farebox with the secret_key they were sealed under, or give each endpoint a new "
            "signing secret (farebox webhooks rotate-secret ENDPOINT_ID)",
            code="unreadable_secret",
            exit_code=2,
        )
    except DatabaseUnusable as exc:
        fail(database_error(settings, exc), code="database_unusable", exit_code=2)


def _schema_is_current(settings: Settings) -> bool:
    engines = Engines(settings.database_url)
    try:
        return schema_is_current(engines)
    except DatabaseUnusable as exc:
        fail(database_error(settings, exc), code="database_unusable", exit_code=2)
    finally:
        engines.dispose()


def _migrate(settings: Settings) -> None:
    engines = Engines(settings.database_url)
    try:
        run_migrations(engines)
    except DatabaseUnusable as exc:
        fail(database_error(settings, exc), code="database_unusable", exit_code=2)
    finally:
        engines.dispose()


def migrate(as_json: Json = False) -> None:
    """Create or upgrade the ledger schema to the latest version."""
    settings = load_or_exit()
    _migrate(settings)
    if as_json:
        print_json({"ledger": display_url(settings.database_url), "revision": head_revision()})
    else:
        typer.echo(f"ledger schema up to date: {display_url(settings.database_url)}")
