"""`GET /api/admin/analytics/patterns` (seed 004): when usage comes, who makes it, which models it goes to, and what
the anomaly detectors found in the period.

Three engine queries and one read of the fired alerts: the period's hourly totals (peak and low hours, weekdays
and weekends, rhythms), usage per virtual key and model (tiers, model shares; from the daily cube for a period of
days in the account's own zone), and requests per model and day (trends). A period of hours reads requests per
model and hour, and usage per key and model of its first and last dates by hour and of the days between whole.
The rules: `farebox.analytics.usage_patterns`; scope, periods and the envelope: `farebox.analytics.admin_common`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from farebox.analytics.admin_common import (
    CENTS,
    PERIOD_PATTERN,
    RATE,
    Scoped,
    Span,
    envelope,
    invalid,
    ratio,
    scoped_responses,
    views,
)
from farebox.analytics.calendar import Grain, Window
from farebox.analytics.engine import Dimension
from farebox.analytics.query_times import TimedRoute
from farebox.analytics.usage_patterns import HourProfile, Rhythm, Tier, WeekSplit, growth_trend, impact, severity, tiers
from farebox.analytics.views import Group, Scope, Views
from farebox.ledger.alert_state import FiredAlertRow
from farebox.services import services

__all__ = ["MAX_HOURS", "MOST_ANOMALIES", "Analysis", "router"]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"], route_class=TimedRoute)

_HOUR = timedelta(hours=1)

MAX_HOURS = 168
"""A period of hours is at most a week (its usage per key and model is read hour by hour)."""
MOST_ANOMALIES = 100
"""The anomalies listed: the period's latest."""


class Analysis(StrEnum):
    """How much the answer holds: everything, or the summary without seasonality, models' user segments and the
    anomalies' evidence."""

    DETAILED = "detailed"
    SUMMARY = "summary"


@dataclass(frozen=True, slots=True)
class _Reach:
    """The period on the engine's grid: the local dates it touches (the scope's window) and the instants that
    bound it, in UTC."""

    scope: Scope
    start: datetime
    """The period's first instant."""
    current: datetime
    """The start of the current hour: the hours before it have ended."""
    end: datetime
    """The instant after the period."""
    by_hour: bool
    """A period of hours: what is read per key and model is cut from hourly slots."""

    def began(self, at: datetime) -> bool:
        """Whether the hour starting `at` is in the period (the current one included)."""
        return self.start <= at <= self.current

    def ended(self, at: datetime) -> bool:
        """Whether the hour starting `at` is in the period and has ended."""
        return self.start <= at < self.current

    def whole(self, day: date) -> bool:
        """Whether the local day is in the period from its first hour and has ended."""
        hours = Window(day, day, self.scope.window.tz)
        return self.start <= hours.since and hours.until <= self.current


def _reach(scope: Scope, span: Span, now: datetime) -> _Reach:
    tz = scope.window.tz
    today = scope.window.last
    current = now.astimezone(tz).replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    if span.unit != "h":
        window = Window(today - timedelta(days=span.days - 1), today, tz)
        return _Reach(replace(scope, window=window), window.since, current, window.until, by_hour=False)
    if span.hours > MAX_HOURS:
        raise invalid("period", f"a period of hours is at most {MAX_HOURS}h; give longer ones in days or weeks")
    start = current - (span.hours - 1) * _HOUR
    window = Window(start.astimezone(tz).date(), today, tz)
    return _Reach(replace(scope, window=window), start, current, current + _HOUR, by_hour=True)


@dataclass(slots=True)
class _Usage:
    """The period's usage per virtual key and per model, which keys used which model, and each model's requests
    per whole slot (days, or the hours that ended for a period of hours), in order."""

    per_slot: dict[str, list[int]]
    key_costs: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    key_requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    model_requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    model_keys: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, group: Group) -> None:
        """Count a group of usage by key and model."""
        (key, model), requests = group.dimensions, group.totals.requests
        if key:
            self.key_costs[key] += group.totals.cost_nano
            self.key_requests[key] += requests
        if model:
            self.model_requests[model] += requests
            if key and requests > 0:
                self.model_keys[model].add(key)


