"""`GET /api/admin/analytics/budget-forecast` (seed 004) over HTTP, on ledgers whose future is known: flat spend
projects to its rate times the days, a cap below (above) that spend is passed for certain (never), a series with
a trend and a weekly season is projected close to its truth; per key, per month and the growth factors; who may
ask; and bad horizons refused in the error shape. The numbers run on SQLite and PostgreSQL (TEST_PG_URL)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from admin_client import MASTER, Api, assert_error

from farebox.core.events import Axis, UsageEvent

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 3, 10, 12, 20, tzinfo=UTC)
"""A Tuesday: 17:50 in Kolkata, so today is 10 March there too."""
TODAY = date(2026, 3, 10)
USD = 1_000_000_000
PATH = "/api/admin/analytics/budget-forecast"


@pytest.fixture
def api(api_each_backend: Api) -> Api:
    api_each_backend.clock.at = NOW
    return api_each_backend


class Book:
    """An account's keys and a way to write their daily spend into the ledger."""

    def __init__(self, api: Api, account: dict[str, Any]):
        self.api = api
        self.account = account
        self.tz = ZoneInfo(account["timezone"])
        self.keys: dict[str, str] = {}
        self._events = 0

    async def key(self, name: str, **fields: Any) -> str:
        self.keys[name] = (await self.api.key(self.account["id"], name=name, **fields))["id"]
        return self.keys[name]

    async def spend(self, key: str, daily: dict[date, int], *, model: str = "gpt-4o") -> None:
        """One event at local noon of each day, costing its amount (nano-USD)."""
        events = []
        for day, cost in daily.items():
            self._events += 1
            events.append(
                UsageEvent(
                    id=f"{self.account['name']}-{key}-{self._events}",
                    timestamp=datetime.combine(day, time(12), self.tz).astimezone(UTC),
                    account_id=self.account["id"],
                    key_id=self.keys[key],
                    axis=Axis.LLM,
                    provider="openai",
                    model=model,
                    canonical_model=model,
                    operation="chat.completions",
                    input_tokens=10,
                    output_tokens=1,
                    cost_nano=cost,
                )
            )
        await self.api.ledger.record_many(events)


async def _book(api: Api, name: str = "Acme", **fields: Any) -> Book:
    return Book(api, await api.account(name, plan="enterprise", **fields))


def _days(count: int, *, before: date = TODAY) -> list[date]:
    """The `count` days up to yesterday."""
    return [before - timedelta(days=count - n) for n in range(count)]


