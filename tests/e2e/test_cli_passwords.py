"""`farebox members password` end to end: the real CLI on a SQLite ledger in tmp_path, typed or piped input.

The CLI hashes with the default argon2id parameters (a third of a second a hash on this machine), so these
tests set few passwords, and check the stored hash carries those parameters.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from typing import TYPE_CHECKING

import orjson
import pytest

from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.member_passwords import MemberPasswords

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

PASSWORD = "correct horse battery"


def _acme(cli: Cli) -> tuple[str, str]:
    """A new account and a member of it: (account id, member id)."""
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    member = cli.json("members", "add", "--account", account, "--email", "ada@acme.test", "--name", "Ada")["id"]
    return account, member


def _stored_hash(cli: Cli, member_id: str) -> str | None:
    with sqlite3.connect(cli.database_url.removeprefix("sqlite:///")) as connection:
        (stored,) = connection.execute("SELECT password_hash FROM members WHERE id = ?", (member_id,)).fetchone()
    return None if stored is None else str(stored)


def _signs_in(cli: Cli, email: str, password: str) -> str | None:
    """The member id the dashboard's sign-in would find with these credentials, or None."""

    async def verify() -> str | None:
        async with Ledger(cli.database_url) as ledger:
            member = await MemberPasswords(Directory(ledger)).verify(email, password)
            return None if member is None else member.id

    return asyncio.run(verify())


def test_a_password_typed_twice_at_a_hidden_prompt_is_set_and_never_printed(
    cli: Cli, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account, member = _acme(cli)
    typed = cli.run("members", "password", member, "--account", account, "--json", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert typed.exit_code == 0, typed.output
    shown = orjson.loads(typed.stdout)  # the prompts went to stderr: stdout is the JSON alone
    assert (shown["id"], shown["has_password"]) == (member, True)
    assert "New password" in typed.stderr and "Repeat for confirmation" in typed.stderr
    stored = _stored_hash(cli, member)
    assert stored is not None and stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in typed.output and stored not in typed.output
    assert PASSWORD not in caplog.text and stored not in caplog.text
    assert _signs_in(cli, "ada@acme.test", PASSWORD) == member
    assert [m["has_password"] for m in cli.json("members", "list", "--account", account)] == [True]
    shown = cli.run("members", "show", member)
    assert shown.exit_code == 0 and re.search(r"has_password\s+True", shown.stdout), shown.stdout


def test_two_different_passwords_at_the_prompt_set_nothing(cli: Cli) -> None:
    _account, member = _acme(cli)
    mismatched = cli.run("members", "password", member, input=f"{PASSWORD}\n{PASSWORD}!\n")
    assert mismatched.exit_code == 1 and "do not match" in mismatched.stderr
    assert PASSWORD not in mismatched.output
    assert _stored_hash(cli, member) is None


def test_a_script_pipes_the_password_in_and_removes_it(cli: Cli) -> None:
    account, member = _acme(cli)
    piped = cli.json("members", "password", member, "--password-stdin", input=f"{PASSWORD}\n")
    assert piped["has_password"] is True
    assert _signs_in(cli, "ada@acme.test", PASSWORD) == member, "the line ending is not part of the password"
    removed = cli.json("members", "password", member, "--account", account, "--remove")
    assert (removed["id"], removed["has_password"]) == (member, False)
    assert _stored_hash(cli, member) is None
    shown = cli.run("members", "password", member, "--remove")
    assert shown.exit_code == 0 and re.search(r"has_password\s+False", shown.stdout), shown.stdout


@pytest.mark.parametrize(
    ("piped", "message"),
    [
        ("too short\n", "password: must be at least 12 characters"),
        ("ADA@acme.test\n", "password: must not be the member's e-mail address"),
        ("x" * 1_025, "password: must be at most 1,024 characters"),
    ],
)
def test_a_password_that_breaks_the_rule_is_refused_without_echoing_it(cli: Cli, piped: str, message: str) -> None:
    _account, member = _acme(cli)
    result = cli.run("members", "password", member, "--password-stdin", "--json", input=piped)
    assert result.exit_code == 1 and result.stdout == ""
    error = orjson.loads(result.stderr)["error"]
    assert (error["code"], error["message"]) == ("validation_failed", message)
    assert error["details"] == [{"loc": "password", "message": message.removeprefix("password: ")}]
    assert piped.strip() not in result.stderr
    assert _stored_hash(cli, member) is None


def test_a_wrong_member_is_told_before_any_prompt_and_options_that_exclude_each_other_are_refused(cli: Cli) -> None:
    account, member = _acme(cli)
    other = cli.json("accounts", "create", "--name", "Globex")["id"]
    assert cli.json_error("members", "password", "ghost")["code"] == "member_not_found"
    assert "no member" in cli.json_error("members", "password", member, "--account", other)["message"]
    both = cli.json_error("members", "password", member, "--password-stdin", "--remove")
    assert both == {"code": "usage_error", "message": "give --password-stdin or --remove, not both"}
    assert _stored_hash(cli, member) is None and cli.json("members", "show", member, "--account", account)
