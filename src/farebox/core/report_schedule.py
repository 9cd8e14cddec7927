"""When a scheduled report is due, and which days it covers: slots of a daily, weekly or monthly timing in a zone.

A slot is the instant a timing names: a local time of day (`09:00`) on every day, on one weekday, or on one day
of the month, in an IANA zone. The instants are computed per local date, so a change of clocks moves none of them
(09:00 stays 09:00 local). A time a change of clocks skips (02:30 on a spring-forward night) falls on the instant
the clock jumps past it, as the offset before the change reads it (03:30); a time that happens twice (the night
clocks go back) falls on its first occurrence. A monthly day beyond a month's last (the 31st in April) is that
month's last day. Slots grow strictly with their dates, so "the latest slot at or before now" has one answer.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

__all__ = ["WEEKDAYS", "Frequency", "Timing"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
"""Weekday names, Monday first (`date.weekday()` indexes them)."""


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


@dataclass(frozen=True, slots=True)
class Timing:
    """When a scheduled report runs: `at` local time in `zone`, every day, week or month."""

    frequency: Frequency
    at: time
    zone: ZoneInfo
    day: int = 0
    """The weekday of a weekly timing (0 is Monday), or the day of the month of a monthly one (1 to 31); else 0."""

    def latest(self, now: datetime) -> datetime:
        """The latest slot at or before `now` (aware UTC)."""
        today = now.astimezone(self.zone).date()
        if self.frequency is Frequency.DAILY:
            day = today
        elif self.frequency is Frequency.WEEKLY:
            day = today - timedelta(days=(today.weekday() - self.day) % 7)
        else:
            day = self._in_month(today.year, today.month)
        slot = self._slot(day)
        return slot if slot <= now else self._slot(self._step(day, -1))

    def following(self, slot: datetime) -> datetime:
        """The slot after `slot` (itself a slot of this timing)."""
        return self._slot(self._step(slot.astimezone(self.zone).date(), 1))

    def covered(self, slot: datetime, *, days: int | None) -> tuple[date, date]:
        """The local dates a report run at `slot` covers, first and last: the `days` days before the slot's date, or
        by default the day before it, the 7 days before it, or (monthly) the calendar month before the slot's."""
        today = slot.astimezone(self.zone).date()
        if days is None and self.frequency is Frequency.MONTHLY:
            last = today.replace(day=1) - timedelta(days=1)
            return last.replace(day=1), last
        if days is None:
            days = 1 if self.frequency is Frequency.DAILY else 7
        return today - timedelta(days=days), today - timedelta(days=1)

    def _slot(self, day: date) -> datetime:
        return datetime.combine(day, self.at, tzinfo=self.zone).astimezone(UTC)

    def _step(self, day: date, by: int) -> date:
        """The slot date `by` (±1) occurrences from `day`, itself an occurrence."""
        if self.frequency is Frequency.DAILY:
            return day + timedelta(days=by)
        if self.frequency is Frequency.WEEKLY:
            return day + timedelta(days=7 * by)
        month = day.year * 12 + day.month - 1 + by
        return self._in_month(month // 12, month % 12 + 1)

    def _in_month(self, year: int, month: int) -> date:
        return date(year, month, min(self.day, calendar.monthrange(year, month)[1]))
