"""`GET /api/admin/providers/analytics` (seed 004): each provider's requests, cost, share, latency, error rate
and uptime, and its models and operations.

A provider's uptime is the share of its requests the upstream answered without a 5xx, a timeout or a
connection failure (`farebox.core.error_classes.ErrorClass.upstream_failed`); its error rate counts every
failed request, the client's own (a cancelled stream, a bad request) included. Latency is the average of the
requests' latency from the ledger, in seconds. Scope and periods: `farebox.analytics.admin_common`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from farebox.analytics.admin_common import (
    NANO,
    Period,
    Scoped,
    Span,
    envelope,
    invalid,
    period_sums,
    ratio,
    scoped_responses,
    usd,
)
from farebox.analytics.engine import Dimension, Measure
from farebox.analytics.query_times import TimedRoute
from farebox.core.error_classes import ErrorClass

__all__ = ["router"]

router = APIRouter(prefix="/api/admin/providers", tags=["admin analytics"], route_class=TimedRoute)

_GROUPS = (Dimension.PROVIDER, Dimension.MODEL, Dimension.OPERATION, Dimension.ERROR_CLASS)
_MEASURES = (
    Measure.REQUESTS,
    Measure.COST_NANO,
    Measure.INPUT_TOKENS,
    Measure.OUTPUT_TOKENS,
    Measure.LATENCY_MS_SUM,
)
_SECONDS = Decimal("0.001")
_BREAKDOWNS = ("model", "operation")
_FAILED_UPSTREAM = frozenset(kind.value for kind in ErrorClass if kind.upstream_failed)


@dataclass(slots=True)
class _Sums:
    requests: int = 0
    cost_nano: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: int = 0
    errors: int = 0
    upstream_failures: int = 0

    def add(self, measures: list[int], error_class: str) -> None:
        requests, cost, input_tokens, output_tokens, latency = measures
        self.requests += requests
        self.cost_nano += cost
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.latency_ms += latency
        if error_class:
            self.errors += requests
        if error_class in _FAILED_UPSTREAM:
            self.upstream_failures += requests

    @property
    def average_latency(self) -> Decimal | None:
        """Seconds, to the millisecond."""
        return ratio(self.latency_ms, self.requests * 1000, _SECONDS)


@dataclass(slots=True)
class _Provider:
    total: _Sums
    models: dict[str, _Sums]
    operations: dict[str, _Sums]


def _breakdowns(given: str) -> frozenset[str]:
    """
    Raises:
        ValidationFailed: a part that is not `model` or `operation` (422).
    """
    parts = frozenset(part.strip() for part in given.split(",") if part.strip())
    unknown = sorted(parts - set(_BREAKDOWNS))
    if unknown:
        raise invalid("breakdown", f"not a breakdown (model, operation): {', '.join(unknown)}")
    return parts


def _by_cost(sums: dict[str, _Sums]) -> list[tuple[str, _Sums]]:
    return sorted(sums.items(), key=lambda item: (-item[1].cost_nano, item[0]))


def _model(sums: _Sums) -> dict[str, Any]:
    return {
        "requests": sums.requests,
        "cost": usd(sums.cost_nano),
        "inputTokens": sums.input_tokens,
        "outputTokens": sums.output_tokens,
        "averageLatency": sums.average_latency,
        "costPerRequest": ratio(usd(sums.cost_nano), sums.requests, NANO),
        "costPerToken": ratio(usd(sums.cost_nano), sums.input_tokens + sums.output_tokens, NANO),
    }


@router.get(
    "/analytics",
    summary="Each provider's requests, cost, share, latency, error rate and uptime, by model and operation",
    responses=scoped_responses(
        "A bad `period` (not hours, days or weeks, or over 183 days) or `breakdown` (not "
        "`model` or `operation`, or both separated by a comma); a parameter given twice. `error.details` "
        "names it."
    ),
)
async def providers(
    request: Request,
    scope: Scoped,
    period: Period = "30d",
    breakdown: Annotated[
        str,
        Query(
            pattern=r"^\s*(model|operation)\s*(,\s*(model|operation)\s*)?$",
            description="`model`, `operation`, or both: `model,operation`.",
        ),
    ] = "model,operation",
) -> Response:
    """Per provider: a summary (requests, cost, share of the cost, average latency, error rate, uptime), its
    models (requests, cost, tokens, latency, cost per request and per token) and its operations."""
    span = Span.parse(period)
    wanted = _breakdowns(breakdown)
    found: dict[str, _Provider] = {}
    for (provider, model, operation, error_class), measures in (
        await period_sums(request, scope, span, _GROUPS, _MEASURES)
    ).items():
        entry = found.get(provider)
        if entry is None:
            entry = found[provider] = _Provider(_Sums(), defaultdict(_Sums), defaultdict(_Sums))
        entry.total.add(measures, error_class)
        entry.models[model].add(measures, error_class)
        entry.operations[operation].add(measures, error_class)
    total = _Sums()
    for entry in found.values():
        total.requests += entry.total.requests
        total.cost_nano += entry.total.cost_nano
    answer: dict[str, Any] = {}
    for name, entry in sorted(found.items(), key=lambda item: (-item[1].total.cost_nano, item[0])):
        summary = entry.total
        shown: dict[str, Any] = {
            "summary": {
                "requests": summary.requests,
                "cost": usd(summary.cost_nano),
                "percentage": ratio(summary.cost_nano, total.cost_nano),
                "averageLatency": summary.average_latency,
                "errorRate": ratio(summary.errors, summary.requests),
                "uptime": ratio(summary.requests - summary.upstream_failures, summary.requests),
                "upstreamFailures": summary.upstream_failures,
            }
        }
        if "model" in wanted:
            shown["models"] = {model: _model(sums) for model, sums in _by_cost(entry.models)}
        if "operation" in wanted:
            shown["operations"] = {
                operation: {"requests": sums.requests, "cost": usd(sums.cost_nano)}
                for operation, sums in _by_cost(entry.operations)
            }
        answer[name] = shown
    return envelope(
        {
            "period": str(span),
            "timezone": scope.window.tz.key,
            "totalCost": usd(total.cost_nano),
            "totalRequests": total.requests,
            "providers": answer,
        }
    )
