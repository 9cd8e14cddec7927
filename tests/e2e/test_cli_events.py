"""`farebox events void` end to end: the real CLI on a SQLite ledger in tmp_path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

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
