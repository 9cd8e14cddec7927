"""`farebox accounts`, `farebox members` and `farebox keys`, with the commands other modules add to them.

The three groups are declared in `cli.accounts`; their budget, credits, password, privacy and enable/disable
commands live beside what they manage (`cli.budgets`, `cli.credits`, `cli.passwords`, `cli.privacy`,
`cli.notifications`). They are put
together here, on first use of any of the three, so that no other command loads them.
"""

from __future__ import annotations

from farebox.cli import budgets, credits, notifications, passwords, privacy
from farebox.cli.accounts import accounts_app, keys_app, members_app

__all__ = ["accounts_app", "keys_app", "members_app"]

members_app.command("password")(passwords.set_password)
members_app.command("export")(privacy.export_member)
members_app.command("erase")(privacy.erase_member)
keys_app.command("cap")(budgets.cap_key)
keys_app.command("budget")(budgets.key_budget)
accounts_app.command("budget")(budgets.account_budget)
accounts_app.add_typer(credits.credits_app, name="credits")
keys_app.command("disable")(notifications.disable_key)
keys_app.command("enable")(notifications.enable_key)
