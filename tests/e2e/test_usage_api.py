"""`GET /api/usage` (seed 000) over HTTP: a month of compute, LLM and voice usage by day, agent, plain VM and model,
in the account's zone, exact to the nano-USD, under each caller's access."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from admin_client import MASTER, Api, assert_error, open_api

from farebox.prices import DEFAULT_OVERRIDES_PATH

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 4, 1, 2, tzinfo=UTC)
"""07:30 on 1 April in Kolkata (Acme's zone): "this month" is April there."""

# (id, timestamp, owner, fields): owner is a key ("ada", "bob") or "account"; every event of Acme (Asia/Kolkata).
EVENTS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("c1", "2026-03-02T06:00:00Z", "account", {"axis": "compute", "agent_id": "agent-a", "model": "vm-small",
     "operation": "compute.vm.running", "seconds": 3600}),  # $0.05: 5 cents, running
    ("c2", "2026-03-02T07:00:00Z", "account", {"axis": "compute", "agent_id": "agent-a", "model": "vm-small",
     "operation": "compute.vm.paused", "seconds": 5400}),  # $0.0075: 0.75 cents, paused
    ("c3", "2026-03-03T06:00:00Z", "account", {"axis": "compute", "agent_id": "vm-1", "model": "vm-medium",
     "operation": "compute.vm.running", "seconds": 1800}),  # the plain VM: 5 cents, half an hour
    ("c4", "2026-03-03T06:00:00Z", "account", {"axis": "compute", "model": "vm-small",
     "operation": "compute.vm.running", "seconds": 1}),  # no agent: 13,889 nano-USD (0.05/3600, rounded once)
    ("c5", "2026-03-03T07:00:00Z", "account", {"axis": "compute", "agent_id": "agent-x", "model": "vm-small",
     "seconds": 60, "cost_usd": "0.000000123"}),  # operation `compute.vm`: running
    ("l1", "2026-02-28T18:35:00Z", "ada", {"axis": "llm", "provider": "openai", "model": "gpt-4o",
     "input_tokens": 100, "output_tokens": 10, "cost_usd": "0.012345678"}),  # 1 March 00:05 in Kolkata
    ("l2", "2026-03-10T12:00:00Z", "account", {"axis": "llm", "agent_id": "agent-a", "provider": "openai",
     "model": "gpt-4o-mini", "input_tokens": 5, "output_tokens": 5, "cost_usd": "0.5"}),
    ("l3", "2026-03-31T18:20:00Z", "bob", {"axis": "llm", "provider": "openai", "model": "gpt-4o",
     "input_tokens": 1, "output_tokens": 1, "cost_usd": "0.000000001"}),  # 31 March 23:50 in Kolkata
    ("l4", "2026-02-28T18:20:00Z", "ada", {"axis": "llm", "provider": "openai", "model": "gpt-4o",
     "cost_usd": "1"}),  # 28 February 23:50 in Kolkata: February's
    ("v1", "2026-03-05T10:00:00Z", "account", {"axis": "voice", "agent_id": "agent-a", "provider": "elevenlabs",
     "model": "eleven-turbo", "characters": 1000}),  # $30 per million characters: 3 cents
    ("v2", "2026-03-06T10:00:00Z", "account", {"axis": "voice", "provider": "openai", "model": "tts-1",
     "characters": 10, "cost_usd": "0.001"}),
]  # fmt: skip


async def post_events(api: Api, events: list[dict[str, Any]]) -> None:
    posted = await api.client.post(
        "/api/events", json={"events": events}, headers={"authorization": f"Bearer {MASTER}"}
    )
    assert posted.status_code == 200, posted.text


