"""`GET /api/admin/analytics/cost-optimization` (seed 004): a period's cost, what could be saved and how, and which
costs rose or fell.

The rules behind the recommendations, and how sure each is: `farebox.analytics.cost_advice`; the trends:
`farebox.analytics.cost_trends`. Scope, periods and the envelope: `farebox.analytics.admin_common`. Every figure
comes from the engine: the usage from the daily cube (the quarter-hour rollups for a period of hours), the
repeated prompt prefixes from their own daily counts; no raw event is read.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from decimal import Decimal
from operator import itemgetter

from fastapi import APIRouter, Request
from starlette.responses import Response

from farebox.analytics import engine as analytics
from farebox.analytics.admin_common import (
    Period,
    PeriodSlots,
    Scoped,
    Span,
    engine,
    envelope,
    period_rows,
    ratio,
    scoped_responses,
    usd,
)
from farebox.analytics.calendar import Window
from farebox.analytics.cost_advice import (
    SMALL_INPUT_TOKENS,
    SMALL_OUTPUT_TOKENS,
    UsageGroup,
    batches,
    caching,
    routings,
    substitutions,
)
from farebox.analytics.cost_trends import cost_trends
from farebox.analytics.engine import Dimension, Measure
from farebox.analytics.query_times import TimedRoute
from farebox.analytics.views import Scope
from farebox.ledger.prompt_prefixes import PrefixRow
from farebox.services import services

__all__ = ["router"]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"], route_class=TimedRoute)

_GROUPS = (
    Dimension.KEY,
    Dimension.AGENT,
    Dimension.APP,
    Dimension.PROVIDER,
    Dimension.CANONICAL_MODEL,
    Dimension.OPERATION,
)
"""What the period's successful requests are grouped by, for the rules that weigh a period's totals (routing,
caching, batches): a few hundred rows where a row per day as well was thirty times as many."""
_SMALL = (Dimension.KEY, Dimension.PROVIDER, Dimension.CANONICAL_MODEL, Dimension.OPERATION)
"""What the successful requests are grouped by slot by slot (days, or hours) for substitution, which weighs each
key's day: only the groups whose requests average small are read (`SMALL_INPUT_TOKENS`, `SMALL_OUTPUT_TOKENS`),
which the database picks out of thousands (9,600 a month for the big bench account)."""
_TRENDS = (Dimension.CANONICAL_MODEL, Dimension.OPERATION)
"""What every request, failed ones too (no rule counts them, but the cost and its trends do), is grouped by slot by
slot."""
_MEASURES = (
    Measure.REQUESTS,
    Measure.COST_NANO,
    Measure.INPUT_TOKENS,
    Measure.CACHED_INPUT_TOKENS,
    Measure.CACHE_WRITE_TOKENS,
    Measure.OUTPUT_TOKENS,
)


def _groups(
    rows: list[analytics.Row], slots: PeriodSlots, named: tuple[Dimension, ...], *, ok: bool
) -> list[UsageGroup]:
    """Rows grouped by `named` (some of `_GROUPS`; the others '') as usage groups, of successful requests only
    (`ok`: what the rules count) or not; slot 0 for a row of a whole period of days."""
    # Each of `_GROUPS` picked from the row's dimensions, or the '' put after them.
    pick = itemgetter(*(named.index(dimension) if dimension in named else len(named) for dimension in _GROUPS))
    indexes: dict[date | datetime | None, int] = {None: 0}
    groups = []
    for row in rows:
        slot = indexes.get(row.at)
        if slot is None:
            assert row.at is not None
            slot = indexes[row.at] = slots.index(row.at)
        key, agent, app, provider, model, operation = pick((*row.dimensions, ""))
        requests, cost_nano, input_tokens, cached, cache_write, output_tokens = row.measures
        groups.append(
            UsageGroup(
                slot,
                key,
                agent,
                app,
                provider,
                model,
                operation,
                ok,
                requests,
                cost_nano,
                input_tokens,
                cached,
                cache_write,
                output_tokens,
            )
        )
    return groups


async def _prefixes(request: Request, scope: Scope, slots: PeriodSlots) -> list[PrefixRow]:
    """The period's repeated prompt prefixes: of its local days (for a period of hours, the days it touches)."""
    first = slots.first.date() if isinstance(slots.first, datetime) else slots.first
    query = analytics.Query(
        Window(first, scope.window.last, scope.window.tz),
        (),
        filters=scope.filters,
        account_id=scope.account_id,
        local_days=scope.local_days,
    )
    return await engine(request).repeated_prefixes(query, viewer=scope.viewer)


@router.get(
    "/cost-optimization",
    summary="The period's cost, recommendations to spend less (with savings and confidence), and cost trends",
    responses=scoped_responses(
        "A bad `period` (not hours, days or weeks, or over 183 days); a parameter given twice. "
        "`error.details` names it."
    ),
)
async def cost_optimization(
    request: Request,
    scope: Scoped,
    period: Period = "30d",
) -> Response:
    """The period's total cost; recommendations (a cheaper model of the same family for small requests, the same
    model at a cheaper provider, prompt caching for repeated prompt prefixes, batch APIs for automated work),
    each with its estimated savings, the requests and keys it concerns and a confidence; and the categories
    (models, operations) whose cost rose or fell between the period's halves."""
    span = Span.parse(period)
    found = services(request)
    now = found.directory.now()
    succeeded = scope.of_status("ok")
    small = {Measure.INPUT_TOKENS: SMALL_INPUT_TOKENS, Measure.OUTPUT_TOKENS: SMALL_OUTPUT_TOKENS}
    (smalls, slots), (whole, _slots), (every, _slots) = await asyncio.gather(
        period_rows(request, succeeded, span, _SMALL, _MEASURES, by_slot=True, averaging_under=small),
        period_rows(request, succeeded, span, _GROUPS, _MEASURES),
        period_rows(request, scope, span, _TRENDS, _MEASURES, by_slot=True),
    )
    totals = _groups(whole, slots, _GROUPS, ok=True)
    hours = span.unit == "h"
    advice = [
        *substitutions(
            _groups(smalls, slots, _SMALL, ok=True),
            found.prices,
            found.alternatives,
            at=now,
            slot="hour" if hours else "day",
        ),
        *routings(totals, found.alternatives, at=now),
        *caching(await _prefixes(request, scope, slots), totals, found.prices, at=now),
        *batches(totals, found.alternatives, at=now),
    ]
    advice.sort(key=lambda item: (-item.savings_nano, item.type, item.description))
    groups = _groups(every, slots, _TRENDS, ok=False)
    total = sum(group.cost_nano for group in groups)
    potential = min(sum(item.savings_nano for item in advice), total)
    return envelope(
        {
            "period": str(span),
            "timezone": scope.window.tz.key,
            "totalCost": usd(total),
            "potentialSavings": usd(potential),
            "savingsPercentage": ratio(potential, total) if total else Decimal(0),
            "recommendations": [item.shown() for item in advice],
            "costTrends": cost_trends(groups, slots.count, hours=hours),
        }
    )
