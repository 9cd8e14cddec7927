"""`GET /api/admin/providers/analytics` (seed 004) over HTTP: per provider its requests, cost, share, latency,
error rate and uptime (only upstream failures count against it), by model and by operation, on a ledger with
known answers; classes of real failures through the gateway with the official SDK; who may ask; bad
parameters refused in the error shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anthropic
import openai
import pytest
from admin_client import MASTER, Api, assert_error

from farebox.core.events import Axis, Status, UsageEvent

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 3, 10, 12, 20, tzinfo=UTC)
USD = 1_000_000_000
PATH = "/api/admin/providers/analytics"

# (provider, model, operation, cost, input tokens, output tokens, latency ms, HTTP status, error type)
EVENTS = [
    *[("openai", "gpt-4o", "chat.completions", USD, 100, 100, 1_000, 200, None)] * 4,
    ("openai", "gpt-4o", "chat.completions", 0, 0, 0, 3_000, 503, "http_503"),  # upstream failure
    ("openai", "gpt-4o", "chat.completions", 0, 0, 0, 30_000, 504, "upstream_timeout"),  # upstream failure
    ("openai", "gpt-4o", "chat.completions", 0, 0, 0, 10, 429, "rate_limit_error"),  # refused, answered
    ("openai", "gpt-4o", "chat.completions", 0, 0, 0, 10, 499, "cancelled"),  # the client left
    ("openai", "text-embedding-3-small", "embeddings", USD // 100, 1_000, 0, 100, 200, None),
    ("openai", "text-embedding-3-small", "embeddings", USD // 100, 1_000, 0, 100, 200, None),
    *[("anthropic", "claude-sonnet-4-6", "messages", 3 * USD, 1_000, 500, 2_000, 200, None)] * 2,
]


async def _acme(api: Api) -> dict[str, Any]:
    api.clock.at = NOW
    account = await api.account("Acme")
    ids: dict[str, Any] = {"account": account["id"]}
    for name, role in (("ada", "admin"), ("bill", "billing"), ("mo", "member")):
        member = await api.member(account["id"], f"{name}@acme.test", role)
        ids[name] = await api.token(account["id"], member["id"])
    key = await api.key(account["id"], name="prod")
    ids["key"], ids["secret"] = key["id"], key["key"]
    await api.ledger.record_many(
        [
            UsageEvent(
                id=f"e{n}",
                timestamp=NOW - timedelta(hours=2, minutes=n),
                account_id=account["id"],
                key_id=key["id"],
                axis=Axis.LLM,
                provider=provider,
                model=model,
                canonical_model=model,
                operation=operation,
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                cost_nano=cost,
                latency_ms=latency,
                http_status=status,
                error_type=error_type,
                status=Status.OK if status == 200 else Status.ERROR,
            )
            for n, (provider, model, operation, cost, tokens_in, tokens_out, latency, status, error_type) in enumerate(
                EVENTS
            )
        ]
    )
    return ids


async def _providers(api: Api, token: str = MASTER, **params: str) -> Any:
    response = await api.client.get(PATH, params=params, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and set(body) == {"success", "data"}
    return body["data"]


async def test_each_provider_s_summary_models_and_operations(api: Api) -> None:
    ids = await _acme(api)
    data = await _providers(api, period="7d", account_id=ids["account"])
    assert (data["period"], data["totalRequests"], data["totalCost"]) == ("7d", 12, 10.02)
    assert list(data["providers"]) == ["anthropic", "openai"], "by cost: $6.00, then $4.02"
    openai_ = data["providers"]["openai"]
    assert openai_["summary"] == {
        "requests": 10,
        "cost": 4.02,
        "percentage": 0.4012,  # 4.02 / 10.02
        "averageLatency": 3.722,  # 37,220 ms over 10 requests
        "errorRate": 0.4,  # 4 of 10 failed
        "uptime": 0.8,  # 2 of them were the upstream's: a 503 and a timeout
        "upstreamFailures": 2,
    }
    assert openai_["models"] == {
        "gpt-4o": {
            "requests": 8,
            "cost": 4,
            "inputTokens": 400,
            "outputTokens": 400,
            "averageLatency": 4.628,  # 37,020 ms / 8, half to even
            "costPerRequest": 0.5,
            "costPerToken": 0.005,
        },
        "text-embedding-3-small": {
            "requests": 2,
            "cost": 0.02,
            "inputTokens": 2_000,
            "outputTokens": 0,
            "averageLatency": 0.1,
            "costPerRequest": 0.01,
            "costPerToken": 0.00001,
        },
    }
    assert openai_["operations"] == {
        "chat.completions": {"requests": 8, "cost": 4},
        "embeddings": {"requests": 2, "cost": 0.02},
    }
    anthropic_ = data["providers"]["anthropic"]["summary"]
    assert (anthropic_["uptime"], anthropic_["errorRate"], anthropic_["averageLatency"]) == (1, 0, 2)
    exact = Decimal(str(data["providers"]["anthropic"]["models"]["claude-sonnet-4-6"]["costPerToken"]))
    assert exact == Decimal("0.002"), "$3.00 over 1,500 tokens, exact"


async def test_a_breakdown_leaves_out_what_was_not_asked_for(api: Api) -> None:
    ids = await _acme(api)
    models = await _providers(api, period="7d", breakdown="model", account_id=ids["account"])
    assert set(models["providers"]["openai"]) == {"summary", "models"}
    operations = await _providers(api, period="7d", breakdown="operation", account_id=ids["account"])
    assert set(operations["providers"]["openai"]) == {"summary", "operations"}


async def test_a_period_of_hours_ends_with_the_current_hour(api: Api) -> None:
    ids = await _acme(api)
    assert (await _providers(api, period="2h", account_id=ids["account"]))["totalRequests"] == 0
    assert (await _providers(api, period="3h", account_id=ids["account"]))["totalRequests"] == 12


async def test_who_may_ask(api: Api) -> None:
    ids = await _acme(api)
    assert (await _providers(api, ids["bill"], period="1d"))["totalRequests"] == 12, "billing: its account"
    assert (await _providers(api, ids["ada"], period="1d"))["totalRequests"] == 12
    assert_error(await api.client.get(PATH, headers={"authorization": f"Bearer {ids['mo']}"}), 403, "role_required")
    assert_error(await api.client.get(PATH, headers={"authorization": f"Bearer {ids['secret']}"}), 403)
    assert_error(await api.client.get(PATH), 401)
    other = await api.account("Elsewhere")
    owner = await api.member(other["id"], "o@elsewhere.test", "owner")
    stranger = await api.token(other["id"], owner["id"])
    asked = await api.client.get(
        PATH, params={"account_id": ids["account"]}, headers={"authorization": f"Bearer {stranger}"}
    )
    assert_error(asked, 404, "account_not_found")
    assert (await _providers(api, stranger, period="1d"))["providers"] == {}, "its own account: nothing yet"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "7x"}, "period"),
        ({"period": "365d"}, "period"),
        ({"breakdown": "key"}, "breakdown"),
        ({"breakdown": "model,"}, "breakdown"),
    ],
)
async def test_bad_parameters_are_refused_in_the_error_shape(api: Api, params: dict[str, str], field: str) -> None:
    await _acme(api)
    response = await api.client.get(PATH, params=params, headers={"authorization": f"Bearer {MASTER}"})
    error = assert_error(response, 422)
    assert field in error["message"]


def test_failures_through_the_gateway_are_classed_and_only_the_upstream_s_count_against_uptime(
    gateway: Gateway,
) -> None:
    secret, key = gateway.new_key()
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0)
    chat: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    client.chat.completions.create(**chat)
    client.chat.completions.create(**chat)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(**chat, extra_headers={"x-mock-status": "503"})
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(**chat, extra_headers={"x-mock-status": "429"})
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(**chat, extra_headers={"x-mock-status": "400"})
    with pytest.raises(openai.APIStatusError) as unreachable:
        client.chat.completions.create(**{**chat, "model": "dead-gpt"})
    assert unreachable.value.status_code == 502
    claude = anthropic.Anthropic(base_url=gateway.url, api_key=secret, max_retries=0)
    claude.messages.create(model="claude-sonnet-4-6", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    gateway.wait_events(key["id"], 7)

    answer = gateway.admin("GET", PATH, params={"account_id": key["account_id"], "period": "1d"})
    assert answer.status_code == 200, answer.text
    providers = answer.json()["data"]["providers"]
    summaries = {name: entry["summary"] for name, entry in providers.items()}
    requests = sum(summary["requests"] for summary in summaries.values())
    assert requests == 7
    failures = {name: summary["upstreamFailures"] for name, summary in summaries.items()}
    assert sum(failures.values()) == 2, f"the 503 and the unreachable upstream, not the 429 or the 400: {summaries}"
    errors = sum(round(summary["errorRate"] * summary["requests"]) for summary in summaries.values())
    assert errors == 4