async def usage(api: Api, token: str = MASTER, **params: str) -> Any:
    """The answer's JSON, its numbers read exactly."""
    response = await api.client.get("/api/usage", params=params, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return json.loads(response.content, parse_float=Decimal)


@pytest.fixture
async def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Api, dict[str, Any]]]:
    """Acme (Asia/Kolkata) with Ada (admin), Bob (member) and Bill (billing), their tokens, Ada's and Bob's keys,
    `agent-a` registered as an agent and `vm-1` as a plain VM, and `EVENTS`."""
    monkeypatch.chdir(tmp_path)
    async with open_api(tmp_path, price_overrides=DEFAULT_OVERRIDES_PATH) as api:
        api.clock.at = NOW
        account = await api.account("Acme", timezone="Asia/Kolkata")
        ids: dict[str, Any] = {"account": account["id"]}
        for name, role in (("ada", "admin"), ("bob", "member"), ("bill", "billing")):
            ids[name] = (await api.member(account["id"], f"{name}@acme.test", role))["id"]
            ids[f"{name}_token"] = await api.token(account["id"], ids[name])
        for name in ("ada", "bob"):
            key = await api.key(account["id"], member_id=ids[name], name=f"{name}-key")
            ids[f"{name}_key"], ids[f"{name}_secret"] = key["id"], key["key"]
        workloads = f"/accounts/{account['id']}/workloads"
        await api.ok("PUT", f"{workloads}/agent-a", {"name": "Support bot", "kind": "agent"})
        await api.ok("PUT", f"{workloads}/vm-1", {"name": "Build box", "kind": "plain_vm"})
        owner = {"account": {"account_id": account["id"]}}
        owner |= {name: {"key_id": ids[f"{name}_key"]} for name in ("ada", "bob")}
        await post_events(
            api, [{"id": id_, "timestamp": at, **owner[who], **fields} for id_, at, who, fields in EVENTS]
        )
        yield api, ids


async def test_the_shape_is_the_documented_one_with_exact_numbers(acme: tuple[Api, dict[str, Any]]) -> None:
    api, ids = acme
    body = await usage(api, accountId=ids["account"], month="2026-03")

    assert list(body) == ["month", "timezone", "accountId", "compute", "llm", "voice"]
    assert (body["month"], body["timezone"], body["accountId"]) == ("2026-03", "Asia/Kolkata", ids["account"])
    compute, llm, voice = body["compute"], body["llm"], body["voice"]
    assert set(compute) == {"totalCents", "agentCents", "plainVmCents", "daily", "agents", "plainVms"}
    assert set(llm) == {"totalCents", "requests", "inputTokens", "outputTokens", "daily", "agents", "models", "hasKeys"}
    assert set(voice) == {
        "totalCents", "totalCharacters", "totalSeconds", "requests", "daily", "agents", "models", "hasVoiceUsage"
    }  # fmt: skip
    day = compute["daily"][1]
    assert set(day) == {"date", "agentCents", "plainVmCents", "totalCents", "agents", "plainVms"}
    agent_fields = {"accountId", "agentId", "agentName", "runningCents", "pausedCents", "totalCents", "hours"}
    assert set(day["agents"][0]) == agent_fields | {"runningHours", "pausedHours", "seconds"}
    assert set(compute["daily"][2]["plainVms"][0]) == {
        "accountId", "plainVmId", "plainVmName", "costCents", "hours", "seconds"
    }  # fmt: skip
    assert set(llm["daily"][0]) == {"date", "totalCents", "requests", "inputTokens", "outputTokens", "models"}
    assert set(llm["models"][0]) == {"model", "totalCents", "requests", "inputTokens", "outputTokens"}
    assert set(llm["agents"][0]) == {"accountId", "agentId", "agentName", "totalCents", "requests", "inputTokens",
                                     "outputTokens"}  # fmt: skip
    assert set(voice["models"][0]) == {"model", "totalCents", "characters", "seconds", "requests"}
    assert set(voice["daily"][0]) == {"date", "totalCents", "characters", "seconds", "requests", "models"}
    # Money and hours are JSON numbers (read here as exact decimals), never strings or floats.
    assert isinstance(compute["totalCents"], Decimal) and isinstance(day["agents"][0]["hours"], Decimal | int)
    assert isinstance(llm["hasKeys"], bool) and isinstance(voice["hasVoiceUsage"], bool)

    # Every day of March, in order, zero days included.
    for axis in (compute, llm, voice):
        assert [entry["date"] for entry in axis["daily"]] == [f"2026-03-{n:02d}" for n in range(1, 32)]
    assert compute["daily"][0] == {
        "date": "2026-03-01", "agentCents": 0, "plainVmCents": 0, "totalCents": 0, "agents": [], "plainVms": []
    }  # fmt: skip


