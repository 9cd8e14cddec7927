"""The admin API (/api/admin: accounts, members, virtual keys) over HTTP, against a real SQLite ledger."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import anyio
import orjson
import pytest
from admin_client import MASTER, Api, assert_error

from farebox.core.events import Axis, UsageEvent
from farebox.core.keys import KEY_PREFIX, TOKEN_PREFIX

pytestmark = pytest.mark.anyio

KEY_FIELDS = {
    "id",
    "name",
    "account_id",
    "member_id",
    "key_prefix",
    "status",
    "allowed_models",
    "agent_id",
    "app",
    "tags",
    "spend_cap",
    "spend",
    "cap_period",
    "percent_used",
    "expires_at",
    "revoked_at",
    "disabled_at",
    "disabled_reason",
    "created_at",
    "updated_at",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# Accounts and members


async def test_accounts(api: Api) -> None:
    account = await api.account("Acme", plan="pro", timezone="Europe/Paris", spend_cap="1000", cap_period="monthly")
    assert account["name"] == "Acme" and account["plan"] == "pro" and account["timezone"] == "Europe/Paris"
    assert (account["spend_cap"], account["spend"], account["percent_used"]) == ("1000.00", "0.00", "0.00")
    assert await api.ok("GET", f"/accounts/{account['id']}") == account
    other = await api.account("Globex")
    assert other["spend_cap"] is None and other["percent_used"] is None and other["plan"] == "free"
    listed = await api.ok("GET", "/accounts")
    assert [a["id"] for a in listed["data"]] == [account["id"], other["id"]]
    patched = await api.ok("PATCH", f"/accounts/{account['id']}", {"name": "Acme Inc", "spend_cap": None})
    assert (patched["name"], patched["spend_cap"], patched["plan"]) == ("Acme Inc", None, "pro")


async def test_members(api: Api) -> None:
    account = await api.account()
    ada = await api.member(account["id"], "Ada@acme.test", "owner", spend_cap="20")
    assert (ada["email"], ada["role"], ada["spend_cap"], ada["account_id"]) == (
        "ada@acme.test",
        "owner",
        "20.00",
        account["id"],
    )
    bob = await api.member(account["id"], "bob@acme.test")
    path = f"/accounts/{account['id']}/members"
    assert [m["id"] for m in (await api.ok("GET", path))["data"]] == [ada["id"], bob["id"]]
    assert await api.ok("GET", f"{path}/{bob['id']}") == bob
    bob = await api.ok("PATCH", f"{path}/{bob['id']}", {"role": "admin", "cap_period": "daily"})
    assert (bob["role"], bob["cap_period"]) == ("admin", "daily")
    assert_error(await api.call("POST", path, {"email": "ADA@acme.test", "name": "x"}), 409, "email_taken")
    response = await api.call("DELETE", f"{path}/{bob['id']}")
    assert response.status_code == 204 and response.content == b""
    assert_error(await api.call("GET", f"{path}/{bob['id']}"), 404)


async def test_member_of_another_account_is_not_found_under_this_one(api: Api) -> None:
    acme, globex = await api.account("Acme"), await api.account("Globex")
    ada = await api.member(acme["id"], "ada@acme.test")
    assert_error(await api.call("GET", f"/accounts/{globex['id']}/members/{ada['id']}"), 404, "member_not_found")
    assert_error(await api.call("DELETE", f"/accounts/{globex['id']}/members/{ada['id']}"), 404)


async def test_removing_a_member_revokes_its_keys(api: Api) -> None:
    account = await api.account()
    ada = await api.member(account["id"], "ada@acme.test", "admin")
    created = await api.key(account["id"], member_id=ada["id"])
    token = await api.token(account["id"], ada["id"])
    assert (await api.ok("GET", "/accounts", token=token))["data"][0]["id"] == account["id"]
    assert (await api.key_call(created)).status_code == 200
    await api.call("DELETE", f"/accounts/{account['id']}/members/{ada['id']}")
    assert "revoked" in assert_error(await api.key_call(created), 401)["message"]
    assert_error(await api.call("GET", "/accounts", token=token), 401, "invalid_api_key")
    key = await api.ok("GET", f"/virtual-keys/{created['id']}")
    assert (key["status"], key["member_id"]) == ("revoked", None)


# Virtual keys


async def test_key_secret_is_shown_once(api: Api) -> None:
    account = await api.account()
    ada = await api.member(account["id"], "ada@acme.test")
    created = await api.key(
        account["id"],
        member_id=ada["id"],
        name="agents",
        allowed_models=["gpt-4o", "claude-sonnet"],
        agent_id="support-bot",
        app="helpdesk",
        tags=["prod"],
        spend_cap="50.00",
        cap_period="monthly",
        expires_in_days=30,
    )
    secret = created.pop("key")
    assert secret.startswith(KEY_PREFIX) and set(created) == KEY_FIELDS
    assert secret.startswith(created["key_prefix"].rstrip("…")) and created["key_prefix"] != secret
    assert created["member_id"] == ada["id"] and created["allowed_models"] == ["gpt-4o", "claude-sonnet"]
    assert (created["agent_id"], created["app"], created["tags"]) == ("support-bot", "helpdesk", ["prod"])
    assert (created["spend_cap"], created["spend"], created["percent_used"]) == ("50.00", "0.00", "0.00")
    assert (created["status"], created["cap_period"], created["revoked_at"]) == ("active", "monthly", None)
    expires = datetime.fromisoformat(created["expires_at"])
    assert expires == api.clock.at + timedelta(days=30)
    assert datetime.fromisoformat(created["created_at"]) == api.clock.at
    for method, path, body in [
        ("GET", f"/virtual-keys/{created['id']}", None),
        ("GET", "/virtual-keys", None),
        ("GET", f"/virtual-keys?account_id={account['id']}", None),
        ("PATCH", f"/virtual-keys/{created['id']}", {"name": "renamed"}),
        ("GET", f"/accounts/{account['id']}", None),
        ("GET", f"/accounts/{account['id']}/members", None),
    ]:
        response = await api.call(method, path, body)
        assert response.status_code == 200 and secret not in response.text and '"key"' not in response.text
    shown = await api.ok("GET", f"/virtual-keys/{created['id']}")
    assert set(shown) == KEY_FIELDS and shown["name"] == "renamed"


async def test_master_key_creates_account_level_keys(api: Api) -> None:
    account = await api.account()
    created = await api.key(account["id"])
    assert created["member_id"] is None and created["allowed_models"] is None and created["tags"] == []


async def test_key_spend_and_percent_used(api: Api) -> None:
    account = await api.account()
    created = await api.key(account["id"], spend_cap=50, cap_period="daily")
    event = UsageEvent(
        id="e1",
        timestamp=api.clock.at,
        account_id=account["id"],
        key_id=created["id"],
        axis=Axis.LLM,
        provider="openai",
        model="gpt-4o",
        canonical_model="gpt-4o",
        operation="chat.completions",
        cost_nano=12_500_000_001,
    )
    await api.ledger.record(event)
    key = await api.ok("GET", f"/virtual-keys/{created['id']}")
    assert (key["spend"], key["spend_cap"], key["percent_used"]) == ("12.500000001", "50.00", "25.00")
    listed = (await api.ok("GET", "/virtual-keys"))["data"]
    assert listed[0]["spend"] == "12.500000001"
    assert (await api.ok("GET", f"/accounts/{account['id']}"))["spend"] == "12.500000001"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"50.25", "50.25"),
        (b"0.123456789", "0.123456789"),
        (b"1e2", "100.00"),
        (b"7", "7.00"),
        (b'"0.1"', "0.10"),
        (b"999999999.999999999", "999999999.999999999"),
    ],
)
async def test_amounts_are_read_exactly(api: Api, raw: bytes, shown: str) -> None:
    account = await api.account()
    body = b'{"account_id": "%s", "name": "k", "spend_cap": %s}' % (account["id"].encode(), raw)
    response = await api.call("POST", "/virtual-keys", raw=body)
    assert response.status_code == 201, response.text
    assert response.json()["spend_cap"] == shown


async def test_update_key(api: Api) -> None:
    account = await api.account()
    created = await api.key(account["id"], allowed_models=["a"], agent_id="bot", tags=["x"], spend_cap="5")
    path = f"/virtual-keys/{created['id']}"
    key = await api.ok(
        "PATCH", path, {"allowed_models": None, "agent_id": None, "tags": ["y", "z"], "spend_cap": "7.5"}
    )
    assert (key["allowed_models"], key["agent_id"], key["tags"], key["spend_cap"]) == (None, None, ["y", "z"], "7.50")
    key = await api.ok("PATCH", path, {"spend_cap": None, "cap_period": "total", "expires_at": "2999-01-01T00:00:00Z"})
    assert (key["spend_cap"], key["percent_used"], key["cap_period"]) == (None, None, "total")
    assert key["expires_at"].startswith("2999-01-01T00:00:00")
    key = await api.ok("PATCH", path, {"expires_at": None})
    assert key["expires_at"] is None and key["name"] == "k"


async def test_rotate_with_grace(api: Api) -> None:
    account = await api.account()
    admin = await api.member(account["id"], "ada@acme.test", "admin")
    created = await api.key(account["id"], member_id=admin["id"])
    old = created["key"]
    rotated = await api.ok("POST", f"/virtual-keys/{created['id']}/rotate", {"grace_period_seconds": 60})
    new = rotated.pop("key")
    assert new != old and set(rotated) == KEY_FIELDS and rotated["key_prefix"] != created["key_prefix"]
    api.clock.at += timedelta(seconds=59)
    assert (await api.key_call(created, old)).status_code == 200
    assert (await api.key_call(created, new)).status_code == 200
    api.clock.at += timedelta(seconds=1)
    error = assert_error(await api.key_call(created, old), 401, "key_expired")
    assert "expired" in error["message"]
    assert (await api.key_call(created, new)).status_code == 200
    shown = await api.call("GET", f"/virtual-keys/{created['id']}")
    assert new not in shown.text and old not in shown.text


async def test_rotate_without_body_or_grace_stops_the_old_secret_at_once(api: Api) -> None:
    account = await api.account()
    admin = await api.member(account["id"], "ada@acme.test", "admin")
    created = await api.key(account["id"], member_id=admin["id"])
    new = (await api.ok("POST", f"/virtual-keys/{created['id']}/rotate"))["key"]
    assert_error(await api.key_call(created), 401, "key_expired")
    newer = (await api.ok("POST", f"/virtual-keys/{created['id']}/rotate", {"grace_period_seconds": 0}))["key"]
    assert_error(await api.key_call(created, new), 401, "key_expired")
    assert (await api.key_call(created, newer)).status_code == 200


async def test_rotate_grace_on_the_real_clock(api: Api) -> None:
    api.clock.at = None
    account = await api.account()
    admin = await api.member(account["id"], "ada@acme.test", "admin")
    created = await api.key(account["id"], member_id=admin["id"])
    started = time.monotonic()
    await api.ok("POST", f"/virtual-keys/{created['id']}/rotate", {"grace_period_seconds": 1})
    assert (await api.key_call(created)).status_code == 200
    while (await api.key_call(created)).status_code == 200:
        assert time.monotonic() - started < 5, "the old secret outlived its grace period"
        await anyio.sleep(0.05)
    assert time.monotonic() - started >= 1
    assert_error(await api.key_call(created), 401, "key_expired")


async def test_revoke(api: Api) -> None:
    account = await api.account()
    admin = await api.member(account["id"], "ada@acme.test", "admin")
    first = await api.key(account["id"], member_id=admin["id"])
    second = await api.key(account["id"], member_id=admin["id"])
    revoked = await api.ok("POST", f"/virtual-keys/{first['id']}/revoke")
    assert revoked["status"] == "revoked" and revoked["revoked_at"] is not None
    error = assert_error(await api.key_call(first), 401, "key_revoked")
    assert "revoked" in error["message"]
    deleted = await api.ok("DELETE", f"/virtual-keys/{second['id']}")
    assert deleted["status"] == "revoked"
    assert_error(await api.key_call(second), 401, "key_revoked")
    assert_error(await api.call("POST", f"/virtual-keys/{first['id']}/rotate"), 409, "key_revoked")


async def test_expired_key(api: Api) -> None:
    account = await api.account()
    admin = await api.member(account["id"], "ada@acme.test", "admin")
    created = await api.key(account["id"], member_id=admin["id"], expires_in_days=1)
    assert (await api.key_call(created)).status_code == 200
    api.clock.at += timedelta(days=1)
    error = assert_error(await api.key_call(created), 401, "key_expired")
    assert "expired" in error["message"]
    assert (await api.ok("GET", f"/virtual-keys/{created['id']}"))["status"] == "expired"


# Who may do what


async def test_member_admin_acts_only_in_its_own_account(api: Api) -> None:
    acme, globex = await api.account("Acme"), await api.account("Globex")
    ada = await api.member(acme["id"], "ada@acme.test", "admin")
    token = await api.token(acme["id"], ada["id"])
    globex_key = await api.key(globex["id"])
    assert [a["id"] for a in (await api.ok("GET", "/accounts", token=token))["data"]] == [acme["id"]]
    assert (await api.ok("GET", f"/accounts/{acme['id']}", token=token))["id"] == acme["id"]
    own = await api.key(acme["id"], token=token, name="made by ada")
    assert own["member_id"] == ada["id"]
    listed = (await api.ok("GET", "/virtual-keys", token=token))["data"]
    assert {k["account_id"] for k in listed} == {acme["id"]}
    account, key = "account_not_found", "virtual_key_not_found"
    unknown = [
        ("GET", f"/accounts/{globex['id']}", None, account),
        ("PATCH", f"/accounts/{globex['id']}", {"name": "mine"}, account),
        ("GET", f"/accounts/{globex['id']}/members", None, account),
        ("POST", f"/accounts/{globex['id']}/members", {"email": "x@y.z", "name": "X"}, account),
        ("POST", "/virtual-keys", {"account_id": globex["id"], "name": "k"}, account),
        ("GET", f"/virtual-keys?account_id={globex['id']}", None, account),
        ("GET", f"/virtual-keys/{globex_key['id']}", None, key),
        ("PATCH", f"/virtual-keys/{globex_key['id']}", {"name": "mine"}, key),
        ("POST", f"/virtual-keys/{globex_key['id']}/rotate", None, key),
        ("POST", f"/virtual-keys/{globex_key['id']}/revoke", None, key),
        ("DELETE", f"/virtual-keys/{globex_key['id']}", None, key),
    ]
    for method, path, body, code in unknown:  # as if Globex did not exist: the same answer as a made-up id's
        assert_error(await api.call(method, path, body, token=token), 404, code)
        made_up = path.replace(globex["id"], "no-such-id").replace(globex_key["id"], "no-such-id")
        assert_error(await api.call(method, made_up, body, token=token), 404, code)
    assert_error(await api.call("POST", "/accounts", {"name": "New"}, token=token), 403, "master_key_required")
    assert (await api.ok("GET", f"/virtual-keys/{globex_key['id']}"))["status"] == "active"


async def test_member_admin_may_not_manage_owners(api: Api) -> None:
    account = await api.account()
    owner = await api.member(account["id"], "owner@acme.test", "owner")
    ada = await api.member(account["id"], "ada@acme.test", "admin")
    bob = await api.member(account["id"], "bob@acme.test")
    token = await api.token(account["id"], ada["id"])
    path = f"/accounts/{account['id']}/members"
    code = "owner_required"
    assert_error(
        await api.call("POST", path, {"email": "o2@acme.test", "name": "O", "role": "owner"}, token=token), 403, code
    )
    assert_error(await api.call("PATCH", f"{path}/{bob['id']}", {"role": "owner"}, token=token), 403, code)
    assert_error(await api.call("PATCH", f"{path}/{owner['id']}", {"name": "x"}, token=token), 403, code)
    assert_error(await api.call("DELETE", f"{path}/{owner['id']}", token=token), 403, code)
    assert (await api.ok("PATCH", f"{path}/{bob['id']}", {"role": "admin"}, token=token))["role"] == "admin"
    assert_error(await api.call("POST", f"{path}/{owner['id']}/tokens", {"name": "x"}, token=token), 403, code)
    owner_token = await api.token(account["id"], owner["id"])
    assert (await api.ok("PATCH", f"{path}/{bob['id']}", {"role": "owner"}, token=owner_token))["role"] == "owner"


async def test_member_admin_may_not_take_over_an_owners_keys(api: Api) -> None:
    account = await api.account()
    owner = await api.member(account["id"], "owner@acme.test", "owner")
    ada = await api.member(account["id"], "ada@acme.test", "admin")
    token = await api.token(account["id"], ada["id"])
    owner_key = await api.key(account["id"], member_id=owner["id"])
    new_key = {"account_id": account["id"], "member_id": owner["id"], "name": "backdoor"}
    assert_error(await api.call("POST", "/virtual-keys", new_key, token=token), 403, "owner_required")
    for method, suffix, body in [("POST", "/rotate", None), ("PATCH", "", {"name": "x"}), ("POST", "/revoke", None)]:
        assert_error(await api.call(method, f"/virtual-keys/{owner_key['id']}{suffix}", body, token=token), 403)
    assert (await api.key_call(owner_key)).status_code == 200
    assert (await api.ok("GET", f"/virtual-keys/{owner_key['id']}", token=token))["status"] == "active"


async def test_a_virtual_key_cannot_lift_its_own_cap(api: Api) -> None:
    """A proxy key of an admin member may not raise its cap, make an uncapped key or raise the account's cap."""
    account = await api.account(spend_cap="100.00")
    ada = await api.member(account["id"], "ada@acme.test", "admin")
    ci_bot = await api.key(account["id"], member_id=ada["id"], spend_cap="50.00")
    attempts = [
        ("PATCH", f"/virtual-keys/{ci_bot['id']}", {"spend_cap": "999999"}),
        ("POST", "/virtual-keys", {"account_id": account["id"], "name": "uncapped"}),
        ("PATCH", f"/accounts/{account['id']}", {"spend_cap": "999999"}),
        ("PATCH", f"/accounts/{account['id']}/members/{ada['id']}", {"spend_cap": "999999"}),
    ]
    for method, path, body in attempts:
        assert_error(await api.call(method, path, body, token=ci_bot["key"]), 403, "proxy_key")
    assert (await api.ok("GET", f"/virtual-keys/{ci_bot['id']}"))["spend_cap"] == "50.00"
    assert (await api.ok("GET", f"/accounts/{account['id']}"))["spend_cap"] == "100.00"
    assert [key["id"] for key in (await api.ok("GET", "/virtual-keys"))["data"]] == [ci_bot["id"]]


