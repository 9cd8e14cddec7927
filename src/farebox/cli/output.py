"""How CLI commands print records: a rich table, or with `--json` the JSON the admin API answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer
from pydantic import BaseModel
from rich.table import Table

from farebox.cli.runtime import console, print_json
from farebox.core.money import MoneyError, parse_usd

__all__ = ["cell", "show_one", "show_table", "usd_option"]


def usd_option(value: str) -> int:
    """A USD amount typed on the command line (`75.00`), in nano-USD; a bad one is a usage error."""
    try:
        return parse_usd(value)
    except MoneyError as exc:
        raise typer.BadParameter(str(exc)) from None


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "-"
    return str(value)


def show_one(model: BaseModel, *, as_json: bool) -> None:
    data = model.model_dump(mode="json")
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
