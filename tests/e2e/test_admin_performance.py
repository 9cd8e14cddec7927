"""`GET /api/admin/analytics/performance` (seed 004) over HTTP, on ledgers with known answers (SQLite, and PostgreSQL
with TEST_PG_URL): latency and time-to-first-token percentiles within the sketches' 1% of the true values, overall
and per provider, model and key; requests recorded by two processes merged; a zone change keeps the days right;
who may ask; and bad parameters refused in the error shape."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from admin_client import MASTER, Api, assert_error

from farebox.core.events import Axis, Status, UsageEvent
from farebox.ledger.base import Ledger

if TYPE_CHECKING:
    pass

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 3, 10, 12, 20, tzinfo=UTC)
PATH = "/api/admin/analytics/performance"
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
SLOW = [2_000 + 10 * n for n in range(100)]
"""Anthropic's latencies: 2,000 to 2,990 ms."""


@pytest.fixture
def api(api_each_backend: Api) -> Api:
    return api_each_backend


def _event(account_id: str, key_id: str, at: datetime, latency: int, **fields: Any) -> UsageEvent:
    values: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o",
        "canonical_model": "gpt-4o",
    } | fields
    return UsageEvent(
        id=uuid.uuid4().hex,
        timestamp=at,
        account_id=account_id,
        key_id=key_id,
        axis=Axis.LLM,
        operation="chat.completions",
        cost_nano=1_000,
        latency_ms=latency,
        **values,
    )


def _known_ledger(ids: dict[str, Any]) -> list[UsageEvent]:
    """Key a: 1,000 OpenAI requests of 1 to 1,000 ms over the last three days, every even one streamed with its first
    token at a tenth of its latency (the odd ones carry a time to first token too, which must not count). Key b:
    100 Anthropic requests of 2,000 to 2,990 ms, none streamed."""
    events = [
        _event(
            ids["account"],
            ids["a"],
            NOW - timedelta(minutes=4 * ms),
            ms,
            streamed=ms % 2 == 0,
            ttft_ms=ms // 10 if ms % 2 == 0 else 99_999,
        )
        for ms in range(1, 1_001)
    ]
    events += [
        _event(ids["account"], ids["b"], NOW - timedelta(hours=2, minutes=n), ms, provider="anthropic", model="claude")
        for n, ms in enumerate(SLOW)
    ]
    return events


async def _acme(api: Api, *, timezone: str = "UTC") -> dict[str, Any]:
    api.clock.at = NOW
    account = await api.account("Acme", plan="enterprise", timezone=timezone)
    ids: dict[str, Any] = {"account": account["id"]}
    for name, role in (("ada", "owner"), ("al", "admin"), ("bill", "billing"), ("mo", "member")):
        member = await api.member(account["id"], f"{name}@acme.test", role)
        ids[name] = await api.token(account["id"], member["id"])
    for name in ("a", "b"):
        key = await api.key(account["id"], name=f"key-{name}")
        ids[name], ids[f"{name}_secret"] = key["id"], key["key"]
    return ids