async def test_compute_running_paused_and_plain_vms_are_exact(acme: tuple[Api, dict[str, Any]]) -> None:
    api, ids = acme
    compute = (await usage(api, accountId=ids["account"], month="2026-03"))["compute"]

    assert compute["agents"] == [
        {"accountId": ids["account"], "agentId": "agent-a", "agentName": "Support bot", "runningCents": 5,
         "pausedCents": Decimal("0.75"), "totalCents": Decimal("5.75"), "hours": Decimal("2.5"), "runningHours": 1,
         "pausedHours": Decimal("1.5"), "seconds": 9000},
        {"accountId": ids["account"], "agentId": None, "agentName": None, "runningCents": Decimal("0.0013889"),
         "pausedCents": 0, "totalCents": Decimal("0.0013889"), "hours": Decimal("0.000277778"),
         "runningHours": Decimal("0.000277778"), "pausedHours": 0, "seconds": 1},
        {"accountId": ids["account"], "agentId": "agent-x", "agentName": "agent-x",
         "runningCents": Decimal("0.0000123"), "pausedCents": 0, "totalCents": Decimal("0.0000123"),
         "hours": Decimal("0.016666667"),
         "runningHours": Decimal("0.016666667"), "pausedHours": 0, "seconds": 60},
    ]  # fmt: skip
    assert compute["plainVms"] == [
        {"accountId": ids["account"], "plainVmId": "vm-1", "plainVmName": "Build box", "costCents": 5,
         "hours": Decimal("0.5"), "seconds": 1800}
    ]  # fmt: skip
    assert (compute["agentCents"], compute["plainVmCents"]) == (Decimal("5.7514012"), 5)
    assert compute["totalCents"] == Decimal("10.7514012")
    second, third = compute["daily"][1], compute["daily"][2]
    assert (second["agentCents"], second["plainVmCents"], second["totalCents"]) == (Decimal("5.75"), 0, Decimal("5.75"))
    assert (third["agentCents"], third["plainVmCents"]) == (Decimal("0.0014012"), 5)
    assert [vm["plainVmName"] for vm in third["plainVms"]] == ["Build box"]
    assert sum(day["totalCents"] for day in compute["daily"]) == compute["totalCents"]


async def test_llm_and_voice_by_day_agent_and_model(acme: tuple[Api, dict[str, Any]]) -> None:
    api, ids = acme
    body = await usage(api, accountId=ids["account"], month="2026-03")
    llm, voice = body["llm"], body["voice"]

    assert (llm["totalCents"], llm["requests"], llm["hasKeys"]) == (Decimal("51.2345679"), 3, True)
    assert [(m["model"], m["totalCents"], m["requests"]) for m in llm["models"]] == [
        ("gpt-4o-mini", 50, 1),
        ("gpt-4o", Decimal("1.2345679"), 2),
    ]
    assert [(a["agentId"], a["agentName"], a["totalCents"]) for a in llm["agents"]] == [
        ("agent-a", "Support bot", 50),
        (None, None, Decimal("1.2345679")),
    ]
    # 00:05 on 1 March and 23:50 on 31 March in Kolkata are March's first and last days (UTC says otherwise).
    assert llm["daily"][0]["totalCents"] == Decimal("1.2345678")
    assert llm["daily"][30]["models"] == [
        {"model": "gpt-4o", "totalCents": Decimal("0.0000001"), "requests": 1, "inputTokens": 1, "outputTokens": 1}
    ]
    assert (voice["totalCents"], voice["totalCharacters"], voice["hasVoiceUsage"]) == (Decimal("3.1"), 1010, True)
    assert [(m["model"], m["totalCents"], m["characters"]) for m in voice["models"]] == [
        ("eleven-turbo", 3, 1000),
        ("tts-1", Decimal("0.1"), 10),
    ]
    assert voice["daily"][4]["totalCents"] == 3

    february = await usage(api, accountId=ids["account"], month="2026-02")
    assert len(february["llm"]["daily"]) == 28
    assert february["llm"]["daily"][27]["totalCents"] == 100  # 23:50 on 28 February in Kolkata
    assert february["compute"]["totalCents"] == february["voice"]["totalCents"] == 0
    assert february["voice"]["hasVoiceUsage"] is False


