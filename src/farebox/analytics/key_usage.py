"""Key-holder self-service (seed 002): `GET /v1/usage`, `GET /v1/usage/models` and `GET /v1/usage/export`, with
the caller's own key.

A virtual key sees its own usage; a member token its own keys'; an owner, admin or billing token (or the master
key, with `account_id`) the account's. The period is the current calendar month in the account's zone (the
export takes a range, by default that month); credits are the account's credit unit (`credits_per_usd`), exact
decimal strings; `credits_remaining` is the account's prepaid balance, null for an account without one.
"""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from farebox.analytics.calendar import Grain, month_window
from farebox.analytics.engine import Dimension, Engine, Measure
from farebox.analytics.engine import Query as UsageQuery
from farebox.analytics.export import EXPORT_FIELDS, Exporter, ExportFormat
from farebox.analytics.query_times import TimedRoute
from farebox.analytics.routes import usage_scope
from farebox.analytics.views import Scope, Totals, Views
from farebox.core.credentials import Principal
from farebox.errors import NotFound, ValidationFailed
from farebox.ledger.reader import LedgerReader
from farebox.services import authenticate, services

__all__ = ["router"]

router = APIRouter(prefix="/v1/usage", tags=["usage"], route_class=TimedRoute)

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


_TEXT: dict[str, Any] = {"type": "string"}
_OPTIONAL_TEXT: dict[str, Any] = {"type": ["string", "null"]}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
_OPTIONAL_COUNT: dict[str, Any] = {"type": ["integer", "null"], "minimum": 0}
_DECIMAL: dict[str, Any] = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
_FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    "timestamp": {"type": "string", "format": "date-time"},
    "key_id": _OPTIONAL_TEXT,
    "member_id": _OPTIONAL_TEXT,
    "agent_id": _OPTIONAL_TEXT,
    "app": _OPTIONAL_TEXT,
    "http_status": _OPTIONAL_COUNT,
    "latency_ms": _OPTIONAL_COUNT,
    "ttft_ms": _OPTIONAL_COUNT,
    "seconds": _DECIMAL,
    "quantity": _DECIMAL,
    "cost_usd": _DECIMAL,
    "credits_used": _DECIMAL,
    "streamed": {"type": "boolean"},
    "estimated": {"type": "boolean"},
} | {name: _COUNT for name in EXPORT_FIELDS if name.endswith("_tokens") or name == "characters"}
_EXPORTED = {
    "type": "object",
    "description": "One usage event; the CSV has the same fields as columns, under a header row.",
    "properties": {name: _FIELD_SCHEMAS.get(name, _TEXT) for name in EXPORT_FIELDS},
    "required": list(EXPORT_FIELDS),
}


@router.get(
    "/export",
    summary="Your usage events of a range, as CSV or JSON, streamed",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The events in time order, streamed; `Content-Disposition` names the file.",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": _EXPORTED}},
            },
        }
    },
)
async def export(
    request: Request,
    scope: Annotated[Scope, Depends(usage_scope)],
    export_format: Annotated[ExportFormat, Query(alias="format", description="`csv` (default) or `json`.")] = (
        ExportFormat.CSV
    ),
) -> StreamingResponse:
    """Every usage event of the range the caller may see, voided ones left out, in time order: CSV with a header
    row, or one JSON array; costs in USD and credits as exact decimal strings."""
    account_id = scope.account_id
    if account_id is None:
        raise ValidationFailed(
            "account_id: the master key must name the account",
            details=[{"loc": "account_id", "message": "the master key must name the account"}],
        )
    query = UsageQuery(scope.window, (Measure.REQUESTS,), filters=scope.filters, account_id=account_id)
    exporter = Exporter(export_format, rate=services(request).credit_rate)
    chunks = exporter.export(Engine(LedgerReader(services(request).ledger)), query, viewer=scope.viewer)
    window = scope.window
    filename = f"usage-{account_id}-{window.first.isoformat()}-{window.last.isoformat()}.{export_format.value}"
    return StreamingResponse(
        (data async for _count, data in chunks),
        media_type=export_format.media_type,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
