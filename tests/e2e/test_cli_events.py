"""`farebox events void` and `farebox events recalculate` end to end: the real CLI on a SQLite ledger in tmp_path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from farebox.ledger.base import Ledger

if TYPE_CHECKING:
    from tests.conftest import EventFactory
    from tests.e2e.conftest import Cli


def record(cli: Cli, make_event: EventFactory, *, account: str, key_id: str, source: str) -> str:
    """Record an event of the key costing 1 USD now (`ingest`ed or `proxy`); its id."""
    event = make_event(
        account_id=account, key_id=key_id, member_id=None, cost_nano=10**9, timestamp=datetime.now(UTC), source=source
    )

    async def write() -> None:
        async with Ledger(cli.database_url) as ledger:
            await ledger.record(event)

    asyncio.run(write())
    return str(event.id)


def test_events_void_nets_the_event_out_of_the_keys_spend(cli: Cli, make_event: EventFactory) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    key = cli.json("keys", "create", "--account", account, "--name", "k")
    wrong = record(cli, make_event, account=account, key_id=key["id"], source="ingest")
    assert cli.json("keys", "show", key["id"])["spend"] == "1.00"

    void = cli.json("events", "void", wrong, "--reason", "  sent twice by the billing job ", "--account", account)

    assert (void["event_id"], void["reason"], void["voided_by"], void["voided_by_member_id"]) == (
        wrong,
        "sent twice by the billing job",
        "cli",
        None,
    )
    assert (void["cost_usd"], void["account_id"], void["key_id"]) == ("-1.00", account, key["id"])
    assert cli.json("keys", "show", key["id"])["spend"] == "0.00"
    assert "voided already" in cli.fails("events", "void", wrong, "--reason", "again")


def test_events_void_prints_a_table_without_json(cli: Cli, make_event: EventFactory) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    key = cli.json("keys", "create", "--account", account, "--name", "k")
    wrong = record(cli, make_event, account=account, key_id=key["id"], source="ingest")

    shown = cli.run("events", "void", wrong, "--reason", "test data")

    assert shown.exit_code == 0, shown.output
    assert "test data" in shown.stdout and "-1.00" in shown.stdout and "voided_by" in shown.stdout


def test_events_void_refusals_are_one_line(cli: Cli, make_event: EventFactory) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    key = cli.json("keys", "create", "--account", account, "--name", "k")
    proxied = record(cli, make_event, account=account, key_id=key["id"], source="proxy")
    ingested = record(cli, make_event, account=account, key_id=key["id"], source="ingest")

    assert "no usage event with id 'nope'" in cli.fails("events", "void", "nope", "--reason", "x")
    assert "no usage event" in cli.fails("events", "void", ingested, "--reason", "x", "--account", "other")
    assert "only ingested events can be voided" in cli.fails("events", "void", proxied, "--reason", "x")
    assert "--reason" in cli.fails("events", "void", ingested, code=2)
    assert "give the reason" in cli.fails("events", "void", ingested, "--reason", "   ", code=2)
    assert cli.json_error("events", "void", proxied, "--reason", "x")["code"] == "event_not_ingested"
    assert cli.json_error("events", "void", ingested, code=2)["code"] == "usage_error"
    assert cli.json("keys", "show", key["id"])["spend"] == "2.00"


DOUBLED = '[[prices]]\nmodel = "gpt-4o"\ninput_mtok = "5"\noutput_mtok = "20"\n'
"""gpt-4o at twice the catalog's $2.50/$10: an event of 1,000 input and 200 output tokens costs $0.009, not $0.0045."""


def test_events_recalculate_reprices_with_the_overrides_file_as_it_is_now(
    cli: Cli, make_event: EventFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    key = cli.json("keys", "create", "--account", account, "--name", "k")
    today = datetime.now(UTC).date().isoformat()
    events = [
        make_event(account_id=account, key_id=key["id"], member_id=None, timestamp=datetime.now(UTC)) for _ in range(2)
    ]

    async def write() -> None:
        async with Ledger(cli.database_url) as ledger:
            await ledger.record_many(events)

    asyncio.run(write())
    days = ("--from", today, "--to", today, "--account", account)
    unchanged = cli.json("events", "recalculate", *days)
    assert (unchanged["eventsExamined"], unchanged["eventsRepriced"]) == (2, 0), "the catalog they were priced by"

    book = tmp_path / "prices.toml"
    book.write_text(DOUBLED)
    monkeypatch.setenv("FAREBOX_PRICE_OVERRIDES", str(book))
    dry = cli.json("events", "recalculate", *days, "--dry-run", "--key", key["id"])
    assert (dry["dryRun"], dry["eventsRepriced"], dry["difference"], dry["virtualKeys"]) == (
        True,
        2,
        0.009,
        [key["id"]],
    )
    assert cli.json("keys", "show", key["id"])["spend"] == "0.009"

    shown = cli.run("events", "recalculate", *days, "--reason", "gpt-4o was priced at half")
    assert shown.exit_code == 0, shown.output
    assert "repriced 2 of 2 events: 0.009 -> 0.018 USD (+0.009)" in shown.stdout
    assert cli.json("keys", "show", key["id"])["spend"] == "0.018"
    assert cli.json("events", "recalculate", *days)["eventsRepriced"] == 0, "a second run changes nothing"


def test_events_recalculate_refusals_are_one_line(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    assert "not a date" in cli.fails("events", "recalculate", "--from", "2026-13-01", "--to", "2026-12-01", code=2)
    assert "endDate comes before startDate" in cli.fails(
        "events", "recalculate", "--from", "2026-12-02", "--to", "2026-12-01", "--account", account
    )
    assert "no such key" in cli.fails(
        "events", "recalculate", "--from", "2026-12-01", "--to", "2026-12-01", "--key", "nope", "--account", account
    )
    error = cli.json_error("events", "recalculate", "--from", "2026-12-01", "--to", "2026-12-01", "--account", "nope")
    assert error["code"] == "account_not_found"
