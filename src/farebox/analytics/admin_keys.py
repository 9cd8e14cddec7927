"""`GET /api/admin/virtual-keys/{key_id}/analytics` and `POST /api/admin/virtual-keys/compare` (seed 004): one
virtual key's usage over a period, and several keys side by side.

For the master key (any account's keys) and an account's owners, admins and billing members (its keys); a
member's token or a virtual key is refused with 403 `role_required` before any key is looked up, and a key
the caller may not see is 404 `virtual_key_not_found`, as an unknown id is. A period is a key's account's:
local dates of its zone, or the clock's hours ending with the current one (`admin_common.Span`). Every figure
comes from the analytics engine; the budget status is the one the budget API shows (`Budgets.status`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from farebox.analytics.admin_common import (
    AdminCaller,
    Period,
    Span,
    envelope,
    instant,
    ratio,
    usd,
    views,
)
from farebox.analytics.calendar import Grain, Window
from farebox.analytics.engine import Dimension, Filters
from farebox.analytics.key_metrics import (
    CompareIn,
    Standing,
    average_latency,
    cost_per_request,
    cost_per_token,
    error_rate,
    standings,
)
from farebox.analytics.query_times import TimedRoute
from farebox.analytics.views import Scope, Totals, Views
from farebox.core.credentials import Principal
from farebox.core.owners import VirtualKey
from farebox.core.spend import BudgetStatus
from farebox.errors import NotFound
from farebox.services import services

__all__ = ["router"]

router = APIRouter(prefix="/api/admin/virtual-keys", tags=["admin analytics"], route_class=TimedRoute)

_QUARTERS = ("00-06", "06-12", "12-18", "18-24")
_PERIOD_422 = "a bad `period` (not hours, days or weeks, or over 183 days)"


def _responses(not_found: str, invalid: str) -> dict[int | str, dict[str, Any]]:
    """The errors a route documents beyond the credential's: its 404 and 422 (`error.details` names the field)."""
    return {
        403: {"description": "A member's token or a virtual key (`role_required`)."},
        404: {"description": f"{not_found} (`virtual_key_not_found`)."},
        422: {"description": f"{invalid}. `error.details` names it."},
    }


class KeyBreakdown(StrEnum):
    """How a key's trend is cut: by local day or by hour."""

    DAILY = "daily"
    HOURLY = "hourly"


async def _visible(request: Request, viewer: Principal, key_ids: Sequence[str]) -> list[VirtualKey]:
    """The keys, in the order asked.

    Raises:
        NotFound: ids of no key the caller may see, named (404 `virtual_key_not_found`, as for an unknown id).
    """
    found = await services(request).directory.find_keys(key_ids)
    hidden = [
        key_id
        for key_id in key_ids
        if key_id not in found or not (viewer.is_master or found[key_id].account_id == viewer.account_id)
    ]
    if len(hidden) == 1:
        raise NotFound.of("virtual key", hidden[0])
    if hidden:
        named = ", ".join(repr(key_id) for key_id in hidden)
        raise NotFound(f"no virtual keys with ids {named}", code="virtual_key_not_found")
    return [found[key_id] for key_id in key_ids]


async def _scopes(
    request: Request, viewer: Principal, keys: Sequence[VirtualKey], span: Span, now: datetime
) -> list[Scope]:
    """One scope per account of `keys`: the period in the account's zone, only those keys' usage."""
    directory = services(request).directory
    accounts = await directory.find_accounts({key.account_id for key in keys})
    by_account: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        by_account[key.account_id].append(key.id)
    scopes = []
    for account_id, ids in by_account.items():
        tz = ZoneInfo(accounts[account_id].timezone)
        scopes.append(
            Scope(viewer, span.window(now, tz), account_id, Filters({Dimension.KEY: tuple(ids)}), local_days=True)
        )
    return scopes


async def _per_value(
    usage: Views, scope: Scope, dimension: Dimension, span: Span, now: datetime
) -> list[tuple[str, Totals]]:
    """Totals per value of `dimension` over the period, errors counted, by descending cost (then name): from the
    local days of the scope's window, or for a period of hours from its hours. A value without requests or cost
    in the period (one used only outside its hours, or whose usage was voided) is left out."""
    if span.unit == "h":
        series = await usage.series(scope, dimension, Grain.HOUR, errors=True)
        cut = span.hours_in(series.buckets, now, scope.window.tz)
        summed = [(name, Totals.sum(line[cut])) for name, line in series.lines.items()]
        found = sorted(summed, key=lambda item: (-item[1].cost_nano, item[0]))
    else:
        found = await usage.breakdown(scope, dimension)
    return [(name, totals) for name, totals in found if totals.requests or totals.cost_nano]


