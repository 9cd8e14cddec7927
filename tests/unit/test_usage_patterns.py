"""The rules of usage patterns, at their edges: peak and low hours, weekend quietness, which rhythm a series has,
tiers of users, a model's trend and an anomaly's severity."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from farebox.analytics.usage_patterns import HourProfile, Rhythm, Tier, WeekSplit, growth_trend, impact, severity, tiers

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)


def hours(per_hour_of_day: list[int], days: int = 1) -> list[tuple[datetime, int]]:
    return [
        (MONDAY + timedelta(days=day, hours=hour), per_hour_of_day[hour]) for day in range(days) for hour in range(24)
    ]


def test_a_peak_hour_is_at_least_a_quarter_over_the_mean_and_a_low_one_at_most_half() -> None:
    counts = [4] * 24
    counts[0], counts[1], counts[2], counts[3] = 2, 6, 5, 3  # 96 requests: the mean hour has 4
    profile = HourProfile.of(hours(counts))
    assert profile == HourProfile(peak=[1, 2], low=[0]), "5 is exactly 1.25x and 2 exactly half the mean"
    assert HourProfile.of(hours(counts, days=4)) == profile, "averages over the days that saw each hour"


def test_no_requests_no_peak_and_an_hour_never_seen_is_in_neither_list() -> None:
    assert HourProfile.of(hours([0] * 24)) == HourProfile([], [])
    only_morning = [(MONDAY + timedelta(hours=hour), 1 + hour) for hour in range(6)]  # 1 to 6: the mean is 3.5
    assert HourProfile.of(only_morning) == HourProfile([4, 5], [0])


@pytest.mark.parametrize(
    ("split", "quieter"),
    [
        (WeekSplit(30, 5, 4, 2), True),  # 6 a weekday against 2: 3x
        (WeekSplit(15, 5, 4, 2), True),  # 3 against 2: exactly 1.5x
        (WeekSplit(14, 5, 4, 2), False),
        (WeekSplit(10, 5, 0, 2), True),  # quiet weekends: nothing at all
        (WeekSplit(0, 5, 0, 2), False),  # nothing anywhere
        (WeekSplit(10, 5, 0, 0), False),  # no weekend seen
    ],
)
def test_quieter_weekends(split: WeekSplit, quieter: bool) -> None:
    assert split.quieter_weekends() is quieter


def test_a_split_counts_local_dates_by_their_weekday() -> None:
    days = {date(2026, 3, 6): 10, date(2026, 3, 7): 3, date(2026, 3, 8): 1, date(2026, 3, 9): 20}  # Fri to Mon
    assert WeekSplit.of(days) == WeekSplit(30, 2, 4, 2)


def series(day: list[int], weeks: int = 3, *, weekend: list[int] | None = None) -> list[int]:
    return [value for d in range(7 * weeks) for value in (weekend if weekend is not None and d % 7 >= 5 else day)]


OFFICE = [4 if 9 <= hour < 17 else 0 for hour in range(24)]
EVENING = [1 + (6 if 18 <= hour < 23 else 0) for hour in range(24)]


@pytest.mark.parametrize(
    ("requests", "peak", "week", "pattern"),
    [
        (series(OFFICE, weekend=[0] * 24), list(range(9, 17)), WeekSplit(480, 15, 0, 6), "business_hours"),
        # office hours every day of the week: weekends are as busy, so a daily rhythm
        (series(OFFICE), list(range(9, 17)), WeekSplit(480, 15, 192, 6), "daily"),
        (series(EVENING), list(range(18, 23)), WeekSplit(825, 15, 330, 6), "daily"),
        # a batch on Mondays: nothing repeats a day later, everything a week later
        ([5 if hour < 24 else 0 for hour in range(168)] * 3, [], WeekSplit(120, 15, 0, 6), "weekly"),
        ([3] * 504, [], WeekSplit(), "none"),
    ],
)
def test_the_rhythm_of_a_series(requests: list[int], peak: list[int], week: WeekSplit, pattern: str) -> None:
    rhythm = Rhythm.of(requests)
    assert rhythm.pattern(peak_hours=peak, week=week) == pattern
    assert rhythm.detected is (pattern != "none")


def test_a_rhythm_needs_three_days_and_a_weekly_one_two_weeks() -> None:
    assert Rhythm.of(series(OFFICE, weeks=1)[:71]) == Rhythm(None, None)
    assert Rhythm.of(series(OFFICE, weeks=2)[:335]).weekly is None
    short = Rhythm.of(series(OFFICE, weeks=2)[:72])
    assert short.daily == pytest.approx(1) and short.weekly is None and short.strength == pytest.approx(1)
    assert Rhythm(None, None).strength is None and not Rhythm(None, None).detected
    assert Rhythm(-0.5, None).strength == 0, "a negative correlation is no rhythm"


@pytest.mark.parametrize(
    ("costs", "expected"),
    [
        ({"a": 50, "b": 30, "c": 10, "d": 5, "e": 3, "f": 2}, "PPMMLL"),
        ({"a": 10, "b": 10, "c": 10, "d": 10}, "PPPP"),  # the same cost, the same tier
        ({"a": 90, "b": 5, "c": 5}, "PMM"),
        ({"a": 79, "b": 16, "c": 5}, "PPL"),  # 79 before b is under 80%; 95 before c is not under 95%
        ({"a": 0, "b": 0}, "LL"),  # nothing cost anything
        ({}, ""),
    ],
)
def test_tiers(costs: dict[str, int], expected: str) -> None:
    letters = {Tier.POWER: "P", Tier.MEDIUM: "M", Tier.LIGHT: "L"}
    found = tiers(costs)
    assert "".join(letters[found[user]] for user in costs) == expected


@pytest.mark.parametrize(
    ("slots", "trend"),
    [
        ([1, 1, 2, 2], "increasing"),
        ([5, 5, 99, 6, 6], "stable"),  # the middle slot of five is left out; 12 on 10 is +20%, not over it
        ([5, 5, 7, 7], "increasing"),
        ([5, 5, 4, 4], "stable"),  # -20%
        ([5, 5, 3, 4], "decreasing"),
        ([0, 0, 1, 0], "increasing"),
        ([0, 0, 0, 0], "stable"),
        ([7], None),
        ([], None),
    ],
)
def test_growth_trend(slots: list[int], trend: str | None) -> None:
    assert growth_trend(slots) == trend


@pytest.mark.parametrize(
    ("kind", "baseline", "observed", "impact_", "severity_"),
    [
        ("leaked_key", "0.01", "5", "security_risk", "high"),
        ("runaway_script", "0", "5", "cost_increase", "high"),
        ("cost_spike", "1", "9.99", "cost_increase", "medium"),
        ("cost_spike", "1", "10", "cost_increase", "high"),
        ("projected_cap_crossing", "100", "119.99", "budget_overrun", "low"),
        ("projected_cap_crossing", "100", "120", "budget_overrun", "medium"),
        ("projected_cap_crossing", "100", "150", "budget_overrun", "high"),
    ],
)
def test_impact_and_severity(kind: str, baseline: str, observed: str, impact_: str, severity_: str) -> None:
    assert impact(kind) == impact_
    assert severity(kind, baseline=Decimal(baseline), observed=Decimal(observed)) == severity_
