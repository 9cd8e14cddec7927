"""The spend forecast (`farebox.analytics.forecast`) backtested and checked on histories with known futures.

The backtest forecasts 7 days from each of 16 weekly origins over a history's last 112 days, the whole method
each time (the model's choice by its own backtest, the widening of its futures), and scores the 112 days it had
not seen: it prints the mean absolute percentage error and the share of days inside their 80% interval, which
must be 70% to 90%. The histories: synthetic series with a known trend, weekly season and noise, and the
`farebox demo` generator's traffic over 150 days (its leaked key's hour and runaway script included).
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from scipy import stats
from threadpoolctl import threadpool_limits

from farebox.analytics.forecast import MIN_MODEL_DAYS, RECENT_DAYS, Candidate, Stretch, change, evaluate, forecast
from farebox.demo.cast import CAST, workload_ids
from farebox.demo.rhythm import Window
from farebox.demo.traffic import BoundAccount, BoundKey, Traffic
from farebox.metering import Attribution, UsageEvents
from farebox.prices import DEFAULT_OVERRIDES_PATH, PriceBook

USD = 1_000_000_000
WEEK = (1.0, 1.1, 1.05, 1.0, 0.9, 0.35, 0.3)
"""Spend by weekday, relative: a working week and a quiet weekend."""


def _synthetic(days: int, *, level: float, slope: float, noise: float, seed: int, additive: bool = False) -> list[int]:
    """Daily spend of `level` USD, moving `slope` USD a day, shaped by `WEEK` (in proportion, or added as a
    fixed amount), with normal noise of `noise` times the level."""
    rng = random.Random(seed)
    series = []
    for day in range(days):
        trend = level + slope * day
        shaped = trend + level * (WEEK[day % 7] - 0.8) if additive else trend * WEEK[day % 7]
        series.append(max(0, round((shaped + rng.gauss(0, noise * level)) * USD)))
    return series


def _demo(days: int = 150, events: int = 45_000, seed: int = 7) -> list[int]:
    """The demo's traffic (`farebox demo`'s generator: its cast, rhythm and incidents) as spend per UTC day."""
    ids = workload_ids(seed)
    accounts = []
    for spec in CAST:
        account_id = uuid.UUID(int=len(accounts)).hex
        workloads = {workload.name: ids[(spec.name, workload.name)] for workload in spec.workloads}
        keys = []
        for key in spec.keys:
            key_id, member_id = uuid.uuid4().hex, uuid.uuid4().hex
            agent = workloads[key.agent] if key.agent else None
            keys.append(BoundKey(key, key_id, member_id, Attribution(account_id, key_id, member_id, agent, key.app)))
        accounts.append(BoundAccount(spec, account_id, tuple(keys), workloads))
    window = Window.ending(date(2026, 6, 30), days=days, now=datetime(2026, 7, 1, tzinfo=UTC))
    prices = UsageEvents(PriceBook.load(DEFAULT_OVERRIDES_PATH))
    traffic = Traffic(accounts, window=window, total=events, seed=seed, run="backtest", events=prices)
    spend: dict[date, int] = defaultdict(int)
    for batch in traffic.batches(5_000):
        for event in batch:
            spend[event.timestamp.astimezone(UTC).date()] += event.cost_nano
    first = window.start.date()
    return [spend[first + timedelta(days=day)] for day in range(days)]


HISTORIES: dict[str, Callable[[], list[int]]] = {
    "rising, weekly season in proportion, 10% noise": lambda: _synthetic(182, level=100, slope=0.3, noise=0.1, seed=1),
    "flat, weekly season added, 15% noise": lambda: _synthetic(
        182, level=50, slope=0, noise=0.15, seed=2, additive=True
    ),
    "falling, weekly season in proportion, 8% noise": lambda: _synthetic(
        182, level=200, slope=-0.4, noise=0.08, seed=4
    ),
    "the demo's 150 days": _demo,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", HISTORIES)
def test_the_80_percent_interval_holds_70_to_90_percent_of_days_it_had_not_seen(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    history = HISTORIES[name]()
    origins = range(len(history) - 16 * 7, len(history), 7)
    with threadpool_limits(1, user_api="blas"):
        scored = evaluate(history, origins=origins, days=7)
    with capsys.disabled():
        print(  # noqa: T201 -- the backtest's figures are for people to read, as the method's documentation cites them
            f"\n{name}: {scored.days} held-out days, MAPE {scored.mape:.1%}, 80% interval held {scored.coverage:.1%}"
        )
    assert scored.days == 112
    assert 0.7 <= scored.coverage <= 0.9
    assert scored.mape is not None and scored.mape < 0.2


def test_flat_spend_goes_on_as_it_is() -> None:
    projected = forecast([7 * USD] * 90, 30)
    assert (projected.method, projected.history_days) == ("recent_mean", 90)
    spread = projected.spread()
    assert (spread.mean, spread.lower, spread.upper) == (210 * USD, 210 * USD, 210 * USD)
    assert projected.quantile(0.9, 0, 10) == 70 * USD


def test_a_short_history_is_drawn_from_its_last_two_weeks() -> None:
    daily = [0] * 30 + [n * USD for n in range(1, MIN_MODEL_DAYS)]
    projected = forecast(daily, 1_000)
    assert (projected.method, projected.history_days) == ("recent_mean", MIN_MODEL_DAYS - 1), "from the first spend"
    drawn = set(projected.paths.flatten().tolist())
    assert drawn == {float(n * USD) for n in range(MIN_MODEL_DAYS - RECENT_DAYS, MIN_MODEL_DAYS)}
    assert abs(projected.spread(0, 1).mean / USD - 13.5) < 0.5, "the mean of 7 to 20"


def test_no_spend_projects_nothing() -> None:
    projected = forecast([0] * 50, 10)
    assert projected.method == "none" and projected.spread().upper == 0 and projected.over([Stretch(0, 10, 0, 0)]) == 0


def test_a_model_is_chosen_by_backtest_and_finds_the_weekly_season() -> None:
    with threadpool_limits(1, user_api="blas"):
        projected = forecast(_synthetic(120, level=100, slope=0.2, noise=0.05, seed=9), 14)
    assert projected.method == "ets" and projected.model is not None and projected.model.seasonal
    assert projected.backtest is not None and projected.backtest.days == 56 and projected.backtest.widening >= 1
    quiet, busy = projected.spread(4, 5).mean, projected.spread(6, 7).mean  # days 124 and 126: WEEK's 0.35 and 1.0
    assert quiet < busy / 2


def test_a_key_is_forecast_in_its_total_s_model_and_smoothing_with_its_own_level() -> None:
    total = _synthetic(120, level=100, slope=0.2, noise=0.05, seed=9)
    with threadpool_limits(1, user_api="blas"):
        whole = forecast(total, 14)
        assert whole.model is not None and whole.model.seasonal, "a weekly season"
        quarter = forecast([day // 4 for day in total], 14, like=whole)
        proportional = replace(whole, model=replace(whole.model, multiplicative=True))
        quiet_sundays = forecast([0 if n % 7 == 6 else day // 4 for n, day in enumerate(total)], 14, like=proportional)
    assert quarter.model == whole.model and quarter.parameters == whole.parameters and quarter.backtest is None
    assert abs(quarter.spread().mean - whole.spread().mean / 4) < whole.spread().mean * 0.01
    assert quiet_sundays.model == replace(whole.model, multiplicative=False), "a day without spend: additive"


def test_an_incident_does_not_move_the_projection_nor_widen_its_interval() -> None:
    calm = _synthetic(140, level=100, slope=0, noise=0.05, seed=3)
    incident = list(calm)
    incident[100] *= 10  # a leaked key's day, five weeks ago
    with threadpool_limits(1, user_api="blas"):
        before, after = forecast(calm, 28).spread(), forecast(incident, 28).spread()
    assert abs(after.mean - before.mean) < before.mean * 0.02
    assert after.upper - after.lower < (before.upper - before.lower) * 1.2


def test_a_model_whose_futures_diverge_is_not_used() -> None:
    rng = random.Random(20)
    erratic = [rng.randrange(1, USD) * (1_000 if rng.random() < 0.05 else 1) for _ in range(200)]
    with threadpool_limits(1, user_api="blas"):
        diverging = Candidate(trend=True, seasonal=True, multiplicative=True).simulate(
            np.asarray(erratic, dtype=np.float64), 30, np.random.default_rng(0)
        )
        projected = forecast(erratic, 30)
    assert diverging is None, "errors in proportion to a level that swings a thousandfold compound past all bounds"
    assert projected.model is not None and not projected.model.multiplicative
    assert projected.paths.max() < max(erratic)


def test_the_same_history_gives_the_same_forecast() -> None:
    history = _synthetic(60, level=30, slope=0.1, noise=0.2, seed=5)
    with threadpool_limits(1, user_api="blas"):
        first, second = forecast(history, 20), forecast(history, 20)
    assert first.spread() == second.spread() and first.model == second.model


def test_the_risk_of_passing_a_cap_counts_what_each_period_spent_before() -> None:
    projected = forecast([USD] * 30, 10)
    assert projected.over([Stretch(0, 10, 0, 10 * USD)]) == 0, "exactly at the cap is not over it"
    assert projected.over([Stretch(0, 10, 1, 10 * USD)]) == 1
    assert projected.over([Stretch(0, 4, 0, 5 * USD), Stretch(4, 10, 0, 5 * USD)]) == 1, "the second period"
    assert projected.within(0.1, spent=100 * USD) == 1


def test_a_change_s_confidence_is_welch_s_t_test() -> None:
    rng = random.Random(11)
    daily = [round(rng.gauss(10, 2) * USD) for _ in range(28)] + [round(rng.gauss(12, 3) * USD) for _ in range(28)]
    moved = change(daily, half=28)
    expected = stats.ttest_ind(daily[28:], daily[:28], equal_var=False)
    assert moved.daily == pytest.approx((sum(daily[28:]) - sum(daily[:28])) / 28)
    assert moved.confidence == pytest.approx(1 - expected.pvalue)
    assert change([USD] * 10 + [2 * USD] * 10, half=10).confidence == 1, "no noise: the change is certain"
    assert change([USD] * 20, half=10).confidence == 0
