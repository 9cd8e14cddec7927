"""Seed 004's admin analytics under /api/admin/analytics, answered in the seed's envelope
(`{"success": true, "data": {...}}`) with its camelCase field names and money as exact JSON numbers.

For the master key (every account, or the one `account_id` names) and an account's owners, admins and billing
members (their account); a member's token or a virtual key is refused with 403. A `period` is the last N hours,
days or weeks (`24h`, `7d`, `4w`), ending now: days and weeks are local dates of the account's zone (UTC for
every account at once), today included; hours are the hours of the clock ending with the current one. Every
figure comes from the analytics engine, so it equals the other views' for the same time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from farebox.analytics.calendar import Grain, Window
from farebox.analytics.engine import Engine
from farebox.analytics.routes import account_zone
from farebox.analytics.views import Scope, Timeline, Totals, Views
from farebox.core.credentials import Principal
from farebox.core.json_numbers import dumps_exact
from farebox.core.money import NANO_PER_USD
from farebox.core.owners import Role
from farebox.errors import PermissionDenied, ValidationFailed
from farebox.ledger.reader import LedgerReader
from farebox.services import authenticate, services

__all__ = ["Span", "router"]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"])

Caller = Annotated[Principal, Depends(authenticate)]
_PERIOD = re.compile(r"^([1-9][0-9]{0,3})([hdw])$")
MAX_PERIOD_DAYS = 183
"""A period and the one before it, which growth is measured against, fit in the 366 days a window may span."""
_RATE = Decimal("0.0001")
_CENTS = Decimal("0.01")
_NANO = Decimal("0.000000001")
_PER_SLOT = {Grain.HOUR: "Hour", Grain.DAY: "Day", Grain.WEEK: "Week", Grain.MONTH: "Month"}


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details=[{"loc": field, "message": message}])


@dataclass(frozen=True, slots=True)
class Span:
    """A period as the seed writes it: a count of hours, days or weeks (`24h`, `7d`, `4w`)."""

    count: int
    unit: str

    @classmethod
    def parse(cls, text: str) -> Span:
        """
        Raises:
            ValidationFailed: not a count and a unit `h`, `d` or `w`, or longer than `MAX_PERIOD_DAYS` (422).
        """
        match = _PERIOD.fullmatch(text)
        if match is None:
            raise _invalid("period", f"not a period like 24h, 7d or 4w: {text!r}")
        span = cls(int(match[1]), match[2])
        if span.hours > MAX_PERIOD_DAYS * 24:
            raise _invalid("period", f"a period is at most {MAX_PERIOD_DAYS} days")
        return span

    @property
    def hours(self) -> int:
        return self.count * {"h": 1, "d": 24, "w": 168}[self.unit]

    @property
    def days(self) -> int:
        """Local dates the period spans (a period of hours: none, it is cut from hours)."""
        return self.hours // 24 if self.unit != "h" else 0

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


async def admin_scope(
    request: Request,
    viewer: Caller,
    account_id: Annotated[
        str | None, Query(min_length=1, description="The account (the master key; others see their own).")
    ] = None,
) -> Scope:
    """FastAPI dependency: who asks and about which account, in its zone (the window is the route's to set).

    Raises:
        PermissionDenied: a virtual key, or a member that is not an owner, admin or billing member (403
            `role_required`, as member analytics answer).
        NotFound: an account the caller is not in, or that does not exist (404).
    """
    if not viewer.is_master and viewer.role not in (Role.OWNER, Role.ADMIN, Role.BILLING):
        raise PermissionDenied(
            "admin analytics are for the account's owners, admins and billing members", code="role_required"
        )
    account_id, zone, own_zone = await account_zone(request, viewer, account_id, None)
    today = services(request).directory.now().astimezone(zone).date()
    return Scope(viewer, Window(today, today, zone), account_id, local_days=zone.key == own_zone)


Scoped = Annotated[Scope, Depends(admin_scope)]


def _views(request: Request) -> Views:
    return Views(Engine(LedgerReader(services(request).ledger)))


def envelope(data: dict[str, Any]) -> Response:
    """The seed's answer: `{"success": true, "data": ...}`, every `Decimal` an exact JSON number."""
    return Response(dumps_exact({"success": True, "data": data}), media_type="application/json")


def usd(nano: int) -> Decimal:
    """Nano-USD as exact decimal USD."""
    return Decimal(nano) / NANO_PER_USD


def _ratio(part: Decimal | int, whole: Decimal | int, quantum: Decimal = _RATE) -> Decimal | None:
    return None if not whole else (Decimal(part) / Decimal(whole)).quantize(quantum, rounding=ROUND_HALF_EVEN)


def _instant(bucket: datetime | date, window: Window) -> str:
    """A slot's first instant, in UTC with `Z`: an hour's start, or the local midnight a day, week or month opens."""
    start = bucket if isinstance(bucket, datetime) else Window(bucket, bucket, window.tz).since
    return start.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _sum(slots: list[Totals]) -> Totals:
    total = Totals()
    for slot in slots:
        total.cost_nano += slot.cost_nano
        total.requests += slot.requests
        total.input_tokens += slot.input_tokens
        total.output_tokens += slot.output_tokens
        total.errors += slot.errors
    return total


def _growth(now: int, before: int) -> Decimal | None:
    """How much `now` grew on `before`, as a fraction (0.15: 15% more); None when there was nothing before."""
    return _ratio(now - before, before)


async def _periods(views: Views, scope: Scope, span: Span, grain: Grain, now: datetime) -> tuple[Timeline, Totals]:
    """The period's timeline at `grain`, and the totals of the period of the same length just before it."""
    today = scope.window.last
    if span.unit == "h":
        if grain is not Grain.HOUR:
            raise _invalid("granularity", "a period of hours is cut into hours: granularity=hour")
        first = (now - timedelta(hours=2 * span.hours)).astimezone(scope.window.tz).date()
        both = await views.timeline(replace(scope, window=Window(first, today, scope.window.tz)), Grain.HOUR)
        current = now.astimezone(scope.window.tz).replace(minute=0, second=0, microsecond=0)
        end = next(n for n, bucket in enumerate(both.buckets) if bucket == current) + 1
        start = end - span.hours
        timeline = Timeline(both.buckets[start:end], both.totals[start:end], both.active_keys[start:end])
        return timeline, _sum(both.totals[max(0, start - span.hours) : start])
    first = today - timedelta(days=span.days - 1)
    timeline = await views.timeline(replace(scope, window=Window(first, today, scope.window.tz)), grain)
    before = Window(first - timedelta(days=span.days), first - timedelta(days=1), scope.window.tz)
    return timeline, await views.totals(replace(scope, window=before))


@router.get(
    "/usage/trends",
    summary="Usage over a period, slot by slot, and its growth on the period before",
    responses={
        403: {"description": "A member's token or a virtual key (`role_required`)."},
        404: {"description": "`account_id` names no account the caller is in (`account_not_found`)."},
        422: {
            "description": "A bad `period` (not hours, days or weeks, or over 183 days) or `granularity` (not "
            "hour, day, week or month; a period of hours with another than hour); a parameter given twice. "
            "`error.details` names it."
        },
    },
)
async def trends(
    request: Request,
    scope: Scoped,
    period: Annotated[
        str, Query(pattern=_PERIOD.pattern, description="The last `24h`, `7d`, `4w`...: hours, days or weeks.")
    ] = "7d",
    granularity: Annotated[Grain, Query(description="`hour`, `day`, `week` or `month`.")] = Grain.HOUR,
) -> Response:
    """Totals, the average and peak requests per slot, cost per request, a timeline (requests, tokens, cost,
    active virtual keys, error rate) and growth against the period of the same length just before."""
    span = Span.parse(period)
    now = services(request).directory.now()
    timeline, before = await _periods(_views(request), scope, span, granularity, now)
    total = _sum(timeline.totals)
    slots = len(timeline.buckets)
    per = _PER_SLOT[granularity]
    cost_per_token_now = _ratio(total.cost_nano, total.tokens, _NANO)
    cost_per_token_before = _ratio(before.cost_nano, before.tokens, _NANO)
    efficiency = (
        None
        if cost_per_token_now is None or not cost_per_token_before
        else _ratio(cost_per_token_before - cost_per_token_now, cost_per_token_before)
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
                f"averageRequestsPer{per}": _ratio(total.requests, slots, _CENTS),
                f"peakRequestsPer{per}": max((slot.requests for slot in timeline.totals), default=0),
                "averageCostPerRequest": _ratio(usd(total.cost_nano), total.requests, _NANO),
            },
            "timeline": [
                {
                    "timestamp": _instant(bucket, scope.window),
                    "requests": slot.requests,
                    "tokens": slot.tokens,
                    "cost": usd(slot.cost_nano),
                    "activeVirtualKeys": keys,
                    "errorRate": _ratio(slot.errors, slot.requests) if slot.requests else Decimal(0),
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
