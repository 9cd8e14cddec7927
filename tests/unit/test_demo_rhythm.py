"""The demo's clock: its window, whole event counts that add up, months and VM days in each account's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from farebox.demo.cast import WorkloadSpec
from farebox.demo.fill import plan
from farebox.demo.rhythm import Window, allocate, vm_stretches
from farebox.errors import InvalidRequest
from farebox.ledger.workloads import WorkloadKind

NOW = datetime(2026, 12, 5, 13, 42, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("total", "weights"),
    [(100, [1.0, 2.0, 3.0]), (7, [0.3] * 24), (1_000_003, [0.12, 0.0, 5.5, 1e-9, 2.25]), (0, [1.0, 1.0])],
)
def test_counts_add_up_exactly_and_follow_the_weights(total: int, weights: list[float]) -> None:
    counts = allocate(total, weights)
    assert sum(counts) == total and all(count >= 0 for count in counts)
    for count, weight in zip(counts, weights, strict=True):
        assert abs(count - total * weight / sum(weights)) <= 1


def test_a_window_ending_today_stops_at_the_current_hour() -> None:
    window = Window.ending(date(2026, 12, 5), days=30, now=NOW)
    assert (window.start, window.end) == (datetime(2026, 11, 6, tzinfo=UTC), datetime(2026, 12, 5, 13, tzinfo=UTC))
    assert window.hours == 29 * 24 + 13
    past = Window.ending(date(2026, 11, 30), days=30, now=NOW)
    assert (past.start, past.end, past.hours) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
        720,
    )


def test_the_last_month_is_the_account_s_own() -> None:
    november = Window.ending(date(2026, 11, 30), days=30, now=NOW)
    start, end = november.last_month(ZoneInfo("Asia/Kolkata"))
    assert start == int(datetime(2026, 10, 31, 18, 30, tzinfo=UTC).timestamp()) * 1_000_000
    assert end == int(datetime(2026, 11, 30, 18, 30, tzinfo=UTC).timestamp()) * 1_000_000
    start, _ = Window.ending(date(2026, 12, 1), days=3, now=datetime(2026, 12, 1, 2, tzinfo=UTC)).last_month(
        ZoneInfo("America/Los_Angeles")
    )
    assert start == int(datetime(2026, 11, 1, 7, tzinfo=UTC).timestamp()) * 1_000_000, "still November there"


def test_vm_hours_follow_the_local_day_across_a_clock_change() -> None:
    window = Window.ending(date(2026, 11, 1), days=1, now=NOW)  # New York falls back on 1 November 2026
    new_york = ZoneInfo("America/New_York")
    always_on = WorkloadSpec("db", WorkloadKind.PLAIN_VM, "vm-small", (0, 24), weekends=True)
    assert sum(s.end - s.start for s in vm_stretches(always_on, window, new_york)) == 24 * 3_600, "the window's day"
    agent = WorkloadSpec("bot", WorkloadKind.AGENT, "vm-small", (0, 24), weekends=True)
    whole = Window(datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 11, 2, 5, tzinfo=UTC))
    (stretch,) = vm_stretches(agent, whole, new_york)
    assert stretch.running and stretch.end - stretch.start == 25 * 3_600, "a 25-hour local day"
    office = WorkloadSpec("runner", WorkloadKind.PLAIN_VM, "vm-large", (7, 19))
    assert vm_stretches(office, whole, new_york) == [], "a Sunday: off, and a plain VM is never paused"


def test_what_cannot_be_made_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="after today"):
        plan(events=100_000, days=30, end=date(2026, 12, 6), now=NOW)
    with pytest.raises(InvalidRequest, match="too few"):
        plan(events=1_000, days=366, end=date(2026, 12, 5), now=NOW)
    _, budget = plan(events=1_000, days=30, end=date(2026, 12, 5), now=NOW)
    assert budget.llm + budget.voice + budget.compute + budget.spike + budget.runaway == 1_000
