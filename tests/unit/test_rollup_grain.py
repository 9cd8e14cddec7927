"""The rollups' quarter-hour grain cuts every local day exactly: each day's start, in any zone in use, is a
whole number of quarter hours of UTC (docs/ledger.md, "Rollups and spend counters")."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from farebox.core.periods import Period, period_end, period_start
from farebox.ledger.schema import ROLLUP_BUCKET_SECONDS

ODD_ZONES = [
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "Australia/Eucla",  # +08:45
    "Pacific/Chatham",  # +12:45, +13:45 in summer
    "America/St_Johns",  # -03:30, with daylight saving
    "Australia/Lord_Howe",  # +10:30, and a half-hour daylight saving shift
    "Asia/Tehran",  # +03:30, daylight saving until 2022
    "Pacific/Marquesas",  # -09:30
    "America/New_York",  # 23- and 25-hour days
]


def _day_starts(tz: ZoneInfo, first: date, last: date) -> list[datetime]:
    day = datetime.combine(first, datetime.min.time(), tz) + timedelta(hours=12)
    starts = []
    while day.date() <= last:
        starts.append(period_start(Period.DAILY, at=day, tz=tz))
        day += timedelta(days=1)
    return starts


@pytest.mark.parametrize("name", ODD_ZONES)
def test_every_local_day_from_1990_to_2040_starts_on_a_quarter_hour_of_utc(name: str) -> None:
    tz = ZoneInfo(name)
    for start in _day_starts(tz, date(1990, 1, 1), date(2040, 12, 31)):
        assert int(start.timestamp()) % ROLLUP_BUCKET_SECONDS == 0, start
        end = period_end(Period.DAILY, start=start, tz=tz)
        assert end is not None and int(end.timestamp()) % ROLLUP_BUCKET_SECONDS == 0, end


def test_every_zone_s_days_this_year_and_next_start_on_a_quarter_hour_of_utc() -> None:
    this_year = datetime.now(UTC).year
    off_grain = [
        (name, start)
        for name in sorted(zoneinfo.available_timezones())
        for start in _day_starts(ZoneInfo(name), date(this_year, 1, 1), date(this_year + 1, 12, 31))
        if int(start.timestamp()) % ROLLUP_BUCKET_SECONDS
    ]
    assert off_grain == []


def test_daylight_saving_days_are_23_and_25_hours_of_whole_buckets() -> None:
    tz = ZoneInfo("America/New_York")
    spring, autumn = datetime(2026, 3, 8, 12, tzinfo=tz), datetime(2026, 11, 1, 12, tzinfo=tz)
    lengths = []
    for at in (spring, autumn):
        start = period_start(Period.DAILY, at=at, tz=tz)
        end = period_end(Period.DAILY, start=start, tz=tz)
        assert end is not None
        lengths.append((end.timestamp() - start.timestamp()) / ROLLUP_BUCKET_SECONDS)
    assert lengths == [23 * 4, 25 * 4]
