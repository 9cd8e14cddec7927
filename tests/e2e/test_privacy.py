"""A member's personal data over HTTP and the CLI: exported as JSON (the member, its keys and tokens without a
secret, its usage without the voided), and erased by pseudonymisation, every total unchanged; who may do either."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from admin_client import MASTER, Api, assert_error

pytestmark = pytest.mark.anyio


async def _world(api: Api) -> dict[str, Any]:
    """Acme: an owner, an admin, and Ada (a member) with a key, a token, a password and three ingested events, one
    of them voided; Ada's requests are in the audit log."""
    account = await api.account("Acme", plan="enterprise")
    members = f"/accounts/{account['id']}/members"
    ids: dict[str, Any] = {"account": account["id"]}
    for name, role in (("owner", "owner"), ("admin", "admin"), ("ada", "member")):
        member = await api.member(account["id"], f"{name}@acme.test", role, name=name.title())
        ids[name] = member["id"]
        ids[f"{name}_token"] = await api.token(account["id"], member["id"])
    key = await api.key(account["id"], member_id=ids["ada"], name="ada's laptop")
    ids["key"], ids["secret"] = key["id"], key["key"]
    assert (
        await api.call("PUT", f"{members}/{ids['ada']}/password", {"password": "a long enough secret"})
    ).status_code == 204
    events = [
        {"id": f"ada-{n}", "key_id": key["id"], "axis": "llm", "model": "gpt-4o", "cost_usd": f"0.0{n + 1}"}
        for n in range(3)
    ]
    headers = {"authorization": f"Bearer {MASTER}"}
    assert (await api.client.post("/api/events", json={"events": events}, headers=headers)).status_code == 200
    voided = await api.call("POST", "/events/ada-2/void", {"reason": "posted twice"})
    assert voided.status_code == 201, voided.text
    own = await api.call("GET", f"{members}/{ids['ada']}", token=ids["ada_token"])
    assert own.status_code == 200, own.text
    return ids


async def _data(api: Api, ids: dict[str, Any], token: str = MASTER) -> Any:
    response = await api.client.get(
        f"/api/admin/accounts/{ids['account']}/members/{ids['ada']}/data", headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response


async def _total(api: Api, account: str) -> Decimal:
    usage = await api.client.get(
        "/api/usage", params={"accountId": account}, headers={"authorization": f"Bearer {MASTER}"}
    )
    return json.loads(usage.content, parse_float=Decimal)["llm"]["totalCents"]


async def test_a_member_s_data_holds_its_record_keys_tokens_and_usage_but_no_secret(api: Api) -> None:
    ids = await _world(api)
    response = await _data(api, ids, token=ids["ada_token"])
    data = response.json()
    assert ids["secret"] not in response.text and ids["ada_token"] not in response.text
    assert (data["member"]["email"], data["member"]["name"], data["member"]["role"]) == (
        "ada@acme.test",
        "Ada",
        "member",
    )
    assert [(key["id"], key["name"], key["status"]) for key in data["keys"]] == [(ids["key"], "ada's laptop", "active")]
    assert [token["status"] for token in data["tokens"]] == ["active"]
    assert [(event["id"], event["cost_usd"]) for event in data["usage"]] == [("ada-0", "0.01"), ("ada-1", "0.02")]
    assert data["usage"][0]["member_id"] == ids["ada"] and data["usage"][0]["streamed"] is False
    assert (await _data(api, ids, token=ids["owner_token"])).json() == data


async def test_erasure_pseudonymises_the_member_and_keeps_every_amount(api: Api) -> None:
    ids = await _world(api)
    before = await _total(api, ids["account"])
    erased = await api.ok("POST", f"/accounts/{ids['account']}/members/{ids['ada']}/erase", token=ids["admin_token"])
    assert (erased["name"], erased["email"]) == ("Erased member", f"erased-{ids['ada']}@erased.invalid")
    assert erased["has_password"] is False and erased["erased_at"] is not None
    assert await _total(api, ids["account"]) == before == Decimal(3), "3 cents: the void's, not the erasure's, change"
    assert_error(
        await api.client.get("/api/admin/accounts", headers={"authorization": f"Bearer {ids['ada_token']}"}), 401
    )
    key = await api.ok("GET", f"/virtual-keys/{ids['key']}")
    assert (key["name"], key["status"], key["member_id"]) == ("erased", "revoked", ids["ada"])
    data = (await _data(api, ids)).json()
    assert "ada@acme.test" not in json.dumps(data) and [e["id"] for e in data["usage"]] == ["ada-0", "ada-1"]
    audit = await api.client.get(
        "/api/admin/audit", params={"principal_id": ids["ada"]}, headers={"authorization": f"Bearer {MASTER}"}
    )
    rows = audit.json()["data"]
    assert rows and {row["client_address"] for row in rows} == {"erased"}
    member = f"/accounts/{ids['account']}/members/{ids['ada']}"
    assert_error(await api.call("PATCH", member, {"name": "Ada again"}), 409, "member_erased")
    assert_error(await api.call("POST", f"{member}/tokens", {"name": "new"}), 409, "member_erased")
    assert_error(await api.call("PUT", f"{member}/password", {"password": "another long secret"}), 409, "member_erased")
    assert_error(
        await api.call("POST", "/virtual-keys", {"account_id": ids["account"], "member_id": ids["ada"], "name": "k"}),
        409,
        "member_erased",
    )
    assert (await api.ok("POST", f"{member}/erase"))["erased_at"] == erased["erased_at"], (
        "erasing again changes nothing"
    )


async def test_who_may_export_and_erase(api: Api) -> None:
    ids = await _world(api)
    member = f"/accounts/{ids['account']}/members"
    other = await api.member(ids["account"], "bob@acme.test")
    assert_error(await api.call("GET", f"{member}/{other['id']}/data", token=ids["ada_token"]), 403, "not_yours")
    assert_error(
        await api.call("POST", f"{member}/{ids['owner']}/erase", token=ids["admin_token"]), 403, "owner_required"
    )
    assert_error(await api.call("POST", f"{member}/{ids['ada']}/erase", token=ids["ada_token"]), 403, "not_admin")
    assert_error(await api.call("POST", f"{member}/nobody/erase"), 404)


def test_the_cli_exports_and_erases_a_member(cli: Any, tmp_path: Any) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    ada = cli.json("members", "add", "--account", account, "--email", "ada@acme.test", "--name", "Ada")["id"]
    key = cli.json("keys", "create", "--account", account, "--member", ada, "--name", "laptop")
    out = tmp_path / "ada.json"
    result = cli.run("members", "export", ada, "--output", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["member"]["email"] == "ada@acme.test" and data["usage"] == [] and key["key"] not in out.read_text()
    printed = cli.run("members", "export", ada)
    assert printed.exit_code == 0 and json.loads(printed.stdout)["member"]["id"] == ada
    refused = cli.run("members", "erase", ada, input="n\n")
    assert refused.exit_code == 1 and "not erased" in refused.stderr
    assert cli.json("members", "show", ada)["name"] == "Ada"
    erased = cli.json("members", "erase", ada, "--yes")
    assert (erased["name"], erased["email"]) == ("Erased member", f"erased-{ada}@erased.invalid")
