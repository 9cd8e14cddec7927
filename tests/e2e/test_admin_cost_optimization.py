"""`GET /api/admin/analytics/cost-optimization` (seed 004) over HTTP, on ledgers with known answers: a cheaper sibling
for small requests, a cheaper provider of the same model and the batch discount, each saving checked to the
nano-USD against the genai-prices catalog; prompt caching for repeated long prompts sent through the gateway
with the official OpenAI SDK (the ledger keeping a keyed hash of the prompt's beginning, never its text); cost
trends between the period's halves; who may ask; bad parameters."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import genai_prices
import httpx
import openai
import pytest
from admin_client import MASTER, Api, assert_error

from farebox.core.events import Axis, Status, UsageEvent

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 3, 10, 12, 20, tzinfo=UTC)
"""Before the catalog's batch prices begin (14 October 2026): the batch discount comes from the stated table."""
PATH = "/api/admin/analytics/cost-optimization"
NANO = Decimal("0.000000001")
USD = 1_000_000_000


def catalog_nano(model: str, provider: str, *, input_tokens: int, output_tokens: int) -> int:
    """What the genai-prices catalog charges, in nano-USD (rounded half to even), worked out apart from farebox."""
    usage = genai_prices.Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    price = genai_prices.calc_price(usage, model, provider_id=provider, genai_request_timestamp=NOW).total_price
    return int((price / NANO).to_integral_value())


def events(account: str, key: str, count: int, *, day: datetime = NOW, **fields: Any) -> list[UsageEvent]:
    """`count` requests of one key on one day, each costing what the catalog charges (or `cost_nano`)."""
    values: dict[str, Any] = {"provider": "openai", "model": "gpt-4o", "operation": "chat.completions"} | fields
    if "cost_nano" not in values:
        values["cost_nano"] = catalog_nano(
            values["model"],
            values["provider"],
            input_tokens=values["input_tokens"],
            output_tokens=values["output_tokens"],
        )
    return [
        UsageEvent(
            id=f"{key}-{values['model']}-{values['operation']}-{day:%m%d}-{n}",
            timestamp=day.replace(hour=9, minute=0) + timedelta(minutes=n),
            account_id=account,
            key_id=key,
            axis=Axis.LLM,
            canonical_model=values["model"],
            **values,
        )
        for n in range(count)
    ]


async def _account(api: Api, **fields: Any) -> dict[str, Any]:
    api.clock.at = NOW
    account = await api.account("Acme", plan="enterprise")
    ids: dict[str, Any] = {"account": account["id"]}
    for name, role in (("ada", "admin"), ("bill", "billing"), ("mo", "member")):
        member = await api.member(account["id"], f"{name}@acme.test", role)
        ids[name] = await api.token(account["id"], member["id"])
    for name in ("small", "large", "bot"):
        key = await api.key(account["id"], name=name, **({"agent_id": "nightly-etl"} if name == "bot" else {}))
        ids[name], ids[f"{name}_secret"] = key["id"], key["key"]
    return ids


def exact(response: httpx.Response) -> Any:
    """The answer's `data`, numbers as exact decimals (never through float)."""
    assert response.status_code == 200, response.text
    body = json.loads(response.text, parse_float=Decimal)
    assert body["success"] is True and set(body) == {"success", "data"}
    return body["data"]


async def advice(api: Api, token: str = MASTER, **params: str) -> Any:
    return exact(await api.client.get(PATH, params=params, headers={"authorization": f"Bearer {token}"}))


def of_type(data: Any, kind: str) -> list[dict[str, Any]]:
    return [item for item in data["recommendations"] if item["type"] == kind]


