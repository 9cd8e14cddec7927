"""When the demo's usage happens: the window, each account's daily rhythm in its own zone, and VM schedules.

Traffic is laid out by UTC hour. An account's weight for an hour is the shape of a working day at that hour in
its zone, lower at weekends, with a little day-to-day noise and a slow rise over the window; `allocate` turns
weights into whole event counts that add up exactly. A workload's VM runs or is paused in whole stretches of
its local day (`vm_stretches`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

from farebox.core.events import epoch_us
from farebox.core.periods import Period, period_end, period_start
from farebox.demo.cast import WorkloadSpec
from farebox.ledger.workloads import WorkloadKind

__all__ = ["HOUR", "Stretch", "Window", "allocate", "hourly_weights", "local_hour_at", "vm_stretches"]

HOUR = 3_600
_HOUR_SHAPE = (
    0.12, 0.08, 0.06, 0.06, 0.08, 0.15, 0.3, 0.55, 0.9, 1.15, 1.25, 1.2,
    1.0, 1.1, 1.25, 1.2, 1.1, 0.95, 0.75, 0.6, 0.45, 0.35, 0.25, 0.18,
)  # fmt: skip
"""Requests by local hour on a weekday, relative to each other: a working day with a lunch dip."""
_WEEKEND = 0.3
_DAY_NOISE = 0.12
_RISE = 0.3
"""How much busier the window's last hour is than its first (usage grows over the month)."""


@dataclass(frozen=True, slots=True)
class Window:
    """The demo's stretch of time: whole UTC hours from `start` (a UTC midnight) up to `end`."""

    start: datetime
    end: datetime

    @classmethod
    def ending(cls, last_day: date, *, days: int, now: datetime) -> Window:
        """`days` UTC days up to and including `last_day`, stopping at the current hour when that is sooner."""
        start = datetime.combine(last_day - timedelta(days=days - 1), time(), UTC)
        end = min(datetime.combine(last_day + timedelta(days=1), time(), UTC), now.replace(minute=0, second=0))
        return cls(start, max(end.replace(microsecond=0), start + timedelta(hours=1)))

    @property
    def hours(self) -> int:
        return int((self.end - self.start).total_seconds()) // HOUR

    @property
    def start_s(self) -> int:
        """The start in epoch seconds."""
        return int(self.start.timestamp())

    @property
    def end_s(self) -> int:
        return int(self.end.timestamp())

    def last_month(self, tz: ZoneInfo) -> tuple[int, int]:
        """The calendar month in `tz` of the window's last UTC day, [start, end) in epoch microseconds.

        It is the month of that day's noon (UTC), or of the window's end when that comes first: the month whose
        spend a monthly cap counts, in every zone, when the window ends now.
        """
        last = self.end - timedelta(microseconds=1)
        at = min(last, datetime.combine(last.date(), time(12), UTC)).astimezone(tz)
        start = period_start(Period.MONTHLY, at=at, tz=tz)
        end = period_end(Period.MONTHLY, start=start, tz=tz)
        assert end is not None, "a month ends"
        return epoch_us(start), epoch_us(end)

    def local_days(self, tz: ZoneInfo) -> Iterator[date]:
        """Every date in `tz` that some instant of the window falls on."""
        day, last = self.start.astimezone(tz).date(), (self.end - timedelta(microseconds=1)).astimezone(tz).date()
        while day <= last:
            yield day
            day += timedelta(days=1)


def local_hour_at(day: date, hour: int, tz: ZoneInfo) -> int:
    """Epoch seconds of `hour` o'clock (0 to 24) on `day` in `tz`."""
    return int((datetime.combine(day, time(), tz) + timedelta(hours=hour)).astimezone(UTC).timestamp())


def hourly_weights(window: Window, tz: ZoneInfo, rng: random.Random) -> list[float]:
    """Each UTC hour's weight for an account in zone `tz`: its local hour and weekday, day noise, the rise."""
    noise: dict[date, float] = {}
    weights = []
    hours = window.hours
    for index in range(hours):
        local = (window.start + timedelta(hours=index, minutes=30)).astimezone(tz)
        day = local.date()
        if day not in noise:
            noise[day] = rng.lognormvariate(0.0, _DAY_NOISE)
        weekday = _WEEKEND if day.weekday() >= 5 else 1.0
        weights.append(_HOUR_SHAPE[local.hour] * weekday * noise[day] * (1 + _RISE * index / hours))
    return weights


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """`total` split in proportion to `weights` into whole counts that add up to exactly `total`."""
    sums = list(accumulate(weights))
    whole = sums[-1] if sums else 0.0
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    marks = [round(total * running / whole) for running in sums]
    return [mark - before for mark, before in zip(marks, [0, *marks[:-1]], strict=True)]


@dataclass(frozen=True, slots=True)
class Stretch:
    """Part of a day a workload's VM spent running (or paused), in epoch seconds [start, end)."""

    start: int
    end: int
    running: bool


def vm_stretches(workload: WorkloadSpec, window: Window, tz: ZoneInfo) -> list[Stretch]:
    """The stretches of the window a workload's VM ran or was paused; a plain VM off the rest of the time."""
    stretches = []
    first, last = workload.active_hours
    for day in window.local_days(tz):
        active = workload.weekends or day.weekday() < 5
        parts = [(0, first, False), (first, last, True), (last, 24, False)] if active else [(0, 24, False)]
        for begin, end, running in parts:
            if begin == end or (not running and workload.kind is WorkloadKind.PLAIN_VM):
                continue
            start = max(local_hour_at(day, begin, tz), window.start_s)
            stop = min(local_hour_at(day, end, tz), window.end_s)
            if start < stop:
                stretches.append(Stretch(start, stop, running))
    return stretches
