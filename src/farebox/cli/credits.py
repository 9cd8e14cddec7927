"""`farebox accounts credits add|show`: top an account's prepaid credits up, and see its balance and top-ups.

The records and JSON are the admin API's (`POST`/`GET /api/admin/accounts/{id}/credits`); a top-up made here
is recorded as made by `cli`. A running gateway holds the account's requests to the new balance within a second.
`reserved` is 0 here, since reservations live in the serving process.
"""

from __future__ import annotations

from typing import Annotated

import typer

from farebox.api.credit_schemas import CreditsOut, TopUpCreated, credits_out, top_up_created
from farebox.cli.output import Json, command_group, show_one, show_table, usd_option
from farebox.cli.runtime import fail, load_or_exit, with_directory
from farebox.core.credits import CreditRate
from farebox.core.money import MoneyError
from farebox.ledger.actors import Actor
from farebox.ledger.credits import Credits
from farebox.ledger.directory import Directory

__all__ = ["add_credits", "credits_app", "show_credits"]

credits_app = command_group(help="An account's prepaid credits: top up, show the balance and every top-up.")

AccountArg = Annotated[str, typer.Argument(help="Account id.")]
_TOP_UP_COLUMNS = ("created_at", "amount", "credits", "note", "added_by", "id")


def _rate() -> CreditRate:
    return CreditRate(load_or_exit().credits_per_usd)


@credits_app.command("add")
def add_credits(
    account_id: AccountArg,
    usd: Annotated[
        int | None, typer.Option("--usd", parser=usd_option, metavar="USD", help="Top up this much USD, e.g. 25.00.")
    ] = None,
    amount_credits: Annotated[
        str | None, typer.Option("--credits", metavar="CREDITS", help="Or this many credits (at credits_per_usd).")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="Why (an invoice, a grant); kept with the top-up.")] = None,
    as_json: Json = False,
) -> None:
    """Top up an account's prepaid credits; from then on its spend draws on them."""
    if (usd is None) == (amount_credits is None):
        fail("give the amount as --usd or as --credits, one of them", code="usage_error", exit_code=2)
    rate = _rate()
    amount = usd
    if amount_credits is not None:
        try:
            amount = rate.parse(amount_credits)
        except MoneyError as exc:
            fail(f"--credits: {exc}", code="usage_error", exit_code=2)
    assert amount is not None

    async def run(directory: Directory) -> TopUpCreated:
        made, balance = await Credits(directory).top_up(account_id, amount_nano=amount, by=Actor("cli"), note=note)
        return top_up_created(made, rate, balance_nano=balance)

    show_one(with_directory(run), as_json=as_json)


@credits_app.command("show")
def show_credits(account_id: AccountArg, as_json: Json = False) -> None:
    """An account's balance (topped up minus used) in USD and credits, and every top-up, newest first."""
    rate = _rate()

    async def run(directory: Directory) -> CreditsOut:
        return credits_out(await Credits(directory).statement(account_id), rate, reserved_nano=0)

    shown = with_directory(run)
    show_one(shown, as_json=as_json, exclude=None if as_json else {"top_ups"})
    if not as_json:
        show_table(shown.top_ups, _TOP_UP_COLUMNS, as_json=False, title="Top-ups")
