"""Members' personal API tokens over HTTP: created once, used for admin work with the member's role."""

from __future__ import annotations

from datetime import timedelta

import pytest
from admin_client import Api, assert_error

pytestmark = pytest.mark.anyio

TOKEN_FIELDS = {
    "id",
    "account_id",
    "member_id",
    "name",
    "token_prefix",
    "status",
    "expires_at",
    "revoked_at",
    "last_used_at",
    "created_at",
}


async def _acme(api: Api) -> tuple[str, dict[str, str]]:
    """An account with a member of each role: (account id, member ids by role)."""
    account = (await api.account())["id"]
    members = {role: (await api.member(account, f"{role}@acme.test", role))["id"] for role in ("admin", "billing")}
    members["member"] = (await api.member(account, "mo@acme.test"))["id"]
    return account, members


async def test_the_secret_is_shown_once_and_listings_never_show_it(api: Api) -> None:
    account, members = await _acme(api)
    path = f"/accounts/{account}/members/{members['admin']}/tokens"
    created = await api.ok("POST", path, {"name": "laptop", "expires_in_days": 30}, status=201)
    secret = created.pop("token")
    assert set(created) == TOKEN_FIELDS and created["status"] == "active"
    assert secret.startswith("fbx_mt_") and created["token_prefix"] == secret[:13] + "…"
    assert created["expires_at"] is not None and created["last_used_at"] is None
    listed = await api.call("GET", path)
    assert secret not in listed.text and [t["id"] for t in listed.json()["data"]] == [created["id"]]
    await api.ok("GET", "/accounts", token=secret)
    assert (await api.ok("GET", path))["data"][0]["last_used_at"] is not None


async def test_a_member_makes_and_revokes_its_own_tokens(api: Api) -> None:
    account, members = await _acme(api)
    first = await api.token(account, members["member"])
    path = f"/accounts/{account}/members/{members['member']}/tokens"
    second = await api.ok("POST", path, {"name": "ci"}, token=first, status=201)
    revoked = await api.ok("DELETE", f"{path}/{second['id']}", token=first)
    assert revoked["status"] == "revoked"
    assert_error(await api.call("GET", path, token=second["token"]), 401, "token_revoked")
    others = f"/accounts/{account}/members/{members['billing']}/tokens"
    assert_error(await api.call("POST", others, {"name": "x"}, token=first), 403, "not_admin")


async def test_an_expired_token_stops_working(api: Api) -> None:
    account, members = await _acme(api)
    secret = await api.token(account, members["admin"], expires_in_days=1)
    await api.ok("GET", "/accounts", token=secret)
    api.clock.at += timedelta(days=1)
    assert_error(await api.call("GET", "/accounts", token=secret), 401, "token_expired")


async def test_a_role_change_applies_to_the_member_s_tokens_at_once(api: Api) -> None:
    account, members = await _acme(api)
    secret = await api.token(account, members["admin"])
    await api.ok("PATCH", f"/accounts/{account}", {"name": "Acme Ltd"}, token=secret)
    await api.ok("PATCH", f"/accounts/{account}/members/{members['admin']}", {"role": "billing"})
    assert_error(await api.call("PATCH", f"/accounts/{account}", {"name": "x"}, token=secret), 403, "not_admin")
    assert (await api.ok("GET", f"/accounts/{account}", token=secret))["name"] == "Acme Ltd"


async def test_billing_reads_every_key_and_changes_none(api: Api) -> None:
    account, members = await _acme(api)
    keys = [await api.key(account, member_id=members[role]) for role in ("admin", "member")]
    secret = await api.token(account, members["billing"])
    listed = (await api.ok("GET", "/virtual-keys", token=secret))["data"]
    assert {key["id"] for key in listed} == {key["id"] for key in keys}
    for key in keys:
        assert_error(await api.call("PATCH", f"/virtual-keys/{key['id']}", {"name": "x"}, token=secret), 403)
        assert_error(await api.call("POST", f"/virtual-keys/{key['id']}/revoke", token=secret), 403, "not_admin")
    body = {"account_id": account, "name": "mine"}
    assert_error(await api.call("POST", "/virtual-keys", body, token=secret), 403, "not_admin")


async def test_a_member_sees_and_rotates_only_its_own_keys(api: Api) -> None:
    account, members = await _acme(api)
    own = await api.key(account, member_id=members["member"])
    other = await api.key(account, member_id=members["admin"])
    secret = await api.token(account, members["member"])
    assert [k["id"] for k in (await api.ok("GET", "/virtual-keys", token=secret))["data"]] == [own["id"]]
    others = f"/virtual-keys?member_id={members['admin']}"
    assert_error(await api.call("GET", others, token=secret), 403, "not_yours")
    rotated = await api.ok("POST", f"/virtual-keys/{own['id']}/rotate", token=secret)
    assert (await api.key_call(own, rotated["key"])).status_code == 200
    assert_error(await api.call("GET", f"/virtual-keys/{other['id']}", token=secret), 403, "not_yours")
    assert_error(await api.call("PATCH", f"/virtual-keys/{own['id']}", {"spend_cap": "1"}, token=secret), 403)


async def test_a_token_is_not_a_proxy_credential(api: Api) -> None:
    account, members = await _acme(api)
    secret = await api.token(account, members["admin"])
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    answer = await api.client.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {secret}"})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"


async def test_unknown_tokens_and_bad_bodies(api: Api) -> None:
    account, members = await _acme(api)
    path = f"/accounts/{account}/members/{members['admin']}/tokens"
    assert_error(await api.call("DELETE", f"{path}/no-such-token"), 404, "member_token_not_found")
    other = await api.token(account, members["billing"])
    billing_tokens = (await api.ok("GET", f"/accounts/{account}/members/{members['billing']}/tokens"))["data"]
    assert_error(await api.call("DELETE", f"{path}/{billing_tokens[0]['id']}"), 404, "member_token_not_found")
    assert (await api.call("GET", "/accounts", token=other)).status_code == 200
    for body in [{}, {"name": ""}, {"name": "x", "expires_in_days": 0}, {"name": "x", "scope": "all"}]:
        assert_error(await api.call("POST", path, body), 422)
    both = {"name": "x", "expires_in_days": 1, "expires_at": "2999-01-01T00:00:00Z"}
    assert_error(await api.call("POST", path, both), 422)
    assert_error(await api.call("POST", f"/accounts/{account}/members/nobody/tokens", {"name": "x"}), 404)
