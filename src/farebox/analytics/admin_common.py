"""What seed 004's admin analytics share: the caller's scope, the period, the envelope and exact numbers.

For the master key (every account, or the one `account_id` names) and an account's owners, admins and billing
members (their account); a member's token or a virtual key is refused with 403. A `period` is the last N hours,
days or weeks (`24h`, `7d`, `4w`), ending now: days and weeks are local dates of the account's zone (UTC for
every account at once), today included; hours are the hours of the clock ending with the current one. Every
figure comes from the analytics engine, so it equals the other views' for the same time.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Request
from starlette.responses import Response

from farebox.analytics import engine as analytics
from farebox.analytics.calendar import Grain, Window, instant
from farebox.analytics.engine import Dimension, Engine, Measure
from farebox.analytics.routes import account_zone
from farebox.analytics.views import Scope, Views
from farebox.core.credentials import Principal
from farebox.core.json_numbers import dumps_exact
from farebox.core.money import NANO_PER_USD
from farebox.core.owners import Role
from farebox.errors import PermissionDenied, ValidationFailed
from farebox.ledger.reader import LedgerReader
from farebox.services import authenticate, services

__all__ = [
    "CENTS",
    "MAX_PERIOD_DAYS",
    "NANO",
    "PERIOD_PATTERN",
    "RATE",
    "Period",
    "AdminCaller",
    "Caller",
    "PeriodSlots",
    "Scoped",
    "Span",
    "admin_caller",
    "admin_scope",
    "engine",
    "envelope",
    "instant",
    "MAX_DATED_DAYS",
    "dated_window",
    "invalid",
    "master_only",
    "period_rows",
    "period_sums",
    "ratio",
    "scoped_responses",
    "usd",
    "views",
]

Caller = Annotated[Principal, Depends(authenticate)]
PERIOD_PATTERN = r"^([1-9][0-9]{0,3})([hdw])$"
Period = Annotated[
    str, Query(pattern=PERIOD_PATTERN, description="The last `24h`, `7d`, `4w`...: hours, days or weeks.")
]
"""A `period` parameter (`Span.parse` reads it)."""
_PERIOD = re.compile(PERIOD_PATTERN)
MAX_PERIOD_DAYS = 183
"""A period and the one before it, which growth is measured against, fit in the 366 days a window may span."""
RATE = Decimal("0.0001")
"""Shares and rates: four decimals (0.0121 is 1.21%)."""
CENTS = Decimal("0.01")
NANO = Decimal("0.000000001")
"""Money per unit (a request, a token): to the nano-USD."""


def invalid(field: str, message: str) -> ValidationFailed:
    """A 422 naming the parameter at fault in `error.details`."""
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
            raise invalid("period", f"not a period like 24h, 7d or 4w: {text!r}")
        span = cls(int(match[1]), match[2])
        if span.hours > MAX_PERIOD_DAYS * 24:
            raise invalid("period", f"a period is at most {MAX_PERIOD_DAYS} days")
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

    def window(self, now: datetime, tz: ZoneInfo, *, periods: int = 1) -> Window:
        """The local dates of the last `periods` spans ending now: days and weeks exactly; hours, the dates they
        touch (`hours` cuts them out of an hourly timeline)."""
        today = now.astimezone(tz).date()
        if self.unit == "h":
            return Window((now - timedelta(hours=periods * self.hours)).astimezone(tz).date(), today, tz)
        return Window(today - timedelta(days=periods * self.days - 1), today, tz)

    def hours_between(self, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """A span of hours as instants (UTC): from the start of the first of the clock's hours in `tz` ending with the
        current one, to the end of the current one."""
        # In UTC: subtracting from a local time would count wall-clock hours, wrong across a change of clocks.
        current = now.astimezone(tz).replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        return current - timedelta(hours=self.hours - 1), current + timedelta(hours=1)

    def hours_in(self, buckets: Sequence[datetime | date], now: datetime, tz: ZoneInfo) -> slice:
        """Where the span's hours lie in an hourly timeline's `buckets`: the last `hours` of them up to the current
        one (compared as instants, so a repeated hour of clocks going back is not mistaken for its twin)."""
        current = now.astimezone(tz).replace(minute=0, second=0, microsecond=0).timestamp()
        end = next(
            n for n, bucket in enumerate(buckets) if isinstance(bucket, datetime) and bucket.timestamp() == current
        )
        return slice(max(0, end + 1 - self.hours), end + 1)


def master_only(viewer: Principal, what: str) -> None:
    """Refuse anything but the master key: `what` is every account's (403 `master_key_required`)."""
    if not viewer.is_master:
        raise PermissionDenied(f"only the master key sees {what}", code="master_key_required")


MAX_DATED_DAYS = 366
"""The most days explicit dates may span (an export's, a report's)."""


def dated_window(
    period: str | None, start_date: date | None, end_date: date | None, *, today: date, tz: ZoneInfo
) -> Window:
    """The local days a body asks for: its `period` of days or weeks ending today, or `startDate` to `endDate`.

    Raises:
        ValidationFailed: neither or both given, a period of hours, the end before the start, or over 366 days.
    """
    if (period is None) == (start_date is None and end_date is None):
        raise invalid("period", "give a period, or startDate and endDate")
    if period is not None:
        span = Span.parse(period)
        if span.unit == "h":
            raise invalid("period", "the period is in days or weeks")
        first, last = today - timedelta(days=span.days - 1), today
    elif start_date is None or end_date is None:
        raise invalid("startDate" if start_date is None else "endDate", "give both startDate and endDate")
    else:
        first, last = start_date, end_date
        if last < first:
            raise invalid("endDate", "endDate comes before startDate")
    if (last - first).days >= MAX_DATED_DAYS:
        raise invalid("period", f"the dates span at most {MAX_DATED_DAYS} days")
    return Window(first, last, tz)


