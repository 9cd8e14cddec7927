"""Local time on the rollups' grid: date ranges in a zone, and the slots hours, days, weeks and months make.

Every bucket of the rollups (a quarter hour of UTC) lies wholly inside one local hour, day, week and month of
any zone in use, so grouping by local time is integer arithmetic on bucket starts: `slot = (bucket + shift)
// size`, with the shift the zone's offset, which changes only at daylight-saving transitions, found here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from farebox.core.periods import Period, period_start
from farebox.ledger.aggregates import ROLLUP_BUCKET_SECONDS, Slots

__all__ = ["MONTH_PATTERN", "Grain", "Window", "instant", "month_window", "parse_month"]

MONTH_PATTERN = r"^([0-9]{4})-([0-9]{2})$"
"""A month as `YYYY-MM`."""
_MONTH = re.compile(MONTH_PATTERN)
_LAST_YEAR = 9998
"""The last year whose months end inside the calendar Python counts in (9999-12's end is past it)."""

_HOUR, _DAY = 3600, 86_400
_WEEK = 7 * _DAY
_MONDAY_SHIFT = 3 * _DAY
_EPOCH_DAY = date(1970, 1, 1)
"""Day 0 of the epoch is a Thursday: shifted by 3 days, `day // 7` counts weeks starting on Monday."""


class Grain(StrEnum):
    """How finely a time series is cut, in the window's zone."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class Window:
    """A range of local dates in a zone: from the start of `first` to the end of `last`, both included."""

    first: date
    last: date
    tz: ZoneInfo
    _found_offsets: list[tuple[tuple[int, int], ...]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )
    """`_offsets`, once asked for: every hour slot's label needs them, and finding them walks the window's days."""

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError("a window's last day comes before its first")

    @property
    def since(self) -> datetime:
        """The window's first instant (UTC), on the rollups' grid."""
        return _day_start(self.first, self.tz)

    @property
    def until(self) -> datetime:
        """The instant after the window (UTC), on the rollups' grid."""
        return _day_start(self.last + timedelta(days=1), self.tz)

    def days(self) -> list[date]:
        """Every local date of the window, in order."""
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def slots(self, grain: Grain) -> Slots:
        """How the window's buckets fall into slots of `grain` (see `label`)."""
        if grain is Grain.MONTH:
            return Slots(starts=tuple(int(start.timestamp()) for start in self._month_starts()))
        shifts = self._offsets()
        if grain is Grain.HOUR:
            # Hours are counted on the zone's hour grid but in absolute time, so a repeated hour (clocks going
            # back) is a slot of its own: only the offset's part under an hour shifts the grid.
            return Slots(size=_HOUR, shifts=tuple((start, offset % _HOUR) for start, offset in shifts))
        if grain is Grain.DAY:
            return Slots(size=_DAY, shifts=shifts)
        return Slots(size=_WEEK, shifts=tuple((start, offset + _MONDAY_SHIFT) for start, offset in shifts))

    def day_range(self) -> tuple[int, int]:
        """The window as local day numbers (days since 1970-01-01): the first, and the one after the last."""
        return (self.first - _EPOCH_DAY).days, (self.last - _EPOCH_DAY).days + 1

    def day_slots(self, grain: Grain) -> Slots:
        """How local day numbers fall into slots of `grain` (not hours), labelled as `label` says."""
        first, _until = self.day_range()
        if grain is Grain.MONTH:
            return Slots(starts=tuple(max((month - _EPOCH_DAY).days, first) for month in self._months()))
        if grain is Grain.DAY:
            return Slots(size=1, shifts=((first, 0),))
        if grain is Grain.WEEK:
            return Slots(size=7, shifts=((first, 3),))
        raise ValueError("hours are not made of days")

    def label(self, grain: Grain, slot: int) -> datetime | date:
        """What a slot of `grain` stands for: the local start of its hour (aware), or the local date of its day,
        week (its Monday) or month (its first day)."""
        if grain is Grain.MONTH:
            return self._month_starts()[slot].astimezone(self.tz).date().replace(day=1)
        if grain is Grain.HOUR:
            return datetime.fromtimestamp(self._hour_start(slot), UTC).astimezone(self.tz)
        if grain is Grain.DAY:
            return date(1970, 1, 1) + timedelta(days=slot)
        return date(1970, 1, 5) + timedelta(weeks=slot - 1)

    def _hour_start(self, slot: int) -> int:
        """The epoch second an hour slot starts at, under the shift in force there."""
        shifts = self._offsets()
        for (start, offset), (end, _next) in zip(shifts, [*shifts[1:], (2**62, 0)], strict=True):
            candidate = slot * _HOUR - offset % _HOUR
            if start - _HOUR < candidate < end:
                return candidate
        raise ValueError(f"no hour slot {slot} in this window")

    def _offsets(self) -> tuple[tuple[int, int], ...]:
        """(from bucket, the zone's UTC offset in seconds) for every offset the window sees, in order."""
        if not self._found_offsets:
            self._found_offsets.append(self._find_offsets())
        return self._found_offsets[0]

    def _find_offsets(self) -> tuple[tuple[int, int], ...]:
        since, until = int(self.since.timestamp()), int(self.until.timestamp())
        shifts = [(since, _offset(self.tz, since))]
        for day in range(since, until, _DAY):
            end = min(day + _DAY, until)
            if _offset(self.tz, end - ROLLUP_BUCKET_SECONDS) != shifts[-1][1]:
                for bucket in range(day, end, ROLLUP_BUCKET_SECONDS):
                    offset = _offset(self.tz, bucket)
                    if offset != shifts[-1][1]:
                        shifts.append((bucket, offset))
        return tuple(shifts)

    def _months(self) -> list[date]:
        """The first day of every month the window touches."""
        month = self.first.replace(day=1)
        months = []
        while month <= self.last:
            months.append(month)
            month = (month + timedelta(days=32)).replace(day=1)
        return months

    def _month_starts(self) -> list[datetime]:
        return [max(_day_start(month, self.tz), self.since) for month in self._months()]


def parse_month(text: str) -> tuple[int, int]:
    """`YYYY-MM` as (year, month).

    Raises:
        ValueError: not of that form, no such month, or a year outside 0001 to 9998 (the message says which).
    """
    found = _MONTH.match(text)
    if found is None:
        raise ValueError(f"not a month in the form YYYY-MM: {text!r}")
    year, month = int(found[1]), int(found[2])
    if not 1 <= month <= 12:
        raise ValueError(f"{text!r} has no month {month:02d}: months are 01 to 12")
    if not 1 <= year <= _LAST_YEAR:
        raise ValueError(f"years run from 0001 to {_LAST_YEAR}: {text!r}")
    return year, month


def month_window(year: int, month: int, tz: ZoneInfo) -> Window:
    """The window of one calendar month in `tz`."""
    first = date(year, month, 1)
    return Window(first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1), tz)


def _offset(tz: ZoneInfo, at: int) -> int:
    return int((datetime.fromtimestamp(at, UTC).astimezone(tz).utcoffset() or timedelta()).total_seconds())


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    """When the local day starts, on the rollups' grid: exact in every zone since 1972, when the last offset that
    was not a whole number of quarter hours (Liberia's -0:44:30) went out of use; earlier, the bucket it falls in."""
    start = period_start(Period.DAILY, at=datetime(day.year, day.month, day.day, 12, tzinfo=tz), tz=tz)
    seconds = int(start.timestamp())
    return datetime.fromtimestamp(seconds - seconds % ROLLUP_BUCKET_SECONDS, UTC)


def instant(bucket: datetime | date, window: Window) -> str:
    """A slot's first instant, in UTC with `Z`: an hour's start, or the local midnight a day, week or month opens."""
    start = bucket if isinstance(bucket, datetime) else Window(bucket, bucket, window.tz).since
    return start.astimezone(UTC).isoformat().replace("+00:00", "Z")
