"""What every CLI command shares: settings from flags/env/file, an open ledger, refusals that name their cause."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import orjson
import typer
from rich.console import Console

from farebox.core.sealing import SecretBox
from farebox.core.server_secret import WEBHOOK_SECRETS
from farebox.errors import FareboxError
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.engine import display_url
from farebox.ledger.errors import DatabaseUnusable
from farebox.settings import Settings, SettingsError, load_settings, resolve_secret_key

__all__ = [
    "CommandFailed",
    "console",
    "database_error",
    "fail",
    "load_or_exit",
    "print_json",
    "webhook_secrets_box",
    "with_directory",
    "with_ledger",
]

T = TypeVar("T")
console = Console()


class CommandFailed(Exception):
    """A command's refusal, printed by its command group as one line on stderr, as text or JSON.

    Not a `FareboxError`: it answers no HTTP client. It carries the process's exit code, and the
    group that catches it knows whether the command line asked for `--json`.

    Attributes:
        message: what went wrong, for people.
        code: a stable machine-readable name (a farebox error's own code, or the CLI's, e.g. `usage_error`).
        exit_code: 1 for a refusal, 2 for bad usage or a bad setting.
        details: per-item details of a farebox error that has them.
    """

    def __init__(
        self, message: str, *, code: str, exit_code: int = 1, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.exit_code = exit_code
        self.details = details


def fail(message: str, *, code: str, exit_code: int = 1, details: list[dict[str, Any]] | None = None) -> NoReturn:
    """Stop the command: its group prints `message` on stderr and exits with `exit_code`."""
    raise CommandFailed(message, code=code, exit_code=exit_code, details=details)


def load_or_exit(**overrides: Any) -> Settings:
    """Settings, or one clear line and exit code 2 when a setting is bad."""
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        fail(str(exc), code="invalid_setting", exit_code=2)


def webhook_secrets_box(settings: Settings) -> SecretBox:
    """What seals and opens webhook signing secrets, from the server secret; without one, a line and exit 2."""
    try:
        secret_key, _ = resolve_secret_key(settings)
    except SettingsError as exc:
        fail(str(exc), code="invalid_setting", exit_code=2)
    return SecretBox.derived(secret_key, purpose=WEBHOOK_SECRETS)


def print_json(value: Any) -> None:
    """Machine-readable output for `--json`."""
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def with_directory(fn: Callable[[Directory], Awaitable[T]]) -> T:
    """Open the configured ledger, run `fn(directory)`, close; a farebox error stops the command."""
    return with_ledger(lambda ledger: fn(Directory(ledger)))


def with_ledger(fn: Callable[[Ledger], Awaitable[T]]) -> T:
    """Open the configured ledger, run `fn(ledger)`, close; a farebox error stops the command."""
    settings = load_or_exit()

    async def run() -> T:
        async with Ledger(settings.database_url) as ledger:
            return await fn(ledger)

    try:
        return asyncio.run(run())
    except FareboxError as exc:
        fail(exc.message, code=exc.code, details=exc.details)
    except DatabaseUnusable as exc:
        fail(database_error(settings, exc), code="database_unusable")


def database_error(settings: Settings, exc: DatabaseUnusable) -> str:
    """One line saying which database could not be used and why (no password, no traceback)."""
    return f"cannot use the ledger database {display_url(settings.database_url)}: {exc.reason}"
