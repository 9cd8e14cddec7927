"""Spend anomaly detectors over synthetic hourly histories: what fires, what does not, and exactly why."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from farebox.core.anomalies import (
    Anomaly,
    AnomalyThresholds,
    detect_cost_spike,
    detect_leaked_key,
    detect_projected_crossing,
    detect_runaway_script,
    detect_spend_anomalies,
)
from farebox.core.money import NANO_PER_USD

USD = NANO_PER_USD
CENT = USD // 100
DEFAULTS = AnomalyThresholds()
NOW = datetime(2024, 5, 15, 12, 30, tzinfo=UTC)
"""Mid-hour: the window is the current (partial) hour, 12:00-13:00 UTC; the baseline the 168 hours before."""
WINDOW_START = datetime(2024, 5, 15, 12, tzinfo=UTC)
WINDOW_END = datetime(2024, 5, 15, 13, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def hour(at: datetime) -> int:
    """The series key of the UTC hour `at` starts."""
    return int(at.timestamp())


def utc(year: int, month: int, day: int, h: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, h, minute, tzinfo=UTC)


def steady(per_hour: int, *, hours: int, end: datetime) -> dict[int, int]:
    """`per_hour` in each of the `hours` hours before `end`."""
    return {hour(end - timedelta(hours=h)): per_hour for h in range(1, hours + 1)}


def busy_key(window_spend: int, *, per_hour: int = USD) -> dict[int, int]:
    """A full baseline week at `per_hour`, then `window_spend` in the current hour."""
    return {**steady(per_hour, hours=168, end=WINDOW_START), hour(WINDOW_START): window_spend}


def spike(hourly: dict[int, int], thresholds: AnomalyThresholds = DEFAULTS, now: datetime = NOW) -> Anomaly | None:
    return detect_cost_spike(hourly, scope="key", scope_id="k1", now=now, thresholds=thresholds)


def leak(hourly: dict[int, int], thresholds: AnomalyThresholds = DEFAULTS) -> Anomaly | None:
    return detect_leaked_key(hourly, scope="key", scope_id="k1", now=NOW, thresholds=thresholds)


def runaway(
    hourly: dict[int, int], *, now: datetime, tz: ZoneInfo = PARIS, thresholds: AnomalyThresholds = DEFAULTS
) -> Anomaly | None:
    return detect_runaway_script(hourly, scope="member", scope_id="m1", now=now, tz=tz, thresholds=thresholds)


# --- cost spike -----------------------------------------------------------------------------------


def test_spike_fires_above_three_times_the_baseline_per_window() -> None:
    found = spike(busy_key(4 * USD))
    assert found == Anomaly(
        kind="cost_spike",
        scope="key",
        scope_id="k1",
        window_start=WINDOW_START,
        window_end=WINDOW_END,
        baseline_nano=USD,
        observed_nano=4 * USD,
        message="Key 'k1' spent 4.00 USD in the last 1 hour, more than 3x its usual 1.00 USD per hour.",
    )


def test_spike_over_a_multi_hour_window() -> None:
    thresholds = AnomalyThresholds(window_seconds=3 * 3600)
    start = utc(2024, 5, 15, 10)
    burst = {hour(start): 2 * USD, hour(start) + 3600: 150 * CENT, hour(start) + 7200: 150 * CENT}
    hourly = {**steady(50 * CENT, hours=168, end=start), **burst}
    found = spike(hourly, thresholds)
    assert found is not None
    assert (found.window_start, found.window_end) == (start, WINDOW_END)
    assert (found.baseline_nano, found.observed_nano) == (150 * CENT, 5 * USD)
    # hour by hour it is no spike: 1.50 USD against 3 x (86.50 USD / 168 hours) = 1.544... USD
    assert spike(hourly) is None


def test_spike_counts_the_current_partial_hour_and_ignores_later_hours() -> None:
    hourly = busy_key(USD)
    hourly[hour(WINDOW_END)] = 100 * USD  # a bucket after `now`'s hour is not part of the window
    assert spike(hourly) is None
    found = spike(hourly, now=WINDOW_END)  # an hour later it is the window, and the baseline moved on
    assert found is not None and found.observed_nano == 100 * USD


def test_spike_comparison_is_exact() -> None:
    assert spike(busy_key(3 * USD)) is None  # exactly 3x is not more than 3x
    assert spike(busy_key(3 * USD + 1)) is not None
    # A baseline of 1 USD + 0.5 nano per window: 3x is 3 USD + 1.5 nano. A floored baseline would fire on +1.
    hourly = busy_key(3 * USD + 1)
    hourly[hour(WINDOW_START - timedelta(hours=1))] += 84
    assert spike(hourly) is None
    hourly[hour(WINDOW_START)] += 1
    found = spike(hourly)
    assert found is not None and (found.baseline_nano, found.observed_nano) == (USD, 3 * USD + 2)


@pytest.mark.parametrize(
    ("name", "hourly"),
    [
        ("steady busy key", busy_key(USD)),
        ("busy key doubling", busy_key(2 * USD)),
        ("brand-new key", {hour(WINDOW_START): 50 * USD}),
        ("zero baseline, history older than the baseline", {hour(utc(2024, 5, 1)): USD, hour(WINDOW_START): 50 * USD}),
        ("above 3x but under the 1 USD minimum", busy_key(90 * CENT, per_hour=CENT)),
        ("nothing at all", {}),
    ],
)
def test_spike_does_not_fire(name: str, hourly: dict[int, int]) -> None:
    assert spike(hourly) is None, name


def test_spike_thresholds_are_per_account() -> None:
    assert spike(busy_key(4 * USD), AnomalyThresholds(spike_multiplier=Decimal("5"))) is None
    assert spike(busy_key(2 * USD), AnomalyThresholds(spike_multiplier=Decimal("1.5"))) is not None
    small = busy_key(90 * CENT, per_hour=CENT)
    found = spike(small, AnomalyThresholds(spike_min_nano=50 * CENT))
    assert found is not None and (found.baseline_nano, found.observed_nano) == (CENT, 90 * CENT)
    # busy only for the last day: a week's baseline dilutes it to 1/7 USD an hour, a day's baseline does not
    hourly = {**steady(USD, hours=24, end=WINDOW_START), hour(WINDOW_START): 3 * USD}
    found = spike(hourly)
    assert found is not None and found.baseline_nano == USD // 7
    assert spike(hourly, AnomalyThresholds(baseline_hours=24)) is None


# --- leaked key -----------------------------------------------------------------------------------

QUIET_KEY = {hour(utc(2024, 5, 12, 9)): 70 * CENT, hour(WINDOW_START): 6 * USD}
"""Used once three days ago (0.70 USD in the week: 0.10 USD a day), then 6 USD in the current hour."""


def test_leak_fires_for_a_quiet_key_that_suddenly_spends() -> None:
    found = leak(QUIET_KEY)
    assert found is not None
    assert (found.kind, found.scope, found.scope_id) == ("leaked_key", "key", "k1")
    assert (found.window_start, found.window_end) == (WINDOW_START, WINDOW_END)
    assert (found.baseline_nano, found.observed_nano) == (10 * CENT, 6 * USD)
    assert found.message == (
        "Key 'k1' spent 6.00 USD in the last 1 hour after averaging 0.10 USD a day over the previous 168 hours; "
        "it may have leaked."
    )


def test_leak_fires_for_a_key_silent_all_week_but_used_before() -> None:
    hourly = {hour(WINDOW_START - timedelta(hours=200)): 2 * USD, hour(WINDOW_START): 5 * USD}
    found = leak(hourly)
    assert found is not None and (found.baseline_nano, found.observed_nano) == (0, 5 * USD)


def test_leak_quiet_limit_is_inclusive_and_exact() -> None:
    week = 7 * 50 * CENT  # averages exactly 0.50 USD a day
    at_limit = {hour(utc(2024, 5, 10)): week, hour(WINDOW_START): 10 * USD}
    found = leak(at_limit)
    assert found is not None and found.baseline_nano == 50 * CENT
    over = {hour(utc(2024, 5, 10)): week + 7, hour(WINDOW_START): 10 * USD}  # 0.50 USD + 1 nano a day
    assert leak(over) is None


@pytest.mark.parametrize(
    ("name", "hourly"),
    [
        ("brand-new key", {hour(WINDOW_START): 50 * USD}),
        ("brand-new key, spending for a while", steady(10 * USD, hours=1, end=WINDOW_END)),
        ("quiet key, small bump", {hour(utc(2024, 5, 12, 9)): 70 * CENT, hour(WINDOW_START): 4 * USD}),
        ("quiet key, 1 nano under the minimum", {hour(utc(2024, 5, 12)): CENT, hour(WINDOW_START): 5 * USD - 1}),
        ("busy key spiking", busy_key(10 * USD)),
        ("only a refund before", {hour(utc(2024, 5, 12)): -USD, hour(WINDOW_START): 6 * USD}),
    ],
)
def test_leak_does_not_fire(name: str, hourly: dict[int, int]) -> None:
    assert leak(hourly) is None, name


def test_leak_thresholds_are_per_account() -> None:
    bump = {hour(utc(2024, 5, 12, 9)): 70 * CENT, hour(WINDOW_START): 4 * USD}
    assert leak(bump, AnomalyThresholds(leak_min_nano=2 * USD)) is not None
    assert leak(QUIET_KEY, AnomalyThresholds(leak_min_nano=10 * USD)) is None
    # 0.40 USD a day over the week is 1.20 USD per 3x day-long window: 20x that is 8 USD, more than the 6 spent
    daily = {hour(utc(2024, 5, 14)) - h * 86_400: 40 * CENT for h in range(7)}
    hourly = {**daily, hour(WINDOW_START): 6 * USD}
    day_window = AnomalyThresholds(window_seconds=86_400)
    found = leak(hourly, day_window)
    assert found is not None and (found.baseline_nano, found.observed_nano) == (40 * CENT, 6 * USD)
    assert found.window_start == utc(2024, 5, 14, 13)
    assert leak(hourly, AnomalyThresholds(window_seconds=86_400, spike_multiplier=Decimal("20"))) is None
    busy = {**steady(USD, hours=24, end=WINDOW_START), hour(WINDOW_START): 10 * USD}  # 24 USD in the week
    assert leak(busy) is None
    assert leak(busy, AnomalyThresholds(quiet_daily_max_nano=4 * USD)) is not None


# --- runaway script -------------------------------------------------------------------------------

PARIS_NOW = utc(2024, 5, 15, 14, 30)
"""16:30 in Paris: today began at 2024-05-14T22:00Z; the previous seven days are 8-14 May."""
PARIS_TODAY = utc(2024, 5, 14, 22)


def paris_day(day: int) -> datetime:
    """Noon in Paris on `day` May 2024."""
    return utc(2024, 5, day, 10)


USED_LAST_MONTH = {hour(utc(2024, 4, 20, 12)): CENT}
"""A cent spent long before the look-back: the scope is not new, and its quiet days stay quiet."""


def test_runaway_fires_after_a_silent_week() -> None:
    hourly = {**USED_LAST_MONTH, hour(PARIS_TODAY): 2 * USD, hour(utc(2024, 5, 15, 14)): 4 * USD}
    found = runaway(hourly, now=PARIS_NOW)
    assert found == Anomaly(
        kind="runaway_script",
        scope="member",
        scope_id="m1",
        window_start=PARIS_TODAY,
        window_end=utc(2024, 5, 15, 15),
        baseline_nano=0,
        observed_nano=6 * USD,
        message=(
            "Member 'm1' has spent 6.00 USD today (Europe/Paris) after 7 of the previous 7 days near zero "
            "(mean 0.00 USD a day); a script may be running away."
        ),
    )


def test_runaway_ignores_a_scope_with_no_spend_before_today() -> None:
    new_key = {hour(utc(2024, 5, 15, 14)): 40 * USD}
    assert runaway(new_key, now=PARIS_NOW) is None
    assert runaway({**USED_LAST_MONTH, **new_key}, now=PARIS_NOW) is not None


def test_runaway_fires_with_two_busy_days_out_of_seven() -> None:
    hourly = {hour(paris_day(9)): USD, hour(paris_day(13)): USD, hour(paris_day(15)): 6 * USD}
    found = runaway(hourly, now=PARIS_NOW)
    assert found is not None
    assert (found.baseline_nano, found.observed_nano) == (2 * USD // 7, 6 * USD)
    assert found.baseline_nano == 285_714_285


def test_runaway_mean_multiplier_is_exact() -> None:
    before = {hour(paris_day(9)): 3 * USD, hour(paris_day(13)): 3 * USD}  # mean 6/7 USD: 10x is 8.571... USD
    assert runaway({**before, hour(paris_day(15)): 8 * USD}, now=PARIS_NOW) is None
    found = runaway({**before, hour(paris_day(15)): 9 * USD}, now=PARIS_NOW)
    assert found is not None and found.baseline_nano == 857_142_857
    exactly = {hour(paris_day(9)): 7 * CENT}  # 10x the mean is exactly 0.10 USD
    assert runaway({**exactly, hour(paris_day(15)): 10 * CENT}, now=PARIS_NOW, thresholds=_low_min()) is None
    assert runaway({**exactly, hour(paris_day(15)): 10 * CENT + 1}, now=PARIS_NOW, thresholds=_low_min()) is not None


def _low_min() -> AnomalyThresholds:
    return AnomalyThresholds(runaway_min_nano=CENT)


def _days(spend: dict[int, int], today: int) -> dict[int, int]:
    """Spend on the given May days (Paris noon), and `today` on 15 May, by a scope used last month."""
    return {**USED_LAST_MONTH, **{hour(paris_day(d)): s for d, s in spend.items()}, hour(paris_day(15)): today}


@pytest.mark.parametrize(
    ("name", "hourly"),
    [
        ("steady daily spend, then a big day", _days({d: 2 * USD for d in range(8, 15)}, 30 * USD)),
        ("only four quiet days", _days({9: 2 * CENT, 11: 2 * CENT, 13: 2 * CENT}, 50 * USD)),
        ("silent week, today under 5 USD", _days({}, 5 * USD - 1)),
        ("quiet, nothing today", _days({10: CENT}, 0)),
        ("the big spend was yesterday", _days({14: 50 * USD}, 0)),
        ("the spend is in a later hour than now's", {hour(utc(2024, 5, 15, 15)): 50 * USD}),
    ],
)
def test_runaway_does_not_fire(name: str, hourly: dict[int, int]) -> None:
    assert runaway(hourly, now=PARIS_NOW) is None, name


def test_runaway_near_zero_limit_is_inclusive() -> None:
    five_quiet = _days({9: 2 * USD, 11: 2 * USD, 13: CENT, 14: CENT}, 50 * USD)
    found = runaway(five_quiet, now=PARIS_NOW)
    assert found is not None and found.baseline_nano == (4 * USD + 2 * CENT) // 7
    assert runaway({**five_quiet, hour(paris_day(13)): CENT + 1}, now=PARIS_NOW) is None


def test_runaway_thresholds_are_per_account() -> None:
    small = _days({}, 4 * USD)
    assert runaway(small, now=PARIS_NOW) is None
    assert runaway(small, now=PARIS_NOW, thresholds=AnomalyThresholds(runaway_min_nano=USD)) is not None
    two_busy = _days({9: USD, 13: USD}, 6 * USD)
    assert runaway(two_busy, now=PARIS_NOW, thresholds=AnomalyThresholds(runaway_quiet_days=6)) is None
    assert runaway(two_busy, now=PARIS_NOW, thresholds=AnomalyThresholds(runaway_multiplier=Decimal("25"))) is None
    # a three-day look-back no longer sees the busy 9 May, and 13 May's 1 USD is one of three days
    found = runaway(two_busy, now=PARIS_NOW, thresholds=AnomalyThresholds(runaway_days=3, runaway_quiet_days=2))
    assert found is not None and found.baseline_nano == USD // 3
    assert (
        runaway(_days({9: 2 * CENT}, 6 * USD), now=PARIS_NOW, thresholds=AnomalyThresholds(runaway_zero_day_max_nano=0))
        is not None
    )


def test_runaway_days_are_local_across_the_fall_back() -> None:
    # New York, 4 Nov 2024 10:30 EST: the day began at 05:00Z (EST). The 04:00Z hour is 23:00 EST on 3 Nov.
    hourly = {hour(utc(2024, 11, 4, 4)): 3 * USD, hour(utc(2024, 11, 4, 5)): 6 * USD}
    found = runaway(hourly, now=utc(2024, 11, 4, 15, 30), tz=NEW_YORK)
    assert found is not None
    assert (found.window_start, found.window_end) == (utc(2024, 11, 4, 5), utc(2024, 11, 4, 16))
    assert (found.baseline_nano, found.observed_nano) == (3 * USD // 7, 6 * USD)


def test_runaway_counts_all_25_hours_of_the_fall_back_day() -> None:
    # 3 Nov 2024 in New York runs 04:00Z (EDT midnight) to 05:00Z the next day (EST midnight).
    start = utc(2024, 11, 3, 4)
    hourly = {hour(start) + h * 3600: 25 * CENT for h in range(25)}
    hourly[hour(utc(2024, 11, 3, 3))] = USD  # 23:00 EDT on 2 Nov
    found = runaway(hourly, now=utc(2024, 11, 4, 4, 30), tz=NEW_YORK)  # 23:30 EST on 3 Nov
    assert found is not None
    assert (found.window_start, found.window_end) == (start, utc(2024, 11, 4, 5))
    assert (found.baseline_nano, found.observed_nano) == (USD // 7, 625 * CENT)


def test_runaway_days_are_local_across_the_spring_forward() -> None:
    # Paris, 1 Apr 2024: the day began at 22:00Z (CEST). 31 Mar was 23 hours long: 23:00Z on 30 Mar to 22:00Z.
    hourly = {hour(utc(2024, 3, 31, 21)): 2 * CENT, hour(utc(2024, 3, 31, 22)): 6 * USD}
    hourly[hour(utc(2024, 3, 30, 22))] = 2 * CENT  # 23:00 CET on 30 Mar
    hourly[hour(utc(2024, 3, 30, 23))] = 2 * CENT  # 00:00 CET on 31 Mar
    found = runaway(hourly, now=utc(2024, 4, 1, 9, 10))
    assert found is not None
    assert (found.window_start, found.window_end) == (utc(2024, 3, 31, 22), utc(2024, 4, 1, 10))
    assert (found.baseline_nano, found.observed_nano) == (6 * CENT // 7, 6 * USD)
    # two non-quiet days (30 and 31 Mar, 0.04 USD on the 31st) leave five: one more tips it over
    hourly[hour(utc(2024, 3, 27, 12))] = 2 * CENT
    assert runaway(hourly, now=utc(2024, 4, 1, 9, 10)) is None


def test_runaway_days_in_a_half_hour_timezone() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")  # 15 May began at 18:30Z on the 14th; the 18:00Z hour starts at 23:30 IST
    now = utc(2024, 5, 15, 6)
    assert runaway({**USED_LAST_MONTH, hour(utc(2024, 5, 14, 18)): 6 * USD}, now=now, tz=kolkata) is None
    found = runaway({**USED_LAST_MONTH, hour(utc(2024, 5, 14, 19)): 6 * USD}, now=now, tz=kolkata)
    assert found is not None
    assert (found.window_start, found.window_end) == (datetime(2024, 5, 14, 18, 30, tzinfo=UTC), utc(2024, 5, 15, 7))


# --- projected cap crossing -----------------------------------------------------------------------

MAY = (utc(2024, 5, 1), utc(2024, 6, 1))  # 31 days


def project(
    spent: int,
    now: datetime,
    *,
    cap: int = 100 * USD,
    period: tuple[datetime, datetime] = MAY,
    thresholds: AnomalyThresholds = DEFAULTS,
) -> Anomaly | None:
    return detect_projected_crossing(
        scope="account",
        scope_id="acme",
        spent_nano=spent,
        cap_nano=cap,
        period_start=period[0],
        period_end=period[1],
        now=now,
        thresholds=thresholds,
    )


def test_projection_fires_when_the_rate_would_cross_the_cap() -> None:
    found = project(40 * USD, utc(2024, 5, 11))  # 10 of 31 days: 40 x 3.1 = 124 USD
    assert found == Anomaly(
        kind="projected_cap_crossing",
        scope="account",
        scope_id="acme",
        window_start=utc(2024, 5, 1),
        window_end=utc(2024, 6, 1),
        baseline_nano=100 * USD,
        observed_nano=124 * USD,
        message=(
            "Account 'acme' has spent 40.00 USD of its 100.00 USD cap; at the current rate it would cross the cap "
            "around 2024-05-26T00:00:00+00:00 and reach 124.00 USD by 2024-06-01T00:00:00+00:00."
        ),
    )


def test_projection_is_exact_integer_arithmetic() -> None:
    ten_days = utc(2024, 5, 11)
    assert project(32_258_064_516, ten_days) is None  # 99.9999999996 USD, floored to just under the cap
    found = project(32_258_064_517, ten_days)
    assert found is not None and found.observed_nano == 100_000_000_002


def test_projection_takes_the_period_start_in_any_timezone() -> None:
    start, end = datetime(2024, 5, 1, tzinfo=PARIS), datetime(2024, 6, 1, tzinfo=PARIS)
    found = project(40 * USD, datetime(2024, 5, 11, tzinfo=PARIS), period=(start, end))
    assert found is not None
    assert (found.window_start, found.window_end) == (utc(2024, 4, 30, 22), utc(2024, 5, 31, 22))
    assert found.window_start.tzinfo is UTC and found.observed_nano == 124 * USD


@pytest.mark.parametrize(
    ("name", "spent", "now"),
    [
        ("mid-period, projected below the cap", 30 * USD, utc(2024, 5, 11)),  # 93 USD
        ("too early in the period", 20 * USD, utc(2024, 5, 3)),  # 2/31 of it
        ("already at the cap", 100 * USD, utc(2024, 5, 11)),
        ("already over the cap", 150 * USD, utc(2024, 5, 11)),
        ("nothing spent", 0, utc(2024, 5, 20)),
        ("the period is over", 90 * USD, utc(2024, 6, 1)),
        ("the period has not begun", 90 * USD, utc(2024, 4, 30)),
    ],
)
def test_projection_does_not_fire(name: str, spent: int, now: datetime) -> None:
    assert project(spent, now) is None, name


def test_projection_minimum_elapsed_is_inclusive() -> None:
    ten_days = (utc(2024, 5, 1), utc(2024, 5, 11))
    found = project(11 * USD, utc(2024, 5, 2), period=ten_days)  # exactly 0.1 of the period
    assert found is not None and found.observed_nano == 110 * USD
    assert project(11 * USD, utc(2024, 5, 2) - timedelta(seconds=1), period=ten_days) is None


def test_projection_thresholds_are_per_account() -> None:
    early = utc(2024, 5, 3)
    found = project(20 * USD, early, thresholds=AnomalyThresholds(projection_min_elapsed=Decimal("0.05")))
    assert found is not None and found.observed_nano == 310 * USD
    assert "around 2024-05-11T00:00:00+00:00" in found.message
    assert (
        project(40 * USD, utc(2024, 5, 11), thresholds=AnomalyThresholds(projection_min_elapsed=Decimal("0.5"))) is None
    )


# --- all series detectors together, evidence, validation ------------------------------------------


def kinds(hourly: dict[int, int]) -> list[str]:
    found = detect_spend_anomalies(hourly, scope="key", scope_id="k1", now=NOW, tz=ZoneInfo("UTC"), thresholds=DEFAULTS)
    return [anomaly.kind for anomaly in found]


def test_a_leak_suppresses_the_spike_over_the_same_window() -> None:
    assert spike(QUIET_KEY) is not None and leak(QUIET_KEY) is not None
    # a silent week and 6 USD today is also a runaway day: that one stays
    assert kinds(QUIET_KEY) == ["leaked_key", "runaway_script"]
    assert kinds(busy_key(4 * USD)) == ["cost_spike"]
    assert kinds(busy_key(2 * USD)) == []


def test_evidence_is_json_ready() -> None:
    found = leak(QUIET_KEY)
    assert found is not None
    evidence = found.evidence()
    assert evidence == {
        "kind": "leaked_key",
        "scope": "key",
        "scope_id": "k1",
        "window_start": "2024-05-15T12:00:00+00:00",
        "window_end": "2024-05-15T13:00:00+00:00",
        "baseline": "0.10",
        "observed": "6.00",
        "message": found.message,
    }
    assert json.loads(json.dumps(evidence)) == evidence


@pytest.mark.parametrize(
    "fields",
    [
        {"window_seconds": 1800},
        {"window_seconds": 0},
        {"baseline_hours": 0},
        {"runaway_days": 0},
        {"runaway_quiet_days": 8},
        {"spike_multiplier": 3.0},
        {"runaway_multiplier": Decimal("NaN")},
        {"projection_min_elapsed": Decimal("-0.1")},
    ],
)
def test_thresholds_refuse_values_that_cannot_work(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AnomalyThresholds(**fields)  # type: ignore[arg-type]  # deliberately wrong values


def test_anomaly_refuses_unknown_kinds_and_scopes() -> None:
    with pytest.raises(ValueError, match="kind"):
        Anomaly("surprise", "key", "k1", WINDOW_START, WINDOW_END, 0, 0, "")
    with pytest.raises(ValueError, match="scope"):
        Anomaly("cost_spike", "team", "k1", WINDOW_START, WINDOW_END, 0, 0, "")


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        spike(busy_key(4 * USD), now=datetime(2024, 5, 15, 12, 30))
    with pytest.raises(ValueError, match="naive"):
        runaway({}, now=datetime(2024, 5, 15, 12, 30))
