"""`farebox webhooks|alerts` and `farebox keys disable|enable` end to end: the real CLI on a SQLite ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from farebox.cli import app as cli_app

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli


def test_webhooks_create_list_deliveries_and_delete(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    created = cli.json(
        "webhooks",
        "create",
        account,
        "https://93.184.215.14/farebox",
        "-e",
        "usage.threshold",
        "-e",
        "key.disabled",
    )
    assert created["secret"].startswith("whsec_")
    assert (created["events"], created["enabled"]) == (["usage.threshold", "key.disabled"], True)
    (listed,) = cli.json("webhooks", "list", account)
    assert listed["id"] == created["id"] and "secret" not in listed
    assert cli.json("webhooks", "deliveries", created["id"]) == []

    table = cli.run("webhooks", "create", account, "https://93.184.215.14/2", "-e", "usage.recorded")
    assert table.exit_code == 0 and "whsec_" in table.stdout and "not shown again" in table.stdout
    assert "unknown event type 'usage.everything'" in cli.fails(
        "webhooks", "create", account, "https://h.example.com", "-e", "usage.everything", code=2
    )
    assert "private, loopback or link-local" in cli.fails(
        "webhooks", "create", account, "http://127.0.0.1:8080/hook", "-e", "usage.threshold"
    )
    assert "no delivery 'msg_nope'" in cli.fails("webhooks", "retry", created["id"], "msg_nope")
    assert cli.run("webhooks", "delete", created["id"]).exit_code == 0
    assert "no webhook endpoint" in cli.fails("webhooks", "deliveries", created["id"])


def test_webhooks_rotate_secret_prints_the_new_secret_once_and_stores_none(cli: Cli, tmp_path: Path) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    created = cli.json("webhooks", "create", account, "https://93.184.215.14/farebox", "-e", "usage.threshold")
    rotated = cli.json("webhooks", "rotate-secret", created["id"])
    assert set(rotated) == {"secret"} and rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != created["secret"]

    table = cli.run("webhooks", "rotate-secret", created["id"])
    assert table.exit_code == 0 and "whsec_" in table.stdout and "not shown again" in table.stdout
    assert "secret" not in cli.run("webhooks", "list", account, "--json").stdout
    assert "no webhook endpoint with id 'nope'" in cli.fails("webhooks", "rotate-secret", "nope")

    kept = tmp_path / "ledger.db.secret-key"
    assert kept.stat().st_mode & 0o777 == 0o600
    files = b"".join(path.read_bytes() for path in tmp_path.glob("ledger.db*"))
    for secret in (created["secret"], rotated["secret"]):
        assert secret.removeprefix("whsec_").encode() not in files


def test_webhook_commands_on_postgresql_need_the_server_secret(cli: Cli) -> None:
    unused = "postgresql://farebox:s3cret@127.0.0.1:9/ledger"
    for command in (["create", "acct", "https://h.example.com", "-e", "usage.threshold"], ["list", "acct"]):
        result = cli.runner.invoke(cli_app, ["webhooks", *command], env={"FAREBOX_DATABASE_URL": unused})
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: setting secret_key (FAREBOX_SECRET_KEY): required with a PostgreSQL")


def test_alerts_show_set_and_refuse_bad_rules(cli: Cli, tmp_path: Path) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    shown = orjson.loads(cli.run("alerts", "show", account).stdout)
    assert [t["fraction"] for t in shown["keys"]["thresholds"]] == ["0.5", "0.8", "0.95"]

    shown["keys"]["thresholds"] = [{"fraction": 0.75, "actions": ["webhook", "disable_key"]}]
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(shown))
    assert cli.run("alerts", "set", account, str(rules)).exit_code == 0
    again = orjson.loads(cli.run("alerts", "show", account).stdout)
    assert again["keys"]["thresholds"] == [
        {
            "fraction": "0.75",
            "actions": ["webhook", "disable_key"],
            "message": None,
            "recipients": None,
            "channels": None,
            "urgency": None,
        }
    ]

    rules.write_text(json.dumps({"keys": {"thresholds": [{"fraction": "0.5", "actions": ["email"]}]}}))
    assert "an `email` action needs at least one recipient" in cli.fails("alerts", "set", account, str(rules))
    rules.write_text(json.dumps({"keys": {"thresholds": [{"fraction": "2"}]}}))
    assert "keys.thresholds.0.fraction" in cli.fails("alerts", "set", account, str(rules))
    rules.write_text("{not json")
    assert "not valid JSON" in cli.fails("alerts", "set", account, str(rules))
    assert cli.json("alerts", "history", account) == []


def test_alerts_set_seals_a_pagerduty_routing_key(cli: Cli, tmp_path: Path) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    routing_key = "CliRoutingKey0000000000000000032"
    rules = tmp_path / "rules.json"
    pager = {"fraction": "0.9", "actions": ["pagerduty"], "urgency": "high"}
    rules.write_text(json.dumps({"account": {"thresholds": [pager]}, "pagerduty_routing_key": routing_key}))

    saved = cli.json("alerts", "set", account, str(rules))
    sealed = saved["pagerduty_routing_key"]
    assert sealed.startswith("sealed:v1:") and routing_key not in cli.run("alerts", "show", account).stdout
    assert saved["account"]["thresholds"][0]["urgency"] == "high"
    rules.write_text(cli.run("alerts", "show", account).stdout)
    assert cli.json("alerts", "set", account, str(rules))["pagerduty_routing_key"] == sealed, "kept as it is"
    rules.write_text(json.dumps({"account": {"thresholds": [pager]}}))
    assert "needs the PagerDuty routing key" in cli.fails("alerts", "set", account, str(rules))


def test_keys_disable_and_enable(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    key = cli.json("keys", "create", "--account", account, "--name", "k")
    disabled = cli.json("keys", "disable", key["id"], "--reason", "found in a public repo")
    assert (disabled["status"], disabled["disabled_reason"]) == ("disabled", "found in a public repo")

    assert cli.authenticate(key["key"]) == "this API key is disabled: found in a public repo"
    assert cli.json("keys", "enable", key["id"])["status"] == "active"
    assert cli.authenticate(key["key"]) == key["id"]
