"""Budget status under /api/admin: where a key's, a member's and an account's caps stand this period.

Authenticated like the rest of the admin API (`farebox.services.authenticate`): the account's readers, and a member or a
virtual key for its own keys. Bodies and what each status holds: `farebox.api.budget_schemas`.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request

from farebox.api.budget_schemas import BudgetOut, BudgetsOut, account_budgets, budget_of
from farebox.api.openapi import errors
from farebox.core.credentials import Principal
from farebox.errors import NotFound
from farebox.services import authenticate, services

__all__ = ["router"]

router = APIRouter(prefix="/api/admin", tags=["budgets"])

Caller = Annotated[Principal, Depends(authenticate)]


@router.get(
    "/budgets/status",
    summary="Budget status of an account, its members and its keys",
    responses=errors({404: "No account with this `account_id` (`account_not_found`)."}),
)
async def budgets_status(
    request: Request, principal: Caller, account_id: Annotated[str, Query(description="The account.")]
) -> BudgetsOut:
    principal.require_read(account_id)
    found = services(request)
    return await account_budgets(found.budgets, found.directory, account_id)


@router.get("/virtual-keys/{key_id}/budget", summary="Budget status of a virtual key")
async def key_budget(key_id: str, request: Request, principal: Caller) -> BudgetOut:
    found = services(request)
    directory = found.directory
    key = await directory.get_key(key_id)
    missing = NotFound.of("virtual key", key_id)
    principal.require_usage(key.account_id, key_id=key.id, member_id=key.member_id, missing=missing)
    account = await directory.get_account(key.account_id)
    return await budget_of(found.budgets, directory, key, tz=ZoneInfo(account.timezone))
