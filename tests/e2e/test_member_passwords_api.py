"""Members' passwords over HTTP: `PUT` and `DELETE /api/admin/accounts/{id}/members/{id}/password`.

A password is set by the member itself or by an owner or admin (an admin not an owner's), kept only as its
argon2id hash, and never in a response or a log line; a member shows `has_password`. Signing in with it is
the dashboard's, through `MemberPasswords.verify`, which these tests call as it will.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from admin_client import Api, assert_error, open_api
from sqlalchemy import select

from farebox.ledger.schema import members

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery"


async def _acme(api: Api) -> tuple[str, dict[str, str], dict[str, str]]:
    """An account with a member of each role, each with a token: (account id, member ids, token secrets)."""
    account = (await api.account())["id"]
    ids = {role: (await api.member(account, f"{role}@acme.test", role))["id"] for role in ("owner", "admin", "billing")}
    ids["member"] = (await api.member(account, "mo@acme.test"))["id"]
    ids["mia"] = (await api.member(account, "mia@acme.test"))["id"]
    secrets = {role: await api.token(account, ids[role]) for role in ("owner", "admin", "billing", "member")}
    return account, ids, secrets


def _path(account: str, member: str) -> str:
    return f"/accounts/{account}/members/{member}/password"


async def _hash_of(api: Api, member_id: str) -> str | None:
    query = select(members.c.password_hash).where(members.c.id == member_id)
    stored: str | None = await api.ledger._read(lambda c: c.execute(query).scalar_one())
    return stored


async def _signs_in(api: Api, email: str, password: str) -> str | None:
    """The member id the dashboard's sign-in would find, or None."""
    member = await api.services.passwords.verify(email, password)
    return None if member is None else member.id


async def test_a_password_is_set_replaced_and_removed_and_a_member_shows_only_whether_it_has_one(api: Api) -> None:
    account, ids, _ = await _acme(api)
    path, member = _path(account, ids["member"]), f"/accounts/{account}/members/{ids['member']}"
    assert (await api.ok("GET", member))["has_password"] is False
    api.clock.at += timedelta(minutes=5)

    response = await api.call("PUT", path, {"password": PASSWORD})
    assert (response.status_code, response.content) == (204, b"")
    shown = await api.ok("GET", member)
    assert shown["has_password"] is True and "password" not in {k for k in shown if k != "has_password"}
    assert shown["updated_at"] == api.clock().isoformat().replace("+00:00", "Z")
    assert await _signs_in(api, "mo@acme.test", PASSWORD) == ids["member"]

    assert (await api.call("PUT", path, {"password": "a different passphrase"})).status_code == 204
    assert await _signs_in(api, "mo@acme.test", PASSWORD) is None
    assert await _signs_in(api, "MO@acme.test", "a different passphrase") == ids["member"]

    assert (await api.call("DELETE", path)).status_code == 204
    assert (await api.ok("GET", member))["has_password"] is False
    assert await _signs_in(api, "mo@acme.test", "a different passphrase") is None
    again = await api.call("DELETE", path)
    assert (again.status_code, again.content) == (204, b"")
    listed = (await api.ok("GET", f"/accounts/{account}/members"))["data"]
    assert {m["id"]: m["has_password"] for m in listed} == {i: False for i in ids.values()}


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"password": "eleven char"}, "password", "must be at least 12 characters"),
        ({"password": "x" * 1_025}, "password", "must be at most 1,024 characters"),
        ({"password": "Mo@Acme.test"}, "password", "must not be the member's e-mail address"),
        ({"password": 123456789012345}, "password", "Input should be a valid string"),
        ({"password": None}, "password", "Input should be a valid string"),
        ({}, "password", "Field required"),
        ({"password": PASSWORD, "old_password": "x"}, "old_password", "Extra inputs are not permitted"),
    ],
)
async def test_a_refused_password_is_422_naming_the_field_and_never_echoed(
    api: Api, body: dict[str, Any], loc: str, message: str
) -> None:
    account, ids, _ = await _acme(api)
    response = await api.call("PUT", _path(account, ids["member"]), body)
    error = assert_error(response, 422, "validation_failed")
    assert error["type"] == "invalid_request_error"
    assert error["details"] == [{"loc": loc, "message": message}]
    assert error["message"] == f"{loc}: {message}"
    if isinstance(body.get("password"), str):
        assert body["password"] not in response.text and body["password"].lower() not in response.text
    assert await _hash_of(api, ids["member"]) is None


async def test_a_body_that_is_not_json_is_refused(api: Api) -> None:
    account, ids, _ = await _acme(api)
    response = await api.call("PUT", _path(account, ids["member"]), raw=b'{"password": "correct horse')
    assert_error(response, 400, "invalid_json")


