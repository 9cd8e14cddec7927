"""Forecasts of daily spend: a model of the history chosen by backtest, its simulated futures, and what they say.

Pure functions on lists of daily amounts (nano-USD, one per complete day, oldest first): no I/O, no clock. The
method (docs/forecast.md):

- The history is the days given, from the first with spend; incidents are smoothed over before a model is
  fitted (`_clean`).
- With at least `MIN_MODEL_DAYS` days that are not all the same, each of `CANDIDATES` (exponential smoothing
  state-space models with or without a damped trend and a 7-day season, additive or multiplicative) is fitted
  on the history as it stood `BACKTEST_DAYS` and twice that many days ago and scored on the days that
  followed; the one with the least mean absolute error is fitted on the whole history, `PATHS` futures are
  simulated from it and widened until its backtest's 80% interval held 80% of the days.
- Otherwise each future day is a day drawn at random from the last `RECENT_DAYS`: the projection is their
  mean, the interval their spread.

Every figure (a sum over days, its interval, the chance it passes a cap) is read from the same simulated
futures, so they agree with each other. Spend is never negative: simulated days below zero count as zero.
Importing this module loads numpy, scipy and statsmodels (about a second): a server imports it only when a
forecast is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from scipy import stats
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

__all__ = [
    "BACKTEST_DAYS",
    "CANDIDATES",
    "LEVEL",
    "MIN_MODEL_DAYS",
    "PATHS",
    "RECENT_DAYS",
    "Backtest",
    "Candidate",
    "Change",
    "Forecast",
    "Spread",
    "Stretch",
    "change",
    "evaluate",
    "forecast",
]

SEASON = 7
MIN_MODEL_DAYS = 21
"""Three weeks: the least history a weekly season is estimated from (two weeks start the model, one scores it)."""
MIN_FIT_DAYS = 16
"""The least history the heuristic initial states of a weekly season are computed from (statsmodels)."""
RECENT_DAYS = 14
BACKTEST_DAYS = 28
FOLDS = 2
PATHS = 1_000
LEVEL = 0.8
"""Every interval is the central 80% of the simulated futures (from their 10th to their 90th percentile)."""
MAX_WIDENING = 2.0
OUTLIER = 5.0
DIVERGED = 100
SEED = 4004
"""The futures are drawn from a fixed seed: the same history gives the same answer."""

Paths = npt.NDArray[np.float64]
"""Simulated futures: one row per path, one column per day, in nano-USD."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """An exponential smoothing state-space model, ETS(error, trend, season) in Hyndman's notation."""

    trend: bool
    """A damped additive trend."""
    seasonal: bool
    """A 7-day season."""
    multiplicative: bool = False
    """Errors and season in proportion to the level (only for a history without a day of no spend)."""

    @property
    def name(self) -> str:
        kind = "M" if self.multiplicative else "A"
        return f"ETS({kind},{'Ad' if self.trend else 'N'},{kind if self.seasonal else 'N'})"

    @property
    def additive(self) -> Candidate:
        """The same model with additive errors and season."""
        return Candidate(self.trend, self.seasonal)

    def fits(self, history: Paths) -> bool:
        """Whether the model can be fitted on `history`: a multiplicative one needs spend on every day."""
        return not self.multiplicative or bool(history.min() > 0)

    def simulate(
        self, history: Paths, days: int, rng: np.random.Generator, *, parameters: Mapping[str, float] | None = None
    ) -> tuple[Paths, dict[str, float]] | None:
        """`PATHS` futures of `days` days after `history`, and the smoothing parameters they came from: fitted on
        it by maximum likelihood, or `parameters` as given (the states and the noise are the history's own either
        way). None when the futures diverge (a day beyond `DIVERGED` times the history's largest, or not finite).
        """
        kind = "mul" if self.multiplicative else "add"
        model = ETSModel(
            history,
            error=kind,
            trend="add" if self.trend else None,
            damped_trend=self.trend,
            seasonal=kind if self.seasonal else None,
            seasonal_periods=SEASON if self.seasonal else None,
            # Initial states from the first weeks (Hyndman's heuristic) rather than estimated with the smoothing
            # parameters: four parameters to fit instead of twelve, ten times faster.
            initialization_method="heuristic",
        )
        # Odd parameters tried on the way to the optimum overflow; what counts is that the futures are finite.
        with np.errstate(all="ignore"), model.fix_params(dict(parameters or {})):
            fitted = model.fit(disp=False, warn_convergence=False)
            futures = np.asarray(fitted.simulate(days, anchor="end", repetitions=PATHS, rng=rng), dtype=np.float64)
        futures = futures.reshape(days, PATHS).T
        # A multiplicative model with large errors can diverge: its futures compound far past anything seen.
        if not np.isfinite(futures).all() or futures.max() > DIVERGED * history.max():
            return None
        return np.clip(futures, 0.0, None), dict(zip(model.param_names, map(float, fitted.params), strict=True))


