"""The `farebox` command line: serve, migrate, usage, export, demo, accounts, members (and their passwords), keys,
tokens, workloads, events, webhooks, alerts, prices."""

from __future__ import annotations

from farebox.cli import (
    accounts,
    budgets,
    credits,
    demo,
    events,
    export,
    notifications,
    passwords,
    prices,
    server,
    tokens,
    usage,
    workloads,
)
from farebox.cli.output import command_group

__all__ = ["app", "main"]

app = command_group(name="farebox", help="farebox: the self-hosted LLM spend gateway.")
app.command("serve")(server.serve)
app.command("migrate")(server.migrate)
app.add_typer(accounts.accounts_app, name="accounts")
app.add_typer(accounts.members_app, name="members")
accounts.members_app.command("password")(passwords.set_password)
app.add_typer(accounts.keys_app, name="keys")
app.add_typer(tokens.tokens_app, name="tokens")
app.add_typer(workloads.workloads_app, name="workloads")
accounts.keys_app.command("cap")(budgets.cap_key)
accounts.keys_app.command("budget")(budgets.key_budget)
accounts.accounts_app.command("budget")(budgets.account_budget)
accounts.accounts_app.add_typer(credits.credits_app, name="credits")
accounts.keys_app.command("disable")(notifications.disable_key)
accounts.keys_app.command("enable")(notifications.enable_key)
app.add_typer(events.events_app, name="events")
app.add_typer(notifications.webhooks_app, name="webhooks")
app.add_typer(notifications.alerts_app, name="alerts")
app.add_typer(prices.app, name="prices")
app.command("usage")(usage.usage)
app.command("demo")(demo.demo)
app.command("export")(export.export)


def main() -> None:
    """Console-script entry point."""
    app()