@pytest.mark.parametrize(
    "token", [None, "wrong-master-key", MASTER + "x", KEY_PREFIX + "z" * 43, TOKEN_PREFIX + "z" * 43, TOKEN_PREFIX]
)
async def test_bad_credentials(api: Api, token: str | None) -> None:
    error = assert_error(await api.call("GET", "/accounts", token=token), 401)
    assert error["type"] == "authentication_error"
    if token is not None:
        assert token not in error["message"]


# Bad input


async def test_malformed_json(api: Api) -> None:
    account = await api.account()
    for path in ["/accounts", "/virtual-keys", f"/accounts/{account['id']}/members"]:
        error = assert_error(await api.call("POST", path, raw=b'{"name": '), 400, "invalid_json")
        assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/accounts", {"name": 5}, "name"),
        ("/accounts", {}, "name"),
        ("/accounts", {"name": ""}, "name"),
        ("/accounts", {"name": "A", "plan": "gold"}, "plan"),
        ("/accounts", {"name": "A", "timezone": "Mars/Olympus"}, "timezone"),
        ("/accounts", {"name": "A", "spend_cap": "-1"}, "spend_cap"),
        ("/accounts", {"name": "A", "spend_cap": "ten"}, "spend_cap"),
        ("/accounts", {"name": "A", "spend_cap": True}, "spend_cap"),
        ("/accounts", {"name": "A", "spend_cap": "0.0000000001"}, "spend_cap"),
        ("/accounts", {"name": "A", "cap_period": "hourly"}, "cap_period"),
        ("/accounts", {"name": "A", "colour": "red"}, "colour"),
        ("/accounts", ["name"], ""),
        ("/virtual-keys", {"name": "k"}, "account_id"),
        ("/virtual-keys", {"account_id": "{account}", "name": "k", "tags": "prod"}, "tags"),
        ("/virtual-keys", {"account_id": "{account}", "name": "k", "allowed_models": []}, "allowed_models"),
        ("/virtual-keys", {"account_id": "{account}", "name": "k", "expires_in_days": 0}, "expires_in_days"),
        ("/virtual-keys", {"account_id": "{account}", "name": "k", "expires_at": "soon"}, "expires_at"),
        ("/virtual-keys", {"account_id": "{account}", "name": "k", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ("/virtual-keys", {"account_id": "{account}", "name": "k", "member_id": "ghost"}, "member_id"),
        (
            "/virtual-keys",
            {"account_id": "{account}", "name": "k", "expires_in_days": 1, "expires_at": "2999-01-01T00:00:00Z"},
            "expires_in_days",
        ),
        ("/accounts/{account}/members", {"email": "nope", "name": "N"}, "email"),
        ("/accounts/{account}/members", {"email": "n@x.y", "name": "N", "role": "root"}, "role"),
    ],
)
async def test_bad_fields_are_422(api: Api, path: str, body: Any, loc: str) -> None:
    account = await api.account()
    body = orjson.loads(orjson.dumps(body).replace(b"{account}", account["id"].encode()))
    error = assert_error(await api.call("POST", path.replace("{account}", account["id"]), body), 422)
    assert error["type"] == "invalid_request_error"
    assert loc in [detail["loc"] for detail in error["details"]], error
    assert len((await api.ok("GET", "/accounts"))["data"]) == 1
    assert (await api.ok("GET", "/virtual-keys"))["data"] == []


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/accounts/{account}", {"name": None}, "name"),
        ("/accounts/{account}", {"plan": None}, "plan"),
        ("/virtual-keys/{key}", {"tags": None}, "tags"),
        ("/virtual-keys/{key}", {"name": 3}, "name"),
        ("/virtual-keys/{key}", {"account_id": "x"}, "account_id"),
    ],
)
async def test_bad_patches_are_422(api: Api, path: str, body: Any, loc: str) -> None:
    account = await api.account()
    key = await api.key(account["id"])
    path = path.replace("{account}", account["id"]).replace("{key}", key["id"])
    error = assert_error(await api.call("PATCH", path, body), 422, "validation_failed")
    assert loc in [detail["loc"] for detail in error["details"]], error


