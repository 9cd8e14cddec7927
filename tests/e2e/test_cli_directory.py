"""`farebox accounts|members|keys` end to end: the real CLI on a SQLite ledger in tmp_path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson

from farebox.core.keys import KEY_PREFIX
from farebox.ledger.base import Ledger

if TYPE_CHECKING:
    from tests.conftest import EventFactory
    from tests.e2e.conftest import Cli


def test_accounts(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "Acme", "--plan", "pro", "--timezone", "Europe/Paris")
    assert (account["name"], account["plan"], account["timezone"], account["spend_cap"]) == (
        "Acme",
        "pro",
        "Europe/Paris",
        None,
    )
    other = cli.json("accounts", "create", "--name", "Globex", "--cap", "100", "--period", "weekly")
    assert (other["spend_cap"], other["cap_period"], other["percent_used"]) == ("100.00", "weekly", "0.00")
    assert [a["id"] for a in cli.json("accounts", "list")] == [account["id"], other["id"]]
    assert cli.json("accounts", "show", account["id"]) == account
    updated = cli.json("accounts", "update", account["id"], "--name", "Acme Inc", "--cap", "12.5")
    assert (updated["name"], updated["spend_cap"], updated["plan"]) == ("Acme Inc", "12.50", "pro")
    assert cli.json("accounts", "update", account["id"], "--no-cap")["spend_cap"] is None
    assert account["tax_rate"] == "0"
    assert cli.json("accounts", "update", account["id"], "--tax-rate", "0.0825")["tax_rate"] == "0.0825"
    assert cli.json("accounts", "create", "--name", "Initech", "--tax-rate", "0.19")["tax_rate"] == "0.19"
    table = cli.run("accounts", "list")
    assert table.exit_code == 0 and "Accounts" in table.stdout and "Globex" in table.stdout
    shown = cli.run("accounts", "show", account["id"])
    assert shown.exit_code == 0 and "Acme Inc" in shown.stdout


def test_members(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    other = cli.json("accounts", "create", "--name", "Globex")["id"]
    ada = cli.json(
        "members", "add", "--account", account, "--email", "Ada@Acme.test", "--name", "Ada", "--role", "admin"
    )
    assert (ada["email"], ada["role"], ada["account_id"]) == ("ada@acme.test", "admin", account)
    assert ada["has_password"] is False
    bob = cli.json("members", "add", "--account", account, "--email", "bob@acme.test", "--name", "Bob", "--cap", "5")
    assert [m["id"] for m in cli.json("members", "list", "--account", account)] == [ada["id"], bob["id"]]
    assert cli.json("members", "show", bob["id"], "--account", account) == bob
    assert "no member" in cli.fails("members", "show", bob["id"], "--account", other)
    bob = cli.json("members", "update", bob["id"], "--role", "owner", "--no-cap", "--period", "daily")
    assert (bob["role"], bob["spend_cap"], bob["cap_period"]) == ("owner", None, "daily")
    assert "already has a member" in cli.fails(
        "members", "add", "--account", account, "--email", "ada@acme.test", "--name", "Again"
    )
    key = cli.json("keys", "create", "--account", account, "--member", ada["id"], "--name", "k")
    removed = cli.json("members", "remove", ada["id"], "--account", account)
    assert removed["removed"]["id"] == ada["id"]
    assert cli.json("keys", "show", key["id"])["status"] == "revoked"
    assert [m["id"] for m in cli.json("members", "list", "--account", account)] == [bob["id"]]


def test_key_secret_is_printed_only_at_create(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    member = cli.json("members", "add", "--account", account, "--email", "a@acme.test", "--name", "A")["id"]
    result = cli.run(
        "keys", "create", "--account", account, "--member", member, "--name", "agents", "--cap", "50.00",
        "--period", "monthly", "--models", "gpt-4o, claude", "--agent", "bot", "--app", "helpdesk",
        "--tag", "prod", "--tag", "eu", "--expires-in-days", "30", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    created = orjson.loads(result.stdout)
    secret = created["key"]
    assert secret.startswith(KEY_PREFIX) and "will not be shown again" in result.stderr
    assert (created["member_id"], created["allowed_models"], created["tags"]) == (
        member,
        ["gpt-4o", "claude"],
        ["prod", "eu"],
    )
    assert (created["agent_id"], created["app"], created["spend_cap"], created["spend"]) == (
        "bot",
        "helpdesk",
        "50.00",
        "0.00",
    )
    assert created["expires_at"] is not None and created["status"] == "active"
    assert cli.authenticate(secret) == created["id"]
    for args in [
        ("keys", "list"),
        ("keys", "list", "--json"),
        ("keys", "list", "--account", account, "--json"),
        ("keys", "show", created["id"]),
        ("keys", "show", created["id"], "--json"),
        ("keys", "update", created["id"], "--name", "renamed", "--json"),
        ("keys", "revoke", created["id"]),
    ]:
        shown = cli.run(*args)
        assert shown.exit_code == 0, shown.output
        assert secret not in shown.output and '"key"' not in shown.stdout
    human = cli.run("keys", "create", "--account", account, "--name", "plain")
    assert human.exit_code == 0
    plain_secret = next(word for word in human.stdout.split() if word.startswith(KEY_PREFIX) and "…" not in word)
    assert "will not be shown again" in human.stderr and cli.authenticate(plain_secret) != plain_secret


def test_keys_update_list_rotate_revoke(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    other = cli.json("accounts", "create", "--name", "Globex")["id"]
    created = cli.json("keys", "create", "--account", account, "--name", "k", "--models", "a", "--tag", "x")
    cli.json("keys", "create", "--account", other, "--name", "g")
    key_id = created["id"]
    assert [k["id"] for k in cli.json("keys", "list", "--account", account)] == [key_id]
    assert len(cli.json("keys", "list")) == 2
    key = cli.json("keys", "update", key_id, "--all-models", "--clear-tags", "--cap", "3", "--period", "total")
    assert (key["allowed_models"], key["tags"], key["spend_cap"], key["cap_period"]) == (None, [], "3.00", "total")
    key = cli.json("keys", "update", key_id, "--models", "m1,m2", "--agent", "bot", "--expires-at", "2999-01-01T00:00")
    assert (key["allowed_models"], key["agent_id"]) == (["m1", "m2"], "bot")
    assert key["expires_at"].startswith("2999-01-01T00:00:00")
    key = cli.json("keys", "update", key_id, "--no-expiry", "--agent", "", "--no-cap")
    assert (key["expires_at"], key["agent_id"], key["spend_cap"]) == (None, None, None)
    rotated = cli.json("keys", "rotate", key_id, "--grace", "3600")
    assert rotated["key"] != created["key"] and rotated["key_prefix"] != created["key_prefix"]
    assert cli.authenticate(created["key"]) == key_id and cli.authenticate(rotated["key"]) == key_id
    newest = cli.json("keys", "rotate", key_id)
    assert "expired" in cli.authenticate(created["key"]) and "expired" in cli.authenticate(rotated["key"])
    assert cli.authenticate(newest["key"]) == key_id
    revoked = cli.json("keys", "revoke", key_id)
    assert revoked["status"] == "revoked" and "key" not in revoked
    assert "revoked" in cli.authenticate(newest["key"])
    assert "revoked" in cli.fails("keys", "rotate", key_id)


def test_errors_are_one_line(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    for args, needle in [
        (("accounts", "show", "ghost"), "no account"),
        (("keys", "show", "ghost"), "no virtual key"),
        (("keys", "revoke", "ghost"), "no virtual key"),
        (("members", "list", "--account", "ghost"), "no account"),
        (("accounts", "create", "--name", "B", "--timezone", "Mars/Olympus"), "unknown timezone"),
        (("accounts", "update", account, "--cap", "5", "--no-cap"), "not both"),
        (("keys", "create", "--account", account, "--name", "k", "--member", "ghost"), "member_id"),
        (
            (
                "keys",
                "create",
                "--account",
                account,
                "--name",
                "k",
                "--expires-in-days",
                "1",
                "--expires-at",
                "2999-01-01",
            ),
            "not both",
        ),
        (("keys", "create", "--account", account, "--name", " "), "name"),
    ]:
        stderr = cli.fails(*args)
        assert needle in stderr and stderr.startswith("error:") and stderr.count("\n") == 1, stderr
    assert "Invalid value" in cli.fails("accounts", "create", "--name", "B", "--cap", "1.5.5", code=2)
    assert "six decimal places" in cli.fails("accounts", "update", account, "--tax-rate", "0.0000001", code=2)
    assert "from 0 to 1" in cli.fails("accounts", "create", "--name", "B", "--tax-rate", "2", code=2)
    assert "Invalid value" in cli.fails(
        "keys", "create", "--account", account, "--name", "k", "--period", "hourly", code=2
    )
    assert cli.json("keys", "list") == []


def test_keys_cap_sets_and_removes_a_cap_and_budgets_show_where_it_stands(cli: Cli, make_event: EventFactory) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    key = cli.json("keys", "create", "--account", account, "--name", "k")
    capped = cli.json("keys", "cap", key["id"], "75.00")
    assert (capped["spend_cap"], capped["cap_period"]) == ("75.00", "monthly")
    daily = cli.json("keys", "cap", key["id"], "5", "--period", "daily")
    assert (daily["spend_cap"], daily["cap_period"]) == ("5.00", "daily")

    async def spend() -> None:
        async with Ledger(cli.database_url) as ledger:
            now = datetime.now(UTC)
            await ledger.record(
                make_event(account_id=account, key_id=key["id"], member_id=None, cost_nano=10**9, timestamp=now)
            )

    asyncio.run(spend())
    budget = cli.json("keys", "budget", key["id"])
    assert (budget["cap"], budget["spent"], budget["remaining"], budget["reserved"]) == ("5.00", "1.00", "4.00", "0.00")
    assert budget["utilization"] == "0.2000" and budget["period"] == "daily" and budget["days_remaining"] == 1
    status = cli.json("accounts", "budget", account)
    assert status["account"]["cap"] is None and status["account"]["spent"] == "1.00"
    assert [(row["name"], row["cap"]) for row in status["keys"]] == [("k", "5.00")]
    table = cli.run("accounts", "budget", account)
    assert table.exit_code == 0 and "Budgets" in table.stdout and "5.00" in table.stdout
    assert cli.json("keys", "cap", key["id"], "--none")["spend_cap"] is None
    assert "give the cap in USD" in cli.fails("keys", "cap", key["id"])
    assert "give the cap in USD" in cli.fails("keys", "cap", key["id"], "5", "--none")
    cli.fails("keys", "cap", key["id"], "a lot", code=2)
    assert "no virtual key" in cli.fails("keys", "budget", "nope")


def test_tokens_create_list_revoke(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")
    member = cli.json("members", "add", "--account", account["id"], "--email", "lea@acme.test", "--name", "Lea")
    who = ("--account", account["id"], "--member", member["id"])
    created = cli.json("tokens", "create", *who, "--name", "laptop", "--expires-in-days", "30")
    assert created["token"].startswith("fbx_mt_") and created["status"] == "active"
    assert created["expires_at"] is not None
    shown = cli.run("tokens", "create", *who, "--name", "ci")
    assert shown.exit_code == 0 and "secret: fbx_mt_" in shown.stdout and "not be shown again" in shown.stderr
    listed = cli.run("tokens", "list", *who, "--json")
    assert created["token"] not in listed.stdout
    assert [t["name"] for t in orjson.loads(listed.stdout)] == ["laptop", "ci"]
    assert cli.json("tokens", "revoke", created["id"])["status"] == "revoked"
    other = cli.json("accounts", "create", "--name", "Globex")
    assert "no member" in cli.fails(
        "tokens", "create", "--account", other["id"], "--member", member["id"], "--name", "x"
    )
    assert "member token" in cli.fails("tokens", "revoke", "no-such-token")
