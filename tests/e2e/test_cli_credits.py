"""`farebox accounts credits add|show` end to end: the real CLI on a SQLite ledger in tmp_path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from farebox.ledger.base import Ledger

if TYPE_CHECKING:
    from tests.conftest import EventFactory
    from tests.e2e.conftest import Cli


def spend(cli: Cli, make_event: EventFactory, *, account: str, cost_nano: int) -> None:
    event = make_event(
        account_id=account, key_id=None, member_id=None, cost_nano=cost_nano, timestamp=datetime.now(UTC)
    )

    async def write() -> None:
        async with Ledger(cli.database_url) as ledger:
            await ledger.record(event)

    asyncio.run(write())


def test_credits_added_in_usd_or_credits_are_shown_with_the_balance(cli: Cli, make_event: EventFactory) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    spend(cli, make_event, account=account, cost_nano=3 * 10**9)  # before any credits: never drawn from them

    added = cli.json("accounts", "credits", "add", account, "--usd", "25.00", "--note", "invoice 7")
    assert (added["amount"], added["credits"], added["note"], added["added_by"]) == (
        "25.00",
        "500000",
        "invoice 7",
        "cli",
    )
    assert (added["balance"], added["balance_credits"], added["added_by_member_id"]) == ("25.00", "500000", None)
    cli.json("accounts", "credits", "add", account, "--credits", "12.5")
    spend(cli, make_event, account=account, cost_nano=10**9)

    shown = cli.json("accounts", "credits", "show", account)
    assert (shown["prepaid"], shown["credits_per_usd"], shown["reserved"]) == (True, 20000, "0.00")
    assert (shown["topped_up"], shown["used"], shown["balance"]) == ("25.000625", "1.00", "24.000625")
    assert shown["balance_credits"] == "480012.5"
    assert [(row["credits"], row["note"]) for row in shown["top_ups"]] == [("12.5", None), ("500000", "invoice 7")]


def test_credits_are_shown_at_the_operator_s_rate(
    cli: Cli, make_event: EventFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAREBOX_CREDITS_PER_USD", "100")  # a credit is a cent
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    assert cli.json("accounts", "credits", "add", account, "--credits", "250")["amount"] == "2.50"
    assert cli.json("accounts", "credits", "show", account)["balance_credits"] == "250"


def test_credits_show_prints_the_balance_and_a_table_of_top_ups(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    never = cli.run("accounts", "credits", "show", account)
    assert never.exit_code == 0 and "prepaid" in never.stdout and "False" in never.stdout
    cli.json("accounts", "credits", "add", account, "--usd", "1.50", "--note", "trial")

    shown = cli.run("accounts", "credits", "show", account)

    assert shown.exit_code == 0, shown.output
    assert "balance_credits" in shown.stdout and "30000" in shown.stdout
    assert "Top-ups" in shown.stdout and "trial" in shown.stdout and "1.50" in shown.stdout


def test_bad_top_ups_are_refused_as_one_line(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    assert cli.json_error("accounts", "credits", "add", account, code=2)["code"] == "usage_error"
    both = cli.json_error("accounts", "credits", "add", account, "--usd", "1", "--credits", "1", code=2)
    assert "one of them" in both["message"]
    fine = cli.json_error("accounts", "credits", "add", account, "--credits", "0.00001", code=2)
    assert "not a whole number of nano-USD" in fine["message"]
    zero = cli.json_error("accounts", "credits", "add", account, "--usd", "0")
    assert (zero["code"], zero["details"][0]["loc"]) == ("validation_failed", "amount")
    assert cli.json_error("accounts", "credits", "add", "nope", "--usd", "1")["code"] == "account_not_found"
    assert cli.json_error("accounts", "credits", "show", "nope")["code"] == "account_not_found"
    assert cli.json("accounts", "credits", "show", account)["top_ups"] == []
