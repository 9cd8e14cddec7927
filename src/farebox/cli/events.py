"""`farebox events void` and `farebox events recalculate`: corrections appended to the ledger from the terminal.

`void` voids a wrongly ingested usage event, as `POST /api/admin/events/{id}/void` does. `recalculate` reprices the
usage of a range of days with the price book as the settings' `price_overrides` file says now, as
`POST /api/admin/analytics/recalculate-costs` does (no restart needed for a changed file). Either is appended with its
reason and `cli` as who made it; the event rows stay as recorded. A running gateway's caps take it into account
within a second (`metering.VoidWatch`).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from farebox.analytics.admin_reprices import DEFAULT_REASON, recalculation_data, reprice_ranges
from farebox.api.void_schemas import VoidOut, present_void
from farebox.cli.output import Json, command_group, show_one
from farebox.cli.runtime import console, load_or_exit, with_ledger
from farebox.core.clock import utcnow
from farebox.core.json_numbers import dumps_exact
from farebox.errors import ValidationFailed
from farebox.ledger.adjustments import Actor, Adjustments, clean_reason
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.reprices import Reprices
from farebox.prices import PriceBook

__all__ = ["events_app"]

events_app = command_group(help="Usage events in the ledger: void a wrongly ingested one, reprice a range.")


def _reason(value: str) -> str:
    try:
        return clean_reason(value)
    except ValidationFailed as exc:
        raise typer.BadParameter(exc.message.removeprefix("reason: ")) from None


@events_app.command("void")
def void_event(
    event_id: Annotated[str, typer.Argument(help="The ingested event's id.")],
    reason: Annotated[str, typer.Option("--reason", parser=_reason, help="Why it is voided (kept for the audit).")],
    account: Annotated[
        str | None, typer.Option("--account", help="Account id: an event of another account is not found.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Void an ingested usage event: every spend figure nets it out; the event itself stays as recorded."""

    async def run(ledger: Ledger) -> VoidOut:
        void = await Adjustments(ledger).void(event_id, reason=reason, by=Actor("cli"), account_id=account)
        return present_void(void)

    show_one(with_ledger(run), as_json=as_json)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not a date YYYY-MM-DD: {value!r}") from None


@events_app.command("recalculate")
def recalculate(
    start: Annotated[date, typer.Option("--from", parser=_day, metavar="YYYY-MM-DD", help="First local date.")],
    end: Annotated[date, typer.Option("--to", parser=_day, metavar="YYYY-MM-DD", help="Last local date, included.")],
    account: Annotated[str | None, typer.Option("--account", help="Account id (default: every account).")] = None,
    keys: Annotated[list[str] | None, typer.Option("--key", help="Only this key's events (repeat).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the differences and write nothing.")] = False,
    reason: Annotated[str, typer.Option("--reason", parser=_reason, help="Why (kept with every adjustment).")] = (
        DEFAULT_REASON
    ),
    as_json: Json = False,
) -> None:
    """Reprice the usage of the dates with today's price book: each difference appended as an adjustment."""
    settings = load_or_exit()
    prices = PriceBook.load(settings.price_overrides)

    async def run(ledger: Ledger) -> dict[str, Any]:
        ranges = await reprice_ranges(Directory(ledger), account, start, end, keys)
        reprices = Reprices(ledger, prices, clock=utcnow, retention_days=settings.raw_events_retention_days)
        done = await reprices.recalculate(ranges, reason=reason, by=Actor("cli"), dry_run=dry_run)
        return recalculation_data(done, account, start, end, keys, reason)

    data = with_ledger(run)
    if as_json:
        typer.echo(dumps_exact(data).decode())
        return
    verb = "would reprice" if dry_run else "repriced"
    left = data["eventsLeftAsRecorded"]
    console.print(
        f"{verb} {data['eventsRepriced']:,} of {data['eventsExamined']:,} events: {data['previousCost']} -> "
        f"{data['newCost']} USD ({data['difference']:+}); left as recorded: {left['unpriced']:,} unpriced, "
        f"{left['costGiven']:,} priced by their sender, {left['noLongerPriced']:,} no longer priced",
        highlight=False,
    )
