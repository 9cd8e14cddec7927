"""Spend caps through the real gateway: reservations that 64 parallel streams cannot race past, 402s in each
SDK's shape, and `x-credits-remaining` counting what is held.

The mock upstream answers after 40 ms, so many requests are in flight at once. Every forwarded request leaves
exactly one event, so "events == successful responses" means no refused request reached the upstream.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING

import anthropic
import httpx
import openai
import pytest
from stream_race import HEADERS, MESSAGES, hammer, total_cost

from farebox.core.money import NANO_PER_USD, format_usd, parse_usd

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway

CAP_USD = "0.0008"  # gpt-4o-mini: ~31 µUSD per request, so about 25 of the 192 fit


def _assert_capped(gateway: Gateway, key_ids: list[str], successes: int, refusals: list[openai.APIStatusError]) -> None:
    events = [event for key_id in key_ids for event in gateway.events_of(key_id)]
    cap = parse_usd(CAP_USD)
    assert refusals, "the cap never refused a request"
    assert {exc.status_code for exc in refusals} == {402}
    assert {exc.code for exc in refusals} == {"budget_exceeded"}
    assert len(events) == successes, "a refused request was forwarded (or a forwarded one not recorded)"
    assert all(event["status"] == "ok" for event in events)
    assert total_cost(events) <= cap
    assert total_cost(events) > cap // 2, "the cap refused far too early"


def test_parallel_streams_cannot_push_a_key_past_its_cap(gateway: Gateway) -> None:
    secret, key = gateway.new_key(spend_cap=CAP_USD)
    successes, refusals = asyncio.run(hammer(gateway, [secret]))
    _assert_capped(gateway, [key["id"]], successes, refusals)
    assert "remaining" in refusals[0].message and "spend cap of key 'k'" in refusals[0].message


def test_a_member_cap_holds_across_the_member_s_keys(gateway: Gateway) -> None:
    account = gateway.admin("POST", "/api/admin/accounts", json={"name": "member-cap"}).json()
    member = gateway.admin(
        "POST",
        f"/api/admin/accounts/{account['id']}/members",
        json={"email": "ada@example.com", "name": "Ada", "spend_cap": CAP_USD, "cap_period": "daily"},
    ).json()
    keys = [
        gateway.admin(
            "POST",
            "/api/admin/virtual-keys",
            json={"account_id": account["id"], "member_id": member["id"], "name": f"k{i}"},
        ).json()
        for i in range(4)
    ]
    successes, refusals = asyncio.run(hammer(gateway, [key["key"] for key in keys]))
    _assert_capped(gateway, [key["id"] for key in keys], successes, refusals)
    assert "member 'ada@example.com'" in refusals[0].message


def test_an_account_cap_holds_across_every_key_of_the_account(gateway: Gateway) -> None:
    account = gateway.admin(
        "POST", "/api/admin/accounts", json={"name": "account-cap", "spend_cap": CAP_USD, "cap_period": "weekly"}
    ).json()
    keys = [
        gateway.admin("POST", "/api/admin/virtual-keys", json={"account_id": account["id"], "name": f"k{i}"}).json()
        for i in range(3)
    ]
    successes, refusals = asyncio.run(hammer(gateway, [key["key"] for key in keys]))
    _assert_capped(gateway, [key["id"] for key in keys], successes, refusals)
    assert "account 'account-cap'" in refusals[0].message


def test_credits_remaining_counts_the_reservation_of_a_stream_in_flight(gateway: Gateway) -> None:
    secret, key = gateway.new_key(spend_cap="1.00")
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 1000, "stream": True}
    headers = {"Authorization": f"Bearer {secret}", **HEADERS}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=10) as stream:
        held = stream.headers["x-credits-remaining"]
        for _ in stream.iter_bytes():
            pass
    # The worst case held: 1,000 output tokens at 0.60 USD/M plus the prompt's bytes at 0.15 USD/M.
    assert NANO_PER_USD - 700_000 < parse_usd(held) < NANO_PER_USD - 600_000
    after = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={**body, "stream": False},
        headers=headers,
        timeout=10,
    )
    spent = total_cost(gateway.events_of(key["id"]))
    assert after.headers["x-credits-remaining"] == format_usd(NANO_PER_USD - spent)


def test_a_refusal_speaks_the_anthropic_sdk_s_shape(gateway: Gateway) -> None:
    secret, _key = gateway.new_key(spend_cap="0.000001")
    sdk = anthropic.Anthropic(api_key=secret, base_url=gateway.url, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as refused:
        sdk.messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=MESSAGES)  # type: ignore[arg-type]
    assert refused.value.status_code == 402
    assert refused.value.body["error"]["type"] == "billing_error"  # type: ignore[index]
    assert "budget exceeded" in refused.value.body["error"]["message"]  # type: ignore[index]


def test_a_raised_cap_applies_to_the_next_request(gateway: Gateway) -> None:
    secret, key = gateway.new_key(spend_cap="0.000001")
    sdk = openai.OpenAI(api_key=secret, base_url=f"{gateway.url}/v1", max_retries=0)
    with pytest.raises(openai.APIStatusError) as refused:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=100)  # type: ignore[arg-type]
    assert refused.value.status_code == 402
    raised = gateway.admin("PATCH", f"/api/admin/virtual-keys/{key['id']}", json={"spend_cap": "75.00"})
    assert raised.status_code == 200, raised.text
    completion = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=100)  # type: ignore[arg-type]
    assert completion.usage is not None


def test_budget_status_of_a_key_and_of_its_account(gateway: Gateway) -> None:
    secret, key = gateway.new_key(spend_cap="2.00", cap_period="daily")
    sdk = openai.OpenAI(api_key=secret, base_url=f"{gateway.url}/v1", max_retries=0)
    sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=100)  # type: ignore[arg-type]
    spent = total_cost(gateway.events_of(key["id"]))
    budget = gateway.admin("GET", f"/api/admin/virtual-keys/{key['id']}/budget")
    assert budget.status_code == 200, budget.text
    shown = budget.json()
    assert (shown["scope"], shown["cap"], shown["period"], shown["reserved"]) == ("key", "2.00", "daily", "0.00")
    assert shown["spent"] == format_usd(spent) and shown["remaining"] == format_usd(2 * NANO_PER_USD - spent)
    assert shown["on_track"] is True and shown["days_remaining"] == 1
    status = gateway.admin("GET", "/api/admin/budgets/status", params={"account_id": key["account_id"]})
    assert status.status_code == 200, status.text
    (account,) = status.json()["data"]["accounts"]
    assert account["cap"] is None and account["spent"] == format_usd(spent)
    assert [row["id"] for row in status.json()["data"]["keys"]] == [key["id"]]
    (shown,) = status.json()["data"]["budgetBreakdown"]["byVirtualKey"]
    assert (shown["keyId"], shown["maxBudget"], shown["period"]) == (key["id"], 2, "daily")
    assert Decimal(str(shown["currentSpend"])) * NANO_PER_USD == spent
    missing = gateway.admin("GET", "/api/admin/budgets/status", params={"account_id": "nope"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "account_not_found"
    unknown = gateway.admin("GET", "/api/admin/virtual-keys/nope/budget")
    assert unknown.status_code == 404
