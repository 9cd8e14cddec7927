"""`farebox keys cap|budget` and `farebox accounts budget`: set a key's spend cap, see where caps stand.

`keys cap KEY 75.00` sets the cap (the period stays unless `--period` is given), `keys cap KEY --none`
removes it. A running gateway applies a change within a second. The budget figures are the admin API's
(`GET /api/admin/virtual-keys/{id}/budget`, `GET /api/admin/budgets/status`); `reserved` is 0 here, since
reservations live in the serving process.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from farebox.analytics.budget_schemas import BudgetOut, BudgetsOut, account_budgets, budget_of
from farebox.api.admin_schemas import KeyOut, present_all
from farebox.cli.output import Json, show_one, show_table, usd_option
from farebox.cli.runtime import fail, print_json, with_ledger
from farebox.core.periods import Period
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.metering import Budgets, LocalCounters

__all__ = ["account_budget", "cap_key", "key_budget"]

_COLUMNS = ("scope", "name", "period", "cap", "spent", "remaining", "utilization", "projected_period_spend", "on_track")


def cap_key(
    key_id: Annotated[str, typer.Argument(help="Virtual key id.")],
    amount: Annotated[
        int | None, typer.Argument(parser=usd_option, metavar="USD", help="The new cap per period, e.g. 75.00.")
    ] = None,
    period: Annotated[Period | None, typer.Option("--period", help="Period the cap applies to.")] = None,
    none: Annotated[bool, typer.Option("--none", help="Remove the key's cap.")] = False,
    as_json: Json = False,
) -> None:
    """Set (or with --none remove) a virtual key's spend cap."""
    if none == (amount is not None):
        fail("give the cap in USD (e.g. 75.00) or --none", code="usage_error")

    async def run(ledger: Ledger) -> KeyOut:
        directory = Directory(ledger)
        changes = {"spend_cap_nano": amount} | ({} if period is None else {"cap_period": period})
        key = await directory.update_key(key_id, **changes)  # type: ignore[arg-type]  # keys of KeyChanges
        return (await present_all(KeyOut, directory, [key]))[0]

    show_one(with_ledger(run), as_json=as_json)


def key_budget(
    key_id: Annotated[str, typer.Argument(help="Virtual key id.")],
    as_json: Json = False,
) -> None:
    """Where a key's cap stands this period: spent, remaining, projection."""

    async def run(ledger: Ledger) -> BudgetOut:
        directory = Directory(ledger)
        key = await directory.get_key(key_id)
        account = await directory.get_account(key.account_id)
        return await budget_of(Budgets(directory, LocalCounters(ledger)), directory, key, tz=ZoneInfo(account.timezone))

    show_one(with_ledger(run), as_json=as_json)


def account_budget(
    account_id: Annotated[str, typer.Argument(help="Account id.")],
    as_json: Json = False,
) -> None:
    """Where the account's cap, and each member's and key's, stands this period."""

    async def run(ledger: Ledger) -> BudgetsOut:
        directory = Directory(ledger)
        return await account_budgets(Budgets(directory, LocalCounters(ledger)), directory, account_id)

    status = with_ledger(run)
    if as_json:
        print_json(status.model_dump(mode="json"))
        return
    show_table([status.account, *status.members, *status.keys], _COLUMNS, as_json=False, title="Budgets")
