"""The rules of usage patterns: peak and low hours, weekdays against weekends, daily and weekly rhythms, power,
medium and light users, a model's trend, and how much an anomaly matters. Pure: figures in, judgements out.

Counts are compared exactly (`Fraction`), so a boundary case (an hour at exactly 1.25x the mean) always falls
the same way. Rhythms are correlations, a statistic rather than an amount, computed in floating point.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from itertools import groupby

__all__ = [
    "DAILY_MIN_HOURS",
    "GROWTH",
    "LOW_FACTOR",
    "MEDIUM_SHARE",
    "OFFICE_HOURS",
    "PEAK_FACTOR",
    "POWER_SHARE",
    "QUIETER_WEEKENDS",
    "RHYTHM_THRESHOLD",
    "WEEKLY_MARGIN",
    "WEEKLY_MIN_HOURS",
    "HourProfile",
    "Rhythm",
    "Tier",
    "WeekSplit",
    "growth_trend",
    "impact",
    "severity",
    "tiers",
]

PEAK_FACTOR = Fraction(5, 4)
"""A peak hour of the day averages at least this times the mean hour's requests."""
LOW_FACTOR = Fraction(1, 2)
"""A low hour of the day averages at most this times the mean hour's requests."""
RHYTHM_THRESHOLD = 0.4
"""A rhythm is detected when the series correlates with itself a day or a week later at least this much."""
DAILY_MIN_HOURS = 72
"""Hours needed to judge a daily rhythm (three days)."""
WEEKLY_MIN_HOURS = 336
"""Hours needed to judge a weekly rhythm (two full weeks)."""
WEEKLY_MARGIN = 0.1
"""A rhythm is weekly when the week-later correlation beats the day-later one by at least this."""
OFFICE_HOURS = range(8, 19)
"""Hours of the day (08:00 to 18:59) a business-hours rhythm peaks within."""
QUIETER_WEEKENDS = Fraction(3, 2)
"""A business-hours rhythm has weekdays at least this many times as busy as weekend days."""
POWER_SHARE = Fraction(4, 5)
MEDIUM_SHARE = Fraction(19, 20)
"""Tiers: power users make the first 80% of the cost, medium users the next 15% (see `tiers`)."""
GROWTH = Fraction(1, 5)
"""A trend is `increasing` (`decreasing`) when the second half of the period has over 20% more (fewer)
requests than the first."""


@dataclass(frozen=True, slots=True)
class HourProfile:
    """The hours of the day (0-23, local) by their average requests over the days that saw them."""

    peak: list[int]
    low: list[int]

    @classmethod
    def of(cls, hours: Sequence[tuple[datetime, int]]) -> HourProfile:
        """Hours of the day averaging at least `PEAK_FACTOR` (peak) or at most `LOW_FACTOR` (low) times the mean
        of the hours' averages; none of either without requests. An hour of the day the series does not hold is
        in neither list.

        Args:
            hours: (the local start of an hour, its requests), one entry per hour of a series.
        """
        sums, seen = [0] * 24, [0] * 24
        for at, requests in hours:
            sums[at.hour] += requests
            seen[at.hour] += 1
        averages = {hour: Fraction(sums[hour], seen[hour]) for hour in range(24) if seen[hour]}
        if not any(averages.values()):
            return cls([], [])
        mean = sum(averages.values(), Fraction(0)) / len(averages)
        return cls(
            [hour for hour, average in averages.items() if average >= PEAK_FACTOR * mean],
            [hour for hour, average in averages.items() if average <= LOW_FACTOR * mean],
        )


@dataclass(frozen=True, slots=True)
class WeekSplit:
    """Requests on weekdays (Monday to Friday) and weekend days, and how many of each day there were."""

    weekday_requests: int = 0
    weekdays: int = 0
    weekend_requests: int = 0
    weekend_days: int = 0

    @classmethod
    def of(cls, days: Mapping[date, int]) -> WeekSplit:
        """The split of `days` (each whole day's requests)."""
        weekdays = [requests for day, requests in days.items() if day.weekday() < 5]
        weekend = [requests for day, requests in days.items() if day.weekday() >= 5]
        return cls(sum(weekdays), len(weekdays), sum(weekend), len(weekend))

    def quieter_weekends(self) -> bool:
        """Whether weekdays averaged at least `QUIETER_WEEKENDS` times the weekend days' requests (both seen, and
        weekdays busy)."""
        if not self.weekdays or not self.weekend_days or not self.weekday_requests:
            return False
        weekday, weekend = (
            Fraction(self.weekday_requests, self.weekdays),
            Fraction(self.weekend_requests, self.weekend_days),
        )
        return weekday >= QUIETER_WEEKENDS * weekend


