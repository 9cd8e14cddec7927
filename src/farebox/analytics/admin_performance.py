"""`GET /api/admin/analytics/performance` (seed 004): latency and time to first token, p50, p95 and p99, overall and
per provider, model or virtual key.

Percentiles come from the ledger's latency sketches (DDSketch, 1% relative accuracy: `farebox.core.latency`),
summed over the period, never from a scan of raw events; requests and average latency from the rollups, through
the same engine as every other view. Scope, periods and the envelope: `farebox.analytics.admin_common`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from farebox.analytics import engine as analytics
from farebox.analytics.admin_common import (
    Period,
    Scoped,
    Span,
    engine,
    envelope,
    instant,
    period_sums,
    ratio,
    scoped_responses,
)
from farebox.analytics.engine import Dimension, Measure
from farebox.analytics.query_times import TimedRoute
from farebox.core.latency import RELATIVE_ACCURACY, LatencySketch
from farebox.services import services

__all__ = ["Breakdown", "router"]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"], route_class=TimedRoute)

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


@dataclass(slots=True)
class _Performance:
    """How fast some usage was served: its requests (every one counted), the latencies (ms) they measured, summed
    (the rollups) and sketched, and its streamed requests' times to first token, sketched."""

    requests: int = 0
    latency_ms_sum: int = 0
    latency: LatencySketch = field(default_factory=LatencySketch)
    ttft: LatencySketch = field(default_factory=LatencySketch)
    errors: dict[str, int] = field(default_factory=dict)
    """Failed requests per error class (`farebox.core.error_classes`)."""

    def add(self, error_class: str, requests: int, latency_ms_sum: int) -> None:
        """Count some requests of one error class ('' for those that did not fail), from the rollups."""
        self.requests += requests
        self.latency_ms_sum += latency_ms_sum
        if error_class and requests:
            self.errors[error_class] = self.errors.get(error_class, 0) + requests

    def include(self, other: _Performance) -> None:
        self.latency.merge(other.latency)
        self.ttft.merge(other.ttft)
        self.add("", other.requests, other.latency_ms_sum)
        for error_class, count in other.errors.items():
            self.errors[error_class] = self.errors.get(error_class, 0) + count


def _ms(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(_TENTH, rounding=ROUND_HALF_EVEN)


def _percentiles(sketch: LatencySketch) -> dict[str, Any]:
    values = sketch.quantiles(tuple(_QUANTILES.values()))
    return {**{name: _ms(value) for name, value in zip(_QUANTILES, values, strict=True)}, "samples": sketch.count}


def _metrics(performance: _Performance) -> dict[str, Any]:
    """One entry's figures (overall, or one provider's, model's or key's)."""
    return {
        "requests": performance.requests,
        "averageLatencyMs": ratio(performance.latency_ms_sum, performance.latency.count, _TENTH),
        "latencyMs": _percentiles(performance.latency),
        "timeToFirstTokenMs": _percentiles(performance.ttft),
        "errorRate": ratio(sum(performance.errors.values()), performance.requests),
        "errorsByType": {
            error_class: {"requests": count, "rate": ratio(count, performance.requests)}
            for error_class, count in sorted(performance.errors.items(), key=lambda item: (-item[1], item[0]))
        },
    }


@router.get(
    "/performance",
    summary="Latency and time to first token percentiles over a period, overall and per provider, model or key",
    responses=scoped_responses(
        "A bad `period` (not hours, days or weeks, or over 183 days) or `breakdown` (not provider, "
        "model or key); a parameter given twice. `error.details` names it."
    ),
)
async def performance(
    request: Request,
    scope: Scoped,
    period: Period = "7d",
    breakdown: Annotated[Breakdown, Query(description="`provider`, `model` or `key`.")] = Breakdown.PROVIDER,
) -> Response:
    """Requests, average latency, and p50, p95 and p99 of request latency and of streamed requests' time to first
    token (milliseconds), and the error rate by error class, for the period and per provider, model or virtual
    key. Percentiles are read from mergeable sketches within 1% of the true value."""
    span = Span.parse(period)
    now = services(request).directory.now()
    tz = scope.window.tz
    scope = replace(scope, window=span.window(now, tz))
    between = span.hours_between(now, tz) if span.unit == "h" else None
    dimension = breakdown.dimension
    query = analytics.Query(
        scope.window,
        (),
        group_by=(dimension,),
        filters=scope.filters,
        account_id=scope.account_id,
        local_days=scope.local_days,
    )
    # Two reads on the reader pool at once: the rollups' sums, and the sketches (whose summing is most of the time).
    sums, latencies = await asyncio.gather(
        period_sums(
            request, scope, span, (dimension, Dimension.ERROR_CLASS), (Measure.REQUESTS, Measure.LATENCY_MS_SUM)
        ),
        engine(request).latencies(query, viewer=scope.viewer, between=between),
    )
    found: dict[str, _Performance] = {}
    for (value, error_class), (requests, latency_ms_sum) in sums.items():
        found.setdefault(value, _Performance()).add(error_class, requests, latency_ms_sum)
    for sketches in latencies:
        group = found.setdefault(sketches.value, _Performance())
        group.latency, group.ttft = sketches.latency, sketches.ttft
    overall = _Performance()
    for group in found.values():
        overall.include(group)
    groups = sorted(found.items(), key=lambda item: (-item[1].requests, item[0]))
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