async def _hours(usage: Views, scope: Scope, span: Span, now: datetime) -> list[tuple[datetime, Totals]]:
    """The period hour by hour (local starts), errors counted."""
    timeline = await usage.timeline(scope, Grain.HOUR)
    cut = span.hours_in(timeline.buckets, now, scope.window.tz) if span.unit == "h" else slice(None)
    return [
        (start, slot)
        for start, slot in zip(timeline.buckets[cut], timeline.totals[cut], strict=True)
        if isinstance(start, datetime)
    ]


def _summary(total: Totals) -> dict[str, Any]:
    return {
        "totalRequests": total.requests,
        "successfulRequests": total.requests - total.errors,
        "failedRequests": total.errors,
        "totalTokens": total.tokens,
        "inputTokens": total.input_tokens,
        "outputTokens": total.output_tokens,
        "totalCost": usd(total.cost_nano),
        "averageLatency": average_latency(total),
        "errorRate": error_rate(total),
        "costPerRequest": cost_per_request(total),
        "costPerToken": cost_per_token(total),
    }


def _budget(status: BudgetStatus, window: Window) -> dict[str, Any]:
    """The seed's budget status, from the cap's current period (`projectedMonthlySpend`: that period's)."""
    cap, remaining, projected, end = status.cap, status.remaining_nano, status.projected_nano, status.period_end
    return {
        "maxBudget": None if cap is None else usd(cap.cap_nano),
        "usedBudget": usd(status.spent_nano),
        "reservedBudget": usd(status.reserved_nano),
        "remainingBudget": None if remaining is None else usd(remaining),
        "utilizationPercentage": status.utilization,
        "projectedMonthlySpend": None if projected is None else usd(projected),
        "onTrackForBudget": status.on_track,
        "budgetPeriod": status.period.value,
        "periodStart": instant(status.period_start, window),
        "periodEnd": None if end is None else instant(end, window),
    }


def _shares(parts: list[tuple[str, Totals]], total: Totals, *, tokens: bool) -> dict[str, Any]:
    """Each part's requests, (tokens,) cost and share of the key's cost."""
    return {
        name: {"requests": part.requests}
        | ({"tokens": part.tokens} if tokens else {})
        | {"cost": usd(part.cost_nano), "percentage": ratio(part.cost_nano, total.cost_nano)}
        for name, part in parts
    }


def _time_of_day(hours: list[tuple[datetime, Totals]]) -> dict[str, Any]:
    quarters = [Totals() for _ in _QUARTERS]
    for start, slot in hours:
        quarters[start.hour // 6].include(slot)
    return {
        name: {"requests": quarter.requests, "cost": usd(quarter.cost_nano)}
        for name, quarter in zip(_QUARTERS, quarters, strict=True)
    }


def _daily(hours: list[tuple[datetime, Totals]]) -> list[dict[str, Any]]:
    """Per local date: its totals, errors, and the local hour with most requests (the earliest of equals)."""
    days: dict[date, tuple[Totals, dict[int, int]]] = {}
    for start, slot in hours:
        total, per_hour = days.setdefault(start.date(), (Totals(), defaultdict(int)))
        total.include(slot)
        per_hour[start.hour] += slot.requests  # a repeated hour (clocks going back) counts as one
    trend = []
    for day, (total, per_hour) in days.items():
        busy = [hour for hour, requests in per_hour.items() if requests]
        trend.append(
            {
                "date": day.isoformat(),
                "requests": total.requests,
                "tokens": total.tokens,
                "cost": usd(total.cost_nano),
                "peakHour": min(busy, key=lambda hour: (-per_hour[hour], hour), default=None),
                "errors": total.errors,
            }
        )
    return trend


def _hourly(hours: list[tuple[datetime, Totals]], window: Window) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": instant(start, window),
            "requests": slot.requests,
            "tokens": slot.tokens,
            "cost": usd(slot.cost_nano),
            "errors": slot.errors,
        }
        for start, slot in hours
    ]


