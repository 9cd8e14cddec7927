"""`farebox reports schedule` and `farebox reports list`: one scheduled report of an account set, changed and removed
from the terminal, checked as the API checks it, and listed with its next run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

SETTINGS = {"FAREBOX_SMTP_HOST": "127.0.0.1", "FAREBOX_SMTP_FROM": "farebox@example.test"}
SETTINGS |= {"FAREBOX_ALLOW_PRIVATE_WEBHOOK_URLS": "true"}


def test_the_cli_schedules_lists_and_removes_reports(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    account = cli.json("accounts", "create", "--name", "Acme", "--timezone", "Asia/Kathmandu")["id"]
    weekly = ("--every", "weekly", "--at", "07:15", "--day-of-week", "friday", "--email", "fin@acme.test")
    out = cli.json("reports", "schedule", "--account", account, "--name", "Weekly", *weekly, "--format", "xlsx")
    (scheduled,) = out["reports"]
    assert (scheduled["timezone"], scheduled["dayOfWeek"], scheduled["format"]) == ("Asia/Kathmandu", "friday", "xlsx")
    assert [section["type"] for section in scheduled["sections"]] == ["summary", "breakdown", "trends", "top_items"]
    daily = ("--every", "daily", "--at", "09:00", "--webhook-url", "http://127.0.0.1:9/r", "--section", "top:models")
    unregistered = cli.fails("reports", "schedule", "--account", account, "--name", "Daily", *daily)
    assert "one of the account's webhook endpoints" in unregistered
    cli.json("webhooks", "create", account, "http://127.0.0.1:9/r", "-e", "usage.voided")
    cli.json("reports", "schedule", "--account", account, "--name", "Daily", *daily, "--period", "48h")
    listed = cli.json("reports", "list")["reports"]
    assert [(report["name"], report["schedule"]) for report in listed] == [("Daily", "daily"), ("Weekly", "weekly")]
    assert listed[0]["sections"][0]["category"] == "models" and listed[0]["period"] == "48h"
    assert listed[1] == scheduled
    table = cli.run("reports", "list", "--account", account)
    assert table.exit_code == 0 and "fin@acme.test" in table.stdout and "Weekly" in table.stdout

    assert "time" in cli.fails(
        "reports", "schedule", "--account", account, "--name", "X", "--every", "daily", "--at", "9", code=2
    )
    assert "--every" in cli.fails("reports", "schedule", "--account", account, "--name", "X", code=2)
    bad_zone = ("--every", "daily", "--at", "09:00", "--timezone", "Nowhere/Land", "--email", "a@acme.test")
    assert "IANA" in cli.fails("reports", "schedule", "--account", account, "--name", "X", *bad_zone)
    cli.json("reports", "schedule", "--account", account, "--name", "Daily", "--remove")
    assert [report["name"] for report in cli.json("reports", "list", "--account", account)["reports"]] == ["Weekly"]
    assert "no scheduled report" in cli.fails(
        "reports", "schedule", "--account", account, "--name", "Daily", "--remove"
    )
    assert "no account" in cli.fails("reports", "list", "--account", "nowhere")
