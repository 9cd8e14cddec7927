"""`--json` on every command that prints a result, end to end: the real CLI on a SQLite ledger in tmp_path.

The commands that took `--json` last (`migrate`, `webhooks delete|retry`, `alerts show|set`), and errors
printed as one line of JSON on stderr when the command line has `--json`, whatever stops the command.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from farebox.core.events import epoch_us
from farebox.core.sealing import SecretBox
from farebox.core.server_secret import WEBHOOK_SECRETS
from farebox.ledger.base import Ledger
from farebox.ledger.outbox import Attempt, Outbox
from farebox.ledger.webhooks import WebhookEndpoints
from farebox.settings import Settings, resolve_secret_key

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

HOOK_URL = "https://93.184.215.14/farebox"


def _failed_delivery(database_url: str, endpoint_id: str) -> str:
    """A test message to the endpoint whose one attempt failed for good; its message id."""

    secret_key, _ = resolve_secret_key(Settings(database_url=database_url))
    box = SecretBox.derived(secret_key, purpose=WEBHOOK_SECRETS)

    async def make() -> str:
        async with Ledger(database_url) as ledger:
            message_id = await WebhookEndpoints(ledger, box).send_test(endpoint_id)
            outbox, now = Outbox(ledger, box), epoch_us(datetime.now(UTC))
            (claimed,) = await outbox.claim(now_us=now, lease_us=60_000_000, limit=1)
            failed = Attempt(claimed, ok=False, status_code=500, error="HTTP 500", duration_ms=3, retry=False)
            await outbox.finish([failed], now_us=now, delays_us=[])
            return message_id

    return asyncio.run(make())


def test_migrate_json_names_the_ledger_and_the_revision_it_is_at(cli: Cli, tmp_path: Path) -> None:
    migrated = cli.json("migrate")
    with sqlite3.connect(tmp_path / "ledger.db") as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert migrated == {"ledger": cli.database_url, "revision": revision}
    assert cli.json("migrate") == migrated, "a second run finds the schema current"
    text = cli.run("migrate")
    assert text.exit_code == 0 and text.stdout == f"ledger schema up to date: {cli.database_url}\n"


def test_webhooks_delete_json_prints_the_deleted_endpoint(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    created = cli.json("webhooks", "create", account, HOOK_URL, "-e", "usage.threshold", "--description", "ops")
    (listed,) = cli.json("webhooks", "list", account)
    assert cli.json("webhooks", "delete", created["id"]) == {"deleted": listed}
    assert cli.json("webhooks", "list", account) == []
    error = cli.json_error("webhooks", "delete", created["id"])
    assert error == {"code": "webhook_not_found", "message": f"no webhook endpoint with id {created['id']!r}"}

    other = cli.json("webhooks", "create", account, HOOK_URL, "-e", "usage.threshold")["id"]
    text = cli.run("webhooks", "delete", other)
    assert text.exit_code == 0 and text.stdout == f"deleted webhook endpoint {other} ({HOOK_URL})\n"


def test_webhooks_retry_json_makes_a_failed_delivery_pending(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    endpoint = cli.json("webhooks", "create", account, HOOK_URL, "-e", "usage.threshold")["id"]
    message = _failed_delivery(cli.database_url, endpoint)
    assert [d["status"] for d in cli.json("webhooks", "deliveries", endpoint)] == ["failed"]

    retried = cli.json("webhooks", "retry", endpoint, message)
    assert retried == {"endpoint_id": endpoint, "message_id": message, "status": "pending"}
    (delivery,) = cli.json("webhooks", "deliveries", endpoint)
    assert (delivery["id"], delivery["status"]) == (message, "pending")
    error = cli.json_error("webhooks", "retry", endpoint, message)
    assert error == {"code": "delivery_not_failed", "message": f"delivery {message!r} is pending, not failed"}


def test_alerts_show_and_set_json(cli: Cli, tmp_path: Path) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    shown = cli.json("alerts", "show", account)
    assert orjson.loads(cli.run("alerts", "show", account).stdout) == shown, "JSON with or without --json"

    shown["keys"]["thresholds"] = [{"fraction": "0.9", "actions": ["webhook"]}]
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(shown))
    in_force = cli.json("alerts", "set", account, str(rules))
    assert in_force["keys"]["thresholds"] == [
        {
            "fraction": "0.9",
            "actions": ["webhook"],
            "message": None,
            "recipients": None,
            "channels": None,
            "urgency": None,
        }
    ]
    assert cli.json("alerts", "show", account) == in_force

    rules.write_text(json.dumps({"keys": {"thresholds": [{"fraction": "2"}]}}))
    error = cli.json_error("alerts", "set", account, str(rules))
    assert error["code"] == "validation_failed" and "keys.thresholds.0.fraction" in error["message"]
    rules.write_text("{not json")
    assert cli.json_error("alerts", "set", account, str(rules))["code"] == "invalid_json"
    assert cli.json_error("alerts", "show", "ghost") == {
        "code": "account_not_found",
        "message": "no account with id 'ghost'",
    }
    assert cli.json("alerts", "show", account) == in_force, "a refused file changes nothing"


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
    assert cli.json_error("migrate", code=2)["code"] == "database_unusable"


def test_an_error_prints_brackets_as_they_are(cli: Cli) -> None:
    assert cli.fails("accounts", "show", "[red]x").strip() == "error: no account with id '[red]x'"
    assert cli.json_error("accounts", "show", "[red]x")["message"] == "no account with id '[red]x'"
