"""`core.throttle.Throttle`: failures per name in a sliding window, in bounded memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from farebox.core.throttle import Throttle

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def test_a_name_waits_after_its_limit_until_its_oldest_failure_leaves_the_window() -> None:
    throttle = Throttle(limit=3, window=15 * MINUTE)
    for minute in (0, 5, 6):
        assert throttle.wait("mo", now=T0 + minute * MINUTE) is None
        throttle.failed("mo", now=T0 + minute * MINUTE)
    assert throttle.wait("mo", now=T0 + 6 * MINUTE) == 9 * MINUTE
    assert throttle.wait("mia", now=T0 + 6 * MINUTE) is None
    assert throttle.wait("mo", now=T0 + 15 * MINUTE) is None
    throttle.failed("mo", now=T0 + 15 * MINUTE)  # the window slides: failures at 5, 6 and 15 count
    assert throttle.wait("mo", now=T0 + 16 * MINUTE) == 4 * MINUTE


def test_forgetting_a_name_clears_its_failures() -> None:
    throttle = Throttle(limit=1, window=MINUTE)
    throttle.failed("mo", now=T0)
    assert throttle.wait("mo", now=T0) == MINUTE
    throttle.forget("mo")
    assert throttle.wait("mo", now=T0) is None


def test_at_most_max_names_are_remembered_the_least_recently_failed_go_first() -> None:
    throttle = Throttle(limit=1, window=MINUTE, max_names=2)
    for name in ("a", "b", "a", "c"):
        throttle.failed(name, now=T0)
    assert [throttle.wait(name, now=T0) for name in ("a", "b", "c")] == [MINUTE, None, MINUTE]


@pytest.mark.parametrize("bad", [{"limit": 0}, {"window": timedelta(0)}, {"max_names": 0}])
def test_a_throttle_needs_a_limit_a_window_and_room(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="at least one name"):
        Throttle(**{"limit": 1, "window": MINUTE, **bad})  # type: ignore[arg-type]
