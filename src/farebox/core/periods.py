"""Spend-cap periods and their windows, in an account's timezone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

__all__ = ["Period", "period_end", "period_start"]


class Period(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    TOTAL = "total"


def period_start(period: Period, *, at: datetime, tz: ZoneInfo) -> datetime:
    """Start (aware, UTC) of the period containing `at`, with boundaries at local midnight in `tz`.

    Weeks start on Monday. The `total` period starts at the epoch.
    """
    if period is Period.TOTAL:
        return datetime(1970, 1, 1, tzinfo=UTC)
    local = at.astimezone(UTC).astimezone(tz)  # through UTC: an imaginary local time (a DST gap) becomes its instant
    day = local.date()
    if period is Period.WEEKLY:
        day -= timedelta(days=day.weekday())
    elif period is Period.MONTHLY:
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def period_end(period: Period, *, start: datetime, tz: ZoneInfo) -> datetime | None:
    """Where the period that began at `start` ends (the next period's start); None for `total`."""
    if period is Period.TOTAL:
        return None
    local = start.astimezone(tz)
    if period is Period.DAILY:
        nxt = local.date() + timedelta(days=1)
    elif period is Period.WEEKLY:
        nxt = local.date() + timedelta(days=7)
    else:
        nxt = (local.date().replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).astimezone(UTC)
