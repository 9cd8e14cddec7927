"""The budget forecast's answer (seed 004's `data`): from the histories and budgets of an `Inputs`, the spend
projected over the horizon, per calendar month and per key, the risk of passing each cap, the budget that covers
the horizon, and the growth put down to models and keys.

It imports `farebox.analytics.forecast` (numpy, scipy, statsmodels), so it is imported by the first forecast
asked for, on the worker thread that computes it (`farebox.analytics.admin_forecast`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from threadpoolctl import threadpool_limits

from farebox.analytics.admin_common import CENTS, RATE, usd
from farebox.analytics.admin_forecast import RECENT_DAYS
from farebox.analytics.forecast import LEVEL, Forecast, Stretch, change, forecast
from farebox.core.money import NANO_PER_CENT
from farebox.core.periods import Period, period_end, period_start

if TYPE_CHECKING:
    from farebox.analytics.admin_forecast import Cap, Inputs

__all__ = ["BUDGET_QUANTILE", "CLOSE", "STABLE", "answer"]

TOP_FACTORS = 10
STABLE = Decimal("0.05")
"""A trend within 5% either way is stable."""
BUDGET_QUANTILE = 0.9
CLOSE = 0.1
"""A month's confidence: the probability that its spend lands within 10% of its projection."""


def _days(period: Period, day: date, tz: ZoneInfo) -> tuple[date, date]:
    """The local dates a cap's period holding `day` starts on and ends before (not for `total`)."""
    start = period_start(period, at=datetime(day.year, day.month, day.day, 12, tzinfo=tz), tz=tz)
    end = period_end(period, start=start, tz=tz)
    assert end is not None, "only the total period has no end"
    return start.astimezone(tz).date(), end.astimezone(tz).date()


def _stretches(inputs: Inputs, cap: Cap, daily: Sequence[int], spent_ever: int) -> list[Stretch]:
    """The cap's periods that the horizon touches, each with the days of it the horizon holds."""
    days = inputs.horizon.days
    if cap.period is Period.TOTAL:
        return [Stretch(0, days, spent_ever, cap.nano)]
    stretches = []
    day, end_of_horizon = inputs.today, inputs.today + timedelta(days=days)
    while day < end_of_horizon:
        start, end = _days(cap.period, day, inputs.tz)
        spent = inputs.spent(daily, start) if start < inputs.today else 0
        stretches.append(Stretch((day - inputs.today).days, min(days, (end - inputs.today).days), spent, cap.nano))
        day = end
    return stretches


def _cents(nano: int) -> Decimal:
    return usd(nano).quantize(CENTS, rounding=ROUND_HALF_EVEN)


def _up_to_cent(nano: int) -> Decimal:
    return usd(nano).quantize(CENTS, rounding=ROUND_CEILING)