@dataclass(frozen=True, slots=True)
class Rhythm:
    """How strongly an hourly series repeats: its correlation with itself a day (24 hours) and a week (168 hours)
    later, None where the series is too short to tell (`DAILY_MIN_HOURS`, `WEEKLY_MIN_HOURS`)."""

    daily: float | None
    weekly: float | None

    @classmethod
    def of(cls, requests: Sequence[int]) -> Rhythm:
        """The rhythm of an hourly series of requests (every hour in order, none left out)."""
        daily = _lag_correlation(requests, 24) if len(requests) >= DAILY_MIN_HOURS else None
        weekly = _lag_correlation(requests, 168) if len(requests) >= WEEKLY_MIN_HOURS else None
        return cls(daily, weekly)

    @property
    def strength(self) -> float | None:
        """The stronger correlation, in [0, 1] (a negative one is no rhythm); None when neither could be told."""
        found = [value for value in (self.daily, self.weekly) if value is not None]
        return min(1.0, max(0.0, *found)) if found else None

    @property
    def detected(self) -> bool:
        strength = self.strength
        return strength is not None and strength >= RHYTHM_THRESHOLD

    def pattern(self, *, peak_hours: Sequence[int], week: WeekSplit) -> str:
        """`none` without a detected rhythm; else `business_hours` when every peak hour lies in `OFFICE_HOURS`
        and weekends are quieter (`WeekSplit.quieter_weekends`); else `weekly` when the week-later correlation
        beats the day-later one by `WEEKLY_MARGIN`; else `daily`."""
        if not self.detected:
            return "none"
        if peak_hours and all(hour in OFFICE_HOURS for hour in peak_hours) and week.quieter_weekends():
            return "business_hours"
        if self.weekly is not None and self.weekly >= (self.daily or 0.0) + WEEKLY_MARGIN:
            return "weekly"
        return "daily"


def _lag_correlation(series: Sequence[int], lag: int) -> float:
    """Pearson's correlation of the series with itself `lag` steps later; 0 when either part is constant (a flat
    series has no rhythm)."""
    try:
        return statistics.correlation(series[:-lag], series[lag:])
    except statistics.StatisticsError:
        return 0.0


class Tier(StrEnum):
    """How much a user spends, against the others."""

    POWER = "power_users"
    MEDIUM = "medium_users"
    LIGHT = "light_users"


def tiers(costs: Mapping[str, int]) -> dict[str, Tier]:
    """Each user's tier by its cost (nano-USD): by descending cost, a user is a power user while the users dearer
    than it make less than `POWER_SHARE` of the total cost, a medium user while they make less than `MEDIUM_SHARE`,
    and a light user after. Users that cost the same share a tier; when nothing cost anything, all are light.
    """
    total = sum(costs.values())
    found: dict[str, Tier] = {}
    dearer = 0
    for cost, same in groupby(sorted(costs.items(), key=lambda item: -item[1]), key=lambda item: item[1]):
        users = [user for user, _cost in same]
        tier = (
            Tier.POWER if dearer < POWER_SHARE * total else Tier.MEDIUM if dearer < MEDIUM_SHARE * total else Tier.LIGHT
        )
        found.update(dict.fromkeys(users, tier))
        dearer += cost * len(users)
    return found


def growth_trend(slots: Sequence[int]) -> str | None:
    """`increasing`, `stable` or `decreasing`: the requests of the last half of `slots` against the first half
    (the middle slot of an odd count left out), by `GROWTH`. Use out of nothing is `increasing`; None under two
    slots."""
    half = len(slots) // 2
    if not half:
        return None
    first, second = sum(slots[:half]), sum(slots[-half:])
    if not first:
        return "increasing" if second else "stable"
    change = Fraction(second - first, first)
    return "increasing" if change > GROWTH else "decreasing" if change < -GROWTH else "stable"


_IMPACT = {
    "leaked_key": "security_risk",
    "cost_spike": "cost_increase",
    "runaway_script": "cost_increase",
    "projected_cap_crossing": "budget_overrun",
}


def impact(kind: str) -> str:
    """What an anomaly of `kind` threatens: `security_risk` (a leaked key), `cost_increase` (a spike, a runaway
    script) or `budget_overrun` (a cap it is heading past)."""
    return _IMPACT[kind]


def severity(kind: str, *, baseline: Decimal, observed: Decimal) -> str:
    """How much an anomaly matters, from the figures its detector judged it on.

    A leaked key and a runaway script are `high`: spend nobody meant. A cost spike is `high` at 10 times its
    baseline or more, else `medium`. A projected cap crossing (baseline: the cap; observed: the projection) is
    `high` at 1.5 times the cap or more, `medium` at 1.2 times, else `low`.
    """
    if kind in ("leaked_key", "runaway_script"):
        return "high"
    if kind == "cost_spike":
        return "high" if observed >= 10 * baseline else "medium"
    return (
        "high"
        if observed >= Decimal("1.5") * baseline
        else "medium"
        if observed >= Decimal("1.2") * baseline
        else "low"
    )