async def test_small_gpt_4o_requests_get_gpt_4o_mini_with_the_catalog_s_savings(api: Api) -> None:
    ids = await _account(api)
    small = [
        *events(ids["account"], ids["small"], 10, input_tokens=500, output_tokens=100),
        *events(ids["account"], ids["small"], 20, day=NOW - timedelta(days=1), input_tokens=700, output_tokens=300),
    ]
    large = events(ids["account"], ids["large"], 10, input_tokens=5_000, output_tokens=100)
    await api.ledger.record_many([*small, *large])

    data = await advice(api, period="30d", account_id=ids["account"])
    (substitution,) = of_type(data, "model_substitution")
    actual = sum(event.cost_nano for event in small)
    in_mini = catalog_nano("gpt-4o-mini", "openai", input_tokens=10 * 500 + 20 * 700, output_tokens=10 * 100 + 20 * 300)
    assert actual - in_mini == 10 * 2_115_000 + 20 * 4_465_000, "($2.50 - $0.15) x 500 + ($10 - $0.60) x 100, ..."
    assert substitution == {
        "type": "model_substitution",
        "description": substitution["description"],
        "estimatedSavings": (actual - in_mini) * NANO,
        "affectedRequests": 30,
        "affectedKeys": 1,
        "confidence": Decimal("0.6"),
        "implementation": {
            "virtualKeys": [ids["small"]],
            "modelMapping": {
                "from": "gpt-4o",
                "to": "gpt-4o-mini",
                "conditions": ["input_tokens < 1000", "output_tokens < 500"],
            },
        },
    }, "the key whose requests average 5,000 input tokens is left out"
    assert "gpt-4o-mini" in substitution["description"]
    total = sum(event.cost_nano for event in [*small, *large])
    assert data["totalCost"] == total * NANO
    assert data["potentialSavings"] == sum(item["estimatedSavings"] for item in data["recommendations"])
    assert data["savingsPercentage"] == (data["potentialSavings"] / data["totalCost"]).quantize(Decimal("0.0001"))
    assert of_type(data, "provider_routing") == [] and of_type(data, "caching") == []
    assert of_type(data, "batch_processing") == [], "no key of an agent or an app"


async def test_the_same_model_at_a_cheaper_provider(api: Api) -> None:
    ids = await _account(api)
    qwen = events(
        ids["account"],
        ids["large"],
        8,
        provider="together",
        model="Qwen/Qwen3.5-9B",
        input_tokens=2_000,
        output_tokens=800,
    )
    await api.ledger.record_many(qwen)
    (routing,) = of_type(await advice(api, period="7d", account_id=ids["account"]), "provider_routing")
    at_openrouter = catalog_nano("Qwen/Qwen3.5-9B", "openrouter", input_tokens=8 * 2_000, output_tokens=8 * 800)
    actual = sum(event.cost_nano for event in qwen)
    assert at_openrouter < actual
    assert routing["estimatedSavings"] == (actual - at_openrouter) * NANO
    assert (routing["affectedRequests"], routing["confidence"]) == (8, Decimal("0.9"))
    assert routing["implementation"] == {
        "virtualKeys": [ids["large"]],
        "routing": {"model": "Qwen/Qwen3.5-9B", "from": "together", "to": "openrouter"},
    }


async def test_an_agent_s_requests_get_the_batch_discount(api: Api) -> None:
    ids = await _account(api)
    automated = events(
        ids["account"],
        ids["bot"],
        4,
        provider="anthropic",
        model="claude-sonnet-4-6",
        operation="messages",
        agent_id="nightly-etl",
        input_tokens=3_000,
        output_tokens=1_000,
    )
    interactive = events(
        ids["account"],
        ids["large"],
        4,
        provider="anthropic",
        model="claude-sonnet-4-6",
        operation="messages",
        input_tokens=3_000,
        output_tokens=1_000,
    )
    await api.ledger.record_many([*automated, *interactive])
    (batch,) = of_type(await advice(api, period="7d", account_id=ids["account"]), "batch_processing")
    actual = sum(event.cost_nano for event in automated)
    assert actual == 4 * catalog_nano("claude-sonnet-4-6", "anthropic", input_tokens=3_000, output_tokens=1_000)
    assert batch["estimatedSavings"] == actual * NANO / 2, "Anthropic's Message Batches: half off"
    assert (batch["affectedRequests"], batch["confidence"]) == (4, Decimal("0.4"))
    assert batch["implementation"] == {
        "virtualKeys": [ids["bot"]],
        "batch": {"model": "claude-sonnet-4-6", "provider": "anthropic"},
    }


