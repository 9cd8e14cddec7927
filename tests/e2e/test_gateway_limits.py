"""Caps hold whatever output limit a request states: zero, none or huge, on the OpenAI (chat and Responses API),
Anthropic and Gemini routes.

A limit of 0 used to reserve nothing while the upstream read it as "no limit": 64 parallel requests spent 7x a
$0.002 cap. Now a limit a provider would refuse is refused (400, in the provider's own shape) before anything
is forwarded or held; no limit reserves the configured default; a huge one is refused by the cap (402).
Anthropic's `max_tokens: 0` is the one zero a provider takes: it generates nothing (it pre-warms the prompt
cache), so it reserves no output and the mock produces none. And the mock, like a provider, spends reasoning
within the limit: it used to add any `x-mock-reasoning-tokens` on top, past what the reservation held.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from farebox.core.money import parse_usd

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway

CAP_USD = "0.002"
PARALLEL = 32
HEADERS = {"x-mock-latency-ms": "20", "x-mock-output-tokens": "2000"}
MESSAGES = [{"role": "user", "content": "Write a long story."}]


def _body(wire: str, limit: int | None, field: str = "max_completion_tokens") -> tuple[str, dict[str, Any]]:
    if wire == "openai":
        body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES}
        return "/v1/chat/completions", body if limit is None else body | {field: limit}
    if wire == "responses":
        body = {"model": "gpt-4o-mini", "input": "Write a long story."}
        return "/v1/responses", body if limit is None else body | {"max_output_tokens": limit}
    if wire == "anthropic":
        body = {"model": "claude-sonnet-4-6", "messages": MESSAGES}
        return "/v1/messages", body if limit is None else body | {"max_tokens": limit}
    body = {"contents": [{"role": "user", "parts": [{"text": "Write a long story."}]}]}
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    return path, body if limit is None else body | {"generationConfig": {"maxOutputTokens": limit}}


async def _race(
    gateway: Gateway,
    secret: str,
    wire: str,
    limit: int | None,
    field: str = "max_completion_tokens",
    headers: dict[str, str] = HEADERS,
) -> list[httpx.Response]:
    path, body = _body(wire, limit, field)
    sent = {"authorization": f"Bearer {secret}", **headers}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        return await asyncio.gather(*(client.post(path, json=body, headers=sent) for _ in range(PARALLEL)))


ROUTES = [
    ("openai", "max_completion_tokens"),
    ("openai", "max_tokens"),
    ("responses", ""),
    ("anthropic", ""),
    ("gemini", ""),
]
IDS = ["openai", "openai-max_tokens", "responses", "anthropic", "gemini"]


@pytest.mark.parametrize(("wire", "field"), ROUTES, ids=IDS)
@pytest.mark.parametrize("limit", [0, None, 10**9])
def test_parallel_requests_cannot_spend_past_a_cap_whatever_their_limit(
    gateway: Gateway, wire: str, field: str, limit: int | None
) -> None:
    secret, key = gateway.new_key(spend_cap=CAP_USD)
    answers = asyncio.run(_race(gateway, secret, wire, limit, field))
    events = gateway.events_of(key["id"])
    assert sum(int(event["cost_nano"]) for event in events) <= parse_usd(CAP_USD)
    statuses = {answer.status_code for answer in answers}
    if limit == 0 and wire != "anthropic":
        assert statuses == {400} and events == []  # refused before anything was forwarded
    else:
        assert statuses <= {200, 402} and len(events) == sum(answer.status_code == 200 for answer in answers)
    if limit == 0 and wire == "anthropic":
        assert {event["output_tokens"] for event in events} == {0}  # generated nothing, as it reserved


@pytest.mark.parametrize(("wire", "field"), ROUTES, ids=IDS)
def test_reasoning_is_spent_within_the_limit_the_reservation_held(gateway: Gateway, wire: str, field: str) -> None:
    secret, key = gateway.new_key(spend_cap=CAP_USD)
    headers = {"x-mock-reasoning-tokens": "100000", "x-mock-latency-ms": "20"}
    answers = asyncio.run(_race(gateway, secret, wire, 50, field, headers))
    events = gateway.events_of(key["id"])
    assert events and all(int(event["output_tokens"]) <= 50 for event in events)
    assert sum(int(event["cost_nano"]) for event in events) <= parse_usd(CAP_USD)
    assert {answer.status_code for answer in answers} <= {200, 402}


@pytest.mark.parametrize(
    ("wire", "shape"),
    [
        ("openai", lambda body: body["error"]["code"] == "integer_below_min_value"),
        ("responses", lambda body: body["error"]["code"] == "integer_below_min_value"),
        ("anthropic", lambda body: body["type"] == "error" and body["error"]["type"] == "invalid_request_error"),
        ("gemini", lambda body: body["error"]["status"] == "INVALID_ARGUMENT"),
    ],
)
def test_a_zero_limit_is_refused_in_the_provider_s_own_shape(gateway: Gateway, wire: str, shape: Any) -> None:
    secret, _ = gateway.new_key()
    path, body = _body(wire, 0)
    if wire == "anthropic":
        body["stream"] = True  # Anthropic takes max_tokens 0 (a cache pre-warm), but not in a stream
    answer = httpx.post(f"{gateway.url}{path}", json=body, headers={"authorization": f"Bearer {secret}"}, timeout=10)
    assert answer.status_code == 400 and shape(answer.json()), answer.text


def test_the_openai_sdk_sees_a_bad_request_for_invalid_fields(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    client = openai.OpenAI(api_key=secret, base_url=f"{gateway.url}/v1", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="max_completion_tokens"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_completion_tokens=0)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="gpt-4o-mini", messages="hello")  # type: ignore[arg-type]
    assert gateway.events_of(key["id"]) == []