@router.get(
    "/{key_id}/analytics",
    summary="One virtual key's usage over a period: summary, budget, breakdowns and trend",
    responses=_responses(
        "No virtual key with this id the caller may see",
        f"{_PERIOD_422.capitalize()}, or `breakdown` (not daily or hourly)",
    ),
)
async def key_analytics(
    key_id: str,
    request: Request,
    viewer: AdminCaller,
    period: Period = "30d",
    breakdown: Annotated[
        KeyBreakdown, Query(description="`daily` (default: `dailyTrend`) or `hourly` (`hourlyTrend`).")
    ] = KeyBreakdown.DAILY,
) -> Response:
    """The key's summary (requests, successes, failures, tokens, cost, average latency, error rate, cost per
    request and per token), its budget status in the cap's current period, its usage by model, by operation
    and by time of day in the account's zone, and its trend day by day (with each day's peak hour) or hour by
    hour."""
    span = Span.parse(period)
    (key,) = await _visible(request, viewer, [key_id])
    found = services(request)
    now = found.directory.now()
    (scope,) = await _scopes(request, viewer, [key], span, now)
    usage = views(request)
    hours = await _hours(usage, scope, span, now)
    total = Totals.sum(slot for _, slot in hours)
    by_model = await _per_value(usage, scope, Dimension.MODEL, span, now)
    by_operation = await _per_value(usage, scope, Dimension.OPERATION, span, now)
    status = await found.budgets.status(key, tz=scope.window.tz, now=now)
    trend = (
        {"dailyTrend": _daily(hours)}
        if breakdown is KeyBreakdown.DAILY
        else {"hourlyTrend": _hourly(hours, scope.window)}
    )
    return envelope(
        {
            "keyId": key.id,
            "keyName": key.name,
            "period": str(span),
            "breakdown": breakdown.value,
            "timezone": scope.window.tz.key,
            "summary": _summary(total),
            "budgetStatus": _budget(status, scope.window),
            "usageBreakdown": {
                "byModel": _shares(by_model, total, tokens=True),
                "byOperation": _shares(by_operation, total, tokens=False),
                "byTimeOfDay": _time_of_day(hours),
            },
        }
        | trend
    )


def _standing(standing: Standing) -> dict[str, Any]:
    return {"value": standing.value, "share": standing.share, "rank": standing.rank}


@router.post(
    "/compare",
    summary="Several virtual keys side by side over a period, ranked on each metric",
    responses=_responses(
        "Ids of no virtual key the caller may see, named",
        f"Not 2 to 20 distinct `keyIds`, an unknown or repeated metric, an unknown field, or {_PERIOD_422}",
    ),
)
async def compare(body: CompareIn, request: Request, viewer: AdminCaller) -> Response:
    """Each key's value of each metric asked over the period, its share of the keys' total and its rank; per
    metric, the total (for a rate, the keys' usage combined) and the keys ranked first."""
    span = Span.parse(body.period)
    keys = await _visible(request, viewer, body.key_ids)
    now = services(request).directory.now()
    usage = views(request)
    per_key: dict[str, Totals] = {}
    zones: dict[str, str] = {}
    for scope in await _scopes(request, viewer, keys, span, now):
        per_key |= dict(await _per_value(usage, scope, Dimension.KEY, span, now))
        zones |= dict.fromkeys(scope.filters.values[Dimension.KEY], scope.window.tz.key)
    usage_of = [per_key.get(key.id, Totals()) for key in keys]
    ranked = {metric: standings(metric, usage_of) for metric in body.metrics}
    comparison = {}
    for metric, (total, places) in ranked.items():
        ranking = sorted(
            (place.rank, n, key.id) for n, (key, place) in enumerate(zip(keys, places, strict=True)) if place.rank
        )
        comparison[metric.value] = {
            "total": total,
            "first": [key_id for rank, _, key_id in ranking if rank == 1],
            "ranking": [key_id for _, _, key_id in ranking],
        }
    return envelope(
        {
            "period": str(span),
            "metrics": [metric.value for metric in body.metrics],
            "keys": [
                {
                    "keyId": key.id,
                    "keyName": key.name,
                    "timezone": zones[key.id],
                    "metrics": {metric.value: _standing(places[n]) for metric, (_, places) in ranked.items()},
                }
                for n, key in enumerate(keys)
            ],
            "comparison": comparison,
        }
    )
