"""Spend anomaly detectors: pure judgements over hourly spend series and cap periods.

Each detector takes what the caller has already read (an hourly spend series, or a period's spend and cap)
and answers with one `Anomaly` or None. Money is integer nano-USD and every comparison against a
`Decimal` multiplier is exact: the multiplier is split into its integer ratio and both sides are
compared as integers, so no threshold is ever decided by a rounding.

An hourly series maps the epoch second a UTC hour starts at to the nano-USD spent in that hour; an
absent hour is 0, and hours at or after the end of the current hour are not looked at.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from farebox.core.money import format_usd

__all__ = [
    "Anomaly",
    "AnomalyThresholds",
    "detect_cost_spike",
    "detect_leaked_key",
    "detect_projected_crossing",
    "detect_runaway_script",
    "detect_spend_anomalies",
]

_HOUR = 3600
_DAY = 86_400
_SECOND = timedelta(seconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KINDS = frozenset({"leaked_key", "cost_spike", "runaway_script", "projected_cap_crossing"})
_SCOPES = frozenset({"key", "member", "account"})


@dataclass(frozen=True, slots=True)
class AnomalyThresholds:
    """Per-account thresholds; defaults are what a new account gets.

    Amounts are nano-USD, multipliers and fractions exact `Decimal`s (floats are refused).
    """

    window_seconds: int = 3600  # the recent window spikes and leaks are measured over (a multiple of 3600)
    spike_multiplier: Decimal = Decimal("3")  # spike and leak: window spend > this x baseline spend per window
    baseline_hours: int = 168  # the trailing baseline just before the window
    spike_min_nano: int = 1_000_000_000  # a spike is also at least this much spend in the window
    quiet_daily_max_nano: int = 500_000_000  # leak: the baseline averaged at most this a day...
    leak_min_nano: int = 5_000_000_000  # ...and the window spent at least this
    runaway_days: int = 7  # runaway: the last N complete local days before today...
    runaway_quiet_days: int = 5  # ...at least this many of them near zero...
    runaway_zero_day_max_nano: int = 10_000_000  # ...("near zero" = at most this)...
    runaway_multiplier: Decimal = Decimal("10")  # ...and today so far > this x the mean of the N days...
    runaway_min_nano: int = 5_000_000_000  # ...and at least this
    projection_min_elapsed: Decimal = Decimal("0.1")  # cap crossing: judged once this fraction of the period passed

    def __post_init__(self) -> None:
        # Thresholds come from per-account settings: a bad value should fail where it is made, not
        # silently switch a detector off (a zero window would divide by zero much later).
        if self.window_seconds <= 0 or self.window_seconds % _HOUR:
            raise ValueError(f"window_seconds must be a positive multiple of 3600, not {self.window_seconds}")
        if self.baseline_hours <= 0:
            raise ValueError(f"baseline_hours must be positive, not {self.baseline_hours}")
        if self.runaway_days <= 0 or not 0 <= self.runaway_quiet_days <= self.runaway_days:
            raise ValueError("runaway_days must be positive and runaway_quiet_days between 0 and runaway_days")
        for name in ("spike_multiplier", "runaway_multiplier", "projection_min_elapsed"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise ValueError(f"{name} must be a finite, non-negative Decimal, not {value!r}")


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One detected anomaly, with the numbers it was judged on.

    `baseline_nano` and `observed_nano` mean what each detector says: per-window baseline and window
    spend (cost spike), average daily baseline and window spend (leaked key), mean daily spend of the
    look-back days and today's spend (runaway script), the cap and the projected period spend
    (projected cap crossing).
    """

    kind: str
    scope: str
    scope_id: str
    window_start: datetime
    window_end: datetime
    baseline_nano: int
    observed_nano: int
    message: str

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown anomaly kind: {self.kind!r}")
        if self.scope not in _SCOPES:
            raise ValueError(f"unknown anomaly scope: {self.scope!r}")

    def evidence(self) -> dict[str, object]:
        """JSON-ready evidence of the anomaly.

        Returns:
            kind, scope, scope_id; window_start and window_end as ISO 8601 strings; baseline and
            observed as decimal USD strings; and the message.
        """
        return {
            "kind": self.kind,
            "scope": self.scope,
            "scope_id": self.scope_id,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "baseline": format_usd(self.baseline_nano),
            "observed": format_usd(self.observed_nano),
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class _Window:
    """The recent window and its trailing baseline, in epoch seconds and nano-USD."""

    start: int
    end: int
    observed: int
    baseline_total: int
    baseline_seconds: int

    def exceeds(self, multiplier: Decimal, window_seconds: int) -> bool:
        # observed > multiplier x baseline_total x window_seconds / baseline_seconds, in integers
        num, den = multiplier.as_integer_ratio()
        return self.observed * self.baseline_seconds * den > num * self.baseline_total * window_seconds


def detect_cost_spike(
    hourly: Mapping[int, int], *, scope: str, scope_id: str, now: datetime, thresholds: AnomalyThresholds
) -> Anomaly | None:
    """Spend in the recent window far above the scope's own trailing baseline.

    Fires when the window's spend is at least `spike_min_nano` and more than `spike_multiplier` times
    the baseline's spend per window. A zero baseline never fires here: spend out of nothing is the
    leaked-key detector's case.

    Args:
        hourly: nano-USD per UTC hour start (epoch seconds); absent hours are 0.
        scope: "key", "member" or "account".
        scope_id: the id of the key, member or account.
        now: an aware datetime; the window ends at the end of its UTC hour.
        thresholds: the account's thresholds.

    Returns:
        The anomaly (baseline_nano = baseline spend per window, floored; observed_nano = window spend),
        or None.
    """
    w = _window(hourly, now, thresholds)
    if w.baseline_total <= 0 or w.observed < thresholds.spike_min_nano:
        return None
    if not w.exceeds(thresholds.spike_multiplier, thresholds.window_seconds):
        return None
    per_window = w.baseline_total * thresholds.window_seconds // w.baseline_seconds
    span = _span(thresholds.window_seconds)
    message = (
        f"{_who(scope, scope_id)} spent {_usd(w.observed)} in the last {span}, more than "
        f"{_times(thresholds.spike_multiplier)} its usual {_usd(per_window)} per {span.removeprefix('1 ')}."
    )
    return _anomaly("cost_spike", scope, scope_id, w.start, w.end, per_window, w.observed, message)


def detect_leaked_key(
    hourly: Mapping[int, int], *, scope: str, scope_id: str, now: datetime, thresholds: AnomalyThresholds
) -> Anomaly | None:
    """A quiet scope that suddenly spends a lot: the pattern of a leaked or stolen key.

    Fires when the baseline's average daily spend is at most `quiet_daily_max_nano`, the window's spend
    is at least `leak_min_nano` and more than `spike_multiplier` times the baseline's spend per window,
    and the scope was used before: some hour before the window has spend (inside the baseline or older).
    A brand-new key with no spend at all before the window does not fire, since a new key starting work
    looks the same and is far more common than a key leaked before its first use.

    Args:
        hourly: nano-USD per UTC hour start (epoch seconds); absent hours are 0.
        scope: "key", "member" or "account".
        scope_id: the id of the key, member or account.
        now: an aware datetime; the window ends at the end of its UTC hour.
        thresholds: the account's thresholds.

    Returns:
        The anomaly (baseline_nano = baseline average spend per day, floored; observed_nano = window
        spend), or None.
    """
    w = _window(hourly, now, thresholds)
    daily = w.baseline_total * _DAY // w.baseline_seconds
    if daily > thresholds.quiet_daily_max_nano or w.observed < thresholds.leak_min_nano:
        return None
    if not w.exceeds(thresholds.spike_multiplier, thresholds.window_seconds):
        return None
    if not any(spent > 0 for hour, spent in hourly.items() if hour < w.start):
        return None
    message = (
        f"{_who(scope, scope_id)} spent {_usd(w.observed)} in the last {_span(thresholds.window_seconds)} after "
        f"averaging {_usd(daily)} a day over the previous {_span(w.baseline_seconds)}; it may have leaked."
    )
    return _anomaly("leaked_key", scope, scope_id, w.start, w.end, daily, w.observed, message)


def detect_runaway_script(
    hourly: Mapping[int, int],
    *,
    scope: str,
    scope_id: str,
    now: datetime,
    tz: ZoneInfo,
    thresholds: AnomalyThresholds,
) -> Anomaly | None:
    """A scope idle for days that spends heavily today: the pattern of a script stuck in a loop.

    Days are local days in `tz`; an hour belongs to the local day its start falls in, so days are 23 or
    25 hours long across a DST change. Looks at the `runaway_days` complete days before today and fires
    when at least `runaway_quiet_days` of them spent at most `runaway_zero_day_max_nano`, and today's
    spend so far (through the end of the current hour) is at least `runaway_min_nano` and more than
    `runaway_multiplier` times the mean of those days. A scope with no spend at all before today does
    not fire: a new key starting work is not a script running away.

    Args:
        hourly: nano-USD per UTC hour start (epoch seconds); absent hours are 0.
        scope: "key", "member" or "account".
        scope_id: the id of the key, member or account.
        now: an aware datetime; today is the local day containing it.
        tz: the account's timezone.
        thresholds: the account's thresholds.

    Returns:
        The anomaly (window from local midnight today to the end of the current hour, in UTC;
        baseline_nano = mean daily spend of the look-back days, floored; observed_nano = today's
        spend), or None.
    """
    days = thresholds.runaway_days
    today = _aware(now).astimezone(tz).date()
    bounds = [_epoch(_local_midnight(today - timedelta(days=back), tz)) for back in range(days, -1, -1)]
    end = _hour_end(now)
    totals = [0] * (days + 1)
    for hour, spent in hourly.items():
        if bounds[0] <= hour < end:
            totals[bisect_right(bounds, hour) - 1] += spent
    *previous, observed = totals
    if not any(spent > 0 for hour, spent in hourly.items() if hour < bounds[-1]):
        return None
    quiet = sum(1 for spent in previous if spent <= thresholds.runaway_zero_day_max_nano)
    if quiet < thresholds.runaway_quiet_days or observed < thresholds.runaway_min_nano:
        return None
    num, den = thresholds.runaway_multiplier.as_integer_ratio()
    if not observed * days * den > num * sum(previous):
        return None
    mean = sum(previous) // days
    message = (
        f"{_who(scope, scope_id)} has spent {_usd(observed)} today ({tz}) after {quiet} of the previous "
        f"{days} days near zero (mean {_usd(mean)} a day); a script may be running away."
    )
    return _anomaly("runaway_script", scope, scope_id, bounds[-1], end, mean, observed, message)


def detect_projected_crossing(
    *,
    scope: str,
    scope_id: str,
    spent_nano: int,
    cap_nano: int,
    period_start: datetime,
    period_end: datetime,
    now: datetime,
    thresholds: AnomalyThresholds,
) -> Anomaly | None:
    """A cap not reached yet that the spend so far, continued at its rate, would cross in this period.

    Judged only while `now` is inside the period, once at least `projection_min_elapsed` of it has
    passed (earlier, one busy hour would project wildly), and while spend is under the cap (a crossed
    cap is the budget's business, not a forecast). The projection is the one budget status shows:
    `spent x length // elapsed` in whole seconds.

    Args:
        scope: "key", "member" or "account".
        scope_id: the id of the key, member or account.
        spent_nano: spend so far in the period.
        cap_nano: the period's cap.
        period_start: where the period starts (aware).
        period_end: where the period ends (aware).
        now: an aware datetime.
        thresholds: the account's thresholds.

    Returns:
        The anomaly (window = the period; baseline_nano = the cap; observed_nano = the projected period
        spend), or None.
    """
    start, end = _aware(period_start).astimezone(UTC), _aware(period_end).astimezone(UTC)
    length, elapsed = (end - start) // _SECOND, (_aware(now) - start) // _SECOND
    if length <= 0 or not 0 < elapsed < length or not 0 < spent_nano < cap_nano:
        return None
    num, den = thresholds.projection_min_elapsed.as_integer_ratio()
    if elapsed * den < num * length:
        return None
    projected = spent_nano * length // elapsed
    if projected <= cap_nano:
        return None
    # Floored to the second: the estimate errs early, which is the safe side for a warning.
    crossing = start + timedelta(seconds=cap_nano * elapsed // spent_nano)
    message = (
        f"{_who(scope, scope_id)} has spent {_usd(spent_nano)} of its {_usd(cap_nano)} cap; at the current rate "
        f"it would cross the cap around {crossing.isoformat()} and reach {_usd(projected)} by {end.isoformat()}."
    )
    return _anomaly("projected_cap_crossing", scope, scope_id, _epoch(start), _epoch(end), cap_nano, projected, message)


def detect_spend_anomalies(
    hourly: Mapping[int, int],
    *,
    scope: str,
    scope_id: str,
    now: datetime,
    tz: ZoneInfo,
    thresholds: AnomalyThresholds,
) -> list[Anomaly]:
    """Every series anomaly of one scope: leaked key, cost spike and runaway script, in that order.

    A leaked key is also a spike over the same window; the spike is then left out so one burst raises
    one alert.

    Args:
        hourly: nano-USD per UTC hour start (epoch seconds); absent hours are 0.
        scope: "key", "member" or "account".
        scope_id: the id of the key, member or account.
        now: an aware datetime.
        tz: the account's timezone (for the runaway script's local days).
        thresholds: the account's thresholds.

    Returns:
        The anomalies found, possibly none.
    """
    leak = detect_leaked_key(hourly, scope=scope, scope_id=scope_id, now=now, thresholds=thresholds)
    # Both judge the same window (same `now`, same thresholds), so a leak always covers the spike.
    spike = None if leak else detect_cost_spike(hourly, scope=scope, scope_id=scope_id, now=now, thresholds=thresholds)
    runaway = detect_runaway_script(hourly, scope=scope, scope_id=scope_id, now=now, tz=tz, thresholds=thresholds)
    return [found for found in (leak, spike, runaway) if found is not None]


def _window(hourly: Mapping[int, int], now: datetime, thresholds: AnomalyThresholds) -> _Window:
    end = _hour_end(now)
    start = end - thresholds.window_seconds
    baseline_seconds = thresholds.baseline_hours * _HOUR
    base_start = start - baseline_seconds
    observed = baseline = 0
    # Walk the mapping rather than the hour range: callers may pass a sparse series or a long history.
    for hour, spent in hourly.items():
        if start <= hour < end:
            observed += spent
        elif base_start <= hour < start:
            baseline += spent
    return _Window(start, end, observed, baseline, baseline_seconds)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a naive datetime cannot be placed in time: {at.isoformat()}")
    return at


def _epoch(at: datetime) -> int:
    return (_aware(at) - _EPOCH) // _SECOND


def _hour_end(now: datetime) -> int:
    return _epoch(now) // _HOUR * _HOUR + _HOUR


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    # A midnight skipped by DST resolves (fold=0) to the transition instant, the day's first moment.
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def _anomaly(
    kind: str, scope: str, scope_id: str, start: int, end: int, baseline: int, observed: int, message: str
) -> Anomaly:
    at = datetime.fromtimestamp
    return Anomaly(kind, scope, scope_id, at(start, tz=UTC), at(end, tz=UTC), baseline, observed, message)


def _who(scope: str, scope_id: str) -> str:
    return f"{scope.capitalize()} {scope_id!r}"


def _usd(nano: int) -> str:
    return f"{format_usd(nano)} USD"


def _times(multiplier: Decimal) -> str:
    return f"{multiplier.normalize():f}x"


def _span(seconds: int) -> str:
    hours = seconds // _HOUR
    return "1 hour" if hours == 1 else f"{hours} hours"
