"""`GET /api/admin/analytics/performance` (seed 004): latency and time to first token, p50, p95 and p99, overall and
per provider, model or virtual key.

Percentiles come from the ledger's latency sketches (DDSketch, 1% relative accuracy: `farebox.core.latency`),
summed over the period, never from a scan of raw events; requests and average latency from the rollups, through
the same engine as every other view. Scope, periods and the envelope: `farebox.analytics.admin_common`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from farebox.analytics.admin_common import PERIOD_PATTERN, Scoped, Span, envelope, instant, ratio, views
from farebox.analytics.calendar import Window
from farebox.analytics.engine import Dimension
from farebox.analytics.views import Performance, Scope
from farebox.core.latency import RELATIVE_ACCURACY, LatencySketch
from farebox.services import services

__all__ = ["Breakdown", "router"]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"])

_QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
_TENTH = Decimal("0.1")
"""Milliseconds are shown to a tenth: finer than the sketches' 1% above 10 ms."""


class Breakdown(StrEnum):
    """What the performance figures are broken down by."""

    PROVIDER = "provider"
    MODEL = "model"
    KEY = "key"

    @property
    def dimension(self) -> Dimension:
        return {"provider": Dimension.PROVIDER, "model": Dimension.MODEL, "key": Dimension.KEY}[self.value]

    @property
    def field(self) -> str:
        """The answer's field that holds the breakdown."""
        return {"provider": "providers", "model": "models", "key": "virtualKeys"}[self.value]


def _ms(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(_TENTH, rounding=ROUND_HALF_EVEN)


def _percentiles(sketch: LatencySketch) -> dict[str, Any]:
    values = sketch.quantiles(tuple(_QUANTILES.values()))
    return {**{name: _ms(value) for name, value in zip(_QUANTILES, values, strict=True)}, "samples": sketch.count}


def _metrics(performance: Performance) -> dict[str, Any]:
    """One entry's figures (overall, or one provider's, model's or key's)."""
    return {
        "requests": performance.requests,
        "averageLatencyMs": ratio(performance.latency_ms_sum, performance.latency.count, _TENTH),
        "latencyMs": _percentiles(performance.latency),
        "timeToFirstTokenMs": _percentiles(performance.ttft),
    }


def _hours(scope: Scope, span: Span, now: datetime) -> tuple[Scope, tuple[datetime, datetime]]:
    """A period of hours: the hours of the clock in the scope's zone ending with the current one, as instants, and
    the scope's window widened to the local days they touch."""
    tz = scope.window.tz
    current = now.astimezone(tz).replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    start, end = current - timedelta(hours=span.hours - 1), current + timedelta(hours=1)
    return replace(scope, window=Window(start.astimezone(tz).date(), scope.window.last, tz)), (start, end)


@router.get(
    "/performance",
    summary="Latency and time to first token percentiles over a period, overall and per provider, model or key",
    responses={
        403: {"description": "A member's token or a virtual key (`role_required`)."},
        404: {"description": "`account_id` names no account the caller is in (`account_not_found`)."},
        422: {
            "description": "A bad `period` (not hours, days or weeks, or over 183 days) or `breakdown` (not provider, "
            "model or key); a parameter given twice. `error.details` names it."
        },
    },
)
async def performance(
    request: Request,
    scope: Scoped,
    period: Annotated[
        str, Query(pattern=PERIOD_PATTERN, description="The last `24h`, `7d`, `4w`...: hours, days or weeks.")
    ] = "7d",
    breakdown: Annotated[Breakdown, Query(description="`provider`, `model` or `key`.")] = Breakdown.PROVIDER,
) -> Response:
    """Requests, average latency, and p50, p95 and p99 of request latency and of streamed requests' time to first
    token (milliseconds), for the period and per provider, model or virtual key. Percentiles are read from
    mergeable sketches within 1% of the true value."""
    span = Span.parse(period)
    between = None
    if span.unit == "h":
        scope, between = _hours(scope, span, services(request).directory.now())
    else:
        last = scope.window.last
        scope = replace(scope, window=Window(last - timedelta(days=span.days - 1), last, scope.window.tz))
    overall, groups = await views(request).performance(scope, breakdown.dimension, between=between)
    since, until = between or (scope.window.since, scope.window.until)
    entries: dict[str, Any] = {value: _metrics(group) for value, group in groups}
    if breakdown is Breakdown.KEY:
        keys = await services(request).directory.find_keys([value for value in entries if value])
        for value, entry in entries.items():
            entries[value] = {"keyName": keys[value].name if value in keys else None, **entry}
    return envelope(
        {
            "period": str(span),
            "breakdown": breakdown.value,
            "timezone": scope.window.tz.key,
            "from": instant(since, scope.window),
            "to": instant(until, scope.window),
            "relativeAccuracy": Decimal(str(RELATIVE_ACCURACY)),
            "overall": _metrics(overall),
            breakdown.field: entries,
        }
    )