async def test_a_model_whose_cost_doubles_is_increasing_and_one_that_halves_decreasing(api: Api) -> None:
    ids = await _account(api)
    days = [NOW - timedelta(days=n) for n in range(4)]  # 10 March (today) back to 7 March
    recorded: list[UsageEvent] = []
    for n, day in enumerate(days):
        later = n < 2  # the second half: 9 and 10 March
        recorded += events(
            ids["account"], ids["large"], 2 if later else 1, day=day, input_tokens=0, output_tokens=0, cost_nano=USD
        )
        recorded += events(
            ids["account"],
            ids["large"],
            1,
            day=day,
            model="text-embedding-3-small",
            operation="embeddings",
            input_tokens=0,
            output_tokens=0,
            cost_nano=USD // 2 if later else USD,
        )
        recorded += events(
            ids["account"],
            ids["large"],
            1,
            day=day,
            model="gpt-4o-mini",
            input_tokens=0,
            output_tokens=0,
            cost_nano=105 * USD // 100 if later else USD,
        )
    await api.ledger.record_many(recorded)
    trends = (await advice(api, period="4d", account_id=ids["account"]))["costTrends"]
    assert trends["increasing"] == [
        {
            "category": "chat.completions",
            "type": "operation",
            "name": "chat.completions",
            "previousCost": 4,
            "currentCost": Decimal("6.1"),
            "growthRate": Decimal("0.525"),
            "projectedMonthlyCost": Decimal("91.5"),
        },
        {
            "category": "gpt-4o_usage",
            "type": "model",
            "name": "gpt-4o",
            "previousCost": 2,
            "currentCost": 4,
            "growthRate": 1,
            "projectedMonthlyCost": 60,  # $2 a day for 30 days
        },
    ], "by the size of the change; gpt-4o-mini moved 5%: under the 10% that counts"
    assert trends["decreasing"] == [
        {
            "category": "text-embedding-3-small_usage",
            "type": "model",
            "name": "text-embedding-3-small",
            "previousCost": 2,
            "currentCost": 1,
            "reductionRate": Decimal("0.5"),
            "savings": 1,
        },
        {
            "category": "embeddings",
            "type": "operation",
            "name": "embeddings",
            "previousCost": 2,
            "currentCost": 1,
            "reductionRate": Decimal("0.5"),
            "savings": 1,
        },
    ]


def _prompt(marker: str) -> str:
    return f"You are the support agent of {marker}. Answer in the customer's language. " * 150  # ~10,000 characters


def _ask(gateway: Gateway, secret: str, system: str, question: str, **headers: str) -> str:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0)
    completion = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
        extra_headers=headers or None,
    )
    return completion.headers["x-farebox-request-id"]


def _caching(gateway: Gateway, account_id: str) -> list[dict[str, Any]]:
    answer = gateway.admin("GET", PATH, params={"period": "1d", "account_id": account_id})
    return [item for item in exact(answer)["recommendations"] if item["type"] == "caching"]


