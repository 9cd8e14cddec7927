"""The `farebox` command line: serve, migrate, accounts, members, keys, webhooks, alerts, prices."""

from __future__ import annotations

import typer

from farebox.cli import budgets, directory, notifications, prices, server

__all__ = ["app", "main"]

app = typer.Typer(name="farebox", help="farebox: the self-hosted LLM spend gateway.", no_args_is_help=True)
app.command("serve")(server.serve)
app.command("migrate")(server.migrate)
app.add_typer(directory.accounts_app, name="accounts")
app.add_typer(directory.members_app, name="members")
app.add_typer(directory.keys_app, name="keys")
directory.keys_app.command("cap")(budgets.cap_key)
directory.keys_app.command("budget")(budgets.key_budget)
directory.accounts_app.command("budget")(budgets.account_budget)
directory.keys_app.command("disable")(notifications.disable_key)
directory.keys_app.command("enable")(notifications.enable_key)
app.add_typer(notifications.webhooks_app, name="webhooks")
app.add_typer(notifications.alerts_app, name="alerts")
app.add_typer(prices.app, name="prices")


def main() -> None:
    """Console-script entry point."""
    app()
