"""Prepaid credits through the real gateway: 64 parallel streams cannot draw a tiny balance below zero, an empty
balance answers 402 `credits_exhausted` in each SDK's shape with nothing forwarded, `x-credits-remaining` counts
in credits, a top-up applies to the next request, and ingested usage may overdraw.

The mock upstream answers after 40 ms, so many requests are in flight at once. Every forwarded request leaves
exactly one event, so "events == successful responses" means no refused request reached the upstream.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors, types
from stream_race import HEADERS, MESSAGES, hammer, total_cost

from farebox.core.credits import CreditRate
from farebox.core.money import NANO_PER_USD, format_usd, parse_usd

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway

RATE = CreditRate()  # the default 20,000 credits per USD
TINY = "16"  # credits, 0.0008 USD: gpt-4o-mini costs ~31 µUSD a request, so about 25 of the 192 fit


def prepaid(gateway: Gateway, credits: str, *, keys: int = 1, **key_fields: Any) -> tuple[str, list[dict[str, Any]]]:
    """A new account topped up with `credits`, and its keys: (account id, key records)."""
    account = gateway.admin("POST", "/api/admin/accounts", json={"name": "prepaid"}).json()
    top_up(gateway, account["id"], credits=credits)
    created = [
        gateway.admin(
            "POST", "/api/admin/virtual-keys", json={"account_id": account["id"], "name": f"k{n}", **key_fields}
        ).json()
        for n in range(keys)
    ]
    return account["id"], created


def top_up(gateway: Gateway, account_id: str, **body: str) -> dict[str, Any]:
    response = gateway.admin("POST", f"/api/admin/accounts/{account_id}/credits", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def credits_of(gateway: Gateway, account_id: str) -> dict[str, Any]:
    response = gateway.admin("GET", f"/api/admin/accounts/{account_id}/credits")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_parallel_streams_cannot_draw_a_tiny_balance_below_zero(gateway: Gateway) -> None:
    account_id, keys = prepaid(gateway, TINY, keys=3)
    successes, refusals = asyncio.run(hammer(gateway, [key["key"] for key in keys]))

    events = [event for key in keys for event in gateway.events_of(key["id"])]
    balance = RATE.parse(TINY)
    assert refusals, "the balance never refused a request"
    assert {exc.status_code for exc in refusals} == {402}
    assert {exc.code for exc in refusals} == {"credits_exhausted"}
    assert len(events) == successes, "a refused request was forwarded (or a forwarded one not recorded)"
    assert all(event["status"] == "ok" for event in events)
    assert total_cost(events) <= balance
    assert total_cost(events) > balance // 2, "the balance refused far too early"
    shown = credits_of(gateway, account_id)
    assert shown["used"] == format_usd(total_cost(events)) and shown["reserved"] == "0.00"
    assert shown["balance"] == format_usd(balance - total_cost(events))
    assert shown["balance_credits"] == RATE.format(balance - total_cost(events))


def test_credits_remaining_counts_credits_and_the_reservation_of_a_stream_in_flight(gateway: Gateway) -> None:
    account_id, (key,) = prepaid(gateway, "20000")  # 1 USD
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 1000, "stream": True}
    headers = {"Authorization": f"Bearer {key['key']}", **HEADERS}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=10) as stream:
        held = stream.headers["x-credits-remaining"]
        for _ in stream.iter_bytes():
            pass
    # The worst case held: 1,000 output tokens at 0.60 USD/M plus the prompt's bytes at 0.15 USD/M, in credits.
    assert Decimal(20000 - 13) < Decimal(held) < Decimal(20000 - 12)
    sdk = openai.OpenAI(api_key=key["key"], base_url=f"{gateway.url}/v1", max_retries=0)
    after = sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)  # type: ignore[arg-type]
    spent = total_cost(gateway.events_of(key["id"]))
    assert after.headers["x-credits-remaining"] == RATE.format(NANO_PER_USD - spent)
    assert credits_of(gateway, account_id)["balance_credits"] == RATE.format(NANO_PER_USD - spent)


def test_a_key_cap_tighter_than_the_balance_is_shown_in_credits(gateway: Gateway) -> None:
    _account_id, (key,) = prepaid(gateway, "20000", spend_cap="0.01")
    sdk = openai.OpenAI(api_key=key["key"], base_url=f"{gateway.url}/v1", max_retries=0)
    reply = sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)  # type: ignore[arg-type]
    spent = total_cost(gateway.events_of(key["id"]))
    assert reply.headers["x-credits-remaining"] == RATE.format(parse_usd("0.01") - spent)


def test_an_empty_balance_refuses_in_the_anthropic_sdk_s_shape_and_forwards_nothing(gateway: Gateway) -> None:
    _account_id, (key,) = prepaid(gateway, "0.00002")  # one nano-USD
    sdk = anthropic.Anthropic(api_key=key["key"], base_url=gateway.url, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as refused:
        sdk.messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=MESSAGES)  # type: ignore[arg-type]
    assert refused.value.status_code == 402
    assert refused.value.body["error"]["type"] == "billing_error"  # type: ignore[index]
    assert "credits exhausted" in refused.value.body["error"]["message"]  # type: ignore[index]
    assert gateway.events_of(key["id"]) == []


def test_an_empty_balance_refuses_in_the_gemini_sdk_s_shape(gateway: Gateway) -> None:
    _account_id, (key,) = prepaid(gateway, "0.00002")
    options = types.HttpOptions(
        base_url=gateway.url, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)
    )
    with genai.Client(api_key=key["key"], http_options=options) as sdk, pytest.raises(errors.ClientError) as refused:
        sdk.models.generate_content(model="gemini-2.5-flash", contents="Count the fares")
    assert (refused.value.code, refused.value.status) == (402, "RESOURCE_EXHAUSTED")
    assert refused.value.message is not None and "credits exhausted" in refused.value.message
    assert gateway.events_of(key["id"]) == []


def test_a_top_up_applies_to_the_next_request(gateway: Gateway) -> None:
    account_id, (key,) = prepaid(gateway, "0.00002")
    sdk = openai.OpenAI(api_key=key["key"], base_url=f"{gateway.url}/v1", max_retries=0)
    with pytest.raises(openai.APIStatusError) as refused:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=100)  # type: ignore[arg-type]
    assert (refused.value.status_code, refused.value.code) == (402, "credits_exhausted")
    added = top_up(gateway, account_id, amount_usd="5.00", note="invoice 42")
    assert (added["amount"], added["credits"], added["note"], added["added_by"]) == (
        "5.00",
        "100000",
        "invoice 42",
        "master",
    )
    assert added["balance_credits"] == "100000.00002"
    completion = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=100)  # type: ignore[arg-type]
    assert completion.usage is not None
    shown = credits_of(gateway, account_id)
    assert [row["amount"] for row in shown["top_ups"]] == ["5.00", "0.000000001"]


def test_ingested_usage_overdraws_the_balance_and_then_requests_are_refused(gateway: Gateway) -> None:
    account_id, (key,) = prepaid(gateway, "200")  # 0.01 USD
    event = {"id": f"voice-{key['id']}", "key_id": key["id"], "axis": "voice", "provider": "elevenlabs"}
    posted = gateway.admin(
        "POST", "/api/events", json={"events": [event | {"model": "eleven_v3", "characters": 100, "cost_usd": "1.00"}]}
    )
    assert posted.status_code == 200, posted.text
    shown = credits_of(gateway, account_id)
    assert (shown["balance"], shown["balance_credits"], shown["used"]) == ("-0.99", "-19800", "1.00")
    sdk = openai.OpenAI(api_key=key["key"], base_url=f"{gateway.url}/v1", max_retries=0)
    with pytest.raises(openai.APIStatusError) as refused:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)  # type: ignore[arg-type]
    assert refused.value.code == "credits_exhausted" and "no prepaid credits left" in refused.value.message