async def _forecast(api: Api, token: str = MASTER, **params: str) -> Any:
    response = await api.client.get(PATH, params=params, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and set(body) == {"success", "data"}
    return body["data"]


def _exact(value: Any) -> Decimal:
    return Decimal(str(value))


async def test_flat_spend_projects_to_its_rate_times_the_days_in_the_seed_s_shape(api: Api) -> None:
    book = await _book(api, timezone="Asia/Kolkata")
    await book.key("prod")
    await book.spend("prod", dict.fromkeys(_days(60), 10 * USD))
    data = await _forecast(api, horizon="30d", account_id=book.account["id"])

    assert {"horizon", "currentTrend", "confidenceLevel", "globalForecast", "monthlyForecasts"} <= set(data)
    assert {"keyForecasts", "growthFactors"} <= set(data)
    assert (data["horizon"], data["from"], data["to"], data["timezone"]) == (
        "30d",
        "2026-03-10",
        "2026-04-08",
        "Asia/Kolkata",
    )
    assert data["currentTrend"] == "stable" and data["confidenceLevel"] == 0.8
    assert data["method"] == {"name": "recent_mean", "model": None, "historyDays": 60, "backtest": None}
    assert data["globalForecast"] == {
        "projectedSpend": 300,
        "lower": 300,
        "upper": 300,
        "budgetRequired": 300,
        "overBudgetRisk": None,
        "recommendedBudget": 300,
        "budget": None,
        "budgetPeriod": None,
    }
    march, april = data["monthlyForecasts"]
    assert march["month"] == "2026-03" and march["spentToDate"] == 90, "1 to 9 March, spent"
    assert (march["projectedSpend"], march["lower"], march["upper"]) == (310, 310, 310), "90 + 22 days at 10"
    assert march["confidence"] == 1 and march["factors"] == ["spend_to_date", "recent_average"]
    assert (april["month"], april["projectedSpend"], april["spentToDate"]) == ("2026-04", 300, 0), "the whole month"
    (key,) = data["keyForecasts"]
    assert {"keyId", "keyName", "projectedSpend", "budgetRequired", "riskLevel"} <= set(key)
    assert (key["keyId"], key["keyName"], key["projectedSpend"], key["riskLevel"]) == (
        book.keys["prod"],
        "prod",
        300,
        "none",
    )
    assert data["growthFactors"] == [], "nothing moved"


async def test_a_cap_below_the_spend_is_passed_for_certain_and_one_far_above_never(api: Api) -> None:
    tight = await _book(api, "Tight", spend_cap="200", cap_period="monthly")
    roomy = await _book(api, "Roomy", spend_cap="1000", cap_period="monthly")
    for book in (tight, roomy):
        await book.key("k")
        await book.spend("k", dict.fromkeys(_days(60), 10 * USD))
    march = await _forecast(api, horizon="2w", account_id=tight.account["id"])
    assert march["globalForecast"]["budget"] == 200 and march["globalForecast"]["budgetPeriod"] == "monthly"
    assert march["globalForecast"]["overBudgetRisk"] == 1, "90 spent in March, and 140 in the next 14 days"
    assert (await _forecast(api, horizon="2w", account_id=roomy.account["id"]))["globalForecast"]["overBudgetRisk"] == 0
    everyone = await _forecast(api, horizon="2w")
    assert (everyone["timezone"], everyone["globalForecast"]["budget"]) == ("UTC", 1200), "the sum of the caps"
    assert everyone["globalForecast"]["projectedSpend"] == 280 and everyone["globalForecast"]["overBudgetRisk"] == 0
    assert [key["projectedSpend"] for key in everyone["keyForecasts"]] == [140, 140]


def _seasonal(day: int, rng: random.Random) -> int:
    """A known truth: $100 on weekdays and $30 at weekends, rising $0.50 a day, with 5% noise."""
    weekday = _days(120)[0] + timedelta(days=day)
    base = (30 if weekday.weekday() >= 5 else 100) + 0.5 * day
    return round(base * rng.gauss(1, 0.05) * USD)


def _truth(days: int, *, first: int = 120) -> Decimal:
    start = _days(120)[0]
    total = sum(
        (30 if (start + timedelta(days=day)).weekday() >= 5 else 100) + 0.5 * day for day in range(first, first + days)
    )
    return Decimal(str(total))


async def test_a_trend_and_a_weekly_season_are_projected_close_to_the_truth(api: Api) -> None:
    book = await _book(api, spend_cap="2000", cap_period="monthly")
    await book.key("prod")
    rng = random.Random(18)
    await book.spend("prod", {day: _seasonal(n, rng) for n, day in enumerate(_days(120))})
    data = await _forecast(api, horizon="28d", account_id=book.account["id"])

    method = data["method"]
    assert method["name"] == "ets" and method["historyDays"] == 120 and method["backtest"]["days"] == 56
    assert method["model"].endswith(("A)", "M)")), "a weekly season is found"
    forecast = data["globalForecast"]
    truth = _truth(28)
    assert abs(_exact(forecast["projectedSpend"]) - truth) < truth * Decimal("0.05"), (forecast, truth)
    projected, lower, upper = (_exact(forecast[field]) for field in ("projectedSpend", "lower", "upper"))
    assert projected * Decimal("0.85") < lower < projected < upper < projected * Decimal("1.15")
    assert 0 <= _exact(forecast["budgetRequired"]) - _exact(forecast["upper"]) <= Decimal("0.01"), "the cent above"
    assert _exact(forecast["recommendedBudget"]) >= _exact(forecast["budgetRequired"])
    assert len(_exact(forecast["recommendedBudget"]).normalize().as_tuple().digits) <= 2, "two significant figures"
    assert data["currentTrend"] == "increasing"
    assert forecast["overBudgetRisk"] > 0.99, "March alone comes to about 4,300"
    march = data["monthlyForecasts"][0]
    assert _exact(march["lower"]) < _exact(march["projectedSpend"]) < _exact(march["upper"])
    assert march["factors"][:2] == ["spend_to_date", "level"] and "weekly_seasonality" in march["factors"]
    assert 0 < march["confidence"] <= 1


async def test_keys_are_forecast_one_by_one_and_growth_is_put_down_to_models_and_keys(api: Api) -> None:
    book = await _book(api)
    await book.key("steady", spend_cap="100", cap_period="monthly")
    await book.key("small", spend_cap="1000", cap_period="monthly")
    await book.key("new")
    await book.spend("steady", dict.fromkeys(_days(60), 6 * USD))
    await book.spend("small", dict.fromkeys(_days(60), 4 * USD), model="claude-sonnet-4-5")
    await book.spend("new", dict.fromkeys(_days(28), 3 * USD), model="gemini-2.5-flash")
    data = await _forecast(api, horizon="30d", account_id=book.account["id"])

    assert data["method"]["name"] == "ets", "the total rose from 10 to 13 a day"
    keys = {key["keyName"]: key for key in data["keyForecasts"]}
    assert list(keys) == ["steady", "small", "new"], "by spend over the last 28 days"
    assert {name: key["projectedSpend"] for name, key in keys.items()} == {"steady": 180, "small": 120, "new": 90}
    assert (keys["steady"]["overBudgetRisk"], keys["steady"]["riskLevel"]) == (1, "high"), "54 + 22 x 6 in March"
    assert (keys["small"]["overBudgetRisk"], keys["small"]["riskLevel"]) == (0, "low")
    assert (keys["new"]["cap"], keys["new"]["riskLevel"]) == (None, "none")
    assert data["growthFactors"] == [
        {
            "factor": "increased_gemini_2_5_flash_usage",
            "dimension": "model",
            "name": "gemini-2.5-flash",
            "impact": 90,
            "dailyChange": 3,
            "confidence": 1,
        },
        {
            "factor": "increased_new_usage",
            "dimension": "key",
            "name": "new",
            "impact": 90,
            "dailyChange": 3,
            "confidence": 1,
        },
    ]


async def test_a_short_history_is_projected_from_its_mean(api: Api) -> None:
    book = await _book(api)
    await book.key("k")
    await book.spend("k", {day: (n + 1) * USD for n, day in enumerate(_days(10))})
    data = await _forecast(api, horizon="7d", account_id=book.account["id"])
    assert data["method"] == {"name": "recent_mean", "model": None, "historyDays": 10, "backtest": None}
    forecast = data["globalForecast"]
    assert abs(_exact(forecast["projectedSpend"]) - Decimal("38.5")) < 1, "5.50 a day, the mean of 1 to 10"
    assert 7 <= forecast["lower"] < forecast["projectedSpend"] < forecast["upper"] <= 70


async def test_no_spend_projects_nothing(api: Api) -> None:
    book = await _book(api, spend_cap="5", cap_period="daily")
    data = await _forecast(api, account_id=book.account["id"])
    assert data["horizon"] == "90d" and data["method"]["name"] == "none" and data["currentTrend"] == "stable"
    assert data["globalForecast"]["projectedSpend"] == 0 and data["globalForecast"]["overBudgetRisk"] == 0
    assert data["keyForecasts"] == [] and data["growthFactors"] == []
    assert [month["month"] for month in data["monthlyForecasts"]] == ["2026-03", "2026-04", "2026-05", "2026-06"]


async def test_who_may_ask(api: Api) -> None:
    book = await _book(api)
    ids = {}
    for name, role in (("ada", "owner"), ("bill", "billing"), ("mo", "member")):
        member = await api.member(book.account["id"], f"{name}@acme.test", role)
        ids[name] = await api.token(book.account["id"], member["id"])
    key = await api.key(book.account["id"], name="k")
    assert (await _forecast(api, ids["bill"]))["timezone"] == "UTC", "billing: its own account"
    assert (await _forecast(api, ids["ada"], horizon="7d"))["horizon"] == "7d"
    assert_error(await api.client.get(PATH, headers={"authorization": f"Bearer {ids['mo']}"}), 403, "role_required")
    assert_error(await api.client.get(PATH, headers={"authorization": f"Bearer {key['key']}"}), 403, "role_required")
    assert_error(await api.client.get(PATH), 401)
    other = await api.account("Elsewhere")
    owner = await api.member(other["id"], "o@elsewhere.test", "owner")
    stranger = await api.token(other["id"], owner["id"])
    asked = await api.client.get(
        PATH, params={"account_id": book.account["id"]}, headers={"authorization": f"Bearer {stranger}"}
    )
    assert_error(asked, 404, "account_not_found")


@pytest.mark.parametrize("horizon", ["7x", "0d", "6d", "367d", "53w", "90", "1y", "d", "1000d"])
async def test_bad_horizons_are_refused_in_the_error_shape(api: Api, horizon: str) -> None:
    response = await api.client.get(PATH, params={"horizon": horizon}, headers={"authorization": f"Bearer {MASTER}"})
    error = assert_error(response, 422)
    assert "horizon" in error["message"]
