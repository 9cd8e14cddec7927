"""`GET /api/admin/analytics/budget-forecast` (seed 004): spend over the coming days, month by month and per key,
with intervals, the chance of passing the budget, a recommended budget, and what drives the growth.

Here the histories (daily spend of the whole scope, of its top keys and of each model, up to yesterday) are read
from the engine (the daily cube, for one account in its zone) and the budgets from the directory; the answer is
computed from them on a worker thread by `farebox.analytics.outlook`, which that thread imports with numpy and
statsmodels at the first forecast: a server never asked for one never loads them. The method: docs/forecast.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import partial
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import anyio
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from farebox.analytics.admin_common import Scoped, envelope, invalid, scoped_responses, views
from farebox.analytics.calendar import Grain, Window
from farebox.analytics.engine import Dimension, Filters
from farebox.analytics.query_times import TimedRoute
from farebox.analytics.views import Scope, Views
from farebox.core.periods import Period
from farebox.ledger.directory import Directory
from farebox.services import services

__all__ = ["HORIZON_PATTERN", "RECENT_DAYS", "Cap", "Horizon", "Inputs", "forecast_answer", "forecast_inputs", "router"]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"], route_class=TimedRoute)

HORIZON_PATTERN = r"^([1-9][0-9]{0,2})([dw])$"
_HORIZON = re.compile(HORIZON_PATTERN)
MIN_HORIZON_DAYS, MAX_HORIZON_DAYS = 7, 366
HISTORY_DAYS = 182
"""26 weeks of daily spend: enough to fit a weekly season and a trend on, and read in a fraction of a second."""
TOP_KEYS = 10
"""Keys forecast one by one: the ten that spent most in the last `RECENT_DAYS`."""
RECENT_DAYS = 28
"""The days the keys are ranked by; the growth factors compare them with the 28 before."""
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Horizon:
    """How far ahead: a number of days or weeks (`30d`, `13w`), from `MIN_HORIZON_DAYS` to `MAX_HORIZON_DAYS`."""

    days: int
    text: str

    @classmethod
    def parse(cls, text: str) -> Horizon:
        """
        Raises:
            ValidationFailed: not days or weeks, or outside 7 to 366 days (422).
        """
        match = _HORIZON.fullmatch(text)
        if match is None:
            raise invalid("horizon", f"not a horizon like 30d or 13w: {text!r}")
        days = int(match[1]) * (7 if match[2] == "w" else 1)
        if not MIN_HORIZON_DAYS <= days <= MAX_HORIZON_DAYS:
            raise invalid("horizon", f"a horizon is {MIN_HORIZON_DAYS} to {MAX_HORIZON_DAYS} days: {text!r}")
        return cls(days, text)


@dataclass(frozen=True, slots=True)
class Cap:
    """A budget: a cap of `nano` per `period` (in the answer's zone)."""

    nano: int
    period: Period


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything a forecast is computed from, read from the engine and the directory before the worker thread."""

    horizon: Horizon
    today: date
    tz: ZoneInfo
    first: date
    """The day of the histories' first entry (they end yesterday)."""
    total: list[int]
    keys: dict[str, list[int]]
    """The top keys' daily spend, by descending spend over the last `RECENT_DAYS`."""
    models: dict[str, list[int]]
    """Each model's daily spend over the last 2 x `RECENT_DAYS` days."""
    names: dict[str, str]
    budget: Cap | None
    caps: dict[str, Cap]
    """The top keys' caps."""
    all_time: dict[str, int]
    """Spend before today of the total ('') and the keys, for a cap that counts all time (`total`)."""

    def spent(self, daily: Sequence[int], since: date) -> int:
        """Spend of `daily` from `since` up to (not including) today."""
        return sum(daily[(since - self.first).days :])


async def _budget(directory: Directory, scope: Scope) -> Cap | None:
    """The account's cap; for every account at once, the sum of their caps when each has one of one period."""
    accounts = (
        [await directory.get_account(scope.account_id)]
        if scope.account_id is not None
        else await directory.list_accounts()
    )
    periods = {account.cap_period for account in accounts}
    caps = [account.spend_cap_nano for account in accounts]
    if not accounts or len(periods) != 1 or any(cap is None for cap in caps):
        return None
    return Cap(sum(cap or 0 for cap in caps), periods.pop())


async def forecast_inputs(usage: Views, directory: Directory, scope: Scope, horizon: Horizon) -> Inputs:
    """The histories, budgets and names a forecast of `scope` from its window's last day needs: a handful of engine
    queries over the daily cube."""
    tz, today = scope.window.tz, scope.window.last
    first, yesterday = today - timedelta(days=HISTORY_DAYS), today - timedelta(days=1)
    history = replace(scope, window=Window(first, yesterday, tz))
    total = (await usage.costs(history, Grain.DAY)).lines[""]
    recent = replace(scope, window=Window(today - timedelta(days=RECENT_DAYS), yesterday, tz))
    ranked = [key for key, totals in await usage.breakdown(recent, Dimension.KEY) if key and totals.cost_nano > 0]
    top = ranked[:TOP_KEYS]
    lines = (await usage.costs(_only_keys(history, top), Grain.DAY, Dimension.KEY)).lines if top else {}
    keys = {key: lines[key] for key in top}
    growth = replace(scope, window=Window(today - timedelta(days=2 * RECENT_DAYS), yesterday, tz))
    models = (await usage.costs(growth, Grain.DAY, Dimension.CANONICAL_MODEL)).lines
    found = await directory.find_keys(top)
    caps = {
        key_id: Cap(key.spend_cap_nano, key.cap_period)
        for key_id, key in found.items()
        if key.spend_cap_nano is not None
    }
    budget = await _budget(directory, scope)
    ever = [cap for cap in [budget, *caps.values()] if cap is not None and cap.period is Period.TOTAL]
    all_time = await _all_time(usage, replace(scope, window=Window(_EPOCH, yesterday, tz)), top) if ever else {}
    return Inputs(
        horizon,
        today,
        tz,
        first,
        total,
        keys,
        models,
        {key_id: key.name for key_id, key in found.items()},
        budget,
        caps,
        all_time,
    )


def _only_keys(scope: Scope, key_ids: Sequence[str]) -> Scope:
    values = {**scope.filters.values, Dimension.KEY: tuple(key_ids)}
    return replace(scope, filters=Filters(values, models=scope.filters.models))


async def _all_time(usage: Views, scope: Scope, key_ids: Sequence[str]) -> dict[str, int]:
    """Spend before today of the whole scope ('') and of each key."""
    spent = {"": (await usage.totals(scope)).cost_nano}
    if key_ids:
        spent |= {
            key: totals.cost_nano for key, totals in await usage.breakdown(_only_keys(scope, key_ids), Dimension.KEY)
        }
    return spent


@router.get(
    "/budget-forecast",
    summary="Projected spend over a horizon: month by month, per key, the risk of passing the budget",
    responses=scoped_responses(
        "A bad `horizon` (not days or weeks, or outside 7 to 366 days); a parameter given "
        "twice. `error.details` names it."
    ),
)
async def budget_forecast(
    request: Request,
    scope: Scoped,
    horizon: Annotated[
        str, Query(pattern=HORIZON_PATTERN, description="How far ahead: `30d`, `90d`, `13w`... (7 to 366 days).")
    ] = "90d",
) -> Response:
    """Projected spend from today over the horizon with its 80% interval, per calendar month and for the top
    keys; the probability of passing the budget (the account's cap); the budget that covers the horizon 9 times in
    10; and the models and keys whose spend moved most."""
    inputs = await forecast_inputs(views(request), services(request).directory, scope, Horizon.parse(horizon))
    return envelope(await forecast_answer(inputs))


async def forecast_answer(inputs: Inputs) -> dict[str, Any]:
    """The forecast's `data`, computed on a worker thread, where its module (and statsmodels) is first imported."""
    return await anyio.to_thread.run_sync(partial(_answer, inputs))


def _answer(inputs: Inputs) -> dict[str, Any]:
    from farebox.analytics.outlook import answer

    return answer(inputs)
