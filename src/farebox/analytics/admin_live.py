"""`GET /api/admin/analytics/usage/live` (seed 004): what is happening now.

Now is cut as the clock cuts it, as the trends count hours and days: this minute is the current minute of the
clock, this hour the current hour and today the current date, both in the account's zone (UTC for every account
at once); each counts the usage timestamped in it. So the minute's figures are part of the hour's, and the
hour's part of the day's, and this hour is the trends' last hourly slot.

Every figure comes from the analytics engine: the minute, a part of a quarter hour, from the raw events through
their (account, time) index; the hour from its four quarter-hour rollups; the day from the daily cube (one
account in its own zone) or the rollups. In-flight requests are the ones this server process is proxying now
(`farebox.metering.InFlight`): they are not shared between processes.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from farebox.analytics.admin_common import Scoped, envelope, instant, ratio, scoped_responses, usd, views
from farebox.analytics.engine import Dimension
from farebox.analytics.query_times import TimedRoute
from farebox.analytics.views import Scope, Totals
from farebox.services import services

__all__ = ["TOP_DEFAULT", "TOP_MOST", "router"]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"], route_class=TimedRoute)

TOP_DEFAULT = 10
TOP_MOST = 100
"""How many keys and models the top lists hold: by default, and at most (`limit`)."""

K = TypeVar("K", str, tuple[str, str])
Instants = tuple[datetime, datetime]
"""From the first (included) to the second (not)."""
_CELLS = (Dimension.KEY, Dimension.PROVIDER, Dimension.MODEL)


def _now(at: datetime, tz: ZoneInfo) -> tuple[Instants, Instants]:
    """The current minute and the current local hour around `at`, as (start, end) instants in UTC."""
    minute = at.astimezone(UTC).replace(second=0, microsecond=0)  # every zone in use is whole minutes off UTC
    hour = at.astimezone(tz).replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    return (minute, minute + timedelta(minutes=1)), (hour, hour + timedelta(hours=1))


def _fold(cells: dict[tuple[str, ...], Totals], pick: Callable[[tuple[str, ...]], K]) -> dict[K, Totals]:
    """The hour's cells (key, provider, model) summed by what `pick` takes of them; voided-out groups dropped."""
    parts: dict[K, list[Totals]] = defaultdict(list)
    for values, totals in cells.items():
        parts[pick(values)].append(totals)
    summed = {name: Totals.sum(found) for name, found in parts.items()}
    return {name: totals for name, totals in summed.items() if totals.requests}


def _ranked(found: dict[K, Totals]) -> list[tuple[K, Totals]]:
    """By requests, most first; then by cost, then by name."""
    return sorted(found.items(), key=lambda item: (-item[1].requests, -item[1].cost_nano, item[0]))


def _bounds(span: Instants, scope: Scope) -> dict[str, str]:
    return {"start": instant(span[0], scope.window), "end": instant(span[1], scope.window)}


@router.get(
    "/usage/live",
    summary="Requests, tokens and cost this minute, hour and day; in-flight requests; the hour's top keys and models",
    responses=scoped_responses("A `limit` that is not a whole number from 1 to 100; a parameter given twice."),
)
async def live(
    request: Request,
    scope: Scoped,
    limit: Annotated[
        int, Query(ge=1, le=TOP_MOST, description="How many keys and models the top lists hold (1 to 100).")
    ] = TOP_DEFAULT,
) -> Response:
    """Requests in flight now; requests, tokens and cost this minute, this hour and today; the hour's top virtual
    keys and models by requests, and its requests and cost per provider, each with its share of the hour's
    requests."""
    service = services(request)
    at = service.directory.now()
    minute, hour = _now(at, scope.window.tz)
    usage = views(request)
    # Three reads, each on a reader connection of its own: the answer waits for the longest, not for their sum.
    this_minute, cells, today = await asyncio.gather(
        usage.totals(replace(scope, within=minute)),
        usage.combinations(replace(scope, within=hour), _CELLS),
        usage.totals(scope),
    )
    this_hour = Totals.sum(cells.values())
    keys = _ranked(_fold(cells, lambda values: values[0]))
    keys = [(key_id, totals) for key_id, totals in keys if key_id][:limit]
    models = _ranked(_fold(cells, lambda values: (values[2], values[1])))[:limit]
    providers = _ranked(_fold(cells, lambda values: values[1]))
    names = await service.directory.find_keys([key_id for key_id, _totals in keys])
    in_flight = service.meter.in_flight
    day = scope.window
    return envelope(
        {
            "timestamp": instant(at.replace(microsecond=0), day),
            "timezone": day.tz.key,
            "periods": {
                "minute": _bounds(minute, scope),
                "hour": _bounds(hour, scope),
                "today": _bounds((day.since, day.until), scope),
            },
            "realTimeMetrics": {
                "activeRequests": in_flight.count if scope.account_id is None else in_flight.of(scope.account_id),
                "requestsThisMinute": this_minute.requests,
                "requestsThisHour": this_hour.requests,
                "requestsToday": today.requests,
                "tokensThisMinute": this_minute.tokens,
                "tokensThisHour": this_hour.tokens,
                "costThisMinute": usd(this_minute.cost_nano),
                "costThisHour": usd(this_hour.cost_nano),
                "costToday": usd(today.cost_nano),
            },
            "topVirtualKeys": [
                {
                    "keyId": key_id,
                    "keyName": names[key_id].name if key_id in names else None,
                    "requestsThisHour": totals.requests,
                    "costThisHour": usd(totals.cost_nano),
                    "percentageOfTotal": ratio(totals.requests, this_hour.requests),
                }
                for key_id, totals in keys
            ],
            "topModels": [
                {
                    "model": model,
                    "provider": provider,
                    "requestsThisHour": totals.requests,
                    "costThisHour": usd(totals.cost_nano),
                    "percentageOfTotal": ratio(totals.requests, this_hour.requests),
                }
                for (model, provider), totals in models
            ],
            "providerDistribution": {
                provider: {
                    "requests": totals.requests,
                    "cost": usd(totals.cost_nano),
                    "percentage": ratio(totals.requests, this_hour.requests),
                }
                for provider, totals in providers
            },
        }
    )