CANDIDATES = (
    Candidate(trend=False, seasonal=False),
    Candidate(trend=False, seasonal=True),
    Candidate(trend=True, seasonal=False),
    Candidate(trend=True, seasonal=True),
    Candidate(trend=False, seasonal=True, multiplicative=True),
    Candidate(trend=True, seasonal=True, multiplicative=True),
)
"""Simplest first: a tie goes to the simpler model."""


@dataclass(frozen=True, slots=True)
class Backtest:
    """How a forecast did on days it had not seen."""

    days: int
    """Held-out days scored."""
    mae: float
    """Mean absolute error of the projected day, in nano-USD."""
    mape: float | None
    """Mean absolute percentage error (0.08: 8%), over the held-out days that had spend; None when none had."""
    coverage: float
    """The share of held-out days whose spend fell inside their 80% interval."""
    widening: float
    """How much wider (1 to `MAX_WIDENING` times, about each day's median) the futures must be for their 80%
    interval to hold 80% of the held-out days: a model's own intervals leave out the error of its fitted
    parameters, so they come out narrow; the forecast's futures are widened by this factor."""


@dataclass(frozen=True, slots=True)
class Spread:
    """A sum over some days: its projection (the mean of the futures) and its 80% interval, in nano-USD."""

    mean: int
    lower: int
    upper: int


@dataclass(frozen=True, slots=True)
class Stretch:
    """One period of a cap, as far as it falls in the forecast: days [start, stop) of the futures, with what was
    already spent in the period before them."""

    start: int
    stop: int
    spent: int
    cap: int