@pytest.mark.parametrize("raw", [b"1.5e400", b"1000000000.000000001", b"NaN", b"Infinity", b"-0.5", b'"1e-10"'])
async def test_bad_amounts_are_422(api: Api, raw: bytes) -> None:
    account = await api.account()
    key = await api.key(account["id"])
    response = await api.call("PATCH", f"/virtual-keys/{key['id']}", raw=b'{"spend_cap": %s}' % raw)
    error = assert_error(response, 422, "validation_failed")
    assert [detail["loc"] for detail in error["details"]] == ["spend_cap"]
    assert (await api.ok("GET", f"/virtual-keys/{key['id']}"))["spend_cap"] is None


async def test_bad_rotate_grace_is_422(api: Api) -> None:
    account = await api.account()
    key = await api.key(account["id"])
    for grace in [-1, "soon", 10**9]:
        body = {"grace_period_seconds": grace}
        assert_error(await api.call("POST", f"/virtual-keys/{key['id']}/rotate", body), 422, "validation_failed")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/accounts/ghost", None),
        ("PATCH", "/accounts/ghost", {"name": "x"}),
        ("GET", "/accounts/ghost/members", None),
        ("POST", "/accounts/ghost/members", {"email": "a@b.c", "name": "A"}),
        ("GET", "/accounts/{account}/members/ghost", None),
        ("PATCH", "/accounts/{account}/members/ghost", {"name": "x"}),
        ("DELETE", "/accounts/{account}/members/ghost", None),
        ("PUT", "/accounts/{account}/members/ghost/password", {"password": "a long enough secret"}),
        ("DELETE", "/accounts/{account}/members/ghost/password", None),
        ("POST", "/virtual-keys", {"account_id": "ghost", "name": "k"}),
        ("GET", "/virtual-keys/ghost", None),
        ("PATCH", "/virtual-keys/ghost", {"name": "x"}),
        ("DELETE", "/virtual-keys/ghost", None),
        ("POST", "/virtual-keys/ghost/rotate", None),
        ("POST", "/virtual-keys/ghost/revoke", None),
        ("POST", "/events/ghost/void", {"reason": "x"}),
        ("GET", "/accounts/ghost/credits", None),
        ("POST", "/accounts/ghost/credits", {"amount_usd": "1.00"}),
    ],
)
async def test_unknown_ids_are_404(api: Api, method: str, path: str, body: Any) -> None:
    account = await api.account()
    error = assert_error(await api.call(method, path.replace("{account}", account["id"]), body), 404)
    assert error["type"] == "not_found_error" and "ghost" in error["message"]


