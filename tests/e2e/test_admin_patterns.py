"""`GET /api/admin/analytics/patterns` (seed 004) over HTTP, on ledgers with known answers (SQLite, and PostgreSQL
when TEST_PG_URL is set): peak and low hours in the account's zone, weekdays against weekends, a business-hours
rhythm found in three weeks of office traffic and none in noise, power, medium and light keys, each model's share,
trend and users, and the anomalies a detector fired, with their evidence; who may ask; and bad parameters refused
in the error shape."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from admin_client import MASTER, Api, assert_error

from farebox.alerts.actions import Alerter
from farebox.alerts.scanner import AnomalyScanner
from farebox.core.events import Axis, UsageEvent

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 3, 23, 6, 50, tzinfo=UTC)
"""12:20 on Monday 23 March in Kolkata (+05:30): the local hour 12:00 is running, 11:00 has ended."""
KOLKATA = ZoneInfo("Asia/Kolkata")
TODAY = date(2026, 3, 23)
USD = 1_000_000_000
PATH = "/api/admin/analytics/patterns"
"""A PostgreSQL ledger needs a server secret of its own (SQLite keeps one beside its file)."""


@pytest.fixture
def api(api_each_backend: Api) -> Api:
    return api_each_backend


def local(day: date, hour: int, minute: int = 5) -> datetime:
    """A local time in Kolkata, as the ledger keeps it (UTC)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=KOLKATA).astimezone(UTC)