@dataclass(frozen=True, slots=True)
class Forecast:
    """Simulated futures of daily spend and how they were made."""

    method: str
    """`ets` (a model chosen by backtest), `recent_mean` (days drawn from the last two weeks) or `none` (no
    spend in the history: nothing is projected)."""
    model: Candidate | None
    history_days: int
    """Days of history the forecast stands on (from the first day with spend)."""
    backtest: Backtest | None
    """How the chosen model did on the history's last days; None unless a model was chosen by backtest."""
    paths: Paths
    parameters: dict[str, float] | None = None
    """The model's smoothing parameters, as statsmodels names them (`smoothing_level`, `damping_trend`...)."""

    def _sums(self, start: int, stop: int | None) -> Paths:
        return np.asarray(self.paths[:, start:stop].sum(axis=1), dtype=np.float64)

    def spread(self, start: int = 0, stop: int | None = None) -> Spread:
        """The sum of days [start, stop): its mean and its 80% interval."""
        sums = self._sums(start, stop)
        lower, upper = np.quantile(sums, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
        return Spread(round(float(sums.mean())), round(float(lower)), round(float(upper)))

    def quantile(self, q: float, start: int = 0, stop: int | None = None) -> int:
        """The sum of days [start, stop) that the futures stay under with probability `q`, rounded up."""
        return math.ceil(float(np.quantile(self._sums(start, stop), q)))

    def within(self, fraction: float, start: int = 0, stop: int | None = None, *, spent: int = 0) -> float:
        """The probability that `spent` plus the sum of days [start, stop) lands within `fraction` of its
        projection (`spent` plus the sum's mean)."""
        sums = self._sums(start, stop)
        mean = float(sums.mean())
        return float((np.abs(sums - mean) <= fraction * (spent + mean)).mean())

    def over(self, stretches: Sequence[Stretch]) -> float:
        """The probability that some period's spend (spent before plus its days here) passes its cap."""
        over = np.zeros(self.paths.shape[0], dtype=bool)
        for stretch in stretches:
            over |= stretch.spent + self._sums(stretch.start, stretch.stop) > stretch.cap
        return float(over.mean())


def _history(daily: Sequence[int]) -> Paths:
    """The days from the first with spend."""
    history = np.asarray(daily, dtype=np.float64)
    spent = np.flatnonzero(history)
    return history[spent[0] :] if spent.size else history[:0]


def _clean(history: Paths) -> Paths:
    """The history with its incidents smoothed over, for fitting: a day further than `OUTLIER` robust standard
    deviations (1.4826 times the median absolute deviation) from the median of its weekday over the seven weeks
    around it becomes that median, as R's `forecast::tsclean` does. The last week is kept as it came: a change
    there may be the start of a new level."""
    medians = np.empty_like(history)
    for weekday in range(SEASON):
        # Each weekday's days, padded with three weeks of nothing either side: a window of seven holds the weeks
        # around a day, fewer at the ends.
        padded = np.pad(history[weekday::SEASON], 3, constant_values=np.nan)
        medians[weekday::SEASON] = np.nanmedian(sliding_window_view(padded, 7), axis=1)
    residuals = history - medians
    scale = 1.4826 * float(np.median(np.abs(residuals)))
    incidents = np.abs(residuals) > OUTLIER * scale
    incidents[-SEASON:] = False
    return np.where(incidents, medians, history) if scale > 0 else history


def _recent(history: Paths, days: int, rng: np.random.Generator) -> Paths:
    """Futures whose every day is one of the last `RECENT_DAYS` days, drawn at random (a bootstrap)."""
    return np.asarray(rng.choice(history[-RECENT_DAYS:], size=(PATHS, days)), dtype=np.float64)


@dataclass(slots=True)
class _Scores:
    """Held-out days as they came and as forecast."""

    actual: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    held: list[bool] = field(default_factory=list)
    reach: list[float] = field(default_factory=list)
    """How many times wider than its own a day's 80% interval (about its median) had to be to hold the day."""

    def add(self, paths: Paths, actual: Sequence[float]) -> None:
        means = paths.mean(axis=0)
        lower, middle, upper = np.quantile(paths, [(1 - LEVEL) / 2, 0.5, (1 + LEVEL) / 2], axis=0)
        for mean, low, mid, high, day in zip(means, lower, middle, upper, actual, strict=True):
            self.actual.append(day)
            self.errors.append(abs(float(mean) - day))
            self.held.append(bool(low <= day <= high))
            side = high - mid if day >= mid else mid - low
            self.reach.append(abs(day - mid) / side if side > 0 else 0.0 if day == mid else math.inf)

    def summary(self) -> Backtest:
        percentages = [error / day for error, day in zip(self.errors, self.actual, strict=True) if day > 0]
        return Backtest(
            days=len(self.errors),
            mae=sum(self.errors) / len(self.errors),
            mape=sum(percentages) / len(percentages) if percentages else None,
            coverage=sum(self.held) / len(self.held),
            widening=min(max(float(np.quantile(self.reach, LEVEL)), 1.0), MAX_WIDENING),
        )


def _widen(paths: Paths, factor: float) -> Paths:
    """The futures spread `factor` times as wide about each day's median."""
    if factor == 1:
        return paths
    middle = np.median(paths, axis=0)
    return np.clip(middle + factor * (paths - middle), 0.0, None)


def _origins(length: int) -> tuple[int, list[int]]:
    """Days held out per fold, and where each fold's history ends: up to `FOLDS` folds, each leaving at least
    `MIN_FIT_DAYS` of history to fit on."""
    held = min(BACKTEST_DAYS, length - MIN_FIT_DAYS)
    return held, [length - held * fold for fold in range(1, FOLDS + 1) if length - held * fold >= MIN_FIT_DAYS]


def _backtest(history: Paths, candidate: Candidate) -> Backtest | None:
    """`candidate` fitted on the history as it stood at each fold's origin, scored on the days that followed;
    None when a fit fails."""
    held, origins = _origins(len(history))
    scores = _Scores()
    for origin in origins:
        simulated = candidate.simulate(history[:origin], held, np.random.default_rng(SEED))
        if simulated is None:
            return None
        scores.add(simulated[0], [float(day) for day in history[origin : origin + held]])
    return scores.summary()


def _ranked(history: Paths) -> list[tuple[Candidate, Backtest]]:
    """The candidates that fit the history with their backtests, the least error first (the simpler on a tie)."""
    usable = [candidate for candidate in CANDIDATES if candidate.fits(history)]
    scored = [(score, n, c) for n, c in enumerate(usable) if (score := _backtest(history, c)) is not None]
    return [(candidate, score) for score, _, candidate in sorted(scored, key=lambda item: (item[0].mae, item[1]))]


def forecast(daily: Sequence[int], days: int, *, like: Forecast | None = None) -> Forecast:
    """`days` days of spend after the complete days of `daily` (nano-USD, oldest first).

    The candidate with the least backtest error whose futures do not diverge (the next one when they do), widened
    as its backtest says. With `like` (a forecast made so), `like`'s model and smoothing parameters instead (its
    additive form on a history with a day of no spend), without a backtest, its futures widened as `like`'s were:
    a key's forecast in the form chosen for its account's total, with its own states and noise, at the cost of
    one pass over its days rather than a fit. Fewer than `MIN_MODEL_DAYS` days since the first spend, a history
    that never changes, or no model that fits (nor one in `like`): days drawn from the last `RECENT_DAYS`.
    """
    history = _history(daily)
    rng = np.random.default_rng(SEED)
    if not history.size:
        return Forecast("none", None, 0, None, np.zeros((PATHS, days)))
    if len(history) >= MIN_MODEL_DAYS and np.ptp(history) > 0:
        cleaned = _clean(history)
        tried: list[tuple[Candidate, Backtest | None, float, dict[str, float] | None]] = []
        if like is None:
            tried = [(candidate, score, score.widening, None) for candidate, score in _ranked(cleaned)]
        elif like.model is not None:
            model = like.model if like.model.fits(cleaned) else like.model.additive
            tried = [(model, None, 1.0 if like.backtest is None else like.backtest.widening, like.parameters)]
        for candidate, score, widening, parameters in tried:
            simulated = candidate.simulate(cleaned, days, rng, parameters=parameters)
            if simulated is not None:
                paths, fitted = simulated
                return Forecast("ets", candidate, len(history), score, _widen(paths, widening), fitted)
    return Forecast("recent_mean", None, len(history), None, _recent(history, days, rng))


def evaluate(daily: Sequence[int], *, origins: Sequence[int], days: int) -> Backtest:
    """The whole method (the model's choice and widening included) backtested: a forecast of `days` days from
    each origin (the number of days of `daily` it sees), scored on the days that followed."""
    scores = _Scores()
    for origin in origins:
        came = [float(day) for day in daily[origin : origin + days]]
        scores.add(forecast(daily[:origin], len(came)).paths, came)
    return scores.summary()


@dataclass(frozen=True, slots=True)
class Change:
    """How a daily series moved from one stretch of days to the next."""

    daily: float
    """The later stretch's mean daily amount minus the earlier's (nano-USD a day)."""
    confidence: float
    """1 minus the p-value of Welch's t-test that the two stretches' means differ (0.95: 5% chance of a change
    this large, or larger, were there none)."""


def change(daily: Sequence[int], *, half: int) -> Change:
    """The last `half` days of `daily` against the `half` days before them."""
    before = np.asarray(daily[-2 * half : -half], dtype=np.float64)
    after = np.asarray(daily[-half:], dtype=np.float64)
    moved = float(after.mean() - before.mean())
    error = math.sqrt(float(before.var(ddof=1)) / half + float(after.var(ddof=1)) / half)
    if error == 0:
        return Change(moved, 1.0 if moved else 0.0)
    each = [float(part.var(ddof=1)) / half for part in (before, after)]
    freedom = sum(each) ** 2 / sum(part**2 / (half - 1) for part in each)
    return Change(moved, 1 - 2 * float(stats.t.sf(abs(moved) / error, freedom)))
