"""`farebox events void`: void a wrongly ingested usage event, as `POST /api/admin/events/{id}/void` does.

The void is appended to the ledger with its reason and `voided_by` `cli`; the event row stays as recorded.
A running gateway's caps take it into account within a second (`metering.VoidWatch`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from farebox.api.void_schemas import VoidOut, present_void
from farebox.cli.output import Json, command_group, show_one
from farebox.cli.runtime import with_ledger
from farebox.errors import ValidationFailed
from farebox.ledger.adjustments import Actor, Adjustments, clean_reason
from farebox.ledger.base import Ledger

__all__ = ["events_app"]

events_app = command_group(help="Usage events in the ledger: void a wrongly ingested one.")


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