async def test_filters_by_agent_and_by_each_axis_s_model(acme: tuple[Api, dict[str, Any]]) -> None:
    api, ids = acme
    month = {"accountId": ids["account"], "month": "2026-03"}

    agent = await usage(api, **month, agentId="agent-a")
    assert [a["agentId"] for a in agent["compute"]["agents"]] == ["agent-a"]
    assert (agent["compute"]["totalCents"], agent["compute"]["plainVms"]) == (Decimal("5.75"), [])
    assert (agent["llm"]["totalCents"], agent["voice"]["totalCents"]) == (50, 3)
    plain_vm = await usage(api, **month, agentId="vm-1")
    assert (plain_vm["compute"]["agentCents"], plain_vm["compute"]["plainVmCents"]) == (0, 5)

    by_model = await usage(api, **month, model="gpt-4o")
    assert [m["model"] for m in by_model["llm"]["models"]] == ["gpt-4o"]
    assert by_model["llm"]["totalCents"] == Decimal("1.2345679")
    assert by_model["voice"]["totalCents"] == Decimal("3.1")  # the voice axis has its own filter
    assert by_model["compute"]["totalCents"] == Decimal("10.7514012")

    by_voice = await usage(api, **month, voiceModel="tts-1")
    assert [m["model"] for m in by_voice["voice"]["models"]] == ["tts-1"]
    assert (by_voice["voice"]["totalCents"], by_voice["voice"]["hasVoiceUsage"]) == (Decimal("0.1"), True)
    assert by_voice["llm"]["totalCents"] == Decimal("51.2345679")
    nothing = await usage(api, **month, voiceModel="no-such-voice")
    assert (nothing["voice"]["models"], nothing["voice"]["hasVoiceUsage"]) == ([], True)


async def test_renaming_and_forgetting_a_workload_renames_its_usage(acme: tuple[Api, dict[str, Any]]) -> None:
    api, ids = acme
    workloads = f"/accounts/{ids['account']}/workloads"
    await api.ok("PUT", f"{workloads}/agent-a", {"name": "Helpdesk", "kind": "agent"})
    assert (await api.call("DELETE", f"{workloads}/vm-1")).status_code == 204
    compute = (await usage(api, accountId=ids["account"], month="2026-03"))["compute"]
    assert [(a["agentId"], a["agentName"]) for a in compute["agents"][:2]] == [
        ("agent-a", "Helpdesk"),
        ("vm-1", "vm-1"),  # no longer a plain VM: an agent, named by its id
    ]
    assert (compute["plainVms"], compute["plainVmCents"]) == ([], 0)


async def test_the_default_month_is_the_current_one_in_the_account_s_zone(acme: tuple[Api, dict[str, Any]]) -> None:
    api, ids = acme
    kolkata = await usage(api, accountId=ids["account"])
    assert (kolkata["month"], len(kolkata["llm"]["daily"])) == ("2026-04", 30)  # 07:30 on 1 April there
    new_york = await api.account("Gotham", timezone="America/New_York")
    assert (await usage(api, accountId=new_york["id"]))["month"] == "2026-03"  # 22:00 on 31 March there