async def _usage(found: Views, reach: _Reach) -> _Usage:
    """The period's usage per key and model, and each model's requests per whole slot: for a period of days, over
    its local days (the daily cube when the zone is the account's) and per whole day; for a period of hours, per
    ended hour, and per key and model with the period's first and last dates cut from hourly slots and the whole
    days between read whole (so the rows read hour by hour stay two days' worth)."""
    by_slot = Grain.HOUR if reach.by_hour else Grain.DAY
    series = await found.series(reach.scope, Dimension.MODEL, by_slot)
    if reach.by_hour:
        whole = [n for n, at in enumerate(series.buckets) if reach.ended(_utc(at))]
    else:
        whole = [n for n, day in enumerate(series.buckets) if isinstance(day, date) and reach.whole(day)]
    usage = _Usage({model: [line[n].requests for n in whole] for model, line in series.lines.items()})
    window = reach.scope.window
    if not reach.by_hour:
        for row in await found.grouped(reach.scope, (Dimension.KEY, Dimension.MODEL)):
            usage.add(row)
        return usage
    for day in sorted({window.first, window.last}):
        edge = replace(reach.scope, window=Window(day, day, window.tz))
        for row in await found.grouped(edge, (Dimension.KEY, Dimension.MODEL), grain=Grain.HOUR):
            if reach.began(_utc(row.at)):
                usage.add(row)
    if (window.last - window.first).days > 1:
        between = Window(window.first + timedelta(days=1), window.last - timedelta(days=1), window.tz)
        for row in await found.grouped(replace(reach.scope, window=between), (Dimension.KEY, Dimension.MODEL)):
            usage.add(row)
    return usage


def _hour(at: datetime | date | None) -> datetime:
    """An hourly slot's label: the local start of its hour."""
    assert isinstance(at, datetime), "an hourly slot is labelled with its start"
    return at


def _utc(at: datetime | date | None) -> datetime:
    """An hourly slot's start in UTC: compared and looked up as UTC, a repeated local hour (clocks going back) is
    the instant it is (Python never finds an ambiguous local time equal to a time of another zone)."""
    return _hour(at).astimezone(UTC)


async def _temporal(found: Views, reach: _Reach, analysis: Analysis) -> dict[str, Any]:
    """Peak and low hours, weekdays against weekends and (detailed) the rhythm, from the hours that ended."""
    buckets, totals = await found.slots(reach.scope, Grain.HOUR)
    hours = [(at, slot.requests) for at, slot in zip(buckets, totals, strict=True) if reach.ended(_utc(at))]
    profile = HourProfile.of([(_hour(at), requests) for at, requests in hours])
    days: dict[date, int] = defaultdict(int)
    for at, requests in hours:
        days[_hour(at).date()] += requests
    week = WeekSplit.of({day: requests for day, requests in days.items() if reach.whole(day)})
    weekday = ratio(week.weekday_requests, week.weekdays, CENTS)
    weekend = ratio(week.weekend_requests, week.weekend_days, CENTS)
    temporal: dict[str, Any] = {
        "peakHours": profile.peak,
        "lowUsageHours": profile.low,
        "weekdayVsWeekend": {
            "weekdayAverage": weekday,
            "weekendAverage": weekend,
            "ratio": None
            if weekday is None or weekend is None
            else ratio(week.weekday_requests * week.weekend_days, week.weekend_requests * week.weekdays, CENTS),
        },
    }
    if analysis is Analysis.DETAILED:
        rhythm = Rhythm.of([requests for _at, requests in hours])
        temporal["seasonality"] = {
            "detected": rhythm.detected,
            "pattern": rhythm.pattern(peak_hours=profile.peak, week=week),
            "strength": _statistic(rhythm.strength),
            "dailyCorrelation": _statistic(rhythm.daily),
            "weeklyCorrelation": _statistic(rhythm.weekly),
        }
    return temporal


