"""`GET /api/admin/analytics/usage/trends` (seed 004): a period slot by slot, and its growth on the one before.

Scope, periods and the envelope: `farebox.analytics.admin_common`.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from farebox.analytics.admin_common import (
    CENTS,
    NANO,
    Period,
    Scoped,
    Span,
    envelope,
    instant,
    invalid,
    ratio,
    scoped_responses,
    usd,
    views,
)
from farebox.analytics.calendar import Grain, Window
from farebox.analytics.query_times import TimedRoute
from farebox.analytics.views import Scope, Timeline, Totals, Views
from farebox.services import services

__all__ = ["router"]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"], route_class=TimedRoute)

MAX_MINUTE_HOURS = 2
"""The longest period counted minute by minute, from the raw events (itself and as long again before it for the
growth: at 10 million events over 90 days, two hours read this way answered in under 100 ms on PostgreSQL and
about 150 ms on SQLite, six in about 380 ms)."""


class Granularity(StrEnum):
    """How finely the trends' timeline is cut: minutes (of a period of up to `MAX_MINUTE_HOURS` hours), or a grain."""

    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


_PER_SLOT = {"minute": "Minute", "hour": "Hour", "day": "Day", "week": "Week", "month": "Month"}
_MINUTE = timedelta(minutes=1)


def _growth(now: int, before: int) -> Decimal | None:
    """How much `now` grew on `before`, as a fraction (0.15: 15% more); None when there was nothing before."""
    return ratio(now - before, before)


async def _minutes(views: Views, scope: Scope, span: Span, now: datetime) -> tuple[Timeline, Totals]:
    """The period's timeline minute by minute, the current minute last, and the totals of the minutes just before."""
    if span.unit != "h" or span.hours > MAX_MINUTE_HOURS:
        raise invalid("granularity", f"minutes are counted over a period of up to {MAX_MINUTE_HOURS}h")
    end = now.astimezone(UTC).replace(second=0, microsecond=0) + _MINUTE
    start = end - timedelta(hours=span.hours)
    before = start - timedelta(hours=span.hours)
    tz = scope.window.tz
    window = Window(before.astimezone(tz).date(), end.astimezone(tz).date(), tz)
    timeline, earlier = await asyncio.gather(
        views.minutes(replace(scope, window=window, within=(start, end))),
        views.minutes(replace(scope, window=window, within=(before, start))),
    )
    return timeline, Totals.sum(earlier.totals)


async def _periods(views: Views, scope: Scope, span: Span, grain: Grain, now: datetime) -> tuple[Timeline, Totals]:
    """The period's timeline at `grain`, and the totals of the period of the same length just before it."""
    tz = scope.window.tz
    if span.unit == "h":
        if grain is not Grain.HOUR:
            raise invalid("granularity", "a period of hours is cut into minutes or hours")
        both = await views.timeline(replace(scope, window=span.window(now, tz, periods=2)), Grain.HOUR)
        cut = span.hours_in(both.buckets, now, tz)
        timeline = Timeline(both.buckets[cut], both.totals[cut], both.active_keys[cut])
        return timeline, Totals.sum(both.totals[max(0, cut.start - span.hours) : cut.start])
    window = span.window(now, tz)
    timeline = await views.timeline(replace(scope, window=window), grain)
    before = Window(window.first - timedelta(days=span.days), window.first - timedelta(days=1), tz)
    return timeline, await views.totals(replace(scope, window=before))


@router.get(
    "/usage/trends",
    summary="Usage over a period, slot by slot, and its growth on the period before",
    responses=scoped_responses(
        "A bad `period` (not hours, days or weeks, or over 183 days) or `granularity` (not minute, hour, day, "
        "week or month; a period of hours with another than minute or hour; minutes over more than 2h); a "
        "parameter given twice. `error.details` names it."
    ),
)
async def trends(
    request: Request,
    scope: Scoped,
    period: Period = "7d",
    granularity: Annotated[
        Granularity, Query(description="`minute` (periods of up to `2h`), `hour`, `day`, `week` or `month`.")
    ] = Granularity.HOUR,
) -> Response:
    """Totals, the average and peak requests per slot, cost per request, a timeline (requests, tokens, cost,
    active virtual keys, error rate) and growth against the period of the same length just before."""
    span = Span.parse(period)
    now = services(request).directory.now()
    if granularity is Granularity.MINUTE:
        timeline, before = await _minutes(views(request), scope, span, now)
    else:
        timeline, before = await _periods(views(request), scope, span, Grain(granularity.value), now)
    total = Totals.sum(timeline.totals)
    slots = len(timeline.buckets)
    per = _PER_SLOT[granularity.value]
    cost_per_token_now = ratio(total.cost_nano, total.tokens, NANO)
    cost_per_token_before = ratio(before.cost_nano, before.tokens, NANO)
    efficiency = (
        None
        if cost_per_token_now is None or not cost_per_token_before
        else ratio(cost_per_token_before - cost_per_token_now, cost_per_token_before)
    )
    return envelope(
        {
            "period": str(span),
            "granularity": granularity.value,
            "timezone": scope.window.tz.key,
            "totalDataPoints": slots,
            "metrics": {
                "totalRequests": total.requests,
                "totalTokens": total.tokens,
                "totalCost": usd(total.cost_nano),
                f"averageRequestsPer{per}": ratio(total.requests, slots, CENTS),
                f"peakRequestsPer{per}": max((slot.requests for slot in timeline.totals), default=0),
                "averageCostPerRequest": ratio(usd(total.cost_nano), total.requests, NANO),
            },
            "timeline": [
                {
                    "timestamp": instant(bucket, scope.window),
                    "requests": slot.requests,
                    "tokens": slot.tokens,
                    "cost": usd(slot.cost_nano),
                    "activeVirtualKeys": keys,
                    "errorRate": ratio(slot.errors, slot.requests) if slot.requests else Decimal(0),
                }
                for bucket, slot, keys in zip(timeline.buckets, timeline.totals, timeline.active_keys, strict=True)
            ],
            "trends": {
                "requestGrowth": _growth(total.requests, before.requests),
                "costGrowth": _growth(total.cost_nano, before.cost_nano),
                "efficiencyImprovement": efficiency,
            },
        }
    )