async def test_days_in_new_york_across_the_change_to_summer_time(acme: tuple[Api, dict[str, Any]]) -> None:
    api, _ids = acme
    gotham = (await api.account("Gotham", timezone="America/New_York"))["id"]
    api.clock.at = datetime(2026, 4, 1, 4, tzinfo=UTC)
    at = {
        "n1": "2026-03-08T04:50:00Z",  # 23:50 EST on 7 March, the night clocks go forward
        "n2": "2026-03-08T07:30:00Z",  # 03:30 EDT on 8 March, a day of 23 hours
        "n3": "2026-04-01T03:50:00Z",  # 23:50 EDT on 31 March, the month's last day
    }
    common = {"account_id": gotham, "axis": "llm", "provider": "openai", "model": "gpt-4o", "cost_usd": "0.01"}
    await post_events(api, [{"id": id_, "timestamp": ts, **common} for id_, ts in at.items()])

    body = await usage(api, accountId=gotham, month="2026-03")
    days = {day["date"]: day["totalCents"] for day in body["llm"]["daily"] if day["totalCents"]}
    assert (body["timezone"], len(body["llm"]["daily"])) == ("America/New_York", 31)
    assert days == {"2026-03-07": 1, "2026-03-08": 1, "2026-03-31": 1}


async def test_bad_months_and_a_master_key_without_an_account_are_refused(acme: tuple[Api, dict[str, Any]]) -> None:
    api, ids = acme
    headers = {"authorization": f"Bearer {MASTER}"}
    for month in ("2024-13", "2024-00", "2024-1", "March", "0000-01", "9999-12"):
        response = await api.client.get(
            "/api/usage", params={"accountId": ids["account"], "month": month}, headers=headers
        )
        error = assert_error(response, 422)
        assert error["details"][0]["loc"].endswith("month"), error
    error = assert_error(await api.client.get("/api/usage", headers=headers), 422)
    assert error["details"] == [{"loc": "accountId", "message": error["details"][0]["message"]}]
    response = await api.client.get("/api/usage", params={"accountId": "no-such-account"}, headers=headers)
    assert_error(response, 404, "account_not_found")


async def test_each_caller_sees_what_it_may(acme: tuple[Api, dict[str, Any]]) -> None:
    api, ids = acme
    march = {"month": "2026-03"}

    bob = await usage(api, ids["bob_token"], **march)  # a member: only its own keys' usage
    assert (bob["accountId"], bob["llm"]["totalCents"], bob["compute"]["totalCents"]) == (
        ids["account"],
        Decimal("0.0000001"),
        0,
    )
    assert bob["voice"]["hasVoiceUsage"] is False
    key = await usage(api, ids["ada_secret"], **march, accountId=ids["account"])  # a key: only its own
    assert key["llm"]["totalCents"] == Decimal("1.2345678")
    billing = await usage(api, ids["bill_token"], **march)
    assert billing["compute"]["totalCents"] == Decimal("10.7514012")

    globex = await api.account("Globex")
    boss = await api.member(globex["id"], "boss@globex.test", "owner")
    stranger = await api.token(globex["id"], boss["id"])
    response = await api.client.get(
        "/api/usage", params={"accountId": ids["account"]}, headers={"authorization": f"Bearer {stranger}"}
    )
    assert_error(response, 404, "account_not_found")


async def test_the_operator_view_is_the_master_key_s_alone(acme: tuple[Api, dict[str, Any]]) -> None:
    api, ids = acme
    globex = (await api.account("Globex"))["id"]
    common = {"axis": "llm", "provider": "openai", "model": "gpt-4o", "cost_usd": "0.02"}
    await post_events(api, [{"id": "g1", "account_id": globex, "timestamp": "2026-03-15T12:00:00Z", **common}])

    everyone = await usage(api, admin="1", month="2026-03")
    assert (everyone["accountId"], everyone["timezone"]) == (None, "UTC")
    assert everyone["llm"]["totalCents"] == Decimal("52.0000001")  # Acme's March in UTC (not l1), and Globex's
    assert {a["accountId"] for a in everyone["llm"]["agents"]} == {ids["account"], globex}

    for token in (ids["ada_token"], ids["bob_token"], ids["ada_secret"]):
        response = await api.client.get(
            "/api/usage", params={"admin": "1"}, headers={"authorization": f"Bearer {token}"}
        )
        assert_error(response, 403, "master_key_required")
