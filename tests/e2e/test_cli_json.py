"""Errors printed as one line of JSON on stderr when the command line has `--json`, whatever stops the
command, end to end: the real CLI on a SQLite ledger in tmp_path."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli


def test_a_refusal_is_json_with_the_admin_apis_code_and_details(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    assert cli.json_error("keys", "show", "ghost") == {
        "code": "virtual_key_not_found",
        "message": "no virtual key with id 'ghost'",
    }
    error = cli.json_error("keys", "create", "--account", account, "--name", "k", "--member", "ghost")
    assert error["code"] == "validation_failed"
    assert [detail["loc"] for detail in error["details"]] == ["member_id"]
    key = cli.json("keys", "create", "--account", account, "--name", "k")["id"]
    cli.json("keys", "revoke", key)
    assert cli.json_error("keys", "rotate", key)["code"] == "key_revoked"
    assert cli.json("keys", "list", "--account", account)[0]["status"] == "revoked"


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (("accounts", "create", "--name", "B", "--cap", "1.5.5"), 2, "Invalid value for '--cap'"),
        (("accounts", "create", "--name", "B", "--colour", "red"), 2, "No such option: --colour"),
        (("accounts", "create"), 2, "Missing option '--name'"),
        (("accounts", "update", "some-id", "--cap", "1", "--no-cap"), 1, "give --cap or --no-cap, not both"),
        (("keys", "cap", "some-id"), 1, "give the cap in USD (e.g. 75.00) or --none"),
        (("acounts", "list"), 2, "No such command 'acounts'"),
        (("serve",), 2, "No such option: --json"),
    ],
)
def test_a_bad_command_line_is_a_json_usage_error(
    cli: Cli, args: tuple[str, ...], exit_code: int, message: str
) -> None:
    error = cli.json_error(*args, code=exit_code)
    assert error["code"] == "usage_error" and message in error["message"], error
    assert cli.json("accounts", "list") == [], "nothing was created"


def test_without_json_a_bad_command_line_is_still_typers_own_message(cli: Cli) -> None:
    stderr = cli.fails("accounts", "create", "--name", "B", "--cap", "1.5.5", code=2)
    assert "Invalid value for '--cap'" in stderr and "Usage:" in stderr and not stderr.startswith("{")


def test_a_bad_setting_and_an_unusable_database_are_json(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAREBOX_PORT", "not-a-port")
    error = cli.json_error("accounts", "list", code=2)
    assert error["code"] == "invalid_setting" and "port" in error["message"]
    monkeypatch.delenv("FAREBOX_PORT")

    cli.database_url = "postgresql://farebox:s3cret@127.0.0.1:1/farebox"
    error = cli.json_error("accounts", "list")
    assert error["code"] == "database_unusable"
    assert error["message"].startswith("cannot use the ledger database postgresql://farebox:***@127.0.0.1:1/farebox:")
    assert "s3cret" not in error["message"]


def test_an_error_prints_brackets_as_they_are(cli: Cli) -> None:
    assert cli.fails("accounts", "show", "[red]x").strip() == "error: no account with id '[red]x'"
    assert cli.json_error("accounts", "show", "[red]x")["message"] == "no account with id '[red]x'"