async def test_routes_are_in_the_openapi_schema(api: Api) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    routes = {(path, method) for path, item in schema["paths"].items() for method in item if "/api/admin" in path}
    assert routes == {
        ("/api/admin/accounts", "get"),
        ("/api/admin/accounts", "post"),
        ("/api/admin/accounts/{account_id}", "get"),
        ("/api/admin/accounts/{account_id}", "patch"),
        ("/api/admin/accounts/{account_id}/credits", "get"),
        ("/api/admin/accounts/{account_id}/credits", "post"),
        ("/api/admin/accounts/{account_id}/members", "get"),
        ("/api/admin/accounts/{account_id}/members", "post"),
        ("/api/admin/accounts/{account_id}/members/{member_id}", "get"),
        ("/api/admin/accounts/{account_id}/members/{member_id}", "patch"),
        ("/api/admin/accounts/{account_id}/members/{member_id}/password", "put"),
        ("/api/admin/accounts/{account_id}/members/{member_id}/password", "delete"),
        ("/api/admin/accounts/{account_id}/members/{member_id}", "delete"),
        ("/api/admin/accounts/{account_id}/members/{member_id}/tokens", "get"),
        ("/api/admin/accounts/{account_id}/members/{member_id}/tokens", "post"),
        ("/api/admin/accounts/{account_id}/members/{member_id}/tokens/{token_id}", "delete"),
        ("/api/admin/accounts/{account_id}/workloads", "get"),
        ("/api/admin/accounts/{account_id}/workloads/{workload_id}", "put"),
        ("/api/admin/accounts/{account_id}/workloads/{workload_id}", "delete"),
        ("/api/admin/virtual-keys", "get"),
        ("/api/admin/virtual-keys", "post"),
        ("/api/admin/virtual-keys/{key_id}", "get"),
        ("/api/admin/virtual-keys/{key_id}", "patch"),
        ("/api/admin/virtual-keys/{key_id}", "delete"),
        ("/api/admin/virtual-keys/{key_id}/rotate", "post"),
        ("/api/admin/virtual-keys/{key_id}/revoke", "post"),
        ("/api/admin/requests/{request_id}", "get"),
        ("/api/admin/events/{event_id}/void", "post"),
        ("/api/admin/virtual-keys/{key_id}/budget", "get"),
        ("/api/admin/budgets/status", "get"),
        ("/api/admin/budgets/alerts", "get"),
        ("/api/admin/budgets/alerts", "put"),
        ("/api/admin/virtual-keys/{key_id}/disable", "post"),
        ("/api/admin/virtual-keys/{key_id}/enable", "post"),
        ("/api/admin/accounts/{account_id}/alerts", "get"),
        ("/api/admin/accounts/{account_id}/alerts", "put"),
        ("/api/admin/accounts/{account_id}/alerts/history", "get"),
        ("/api/admin/webhooks", "get"),
        ("/api/admin/webhooks", "post"),
        ("/api/admin/webhooks/{endpoint_id}", "get"),
        ("/api/admin/webhooks/{endpoint_id}", "patch"),
        ("/api/admin/webhooks/{endpoint_id}", "delete"),
        ("/api/admin/webhooks/{endpoint_id}/rotate-secret", "post"),
        ("/api/admin/webhooks/{endpoint_id}/deliveries", "get"),
        ("/api/admin/webhooks/{endpoint_id}/deliveries/{message_id}/retry", "post"),
        ("/api/admin/webhooks/{endpoint_id}/test", "post"),
        ("/api/admin/analytics/usage/trends", "get"),
        ("/api/admin/providers/analytics", "get"),
        ("/api/admin/virtual-keys/{key_id}/analytics", "get"),
        ("/api/admin/virtual-keys/compare", "post"),
        ("/api/admin/analytics/patterns", "get"),
        ("/api/admin/analytics/budget-forecast", "get"),
        ("/api/admin/analytics/usage/live", "get"),
        ("/api/admin/analytics/cost-optimization", "get"),
        ("/api/admin/analytics/performance", "get"),
        ("/api/admin/analytics/export", "post"),
        ("/api/admin/analytics/billing-export", "post"),
        ("/api/admin/audit", "get"),
        ("/api/admin/analytics/webhooks", "get"),
        ("/api/admin/analytics/reports", "post"),
        ("/api/admin/analytics/recalculate-costs", "post"),
        ("/api/admin/analytics/scheduled-reports", "get"),
        ("/api/admin/analytics/scheduled-reports", "put"),
        ("/api/admin/analytics/webhooks", "put"),
        ("/api/admin/accounts/{account_id}/members/{member_id}/data", "get"),
        ("/api/admin/accounts/{account_id}/members/{member_id}/erase", "post"),
        ("/api/admin/analytics/ingestion-status", "get"),
        ("/api/admin/analytics/pipeline-health", "get"),
        ("/api/admin/analytics/performance-metrics", "get"),
    }
    assert "key" in schema["components"]["schemas"]["KeyCreated"]["properties"]
    assert "key" not in schema["components"]["schemas"]["KeyOut"]["properties"]