def test_repeated_long_prompts_through_the_gateway_are_advised_to_be_cached(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    system = _prompt("ACME-ZEBRA-7731")
    for question in ("Where is my order?", "Can I return it?", "How long is shipping?"):
        _ask(gateway, secret, system, question)

    stored = gateway.events_of(key["id"])
    assert len(stored) == 3 and all(row["input_tokens"] >= 1_024 for row in stored)
    prefixes = {row["prompt_prefix"] for row in stored}
    assert len(prefixes) == 1 and all(len(p) == 16 and int(p, 16) >= 0 for p in prefixes), prefixes
    with sqlite3.connect(gateway.database) as connection:
        columns = [
            str(value)
            for value in connection.execute("SELECT * FROM usage_events WHERE key_id = ?", (key["id"],)).fetchall()[0]
        ]
        dumped = "\n".join(line for line in connection.iterdump())
    assert not any("ZEBRA" in value for value in columns), "the prompt is not in the event"
    assert "ZEBRA" not in dumped, "nor anywhere in the ledger"

    (cache,) = _caching(gateway, key["account_id"])
    # Two repeats, each 1,024 prefix tokens read at gpt-4o-mini's cache price ($0.075) instead of input ($0.15).
    assert cache["estimatedSavings"] == 2 * 1_024 * Decimal("0.075") / 1_000_000
    assert (cache["affectedRequests"], cache["cacheHitRateProjected"]) == (3, Decimal("0.6667"))
    assert cache["confidence"] == Decimal("0.5")
    assert cache["implementation"] == {
        "virtualKeys": [key["id"]],
        "caching": {"model": "gpt-4o-mini", "provider": "mock", "repeatedPrefixes": 1},
    }


def test_distinct_long_prompts_are_not_advised_to_be_cached(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    for marker in ("Acme", "Globex", "Initech"):
        _ask(gateway, secret, _prompt(marker), "Where is my order?")
    assert len({row["prompt_prefix"] for row in gateway.events_of(key["id"])}) == 3
    assert _caching(gateway, key["account_id"]) == []


def test_prompts_already_read_from_cache_leave_nothing_to_save(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    system = _prompt("Acme")
    _ask(gateway, secret, system, "Where is my order?")
    for question in ("Can I return it?", "How long is shipping?"):
        _ask(gateway, secret, system, question, **{"x-mock-cached-tokens": "1024"})
    assert _caching(gateway, key["account_id"]) == []


def test_short_prompts_carry_no_prefix(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    _ask(gateway, secret, "Be brief.", "Hello")
    assert [row["prompt_prefix"] for row in gateway.events_of(key["id"])] == [None]


async def test_failed_requests_count_in_the_cost_and_its_trends_and_in_no_advice(api: Api) -> None:
    ids = await _account(api)
    ok = events(ids["account"], ids["small"], 10, input_tokens=500, output_tokens=100)
    failed = events(
        ids["account"],
        ids["small"],
        3,
        day=NOW - timedelta(days=3),  # 7 March: the first half of four days
        input_tokens=500,
        output_tokens=100,
        cost_nano=USD,
        status=Status.ERROR,
    )
    await api.ledger.record_many([*ok, *failed])
    data = await advice(api, period="4d", account_id=ids["account"])
    assert data["totalCost"] == (sum(event.cost_nano for event in ok) + 3 * USD) * NANO
    (substitution,) = of_type(data, "model_substitution")
    assert substitution["affectedRequests"] == 10, "only successful requests are advised on"
    shrinking = {item["name"]: item for item in data["costTrends"]["decreasing"]}
    assert shrinking["gpt-4o"]["previousCost"] == 3, "the failed requests' cost, in the first half"


async def test_an_empty_period_has_no_advice(api: Api) -> None:
    ids = await _account(api)
    data = await advice(api, period="24h", account_id=ids["account"])
    assert data == {
        "period": "24h",
        "timezone": "UTC",
        "totalCost": 0,
        "potentialSavings": 0,
        "savingsPercentage": 0,
        "recommendations": [],
        "costTrends": {"increasing": [], "decreasing": []},
    }


async def test_a_period_of_hours_counts_the_clock_s_hours(api: Api) -> None:
    ids = await _account(api)
    await api.ledger.record_many(events(ids["account"], ids["small"], 3, input_tokens=500, output_tokens=100))
    assert (await advice(api, period="3h", account_id=ids["account"]))["totalCost"] == 0, "09:00, more than 3h ago"
    assert of_type(await advice(api, period="4h", account_id=ids["account"]), "model_substitution")


async def test_who_may_ask(api: Api) -> None:
    ids = await _account(api)
    await api.ledger.record_many(events(ids["account"], ids["small"], 2, input_tokens=500, output_tokens=100))
    for token in (ids["ada"], ids["bill"]):
        assert (await advice(api, token))["totalCost"] == 2 * 2_250_000 * NANO, "its own account"
    assert_error(await api.client.get(PATH, headers={"authorization": f"Bearer {ids['mo']}"}), 403, "role_required")
    refused = await api.client.get(PATH, headers={"authorization": f"Bearer {ids['small_secret']}"})
    assert_error(refused, 403, "role_required")
    assert_error(await api.client.get(PATH), 401)
    other = await api.account("Elsewhere")
    owner = await api.member(other["id"], "o@elsewhere.test", "owner")
    stranger = await api.token(other["id"], owner["id"])
    asked = await api.client.get(
        PATH, params={"account_id": ids["account"]}, headers={"authorization": f"Bearer {stranger}"}
    )
    assert_error(asked, 404, "account_not_found")


@pytest.mark.parametrize("period", ["7x", "0d", "200d", "30", "d"])
async def test_bad_periods_are_refused_in_the_error_shape(api: Api, period: str) -> None:
    response = await api.client.get(PATH, params={"period": period}, headers={"authorization": f"Bearer {MASTER}"})
    assert "period" in assert_error(response, 422)["message"]
