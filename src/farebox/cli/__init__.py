"""The `farebox` command line: serve, migrate, maintain, usage, export, reports, demo, accounts, members (and
their passwords), keys, tokens, workloads, events, webhooks, alerts, prices.

`serve` and `migrate` are loaded with the command line; every other command's module is imported only when
that command runs, or when help lists it. `farebox serve` thus never holds the other commands, nor what only
they use (the demo's month, for one), for as long as the server runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer

from farebox.cli import server
from farebox.cli.output import CommandGroup

__all__ = ["app", "main"]

_LAZY: dict[str, tuple[str, str]] = {
    "maintain": ("farebox.cli.maintain", "maintain"),
    "usage": ("farebox.cli.usage", "usage"),
    "demo": ("farebox.cli.demo", "demo"),
    "export": ("farebox.cli.export", "export"),
    "reports": ("farebox.cli.reports", "reports_app"),
    "accounts": ("farebox.cli.directory", "accounts_app"),
    "members": ("farebox.cli.directory", "members_app"),
    "keys": ("farebox.cli.directory", "keys_app"),
    "tokens": ("farebox.cli.tokens", "tokens_app"),
    "workloads": ("farebox.cli.workloads", "workloads_app"),
    "events": ("farebox.cli.events", "events_app"),
    "webhooks": ("farebox.cli.notifications", "webhooks_app"),
    "alerts": ("farebox.cli.notifications", "alerts_app"),
    "prices": ("farebox.cli.prices", "app"),
}
"""The commands loaded when first looked up, in the order help lists them: name -> (module, a typer app or a
command function in it)."""


def _load(name: str) -> Any:
    """The click command (or group) of a lazily loaded command, made by typer as `add_typer` or `command` would."""
    module, attribute = _LAZY[name]
    target = getattr(importlib.import_module(module), attribute)
    holder = typer.Typer()
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    return typer.main.get_group(holder).commands[name]


# Values are typer's click commands: typer vendors click and does not export its `Command` class, hence `Any`.
class _Commands(MutableMapping[str, Any]):
    """A group's commands by name: those the group was made with, and each of `_LAZY` made on first lookup.

    Listing the names (help's command list, typer's "did you mean" on a typo) loads nothing.
    """

    def __init__(self, made: MutableMapping[str, Any]) -> None:
        self._made = dict(made)
        self._names = [*made, *(name for name in _LAZY if name not in made)]

    def __getitem__(self, name: str) -> Any:
        if name not in self._made:
            if name not in self._names:
                raise KeyError(name)
            self._made[name] = _load(name)
        return self._made[name]

    def __setitem__(self, name: str, command: Any) -> None:
        if name not in self._names:
            self._names.append(name)
        self._made[name] = command

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._made.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class _Farebox(CommandGroup):
    """The `farebox` group: its own commands, and `_LAZY`'s loaded as they are looked up."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands(self.commands)


app = typer.Typer(
    name="farebox", help="farebox: the self-hosted LLM spend gateway.", no_args_is_help=True, cls=_Farebox
)
app.command("serve")(server.serve)
app.command("migrate")(server.migrate)


def main() -> None:
    """Console-script entry point."""
    app()
