"""`GET /api/usage` (seed 000): a month of usage on three independent axes, compute, LLM and voice, by day, agent,
plain VM and model, for the dashboard's charts.

`month` is `YYYY-MM`, by default the current month in the account's zone, whose days the month's days are. A
member token or a virtual key reads its own account (`accountId` may name it; another account is 404), through
the engine's access table: a `member` its own keys' usage, a virtual key its own. The master key names the
account, or asks for the operator view across every account with `admin=1` (days in UTC), which no other
credential may. `agentId` keeps one agent's (or plain VM's) usage on every axis; `model` filters the LLM axis
and `voiceModel` the voice axis. The shape: `farebox.analytics.usage_schemas`; how rows become axes:
`farebox.analytics.usage_axes`.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from farebox.analytics.calendar import MONTH_PATTERN, month_window, parse_month
from farebox.analytics.engine import Engine
from farebox.analytics.query_times import TimedRoute
from farebox.analytics.usage_axes import ModelFilters, present, usage_query
from farebox.analytics.usage_schemas import UsageOut
from farebox.core.credentials import Principal
from farebox.core.json_numbers import dumps_exact
from farebox.errors import PermissionDenied, ValidationFailed
from farebox.services import authenticate, services

__all__ = ["router"]

router = APIRouter(tags=["usage"], route_class=TimedRoute)

Caller = Annotated[Principal, Depends(authenticate)]


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details=[{"loc": field, "message": message}])


def _month(text: str) -> tuple[int, int]:
    """`YYYY-MM` as (year, month). Raises ValidationFailed (422 on `month`)."""
    try:
        return parse_month(text)
    except ValueError as exc:
        raise _invalid("month", str(exc)) from None


Name = Annotated[str | None, Query(min_length=1, max_length=256)]


@router.get(
    "/api/usage",
    response_model=UsageOut,
    summary="A month of usage: compute, LLM and voice, by day, agent, plain VM and model",
    responses={
        403: {"description": "`admin=1` from a credential other than the master key (`master_key_required`)."},
        404: {"description": "`accountId` names no account the caller is in (`account_not_found`)."},
        422: {
            "description": "A bad `month` (not `YYYY-MM`, or no such month); the master key without `accountId` "
            "or `admin=1`; a parameter given twice. `error.details` names it."
        },
    },
)
async def usage(
    request: Request,
    viewer: Caller,
    month: Annotated[
        str | None,
        Query(pattern=MONTH_PATTERN, description="`YYYY-MM` (default: this month in the account's zone)."),
    ] = None,
    account_id: Annotated[
        str | None,
        Query(alias="accountId", min_length=1, description="The account (the master key names it; others: their own)."),
    ] = None,
    agent_id: Annotated[
        str | None,
        Query(alias="agentId", min_length=1, max_length=256, description="Only this agent's or plain VM's usage."),
    ] = None,
    model: Annotated[Name, Query(description="LLM axis: only this model (as called, or canonical).")] = None,
    voice_model: Annotated[
        Name, Query(alias="voiceModel", description="Voice axis: only this model (as called, or canonical).")
    ] = None,
    admin: Annotated[bool, Query(description="The operator view, across every account (master key only).")] = False,
) -> Response:
    """Per axis: the month's total, every day of the month (days without usage included), per agent (and per
    plain VM, for compute) and per model. Every `*Cents` is a JSON number with the exact amount."""
    if admin and not viewer.is_master:
        raise PermissionDenied("admin=1 is the operator's view: the master key only", code="master_key_required")
    if viewer.is_master and account_id is None and not admin:
        raise _invalid("accountId", "the master key names the account, or asks for every account with admin=1")
    found = services(request)
    # The zone comes from the caller's own account (or the one the master key names): asking for another account
    # is refused by the engine below, which answers 404 without saying whether it exists.
    zone_account = account_id if viewer.is_master else viewer.account_id
    zone = ZoneInfo("UTC" if zone_account is None else (await found.directory.get_account(zone_account)).timezone)
    today = found.directory.now().astimezone(zone).date()
    year, number = _month(month) if month is not None else (today.year, today.month)
    window = month_window(year, number, zone)
    query = usage_query(window, account_id=account_id, agent_id=agent_id, local_days=zone_account is not None)
    rows = await Engine(found.reader).run(query, viewer=viewer)
    scope = account_id or viewer.account_id
    accounts = {scope} if scope is not None else {row.dimensions[0] for row in rows}
    workloads = await found.workloads.find(accounts)
    has_keys = bool(await found.directory.list_keys(account_id=scope))
    axes = present(
        rows,
        days=window.days(),
        workloads=workloads,
        models=ModelFilters(llm=model, voice=voice_model),
        has_keys=has_keys,
    )
    shown = UsageOut(
        month=f"{year:04d}-{number:02d}",
        timezone=zone.key,
        account_id=scope,
        compute=axes.compute,
        llm=axes.llm,
        voice=axes.voice,
    )
    return Response(dumps_exact(shown.model_dump(by_alias=True)), media_type="application/json")
