"""Prepaid credits under /api/admin: top an account up, and read its balance and top-ups.

`POST /api/admin/accounts/{account_id}/credits` is for the account's managers (the master key, its owners and
admins: `Principal.require_manage`); `GET` for its readers (billing too: `Principal.require_read`). To another
account's token the account is unknown: 404, as for an id that names none. Bodies and presentation:
`farebox.api.credit_schemas`; the ledger side: `farebox.ledger.credits`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from farebox.api.credit_schemas import CreditsOut, TopUpCreated, TopUpIn, credits_out, top_up_created
from farebox.api.exact_json import DecimalJSONRoute
from farebox.api.openapi import errors
from farebox.core.credentials import Principal
from farebox.services import actor_of, authenticate, services

__all__ = ["router"]

router = APIRouter(prefix="/api/admin", tags=["credits"], route_class=DecimalJSONRoute)

Caller = Annotated[Principal, Depends(authenticate)]


@router.post(
    "/accounts/{account_id}/credits",
    status_code=201,
    summary="Top up an account's prepaid credits",
    responses=errors(
        {
            422: "A field is missing, unknown or bad (`error.details` names each); or the `amount` is zero, `credits`"
            " is finer than one nano-USD, or the top-up takes what the account was given past 1,000,000,000 USD."
        }
    ),
)
async def top_up(account_id: str, body: TopUpIn, request: Request, principal: Caller) -> TopUpCreated:
    """Append a top-up (who made it and when are kept with it); from then on the account's spend draws on it."""
    principal.require_manage(account_id)
    found = services(request)
    amount = body.amount_nano(found.credit_rate)
    made, balance = await found.credits.top_up(account_id, amount_nano=amount, by=actor_of(principal), note=body.note)
    return top_up_created(made, found.credit_rate, balance_nano=balance)


@router.get("/accounts/{account_id}/credits", summary="An account's prepaid credit balance and top-ups")
async def account_credits(account_id: str, request: Request, principal: Caller) -> CreditsOut:
    """The balance (topped up minus used), what requests in flight hold on it, and every top-up, newest first."""
    principal.require_read(account_id)
    found = services(request)
    statement = await found.credits.statement(account_id)
    reserved = 0 if statement.prepaid is None else await found.budgets.reserved_credits(account_id)
    return credits_out(statement, found.credit_rate, reserved_nano=reserved)
