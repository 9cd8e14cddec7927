"""`QueryTimes`: nearest-rank percentiles of each endpoint's latest answers, and its counts since the start."""

from __future__ import annotations

from decimal import Decimal

from farebox.analytics.query_times import KEPT, QueryTimes


def test_percentiles_are_nearest_rank_over_the_latest_answers() -> None:
    times = QueryTimes()
    for value in range(100, 0, -1):
        times.record("GET", "/a", float(value))
    times.record("GET", "/a", None)
    (only,) = times.summary()
    assert (only.requests, only.errors) == (101, 1)
    assert (only.p50_ms, only.p95_ms, only.max_ms) == (Decimal("50.0"), Decimal("95.0"), Decimal("100.0"))


def test_only_the_latest_answers_are_kept_and_the_slowest_endpoint_comes_first() -> None:
    times = QueryTimes()
    for value in range(1, KEPT + 501):
        times.record("GET", "/slow", float(value))
    times.record("POST", "/fast", 0.04)
    slow, fast = times.summary()
    assert (slow.path, slow.requests, slow.p50_ms, slow.max_ms) == (
        "/slow",
        KEPT + 500,
        Decimal("1000.0"),
        Decimal("1500.0"),
    )
    assert (fast.method, fast.p50_ms) == ("POST", Decimal("0.0"))
    errors_only = QueryTimes()
    errors_only.record("GET", "/broken", None)
    assert errors_only.summary()[0].p95_ms is None