class Ledger:
    """Events of one account, each one request, built up and then recorded at once."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.events: list[UsageEvent] = []

    def add(
        self,
        when: datetime,
        *,
        key: str | None = None,
        model: str = "gpt-4o",
        cost: int = USD // 100,
        count: int = 1,
        axis: Axis = Axis.LLM,
    ) -> list[str]:
        """Add `count` requests; their ids."""
        first = len(self.events)
        for _ in range(count):
            self.events.append(
                UsageEvent(
                    id=f"e{len(self.events)}-{self.account_id}",
                    timestamp=when,
                    account_id=self.account_id,
                    key_id=key,
                    axis=axis,
                    provider="openai",
                    model=model,
                    canonical_model=model,
                    operation="chat.completions" if axis is Axis.LLM else "compute.vm",
                    input_tokens=10,
                    cost_nano=cost,
                    source="ingest",
                )
            )
        return [event.id for event in self.events[first:]]

    async def record(self, api: Api) -> None:
        await api.ledger.record_many(self.events)


async def _acme(api: Api, keys: Iterable[str] = ("a",), name: str = "Acme") -> dict[str, Any]:
    """An account in Kolkata with an owner, an admin, a billing and a plain member (their tokens), and keys."""
    api.clock.at = NOW
    account = await api.account(name, plan="enterprise", timezone="Asia/Kolkata")
    ids: dict[str, Any] = {"account": account["id"]}
    for person, role in (("ada", "owner"), ("al", "admin"), ("bill", "billing"), ("mo", "member")):
        member = await api.member(account["id"], f"{person}@{name.lower()}.test", role)
        ids[person] = await api.token(account["id"], member["id"])
    for key in keys:
        created = await api.key(account["id"], name=f"key-{key}")
        ids[key], ids[f"{key}_secret"] = created["id"], created["key"]
    return ids


async def _patterns(api: Api, token: str = MASTER, **params: str) -> Any:
    response = await api.client.get(PATH, params=params, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and set(body) == {"success", "data"}
    return body["data"]


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


async def test_office_hours_for_three_weeks_are_a_business_hours_rhythm(api: Api) -> None:
    ids = await _acme(api)
    ledger = Ledger(ids["account"])
    for day in _days(date(2026, 3, 2), date(2026, 3, 22)):  # Monday 2 to Sunday 22 March: three whole weeks
        if day.weekday() < 5:
            for hour in range(9, 17):
                ledger.add(local(day, hour), key=ids["a"], count=4)  # 32 requests a weekday
        else:
            ledger.add(local(day, 12), key=ids["a"], count=8)  # 8 a weekend day
    ledger.add(local(TODAY, 12, 10), key=ids["a"], count=50)  # the running hour: not yet a pattern
    await ledger.record(api)

    data = await _patterns(api, period="22d", account_id=ids["account"])
    assert (data["period"], data["analysis"], data["timezone"]) == ("22d", "detailed", "Asia/Kolkata")
    temporal = data["patterns"]["temporalPatterns"]
    assert temporal["peakHours"] == list(range(9, 17)), "local hours, not UTC's"
    assert temporal["lowUsageHours"] == [*range(0, 9), *range(17, 24)]
    assert temporal["weekdayVsWeekend"] == {"weekdayAverage": 32, "weekendAverage": 8, "ratio": 4}
    rhythm = temporal["seasonality"]
    assert (rhythm["detected"], rhythm["pattern"]) == (True, "business_hours")
    assert rhythm["weeklyCorrelation"] > rhythm["dailyCorrelation"] > 0.4, "weekends break the daily repeat"
    assert rhythm["strength"] == rhythm["weeklyCorrelation"] <= 1
    assert data["patterns"]["modelPreferences"]["gpt-4o"]["usage"] == 1, "the running hour's requests count here"


async def test_local_hours_hold_across_a_daylight_saving_change(api: Api) -> None:
    api.clock.at = NOW
    account = await api.account("Gotham", timezone="America/New_York")  # clocks went forward on 8 March
    ledger = Ledger(account["id"])
    new_york = ZoneInfo("America/New_York")
    for day in _days(date(2026, 3, 1), date(2026, 3, 22)):
        ledger.add(datetime(day.year, day.month, day.day, 10, 5, tzinfo=new_york).astimezone(UTC), count=3)
    await ledger.record(api)
    temporal = (await _patterns(api, period="22d", account_id=account["id"]))["patterns"]["temporalPatterns"]
    assert temporal["peakHours"] == [10], "10:00 local before and after the change, 15:00 and then 14:00 UTC"
    assert temporal["weekdayVsWeekend"] == {"weekdayAverage": 3, "weekendAverage": 3, "ratio": 1}
    assert temporal["seasonality"]["pattern"] == "daily"


async def test_noise_has_no_rhythm_and_short_periods_cannot_tell(api: Api) -> None:
    ids = await _acme(api)
    ledger = Ledger(ids["account"])
    noise = random.Random(2026)
    start = local(date(2026, 3, 2), 0, 0)
    for hour in range(22 * 24):
        ledger.add(start + timedelta(hours=hour, minutes=5), key=ids["a"], count=noise.randint(0, 4))
    await ledger.record(api)

    rhythm = (await _patterns(api, period="22d", account_id=ids["account"]))["patterns"]["temporalPatterns"]
    assert rhythm["seasonality"]["detected"] is False and rhythm["seasonality"]["pattern"] == "none"
    assert rhythm["seasonality"]["strength"] < 0.4
    assert rhythm["seasonality"]["weeklyCorrelation"] is not None, "22 days hold two full weeks"

    week = (await _patterns(api, period="5d", account_id=ids["account"]))["patterns"]["temporalPatterns"]
    assert week["seasonality"]["weeklyCorrelation"] is None and week["seasonality"]["dailyCorrelation"] is not None
    day = (await _patterns(api, period="1d", account_id=ids["account"]))["patterns"]["temporalPatterns"]
    assert day["seasonality"] == {
        "detected": False,
        "pattern": "none",
        "strength": None,
        "dailyCorrelation": None,
        "weeklyCorrelation": None,
    }, "twelve hours cannot show a daily rhythm"
    assert day["weekdayVsWeekend"] == {"weekdayAverage": None, "weekendAverage": None, "ratio": None}, "no whole day"


KEY_COSTS = {"k1": 50, "k2": 30, "k3": 10, "k4": 5, "k5": 3, "k6": 2}
"""USD per key: k1 and k2 make the first 80% of the cost, k3 and k4 the next 15%, k5 and k6 the last 5%."""


async def _tiers_and_models(api: Api) -> dict[str, Any]:
    """Ten local days (14 to 23 March); the trends compare 14-17 March with 19-22 March (whole days, the middle
    one left out)."""
    ids = await _acme(api, keys=[*KEY_COSTS, "idle", "voided"])
    ledger = Ledger(ids["account"])
    for key, usd in KEY_COSTS.items():  # gpt-4o-mini: every key once, early in the period; it carries the cost
        ledger.add(local(date(2026, 3, 16), 10), key=ids[key], model="gpt-4o-mini", cost=usd * USD)
    ledger.add(local(date(2026, 3, 16), 11), model="gpt-4o-mini", cost=7 * USD)  # no key: no user's
    for day in _days(date(2026, 3, 14), date(2026, 3, 22)):  # gpt-4o: the power keys, every day alike
        ledger.add(local(day, 10), key=ids["k1"], cost=0)
    ledger.add(local(date(2026, 3, 18), 10), key=ids["k2"], cost=0)
    for day in _days(date(2026, 3, 14), date(2026, 3, 17)):  # claude-sonnet: k3, doubling
        ledger.add(local(day, 15), key=ids["k3"], model="claude-sonnet", cost=0)
    for day in _days(date(2026, 3, 19), date(2026, 3, 22)):
        ledger.add(local(day, 15), key=ids["k3"], model="claude-sonnet", cost=0, count=2)
    ledger.add(local(date(2026, 3, 3), 10), key=ids["k6"], cost=1_000 * USD)  # before the period
    ledger.add(local(date(2026, 3, 20), 9), key=ids["k6"], model="", axis=Axis.COMPUTE, cost=0)  # no model's
    (wrong,) = ledger.add(local(date(2026, 3, 20), 9), key=ids["voided"], model="mistral-large", cost=99 * USD)
    await ledger.record(api)
    await api.ok("POST", f"/events/{wrong}/void", {"reason": "posted against the wrong key"}, status=201)
    return ids


async def test_power_medium_and_light_keys_and_each_model_s_share_trend_and_users(api: Api) -> None:
    ids = await _tiers_and_models(api)
    patterns = (await _patterns(api, period="10d", account_id=ids["account"]))["patterns"]
    assert patterns["usageDistribution"] == {
        "powerUsers": {"count": 2, "percentage": 0.3333, "costContribution": 0.8},
        "mediumUsers": {"count": 2, "percentage": 0.3333, "costContribution": 0.15},
        "lightUsers": {"count": 2, "percentage": 0.3333, "costContribution": 0.05},
    }, "six keys used (the idle one and the voided one are no users), the cost of usage without a key left out"
    assert patterns["modelPreferences"] == {
        "claude-sonnet": {"usage": 0.4138, "growthTrend": "increasing", "userSegments": ["medium_users"]},
        "gpt-4o": {"usage": 0.3448, "growthTrend": "stable", "userSegments": ["power_users"]},
        "gpt-4o-mini": {"usage": 0.2414, "growthTrend": "decreasing", "userSegments": ["all"]},
    }, "29 requests to models: 12 to claude-sonnet (4, then 8), 10 to gpt-4o, 7 to gpt-4o-mini; none left to mistral"
    assert list(patterns["modelPreferences"]) == ["claude-sonnet", "gpt-4o", "gpt-4o-mini"], "by share"


async def test_a_summary_leaves_out_seasonality_segments_and_evidence(api: Api) -> None:
    ids = await _tiers_and_models(api)
    detailed = await _patterns(api, period="10d", account_id=ids["account"])
    summary = await _patterns(api, period="10d", analysis="summary", account_id=ids["account"])
    assert summary["analysis"] == "summary"
    assert "seasonality" in detailed["patterns"]["temporalPatterns"]
    assert "seasonality" not in summary["patterns"]["temporalPatterns"]
    assert summary["patterns"]["modelPreferences"]["gpt-4o"] == {"usage": 0.3448, "growthTrend": "stable"}
    assert summary["patterns"]["usageDistribution"] == detailed["patterns"]["usageDistribution"]


async def test_a_period_of_hours_is_cut_from_the_clock_s_hours(api: Api) -> None:
    ids = await _acme(api)
    ledger = Ledger(ids["account"])
    ledger.add(NOW - timedelta(hours=30), key=ids["a"], model="old-model", count=5)  # before the last 24 hours
    for back in range(1, 24):  # the 23 ended hours: 13:00 to 23:00 yesterday once each, 00:00 to 11:00 today twice
        ledger.add(NOW - timedelta(hours=back), key=ids["a"], count=2 if back <= 12 else 1)
    ledger.add(NOW - timedelta(minutes=5), key=ids["a"], model="o3", count=10)  # the running hour, 12:00
    ledger.add(local(date(2026, 3, 20), 12), key=ids["a"], model="early")  # an hour before the last 72 began
    ledger.add(local(date(2026, 3, 21), 10), key=ids["a"], model="middle", cost=USD)  # a whole day within 72
    await ledger.record(api)
    patterns = (await _patterns(api, period="24h", account_id=ids["account"]))["patterns"]
    assert patterns["modelPreferences"] == {
        "gpt-4o": {"usage": 0.7778, "growthTrend": "increasing", "userSegments": ["all"]},
        "o3": {"usage": 0.2222, "growthTrend": "stable", "userSegments": ["all"]},
    }, "45 requests: 35 to gpt-4o (11 in the first 11 ended hours, 22 in the last 11), 10 to o3 this hour"
    temporal = patterns["temporalPatterns"]
    assert temporal["peakHours"] == list(range(0, 12)), "2 an hour against a mean hour of 35/23; 12:00 is running"
    assert temporal["lowUsageHours"] == [], "1 an hour is not under half the mean"

    three_days = (await _patterns(api, period="72h", account_id=ids["account"]))["patterns"]
    assert set(three_days["modelPreferences"]) == {"gpt-4o", "o3", "old-model", "middle"}, "from 13:00 on the 20th"
    assert three_days["modelPreferences"]["middle"]["usage"] == 0.0196, "1 of 51 requests"


async def test_anomalies_a_detector_fired_in_the_period_with_their_evidence(api: Api) -> None:
    ids = await _acme(api, keys=["quiet"])
    ledger = Ledger(ids["account"])
    ledger.add(NOW - timedelta(days=3), key=ids["quiet"], cost=USD // 100)  # used once, a cent
    ledger.add(NOW - timedelta(minutes=20), key=ids["quiet"], cost=8 * USD)  # then $8 in the last hour
    await ledger.record(api)
    scanner = AnomalyScanner(api.ledger, Alerter(api.ledger, api.services.directory), interval=60, clock=lambda: NOW)
    assert (await scanner.scan()).alerts, "the detectors saw it"

    anomalies = (await _patterns(api, period="7d", account_id=ids["account"]))["anomalies"]
    found = {(item["type"], item["evidence"]["scope"]) for item in anomalies}
    assert {("leaked_key", "key"), ("runaway_script", "key")} <= found
    (leak,) = [item for item in anomalies if item["type"] == "leaked_key" and item["evidence"]["scope"] == "key"]
    assert leak["timestamp"] == "2026-03-23T06:50:00Z"
    assert (leak["impact"], leak["severity"]) == ("security_risk", "high")
    assert "may have leaked" in leak["description"]
    evidence = leak["evidence"]
    assert (evidence["key_id"], evidence["kind"], evidence["account_id"]) == (
        ids["quiet"],
        "leaked_key",
        ids["account"],
    )
    assert (evidence["observed"], evidence["window_start"], evidence["window_end"]) == (
        "8.00",
        "2026-03-23T06:00:00+00:00",
        "2026-03-23T07:00:00+00:00",
    )
    assert evidence["baseline"] == "0.001428571", "a cent over the 7 days before, a day, floored to the nano-USD"

    summary = await _patterns(api, period="7d", analysis="summary", account_id=ids["account"])
    assert all("evidence" not in item for item in summary["anomalies"])
    assert [item["type"] for item in summary["anomalies"]] == [item["type"] for item in anomalies]

    api.clock.at = NOW + timedelta(days=3)
    assert (await _patterns(api, period="24h", account_id=ids["account"]))["anomalies"] == [], "fired before"
    assert len((await _patterns(api, period="7d", account_id=ids["account"]))["anomalies"]) == len(anomalies)


async def test_who_may_ask_and_what_each_sees(api: Api) -> None:
    ids = await _acme(api, keys=["a"])
    ledger = Ledger(ids["account"])
    ledger.add(local(date(2026, 3, 20), 10), key=ids["a"])
    await ledger.record(api)
    other = await _acme(api, keys=["b"], name="Elsewhere")
    elsewhere = Ledger(other["account"])
    elsewhere.add(local(date(2026, 3, 20), 10), key=other["b"], model="o3")
    await elsewhere.record(api)

    for role in ("ada", "al", "bill"):
        data = await _patterns(api, ids[role], period="7d")
        assert data["timezone"] == "Asia/Kolkata"
        assert list(data["patterns"]["modelPreferences"]) == ["gpt-4o"], f"{role}: its own account only"
    everyone = await _patterns(api, period="7d")
    assert everyone["timezone"] == "UTC", "the master key over every account: UTC"
    assert set(everyone["patterns"]["modelPreferences"]) == {"gpt-4o", "o3"}
    assert everyone["patterns"]["usageDistribution"]["powerUsers"]["count"] == 2
    for secret in (ids["mo"], ids["a_secret"]):
        assert_error(await api.client.get(PATH, headers={"authorization": f"Bearer {secret}"}), 403, "role_required")
    assert_error(await api.client.get(PATH), 401)
    foreign = await api.client.get(
        PATH, params={"account_id": ids["account"]}, headers={"authorization": f"Bearer {other['ada']}"}
    )
    assert_error(foreign, 404, "account_not_found")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "7x"}, "period"),
        ({"period": "0d"}, "period"),
        ({"period": "200d"}, "period"),
        ({"period": "169h"}, "period"),
        ({"analysis": "full"}, "analysis"),
        ({"analysis": ""}, "analysis"),
    ],
)
async def test_bad_parameters_are_refused_in_the_error_shape(api: Api, params: dict[str, str], field: str) -> None:
    await _acme(api)
    response = await api.client.get(PATH, params=params, headers={"authorization": f"Bearer {MASTER}"})
    assert field in assert_error(response, 422)["message"]
