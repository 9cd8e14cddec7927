"""`GET /api/admin/analytics/usage/live` (seed 004) over HTTP: this minute, hour and day on a ledger with known
answers, in the account's zone; the hour's top keys, models and providers with their shares; requests held open
at the mock provider counted per account; who may ask; bad parameters refused in the error shape."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest
from admin_client import MASTER, Api, assert_error

from farebox.core.events import Axis, Status, UsageEvent

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway

pytestmark = pytest.mark.anyio

PATH = "/api/admin/analytics/usage/live"
NOW = datetime(2026, 3, 10, 12, 20, 30, tzinfo=UTC)
"""17:50:30 on 10 March in Kolkata (+05:30): this minute began at 12:20Z, this local hour at 11:30Z and today at
18:30Z on the 9th."""
USD = 1_000_000_000
D = Decimal
GPT, CLAUDE, MINI = ("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-6"), ("openai", "gpt-4o-mini")

# (id, timestamp, key, (provider, model), cost in nano-USD, input tokens, output tokens, failed)
EVENTS = [
    ("minute-a", "2026-03-10T12:20:00", "a", GPT, USD, 100, 50, False),  # the minute's first instant
    ("minute-b", "2026-03-10T12:20:29", "b", CLAUDE, 2 * USD, 200, 0, False),
    ("voided", "2026-03-10T12:20:10", "a", GPT, 13 * USD, 1, 0, False),  # voided below: in nothing
    ("last-minute", "2026-03-10T12:19:59.999999", "b", GPT, USD // 2, 10, 0, False),  # the hour, not the minute
    ("failed", "2026-03-10T12:00:00", "c", MINI, 0, 30, 0, True),
    ("no-key", "2026-03-10T11:45:00", None, GPT, USD // 4 + 1, 5, 0, False),  # in the totals, in no key's row
    ("hour-start", "2026-03-10T11:30:00", "a", GPT, 3 * USD, 1_000, 0, False),  # 17:00 local
    ("before-hour", "2026-03-10T11:29:59", "b", GPT, 5 * USD, 1, 0, False),  # 16:59 local: today only
    ("midnight", "2026-03-09T18:30:00", "c", GPT, 7 * USD, 1, 0, False),  # 00:00 local on the 10th
    ("yesterday", "2026-03-09T18:29:59", "a", GPT, 11 * USD, 1, 0, False),  # 23:59 local on the 9th
]


@pytest.fixture
def api(api_each_backend: Api) -> Api:
    return api_each_backend


def _event(event_id: str, at: str, account_id: str, key_id: str | None, **fields: Any) -> UsageEvent:
    return UsageEvent(
        id=event_id,
        timestamp=datetime.fromisoformat(at).replace(tzinfo=UTC),
        account_id=account_id,
        key_id=key_id,
        axis=Axis.LLM,
        canonical_model=fields["model"],
        operation="chat.completions",
        source="ingest",  # as posted to `POST /api/events`, so that one may be voided
        **fields,
    )


async def _ledger(api: Api) -> dict[str, Any]:
    api.clock.at = NOW
    account = await api.account("Acme", plan="enterprise", timezone="Asia/Kolkata")
    ids: dict[str, Any] = {"account": account["id"]}
    for name, role in (("ada", "owner"), ("al", "admin"), ("bill", "billing"), ("mo", "member")):
        member = await api.member(account["id"], f"{name}@acme.test", role)
        ids[name] = await api.token(account["id"], member["id"])
    for name in ("a", "b", "c"):
        key = await api.key(account["id"], name=f"key-{name}")
        ids[name], ids[f"{name}_secret"] = key["id"], key["key"]
    other = await api.account("Other")
    ids["other"] = other["id"]
    events = [
        _event(
            event_id,
            at,
            account["id"],
            None if key is None else ids[key],
            provider=provider,
            model=model,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_nano=cost,
            status=Status.ERROR if failed else Status.OK,
        )
        for event_id, at, key, (provider, model), cost, tokens_in, tokens_out, failed in EVENTS
    ]
    elsewhere = _event(
        "other", "2026-03-10T12:20:15", other["id"], None, provider="openai", model="gpt-4o", cost_nano=17 * USD
    )
    await api.ledger.record_many([*events, elsewhere])
    await api.ok("POST", "/events/voided/void", {"reason": "posted twice"}, status=201)
    return ids


async def _live(api: Api, token: str = MASTER, **params: str) -> Any:
    response = await api.client.get(PATH, params=params, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body = json.loads(response.content, parse_float=Decimal)  # every digit, as a client keeping money exact reads it
    assert body["success"] is True and set(body) == {"success", "data"}
    return body["data"]


async def test_this_minute_hour_and_day_in_the_account_s_zone(api: Api) -> None:
    ids = await _ledger(api)
    data = await _live(api, account_id=ids["account"])
    assert set(data) == {
        "timestamp",
        "timezone",
        "periods",
        "realTimeMetrics",
        "topVirtualKeys",
        "topModels",
        "providerDistribution",
    }
    assert (data["timestamp"], data["timezone"]) == ("2026-03-10T12:20:30Z", "Asia/Kolkata")
    assert data["periods"] == {
        "minute": {"start": "2026-03-10T12:20:00Z", "end": "2026-03-10T12:21:00Z"},
        "hour": {"start": "2026-03-10T11:30:00Z", "end": "2026-03-10T12:30:00Z"},
        "today": {"start": "2026-03-09T18:30:00Z", "end": "2026-03-10T18:30:00Z"},
    }
    assert data["realTimeMetrics"] == {
        "activeRequests": 0,
        "requestsThisMinute": 2,  # minute-a and minute-b; the voided one left out
        "requestsThisHour": 6,
        "requestsToday": 8,
        "tokensThisMinute": 350,
        "tokensThisHour": 1_395,
        "costThisMinute": 3,
        "costThisHour": D("6.750000001"),
        "costToday": D("18.750000001"),
    }


async def test_the_hour_s_top_keys_models_and_providers_with_their_shares_of_its_requests(api: Api) -> None:
    ids = await _ledger(api)
    data = await _live(api, account_id=ids["account"])
    assert data["topVirtualKeys"] == [
        {
            "keyId": ids["a"],
            "keyName": "key-a",
            "requestsThisHour": 2,
            "costThisHour": 4,
            "percentageOfTotal": D("0.3333"),
        },
        {
            "keyId": ids["b"],
            "keyName": "key-b",
            "requestsThisHour": 2,
            "costThisHour": D("2.5"),
            "percentageOfTotal": D("0.3333"),
        },
        {
            "keyId": ids["c"],
            "keyName": "key-c",
            "requestsThisHour": 1,
            "costThisHour": 0,
            "percentageOfTotal": D("0.1667"),
        },
    ], "most requests first, ties by cost; the keyless request counts in the whole only"
    assert data["topModels"] == [
        {
            "model": "gpt-4o",
            "provider": "openai",
            "requestsThisHour": 4,
            "costThisHour": D("4.750000001"),
            "percentageOfTotal": D("0.6667"),
        },
        {
            "model": "claude-sonnet-4-6",
            "provider": "anthropic",
            "requestsThisHour": 1,
            "costThisHour": 2,
            "percentageOfTotal": D("0.1667"),
        },
        {
            "model": "gpt-4o-mini",
            "provider": "openai",
            "requestsThisHour": 1,
            "costThisHour": 0,
            "percentageOfTotal": D("0.1667"),
        },
    ]
    assert data["providerDistribution"] == {
        "openai": {"requests": 5, "cost": D("4.750000001"), "percentage": D("0.8333")},
        "anthropic": {"requests": 1, "cost": 2, "percentage": D("0.1667")},
    }
    assert list(data["providerDistribution"]) == ["openai", "anthropic"]

    top = await _live(api, account_id=ids["account"], limit="1")
    assert [key["keyName"] for key in top["topVirtualKeys"]] == ["key-a"]
    assert [model["model"] for model in top["topModels"]] == ["gpt-4o"]
    assert top["providerDistribution"] == data["providerDistribution"], "every provider, whatever the limit"


async def test_the_master_key_over_every_account_counts_in_utc(api: Api) -> None:
    ids = await _ledger(api)
    data = await _live(api)
    assert data["timezone"] == "UTC" and data["periods"]["hour"]["start"] == "2026-03-10T12:00:00Z"
    metrics = data["realTimeMetrics"]
    assert (metrics["requestsThisMinute"], metrics["costThisMinute"]) == (3, 20), "both accounts' minute"
    assert (metrics["requestsThisHour"], metrics["costThisHour"]) == (5, D("20.5")), "12:00Z on: from `failed` on"
    assert (metrics["requestsToday"], metrics["costToday"]) == (8, D("28.750000001")), "the UTC date of 10 March"
    other = await _live(api, account_id=ids["other"])
    assert other["realTimeMetrics"]["requestsThisMinute"] == 1 and other["topVirtualKeys"] == []
    assert other["realTimeMetrics"]["costToday"] == 17


async def test_the_minute_hour_and_day_move_with_the_clock(api: Api) -> None:
    ids = await _ledger(api)
    api.clock.at = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)  # 18:00 local: a new minute and a new hour
    data = await _live(api, account_id=ids["account"])
    metrics = data["realTimeMetrics"]
    assert (metrics["requestsThisMinute"], metrics["requestsThisHour"], metrics["requestsToday"]) == (0, 0, 8)
    assert (metrics["costThisMinute"], metrics["costThisHour"], metrics["costToday"]) == (0, 0, D("18.750000001"))
    assert data["topVirtualKeys"] == data["topModels"] == [] and data["providerDistribution"] == {}
    api.clock.at = datetime(2026, 3, 10, 18, 30, tzinfo=UTC)  # local midnight: a new day
    assert (await _live(api, account_id=ids["account"]))["realTimeMetrics"]["requestsToday"] == 0


async def test_who_may_ask(api: Api) -> None:
    ids = await _ledger(api)
    for role in ("ada", "al", "bill"):
        data = await _live(api, ids[role])
        assert data["timezone"] == "Asia/Kolkata" and data["realTimeMetrics"]["requestsToday"] == 8, role
    for refused in (ids["mo"], ids["a_secret"]):
        assert_error(await api.client.get(PATH, headers={"authorization": f"Bearer {refused}"}), 403, "role_required")
    assert_error(await api.client.get(PATH), 401)
    foreign = await api.client.get(
        PATH, params={"account_id": ids["other"]}, headers={"authorization": f"Bearer {ids['ada']}"}
    )
    assert_error(foreign, 404, "account_not_found")
    unknown = await api.client.get(
        PATH, params={"account_id": "no-such-account"}, headers={"authorization": f"Bearer {MASTER}"}
    )
    assert_error(unknown, 404, "account_not_found")


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5", ""])
async def test_a_bad_limit_is_refused_in_the_error_shape(api: Api, limit: str) -> None:
    response = await api.client.get(PATH, params={"limit": limit}, headers={"authorization": f"Bearer {MASTER}"})
    error = assert_error(response, 422)
    assert "limit" in error["message"]


async def test_a_parameter_given_twice_is_refused(api: Api) -> None:
    response = await api.client.get(f"{PATH}?limit=1&limit=2", headers={"authorization": f"Bearer {MASTER}"})
    assert_error(response, 422)


async def _active(gateway: Gateway, token: str | None = None, **params: str) -> int:
    """`activeRequests` as the gateway's master key sees it, or the member whose API token is `token`."""
    if token is None:
        response = await asyncio.to_thread(gateway.admin, "GET", PATH, params=params)
    else:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            response = await client.get(PATH, params=params, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    active: int = response.json()["data"]["realTimeMetrics"]["activeRequests"]
    return active


async def test_a_request_held_open_at_the_provider_is_active_for_its_account_only(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    _other_secret, other = gateway.new_key()
    owner = gateway.admin(
        "POST",
        f"/api/admin/accounts/{key['account_id']}/members",
        json={"email": "o@e2e.test", "name": "O", "role": "owner"},
    ).json()
    token = gateway.admin(
        "POST", f"/api/admin/accounts/{key['account_id']}/members/{owner['id']}/tokens", json={"name": "t"}
    ).json()["token"]
    first_chunk, go_on = asyncio.Event(), asyncio.Event()

    async def stream() -> int:
        async with openai.AsyncOpenAI(api_key=secret, base_url=f"{gateway.url}/v1", max_retries=0) as sdk:
            # 40 chunks 50 ms apart at the slow mock: the request stays open for about two seconds.
            chunks = await sdk.chat.completions.create(
                model="slow-gpt",
                messages=[{"role": "user", "content": "Say something long."}],
                stream=True,
                stream_options={"include_usage": True},
                extra_headers={"x-mock-output-tokens": "40"},
            )
            count = 0
            async with chunks:
                async for _chunk in chunks:
                    count += 1
                    first_chunk.set()
                    await go_on.wait()
            return count

    async with asyncio.TaskGroup() as tasks:
        streaming = tasks.create_task(stream())
        await first_chunk.wait()
        held = (
            await _active(gateway, account_id=key["account_id"]),
            await _active(gateway, token),
            await _active(gateway, account_id=other["account_id"]),
        )
        everyone = await _active(gateway)
        go_on.set()
    assert held == (1, 1, 0), "its account's, as the master key and its owner see it; none in the other"
    assert everyone >= 1, "the master key over every account sees it too"
    assert streaming.result() > 40, "it was streamed to its end"
    # The last event reaches the client just before the server leaves the request: wait for that, a while.
    deadline = time.monotonic() + 5
    while (left := await _active(gateway, account_id=key["account_id"])) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert left == 0, "the request ended: nothing of its account is in flight"