def _probability(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(RATE, rounding=ROUND_HALF_EVEN)


def _recommended(nano: int) -> Decimal:
    """`nano` rounded up to two significant figures (17,345.67 to 18,000; 0.123 to 0.13), at least to the cent."""
    step = max(10 ** max(len(str(nano)) - 2, 0), NANO_PER_CENT)
    return usd(-(-nano // step) * step)


def _risk_level(risk: float | None) -> str:
    if risk is None:
        return "none"
    return "high" if risk >= 0.5 else "medium" if risk >= 0.1 else "low"


def _trend(inputs: Inputs, outlook: Forecast) -> str:
    """Increasing, decreasing or stable: the next `RECENT_DAYS` days' projected mean on the last ones' mean."""
    recent = inputs.total[-min(RECENT_DAYS, outlook.history_days) :] if outlook.history_days else []
    before = Decimal(sum(recent)) / len(recent) if recent else Decimal(0)
    ahead = Decimal(outlook.spread(0, RECENT_DAYS).mean) / RECENT_DAYS
    if not before:
        return "increasing" if ahead else "stable"
    change = (ahead - before) / before
    return "increasing" if change > STABLE else "decreasing" if change < -STABLE else "stable"


def _factors(outlook: Forecast, spent: int) -> list[str]:
    """What a month's projection stands on."""
    factors = ["spend_to_date"] if spent else []
    if outlook.model is not None:
        factors += ["level", *(["damped_trend"] if outlook.model.trend else [])]
        factors += ["weekly_seasonality"] if outlook.model.seasonal else []
    elif outlook.method == "recent_mean":
        factors.append("recent_average")
    return factors


def _months(inputs: Inputs, outlook: Forecast) -> list[dict[str, Any]]:
    """Every calendar month the horizon touches, whole: spend to date and the projection of its other days."""
    months = []
    month = inputs.today.replace(day=1)
    last = inputs.today + timedelta(days=inputs.horizon.days - 1)
    while month <= last:
        following = (month + timedelta(days=32)).replace(day=1)
        start, stop = max(0, (month - inputs.today).days), (following - inputs.today).days
        spent = inputs.spent(inputs.total, month) if month < inputs.today else 0
        spread = outlook.spread(start, stop)
        months.append(
            {
                "month": month.strftime("%Y-%m"),
                "projectedSpend": _cents(spent + spread.mean),
                "lower": _cents(spent + spread.lower),
                "upper": _cents(spent + spread.upper),
                "spentToDate": _cents(spent),
                "confidence": _probability(outlook.within(CLOSE, start, stop, spent=spent)),
                "factors": _factors(outlook, spent),
            }
        )
        month = following
    return months


def _key(inputs: Inputs, key_id: str, outlook: Forecast) -> dict[str, Any]:
    days = inputs.horizon.days
    spread = outlook.spread(0, days)
    cap = inputs.caps.get(key_id)
    daily = inputs.keys[key_id]
    risk = None if cap is None else outlook.over(_stretches(inputs, cap, daily, inputs.all_time.get(key_id, 0)))
    return {
        "keyId": key_id,
        "keyName": inputs.names.get(key_id),
        "projectedSpend": _cents(spread.mean),
        "lower": _cents(spread.lower),
        "upper": _cents(spread.upper),
        "budgetRequired": _up_to_cent(outlook.quantile(BUDGET_QUANTILE, 0, days)),
        "cap": None if cap is None else usd(cap.nano),
        "capPeriod": None if cap is None else cap.period.value,
        "overBudgetRisk": None if risk is None else _probability(risk),
        "riskLevel": _risk_level(risk),
    }


def _growth(inputs: Inputs, history_days: int) -> list[dict[str, Any]]:
    """How each model's and top key's daily spend moved between the last `RECENT_DAYS` and the ones before
    (halves of the history when it is shorter), largest impact on the horizon first."""
    half = min(RECENT_DAYS, history_days // 2)
    if half < 7:
        return []
    found: list[tuple[int, dict[str, Any]]] = []
    named = [("model", name, daily) for name, daily in inputs.models.items()]
    named += [("key", inputs.names.get(key_id, key_id), daily) for key_id, daily in inputs.keys.items()]
    for dimension, name, daily in named:
        moved = change(daily, half=half)
        impact = round(moved.daily * inputs.horizon.days)
        if impact:
            slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
            direction = "increased" if impact > 0 else "decreased"
            found.append(
                (
                    impact,
                    {
                        "factor": f"{direction}_{slug}_usage",
                        "dimension": dimension,
                        "name": name,
                        "impact": _cents(impact),
                        "dailyChange": _cents(round(moved.daily)),
                        "confidence": _probability(moved.confidence),
                    },
                )
            )
    return [factor for _, factor in sorted(found, key=lambda item: -abs(item[0]))][:TOP_FACTORS]


def answer(inputs: Inputs) -> dict[str, Any]:
    """The forecast's `data`, computed: a few hundred milliseconds of fitting and simulating, for a worker thread."""
    days = inputs.horizon.days
    last = inputs.today + timedelta(days=days - 1)
    # The futures run to the end of the last month the horizon touches, and at least `RECENT_DAYS` (the trend).
    simulated = max(((last.replace(day=28) + timedelta(days=4)).replace(day=1) - inputs.today).days, RECENT_DAYS)
    # BLAS's worker threads only fight each other over small matrices: five times slower on two busy cores. (Two
    # forecasts at once may restore each other's setting out of order: BLAS is then slower, never wrong.)
    with threadpool_limits(1, user_api="blas"):
        outlook = forecast(inputs.total, simulated)
        keys = {key_id: forecast(daily, days, like=outlook) for key_id, daily in inputs.keys.items()}
    spread = outlook.spread(0, days)
    budget = inputs.budget
    risk = (
        None if budget is None else outlook.over(_stretches(inputs, budget, inputs.total, inputs.all_time.get("", 0)))
    )
    required = outlook.quantile(BUDGET_QUANTILE, 0, days)
    backtest = outlook.backtest
    return {
        "horizon": inputs.horizon.text,
        "from": inputs.today.isoformat(),
        "to": last.isoformat(),
        "timezone": inputs.tz.key,
        "currentTrend": _trend(inputs, outlook),
        "confidenceLevel": Decimal(repr(LEVEL)),
        "method": {
            "name": outlook.method,
            "model": None if outlook.model is None else outlook.model.name,
            "historyDays": outlook.history_days,
            "backtest": None
            if backtest is None
            else {
                "days": backtest.days,
                "mape": None if backtest.mape is None else _probability(backtest.mape),
                "coverage": _probability(backtest.coverage),
                "widening": _probability(backtest.widening),
            },
        },
        "globalForecast": {
            "projectedSpend": _cents(spread.mean),
            "lower": _cents(spread.lower),
            "upper": _cents(spread.upper),
            "budgetRequired": _up_to_cent(required),
            "overBudgetRisk": None if risk is None else _probability(risk),
            "recommendedBudget": _recommended(required),
            "budget": None if budget is None else usd(budget.nano),
            "budgetPeriod": None if budget is None else budget.period.value,
        },
        "monthlyForecasts": _months(inputs, outlook),
        "keyForecasts": [_key(inputs, key_id, keys[key_id]) for key_id in inputs.keys],
        "growthFactors": _growth(inputs, outlook.history_days),
    }
