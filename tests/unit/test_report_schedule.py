"""When a scheduled report's slots fall (`farebox.core.report_schedule`): daily, weekly and monthly local times, across
changes of clocks and in zones half and three quarters of an hour off UTC; and which days each run covers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from farebox.core.report_schedule import Frequency, Timing

NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")  # +05:30
KATHMANDU = ZoneInfo("Asia/Kathmandu")  # +05:45
UTC_ZONE = ZoneInfo("UTC")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def daily(at: time, zone: ZoneInfo = UTC_ZONE) -> Timing:
    return Timing(Frequency.DAILY, at, zone)


@pytest.mark.parametrize(
    ("now", "latest", "following"),
    [
        (utc(2026, 12, 6, 9, 0), utc(2026, 12, 6, 9, 0), utc(2026, 12, 7, 9, 0)),  # at the slot: it is the latest
        (utc(2026, 12, 6, 8, 59, 59), utc(2026, 12, 5, 9, 0), utc(2026, 12, 6, 9, 0)),
        (utc(2026, 12, 6, 23, 0), utc(2026, 12, 6, 9, 0), utc(2026, 12, 7, 9, 0)),
        (utc(2027, 1, 1, 0, 0), utc(2026, 12, 31, 9, 0), utc(2027, 1, 1, 9, 0)),
    ],
)
def test_a_daily_slot_is_the_latest_local_time_at_or_before_now(
    now: datetime, latest: datetime, following: datetime
) -> None:
    timing = daily(time(9, 0))
    assert timing.latest(now) == latest
    assert timing.following(latest) == following


def test_a_daily_slot_keeps_its_local_time_across_both_changes_of_clocks() -> None:
    timing = daily(time(9, 0), NEW_YORK)
    spring = [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13)]  # EST, then EDT from 8 March
    autumn = [utc(2026, 10, 31, 13), utc(2026, 11, 1, 14), utc(2026, 11, 2, 14)]  # EDT, then EST from 1 November
    for slots in (spring, autumn):
        assert [timing.following(slot) for slot in slots[:-1]] == slots[1:]
        assert timing.latest(slots[1]) == slots[1] and timing.latest(slots[2].replace(hour=0)) == slots[1]
        assert {slot.astimezone(NEW_YORK).time() for slot in slots} == {time(9, 0)}


def test_a_skipped_local_time_runs_when_the_clock_jumps_past_it_and_a_repeated_one_runs_once() -> None:
    skipped = daily(time(2, 30), NEW_YORK)  # 02:30 does not happen on 8 March 2026 in New York
    assert skipped.latest(utc(2026, 3, 8, 12)) == utc(2026, 3, 8, 7, 30)  # 03:30 EDT
    assert skipped.following(utc(2026, 3, 7, 7, 30)) == utc(2026, 3, 8, 7, 30)
    assert skipped.following(utc(2026, 3, 8, 7, 30)) == utc(2026, 3, 9, 6, 30)
    repeated = daily(time(1, 30), NEW_YORK)  # 01:30 happens twice on 1 November 2026: the first one counts
    assert repeated.latest(utc(2026, 11, 1, 12)) == utc(2026, 11, 1, 5, 30)
    assert repeated.following(utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 2, 6, 30)


@pytest.mark.parametrize(
    ("zone", "slot"),
    [(KOLKATA, utc(2026, 12, 6, 3, 30)), (KATHMANDU, utc(2026, 12, 6, 3, 15))],
)
def test_zones_off_by_a_half_and_three_quarters_of_an_hour(zone: ZoneInfo, slot: datetime) -> None:
    timing = daily(time(9, 0), zone)
    assert timing.latest(utc(2026, 12, 6, 12)) == slot
    assert timing.latest(slot.replace(minute=slot.minute - 1)) == slot.replace(day=5)
    # Late evening UTC is already the next local day there: its 09:00 is still ahead.
    assert timing.latest(utc(2026, 12, 6, 23)) == slot
    assert timing.covered(slot, days=None) == (date(2026, 12, 5), date(2026, 12, 5))


def test_a_weekly_slot_falls_on_its_weekday() -> None:
    timing = Timing(Frequency.WEEKLY, time(8, 0), ZoneInfo("UTC"), day=0)  # Mondays
    sunday, monday = utc(2026, 12, 6, 12), utc(2026, 12, 7, 8)
    assert timing.latest(sunday) == utc(2026, 11, 30, 8)
    assert timing.latest(monday) == monday
    assert timing.following(monday) == utc(2026, 12, 14, 8)
    assert timing.covered(monday, days=None) == (date(2026, 11, 30), date(2026, 12, 6))
    kathmandu = Timing(Frequency.WEEKLY, time(0, 10), KATHMANDU, day=0)  # Monday 00:10 there is Sunday 18:25 UTC
    assert kathmandu.latest(utc(2026, 12, 6, 18, 30)) == utc(2026, 12, 6, 18, 25)


def test_a_monthly_slot_falls_on_its_day_or_the_months_last() -> None:
    first = Timing(Frequency.MONTHLY, time(6, 0), KOLKATA, day=1)
    assert first.latest(utc(2026, 12, 6)) == utc(2026, 12, 1, 0, 30)
    assert first.latest(utc(2026, 12, 1, 0, 29)) == utc(2026, 11, 1, 0, 30)
    assert first.following(utc(2026, 12, 1, 0, 30)) == utc(2027, 1, 1, 0, 30)
    assert first.covered(utc(2026, 12, 1, 0, 30), days=None) == (date(2026, 11, 1), date(2026, 11, 30))
    last = Timing(Frequency.MONTHLY, time(9, 0), ZoneInfo("UTC"), day=31)
    assert last.latest(utc(2026, 12, 6)) == utc(2026, 11, 30, 9)
    assert last.following(utc(2026, 11, 30, 9)) == utc(2026, 12, 31, 9)
    assert last.following(utc(2027, 1, 31, 9)) == utc(2027, 2, 28, 9)
    assert last.following(utc(2027, 2, 28, 9)) == utc(2027, 3, 31, 9)


def test_a_period_of_days_ends_the_day_before_the_slot() -> None:
    timing = daily(time(9, 0), NEW_YORK)
    slot = utc(2026, 12, 6, 14)
    assert timing.covered(slot, days=7) == (date(2026, 11, 29), date(2026, 12, 5))
    monthly = Timing(Frequency.MONTHLY, time(9, 0), NEW_YORK, day=15)
    assert monthly.covered(utc(2026, 3, 15, 13), days=None) == (date(2026, 2, 1), date(2026, 2, 28))
    assert monthly.covered(utc(2026, 3, 15, 13), days=30) == (date(2026, 2, 13), date(2026, 3, 14))
