"""Spend-cap periods and their windows, in an account's timezone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

__all__ = ["Period", "period_start"]


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
    local = at.astimezone(tz)
    day = local.date()
    if period is Period.WEEKLY:
        day -= timedelta(days=day.weekday())
    elif period is Period.MONTHLY:
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
