"""How CLI commands print: a record as a rich table, or with `--json` the JSON the admin API answers; and
what stops a command as one line on stderr, or with `--json` one line of JSON."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import orjson
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from farebox.cli.runtime import CommandFailed, console, print_json
from farebox.core.money import MoneyError, parse_usd
from farebox.core.tax import parse_rate

__all__ = ["CommandGroup", "Json", "cell", "command_group", "rate_option", "show_one", "show_table", "usd_option"]

Json = Annotated[
    bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table; errors as JSON on stderr.")
]

_JSON_MODE = "farebox.json"
_errors = Console(stderr=True)


class CommandGroup(TyperGroup):
    """A group of farebox commands, which prints what stops one of them the way the command line asks.

    A command's refusal (`CommandFailed`) is one line on stderr: text, or JSON when the command line has
    `--json`. With `--json`, a bad command line (an unknown option, a bad value) is JSON too, where typer
    would draw a rich panel. Either way the exit code is the failure's own.
    """

    context_class = typer.Context

    # typer types a group's context as its vendored click's, whose public face is `typer.Context`, the class
    # set above: the narrower annotation is true of every context these methods get.
    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        # The outermost group sees the whole command line; the groups inside it share its `meta`. A bad
        # command line may stop before `--json` is parsed, so the mode is read from the words themselves.
        ctx.meta.setdefault(_JSON_MODE, "--json" in itertools.takewhile(lambda arg: arg != "--", args))
        with _reported(ctx):
            return super().parse_args(ctx, args)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        with _reported(ctx):
            return super().invoke(ctx)


def command_group(*, help: str, name: str | None = None) -> typer.Typer:
    """A typer app for a group of commands (`farebox keys`): its help when called bare, failures as asked."""
    return typer.Typer(name=name, help=help, no_args_is_help=True, cls=CommandGroup)


@contextmanager
def _reported(ctx: typer.Context) -> Iterator[None]:
    as_json = bool(ctx.meta.get(_JSON_MODE))
    try:
        yield
    except CommandFailed as exc:
        error: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.details is not None:
            error["details"] = exc.details
        _print_error(error, as_json=as_json)
        raise typer.Exit(exc.exit_code) from None
    except typer.TyperException as exc:
        if not as_json:
            raise
        _print_error({"code": "usage_error", "message": exc.format_message()}, as_json=True)
        raise typer.Exit(exc.exit_code) from None


def _print_error(error: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        typer.echo(orjson.dumps({"error": error}).decode(), err=True)
    else:
        _errors.print(f"[bold red]error:[/] {escape(error['message'])}", highlight=False, soft_wrap=True)


def usd_option(value: str) -> int:
    """A USD amount typed on the command line (`75.00`), in nano-USD; a bad one is a usage error."""
    try:
        return parse_usd(value)
    except MoneyError as exc:
        raise typer.BadParameter(str(exc)) from None


def rate_option(value: str) -> int:
    """A tax rate typed on the command line (`0.0825`), in parts per million; a bad one is a usage error."""
    try:
        return parse_rate(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "-"
    return str(value)


def show_one(model: BaseModel, *, as_json: bool, exclude: set[str] | None = None) -> None:
    """A record as a two-column table, or its JSON; `exclude` leaves fields out (one shown on its own)."""
    data = model.model_dump(mode="json", exclude=exclude)
    if as_json:
        print_json(data)
        return
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in data.items():
        table.add_row(name, cell(value))
    console.print(table)


def show_table(models: Sequence[BaseModel], columns: Sequence[str], *, as_json: bool, title: str) -> None:
    rows = [model.model_dump(mode="json") for model in models]
    if as_json:
        print_json(rows)
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(cell(row[column]) for column in columns))
    console.print(table)