async def _performance(api: Api, token: str = MASTER, **params: str) -> Any:
    response = await api.client.get(PATH, params=params, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and set(body) == {"success", "data"}
    return body["data"]


def _assert_near(figures: dict[str, Any], values: list[int]) -> None:
    """Each percentile within 1% (and the tenth of a millisecond shown) of the value at its rank."""
    ordered = sorted(values)
    assert figures["samples"] == len(values)
    for name, quantile in QUANTILES.items():
        exact = ordered[int(quantile * (len(ordered) - 1))]
        assert abs(figures[name] - exact) <= 0.01 * exact + 0.05, (name, figures[name], exact)


async def test_latency_and_first_token_percentiles_per_provider(api: Api) -> None:
    ids = await _acme(api)
    await api.ledger.record_many(_known_ledger(ids))

    data = await _performance(api, period="7d", breakdown="provider", account_id=ids["account"])

    assert set(data) == {
        "period",
        "breakdown",
        "timezone",
        "from",
        "to",
        "relativeAccuracy",
        "overall",
        "providers",
    }
    assert (data["period"], data["breakdown"], data["timezone"]) == ("7d", "provider", "UTC")
    assert (data["from"], data["to"], data["relativeAccuracy"]) == (
        "2026-03-04T00:00:00Z",
        "2026-03-11T00:00:00Z",
        0.01,
    )
    openai, anthropic = data["providers"]["openai"], data["providers"]["anthropic"]
    assert list(data["providers"]) == ["openai", "anthropic"], "by requests"
    assert set(openai) == {
        "requests",
        "averageLatencyMs",
        "latencyMs",
        "timeToFirstTokenMs",
        "errorRate",
        "errorsByType",
    }
    assert (openai["errorRate"], openai["errorsByType"]) == (0, {}), "no request failed"
    assert abs(openai["latencyMs"]["p50"] - 500) <= 5 and abs(openai["latencyMs"]["p95"] - 950) <= 9.5
    assert abs(openai["latencyMs"]["p99"] - 990) <= 9.9
    _assert_near(openai["latencyMs"], list(range(1, 1_001)))
    _assert_near(openai["timeToFirstTokenMs"], [ms // 10 for ms in range(2, 1_001, 2)])
    assert (openai["requests"], openai["averageLatencyMs"]) == (1_000, 500.5), "exact: the rollups' sum"
    _assert_near(anthropic["latencyMs"], SLOW)
    assert anthropic["timeToFirstTokenMs"] == {"p50": None, "p95": None, "p99": None, "samples": 0}
    _assert_near(data["overall"]["latencyMs"], [*range(1, 1_001), *SLOW])
    assert data["overall"]["requests"] == 1_100
    assert data["overall"]["averageLatencyMs"] == round((500_500 + sum(SLOW)) / 1_100, 1)


async def test_error_rates_by_type(api: Api) -> None:
    ids = await _acme(api)
    failures = [(503, "http_503")] * 3 + [(429, "rate_limit_error")] * 2 + [(504, "upstream_timeout")]
    events = [_event(ids["account"], ids["a"], NOW - timedelta(hours=1, minutes=n), 100) for n in range(14)]
    events += [
        _event(
            ids["account"],
            ids["a"],
            NOW - timedelta(hours=2, minutes=n),
            100,
            status=Status.ERROR,
            http_status=http_status,
            error_type=error_type,
        )
        for n, (http_status, error_type) in enumerate(failures)
    ]
    events.append(_event(ids["account"], ids["b"], NOW - timedelta(hours=1), 100, provider="anthropic", model="claude"))
    await api.ledger.record_many(events)

    data = await _performance(api, period="7d", breakdown="provider", account_id=ids["account"])

    openai = data["providers"]["openai"]
    assert (openai["requests"], openai["errorRate"]) == (20, 0.3), "6 of 20 failed"
    assert openai["errorsByType"] == {
        "upstream_error": {"requests": 3, "rate": 0.15},
        "rate_limited": {"requests": 2, "rate": 0.1},
        "timeout": {"requests": 1, "rate": 0.05},
    }
    assert data["providers"]["anthropic"]["errorRate"] == 0
    assert (data["overall"]["errorRate"], data["overall"]["errorsByType"]["upstream_error"]["rate"]) == (
        0.2857,
        0.1429,
    ), "6 and 3 of 21, to four places"


async def test_by_model_and_by_key(api: Api) -> None:
    ids = await _acme(api)
    await api.ledger.record_many(_known_ledger(ids))

    models = (await _performance(api, period="1w", breakdown="model", account_id=ids["account"]))["models"]
    keys = (await _performance(api, period="1w", breakdown="key", account_id=ids["account"]))["virtualKeys"]

    _assert_near(models["claude"]["latencyMs"], SLOW)
    _assert_near(models["gpt-4o"]["latencyMs"], list(range(1, 1_001)))
    assert list(keys) == [ids["a"], ids["b"]]
    assert keys[ids["b"]]["keyName"] == "key-b"
    _assert_near(keys[ids["b"]]["latencyMs"], SLOW)


async def test_a_period_of_hours_holds_only_those_hours(api: Api) -> None:
    ids = await _acme(api, timezone="Asia/Kathmandu")  # +05:45: its hours start at a quarter past in UTC
    await api.ledger.record_many(_known_ledger(ids))

    data = await _performance(api, period="1h", account_id=ids["account"])

    assert (data["from"], data["to"]) == ("2026-03-10T12:15:00Z", "2026-03-10T13:15:00Z"), "18:00 to 19:00 local"
    assert data["overall"]["requests"] == 1, "the 1 ms request, at 12:16Z; the 2 ms one was at 12:12Z"
    _assert_near(data["overall"]["latencyMs"], [1])


async def test_requests_recorded_by_two_processes_are_merged(api: Api, ledger_url: str) -> None:
    ids = await _acme(api)
    events = _known_ledger(ids)
    await api.ledger.record_many(events[::2])
    async with Ledger(ledger_url) as other:
        assert other.recorder.latencies.writer != api.ledger.recorder.latencies.writer
        await other.record_many(events[1::2])

    data = await _performance(api, period="7d", account_id=ids["account"])

    _assert_near(data["overall"]["latencyMs"], [event.latency_ms or 0 for event in events])
    _assert_near(data["providers"]["openai"]["timeToFirstTokenMs"], [ms // 10 for ms in range(2, 1_001, 2)])


async def test_a_zone_change_moves_the_days_with_it(api: Api) -> None:
    ids = await _acme(api)
    late_evening = datetime(2026, 3, 9, 20, tzinfo=UTC)  # the 9th in UTC, the 10th at 05:00 in Tokyo
    await api.ledger.record_many(
        [
            _event(ids["account"], ids["a"], late_evening, 100),
            _event(ids["account"], ids["a"], NOW - timedelta(hours=10), 1_000),
        ]
    )
    assert (await _performance(api, period="1d", account_id=ids["account"]))["overall"]["latencyMs"]["samples"] == 1

    await api.ok("PATCH", f"/accounts/{ids['account']}", {"timezone": "Asia/Tokyo"})
    await api.ledger.record(_event(ids["account"], ids["a"], NOW, 500))  # today in Tokyo, after the rebuild

    data = await _performance(api, period="1d", account_id=ids["account"])
    assert (data["timezone"], data["from"]) == ("Asia/Tokyo", "2026-03-09T15:00:00Z")
    _assert_near(data["overall"]["latencyMs"], [100, 1_000, 500])


async def test_who_may_ask(api: Api) -> None:
    ids = await _acme(api)
    await api.ledger.record_many(_known_ledger(ids))
    for member in ("ada", "al", "bill"):
        assert (await _performance(api, ids[member]))["overall"]["requests"] == 1_100, f"{member}: its account"
    for refused in (ids["mo"], ids["a_secret"]):
        assert_error(await api.client.get(PATH, headers={"authorization": f"Bearer {refused}"}), 403, "role_required")
    other = await api.account("Elsewhere")
    owner = await api.member(other["id"], "o@elsewhere.test", "owner")
    stranger = await api.token(other["id"], owner["id"])
    assert (await _performance(api, stranger))["overall"]["requests"] == 0, "its own account only"
    asked = await api.client.get(
        PATH, params={"account_id": ids["account"]}, headers={"authorization": f"Bearer {stranger}"}
    )
    assert_error(asked, 404, "account_not_found")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "7x"}, "period"),
        ({"period": "0d"}, "period"),
        ({"period": "200d"}, "period"),
        ({"breakdown": "foo"}, "breakdown"),
        ({"breakdown": "operation"}, "breakdown"),
    ],
)
async def test_bad_parameters_are_refused_in_the_error_shape(api: Api, params: dict[str, str], field: str) -> None:
    response = await api.client.get(PATH, params=params, headers={"authorization": f"Bearer {MASTER}"})
    error = assert_error(response, 422)
    assert field in error["message"]