def _distribution(usage: _Usage) -> tuple[dict[str, Any], dict[str, Tier]]:
    """Power, medium and light users (virtual keys with requests in the period), and each key's tier."""
    users = {key: cost for key, cost in usage.key_costs.items() if usage.key_requests[key] > 0}
    tier_of = tiers(users)
    total = sum(users.values())
    distribution = {}
    for tier in Tier:
        members = [key for key, found in tier_of.items() if found is tier]
        distribution[_TIER_NAMES[tier]] = {
            "count": len(members),
            "percentage": ratio(len(members), len(users)),
            "costContribution": ratio(sum(users[key] for key in members), total),
        }
    return distribution, tier_of


_TIER_NAMES = {Tier.POWER: "powerUsers", Tier.MEDIUM: "mediumUsers", Tier.LIGHT: "lightUsers"}


def _preferences(usage: _Usage, tier_of: dict[str, Tier], analysis: Analysis) -> dict[str, Any]:
    """Each model's share of the period's requests to models (usage without a model, such as compute, left out)
    and its trend, by descending share; (detailed) the tiers of the keys that used it, `["all"]` when every tier
    with users did."""
    present = set(tier_of.values())
    total = sum(usage.model_requests.values())
    preferences: dict[str, Any] = {}
    for model, requests in sorted(usage.model_requests.items(), key=lambda item: (-item[1], item[0])):
        if requests <= 0:
            continue
        preference: dict[str, Any] = {
            "usage": ratio(requests, total),
            "growthTrend": growth_trend(usage.per_slot[model]),
        }
        if analysis is Analysis.DETAILED:
            used = {tier_of[key] for key in usage.model_keys[model] if key in tier_of}
            preference["userSegments"] = (
                ["all"] if used and used == present else [tier.value for tier in Tier if tier in used]
            )
        preferences[model] = preference
    return preferences


def _anomaly(row: FiredAlertRow, analysis: Analysis) -> dict[str, Any]:
    """A detector's finding as the seed lists it; (detailed) with the evidence it recorded."""
    kind = row.rule.removeprefix("anomaly:")
    data = row.data
    found: dict[str, Any] = {
        "type": kind,
        "timestamp": row.fired_at.isoformat().replace("+00:00", "Z"),
        "description": row.evidence.get("text"),
        "impact": impact(kind),
        "severity": severity(kind, baseline=Decimal(str(data["baseline"])), observed=Decimal(str(data["observed"]))),
    }
    if analysis is Analysis.DETAILED:
        found["evidence"] = data
    return found


def _statistic(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(RATE)


@router.get(
    "/patterns",
    summary="When usage comes, who makes it, which models it goes to, and the anomalies found",
    responses=scoped_responses(
        "A bad `period` (not hours, days or weeks; over 183 days, or a period of hours over "
        "168h) or `analysis` (not `detailed` or `summary`); a parameter given twice. `error.details` names it."
    ),
)
async def patterns(
    request: Request,
    scope: Scoped,
    period: Annotated[
        str,
        Query(pattern=PERIOD_PATTERN, description="The last `24h`, `7d`, `4w`...: hours (at most 168), days or weeks."),
    ] = "30d",
    analysis: Annotated[
        Analysis, Query(description="`detailed`, or `summary`: without seasonality, user segments and evidence.")
    ] = Analysis.DETAILED,
) -> Response:
    """Peak and low hours, weekdays against weekends and the daily or weekly rhythm (in the account's zone); power,
    medium and light users (virtual keys) and their share of the cost; each model's share of requests, trend and
    users; and the anomalies the detectors fired in the period, with their evidence."""
    span = Span.parse(period)
    found = views(request)
    reach = _reach(scope, span, services(request).directory.now())
    # Each read on a reader connection of its own: the answer waits for the longest, not for their sum.
    usage, temporal, fired = await asyncio.gather(
        _usage(found, reach),
        _temporal(found, reach, analysis),
        services(request).alerts.anomalies(scope.account_id, since=reach.start, until=reach.end, limit=MOST_ANOMALIES),
    )
    distribution, tier_of = _distribution(usage)
    return envelope(
        {
            "period": str(span),
            "analysis": analysis.value,
            "timezone": reach.scope.window.tz.key,
            "patterns": {
                "temporalPatterns": temporal,
                "usageDistribution": distribution,
                "modelPreferences": _preferences(usage, tier_of, analysis),
            },
            "anomalies": [_anomaly(row, analysis) for row in fired],
        }
    )