def admin_caller(viewer: Caller) -> Principal:
    """FastAPI dependency: the master key, or an owner, admin or billing member (of its own account).

    Raises:
        PermissionDenied: a virtual key, or a member that is not an owner, admin or billing member (403
            `role_required`, as member analytics answer).
    """
    if not viewer.is_master and viewer.role not in (Role.OWNER, Role.ADMIN, Role.BILLING):
        raise PermissionDenied(
            "admin analytics are for the account's owners, admins and billing members", code="role_required"
        )
    return viewer


AdminCaller = Annotated[Principal, Depends(admin_caller)]


async def admin_scope(
    request: Request,
    viewer: AdminCaller,
    account_id: Annotated[
        str | None, Query(min_length=1, description="The account (the master key; others see their own).")
    ] = None,
) -> Scope:
    """FastAPI dependency: who asks and about which account, in its zone (the window is the route's to set).

    Raises:
        PermissionDenied: as `admin_caller`.
        NotFound: an account the caller is not in, or that does not exist (404).
    """
    account_id, zone, own_zone = await account_zone(request, viewer, account_id, None)
    today = services(request).directory.now().astimezone(zone).date()
    return Scope(viewer, Window(today, today, zone), account_id, local_days=zone.key == own_zone)


Scoped = Annotated[Scope, Depends(admin_scope)]


def engine(request: Request) -> Engine:
    """The analytics engine on this server's ledger."""
    return Engine(LedgerReader(services(request).ledger))


def views(request: Request) -> Views:
    """The usage views on this server's ledger."""
    return Views(engine(request))


def envelope(data: dict[str, Any]) -> Response:
    """The seed's answer: `{"success": true, "data": ...}`, every `Decimal` an exact JSON number."""
    return Response(dumps_exact({"success": True, "data": data}), media_type="application/json")


def usd(nano: int) -> Decimal:
    """Nano-USD as exact decimal USD."""
    return Decimal(nano) / NANO_PER_USD


def ratio(part: Decimal | int, whole: Decimal | int, quantum: Decimal = RATE) -> Decimal | None:
    """`part / whole` rounded half-even to `quantum`; None when `whole` is zero."""
    return None if not whole else (Decimal(part) / Decimal(whole)).quantize(quantum, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class PeriodSlots:
    """How a period ending now is cut: its local days (a period of days or weeks), or its clock hours."""

    first: date | datetime
    """The first day (a date), or the first hour's start (an aware datetime)."""
    count: int

    def index(self, at: date | datetime) -> int:
        """The position of a row's slot (`Row.at`) in the period: 0 for the first."""
        if isinstance(self.first, datetime):
            assert isinstance(at, datetime)
            # In absolute time: local wall clocks repeat or skip an hour when they change.
            return (at.astimezone(UTC) - self.first.astimezone(UTC)) // timedelta(hours=1)
        assert not isinstance(at, datetime)
        return (at - self.first).days


async def period_rows(
    request: Request,
    scope: Scope,
    span: Span,
    group_by: tuple[Dimension, ...],
    measures: tuple[Measure, ...],
    *,
    by_slot: bool = False,
    averaging_under: dict[Measure, int] | None = None,
) -> tuple[list[analytics.Row], PeriodSlots]:
    """The engine's rows of the period ending now, and how it is cut: whole local days (the daily cube where the
    zone is the account's), or for a period of hours the clock's hours ending with the current one, each row's
    hour in `Row.at`. With `by_slot`, a period of days has a row per day too. With `averaging_under`, only the
    groups whose measures named average under their bounds per request (`Query.averaging_under`)."""
    now = services(request).directory.now().astimezone(scope.window.tz)
    window = span.window(now, scope.window.tz)
    # In UTC: subtracting from a local time would count wall-clock hours, wrong across a change of clocks.
    start = now.replace(minute=0, second=0, microsecond=0).astimezone(UTC) - timedelta(hours=span.hours - 1)
    if span.unit == "h":
        grain: Grain | None = Grain.HOUR
        slots = PeriodSlots(start, span.hours)
    else:
        grain = Grain.DAY if by_slot else None
        slots = PeriodSlots(window.first, span.days)
    query = analytics.Query(
        window,
        measures,
        group_by=group_by,
        grain=grain,
        filters=scope.filters,
        account_id=scope.account_id,
        local_days=scope.local_days,
        averaging_under=averaging_under or {},
    )
    rows = await engine(request).run(query, viewer=scope.viewer)
    return [row for row in rows if not (isinstance(row.at, datetime) and row.at < start)], slots


async def period_sums(
    request: Request, scope: Scope, span: Span, group_by: tuple[Dimension, ...], measures: tuple[Measure, ...]
) -> dict[tuple[str, ...], list[int]]:
    """`measures` summed per combination of `group_by` over the period ending now (`period_rows`)."""
    sums: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0] * len(measures))
    for row in (await period_rows(request, scope, span, group_by, measures))[0]:
        total = sums[row.dimensions]
        for position, value in enumerate(row.measures):
            total[position] += value
    return dict(sums)


def scoped_responses(invalid: str | None = None) -> dict[int | str, dict[str, Any]]:
    """The error answers of a route for the master key and an account's owners, admins and billing members (`Scoped`),
    with `invalid` describing its 422."""
    answers: dict[int | str, dict[str, Any]] = {
        403: {"description": "A member's token or a virtual key (`role_required`)."},
        404: {"description": "`account_id` names no account the caller is in (`account_not_found`)."},
    }
    if invalid is not None:
        answers[422] = {"description": invalid}
    return answers
