"""Key-holder self-service (seed 002): `GET /v1/usage` and `GET /v1/usage/models`, with the caller's own key.

A virtual key sees its own usage; a member token its own keys'; an owner, admin or billing token (or the master
key, with `account_id`) the account's. The period is the current calendar month in the account's zone; credits
are the account's credit unit (`credits_per_usd`), exact decimal strings; `credits_remaining` is the
account's prepaid balance, null for an account without one.
"""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request

from farebox.analytics.calendar import Grain, month_window
from farebox.analytics.engine import Dimension, Engine
from farebox.analytics.views import Scope, Totals, Views
from farebox.core.credentials import Principal
from farebox.errors import NotFound, ValidationFailed
from farebox.ledger.reader import LedgerReader
from farebox.services import authenticate, services

__all__ = ["router"]

router = APIRouter(prefix="/v1/usage", tags=["usage"])

Caller = Annotated[Principal, Depends(authenticate)]
AccountId = Annotated[str | None, Query(min_length=1, description="The account (the master key names it).")]


async def _scope(request: Request, viewer: Principal, account_id: str | None) -> Scope:
    directory = services(request).directory
    account_id = account_id or viewer.account_id
    if account_id is None:
        raise ValidationFailed(
            "account_id: the master key must name the account",
            details=[{"loc": "account_id", "message": "the master key must name the account"}],
        )
    if not viewer.is_master and account_id != viewer.account_id:
        raise NotFound(f"no account with id {account_id!r}", code="account_not_found")
    zone = ZoneInfo((await directory.get_account(account_id)).timezone)
    today = directory.now().astimezone(zone).date()
    return Scope(viewer, month_window(today.year, today.month, zone), account_id, local_days=True)


def _views(request: Request) -> Views:
    return Views(Engine(LedgerReader(services(request).ledger)))


@router.get("", summary="Your usage this billing period, by day")
async def usage(request: Request, viewer: Caller, account_id: AccountId = None) -> dict[str, Any]:
    """Requests, tokens and credits used this month, the credits remaining, and each day's figures, newest first."""
    scope = await _scope(request, viewer, account_id)
    found = services(request)
    rate = found.credit_rate
    views = _views(request)
    total = await views.totals(scope)
    series = await views.series(scope, Dimension.ACCOUNT, Grain.DAY)
    days = [Totals() for _ in series.buckets]
    for line in series.lines.values():
        for day, slot in zip(days, line, strict=True):
            day.cost_nano += slot.cost_nano
            day.requests += slot.requests
            day.input_tokens += slot.input_tokens
            day.output_tokens += slot.output_tokens
    today = found.directory.now().astimezone(scope.window.tz).date()
    balance = (await found.credits.statement(scope.account_id or "")).balance_nano
    window = scope.window
    return {
        "period_start": window.since.isoformat().replace("+00:00", "Z"),
        "period_end": window.until.isoformat().replace("+00:00", "Z"),
        "total_requests": total.requests,
        "total_tokens": total.tokens,
        "total_credits_used": rate.format(total.cost_nano),
        "credits_remaining": None if balance is None else rate.format(balance),
        "daily_breakdown": [
            {
                "date": bucket.isoformat(),
                "requests": day.requests,
                "tokens": day.tokens,
                "credits": rate.format(day.cost_nano),
            }
            for bucket, day in reversed(list(zip(series.buckets, days, strict=True)))
            if bucket <= today
        ],
    }


@router.get("/models", summary="Your usage this billing period, by model")
async def usage_by_model(request: Request, viewer: Caller, account_id: AccountId = None) -> dict[str, Any]:
    """Per model, by descending credits: requests, prompt, completion and total tokens, credits used."""
    scope = await _scope(request, viewer, account_id)
    rate = services(request).credit_rate
    rows = await _views(request).breakdown(scope, Dimension.MODEL)
    return {
        "data": [
            {
                "model": model,
                "requests": totals.requests,
                "prompt_tokens": totals.input_tokens,
                "completion_tokens": totals.output_tokens,
                "total_tokens": totals.tokens,
                "credits_used": rate.format(totals.cost_nano),
            }
            for model, totals in rows
        ]
    }