async def test_a_member_sets_its_own_password_and_no_one_else_s(api: Api) -> None:
    account, ids, secrets = await _acme(api)
    mine, hers = _path(account, ids["member"]), _path(account, ids["mia"])
    assert (await api.call("PUT", mine, {"password": PASSWORD}, token=secrets["member"])).status_code == 204
    assert await _signs_in(api, "mo@acme.test", PASSWORD) == ids["member"]
    assert_error(await api.call("PUT", hers, {"password": PASSWORD}, token=secrets["member"]), 403, "not_admin")
    assert_error(await api.call("DELETE", hers, token=secrets["member"]), 403, "not_admin")
    assert (await api.call("DELETE", mine, token=secrets["member"])).status_code == 204
    assert await _hash_of(api, ids["mia"]) is None


async def test_billing_manages_only_its_own_password(api: Api) -> None:
    account, ids, secrets = await _acme(api)
    own = await api.call("PUT", _path(account, ids["billing"]), {"password": PASSWORD}, token=secrets["billing"])
    assert own.status_code == 204
    other = await api.call("PUT", _path(account, ids["member"]), {"password": PASSWORD}, token=secrets["billing"])
    assert_error(other, 403, "not_admin")


async def test_an_admin_manages_members_and_admins_passwords_but_not_an_owner_s(api: Api) -> None:
    account, ids, secrets = await _acme(api)
    for member in ("member", "billing", "admin"):
        sent = await api.call("PUT", _path(account, ids[member]), {"password": PASSWORD}, token=secrets["admin"])
        assert sent.status_code == 204, (member, sent.text)
    owner = _path(account, ids["owner"])
    assert_error(await api.call("PUT", owner, {"password": PASSWORD}, token=secrets["admin"]), 403, "owner_required")
    assert_error(await api.call("DELETE", owner, token=secrets["admin"]), 403, "owner_required")
    assert (await api.call("PUT", owner, {"password": PASSWORD}, token=secrets["owner"])).status_code == 204
    assert (await api.call("DELETE", _path(account, ids["admin"]), token=secrets["owner"])).status_code == 204


async def test_a_virtual_key_another_account_and_an_unknown_member_are_refused(api: Api) -> None:
    account, ids, secrets = await _acme(api)
    key = await api.key(account, member_id=ids["member"])
    path = _path(account, ids["member"])
    assert_error(await api.call("PUT", path, {"password": PASSWORD}, token=key["key"]), 403, "proxy_key")
    assert_error(await api.call("PUT", path, {"password": PASSWORD}, token=None), 401, "missing_api_key")
    globex = (await api.account("Globex"))["id"]
    boss = (await api.member(globex, "boss@globex.test", "owner"))["id"]
    stranger = await api.token(globex, boss)
    assert_error(await api.call("PUT", path, {"password": PASSWORD}, token=stranger), 404, "account_not_found")
    assert_error(await api.call("PUT", _path(globex, ids["member"]), {"password": PASSWORD}), 404, "member_not_found")
    assert_error(await api.call("DELETE", _path(account, boss)), 404, "member_not_found")
    assert await _hash_of(api, ids["member"]) is None


async def test_no_response_or_log_line_holds_a_password_or_its_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)
    # Every statement, as an operator may turn the log on; set before the ledger opens its writer's connection.
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    async with open_api(tmp_path) as api:
        account, ids, secrets = await _acme(api)
        texts: list[str] = []
        for member, password in [("member", PASSWORD), ("admin", "Tr0ub4dor&3-and-more")]:
            sent = await api.call("PUT", _path(account, ids[member]), {"password": password}, token=secrets["owner"])
            assert sent.status_code == 204
            texts.append(sent.text)
        short = await api.call("PUT", _path(account, ids["mia"]), {"password": "tiny secret"})
        texts.append(short.text)
        for path in (f"/accounts/{account}/members", f"/accounts/{account}/members/{ids['member']}", "/accounts"):
            texts.append((await api.call("GET", path)).text)
        texts.append((await api.client.get("/openapi.json")).text)
        assert await _signs_in(api, "mo@acme.test", PASSWORD) == ids["member"]
        assert await _signs_in(api, "mo@acme.test", "tiny secret") is None
        hashes = [await _hash_of(api, ids[member]) for member in ("member", "admin")]

    assert all(stored is not None and stored.startswith("$argon2id$") for stored in hashes)
    assert re.search(r"UPDATE members SET .*password_hash", caplog.text), "the capture works: the statements are in it"
    for secret in [PASSWORD, "Tr0ub4dor&3-and-more", "tiny secret", *hashes]:
        assert secret is not None
        assert not any(secret in text for text in texts), secret
        assert secret not in caplog.text, secret
