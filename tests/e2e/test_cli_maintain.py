"""`farebox maintain` end to end: the real CLI on a SQLite ledger in tmp_path removes the raw events past
`raw_events_retention_days` and keeps what sums them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from farebox.ledger.base import Ledger
from farebox.ledger.partitions import month_start

if TYPE_CHECKING:
    from tests.conftest import EventFactory
    from tests.e2e.conftest import Cli


def test_maintain_removes_the_events_past_the_retention_and_keeps_the_spend(
    cli: Cli, make_event: EventFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = cli.json("accounts", "create", "--name", "Acme")["id"]
    key = cli.json("keys", "create", "--account", account, "--name", "k")["id"]
    now = datetime.now(UTC)
    at = {"old": now - timedelta(days=100), "recent": now - timedelta(minutes=5)}
    events = [
        make_event(id=f"evt-{age}-{n}", account_id=account, key_id=key, member_id=None, cost_nano=10**9, timestamp=when)
        for age, when in at.items()
        for n in range(3)
    ]

    async def write() -> None:
        async with Ledger(cli.database_url) as ledger:
            await ledger.record_many(events)

    asyncio.run(write())
    old_month = ("usage", "--account", account, "--month", at["old"].strftime("%Y-%m"))
    shown = cli.json(*old_month)
    assert (shown["total"]["cost"], shown["total"]["requests"]) == ("3.00", 3)

    kept = cli.json("maintain", "--json")
    monkeypatch.setenv("FAREBOX_RAW_EVENTS_RETENTION_DAYS", "30")
    done = cli.json("maintain", "--json")
    again = cli.run("maintain")

    assert (kept["before"], kept["eventsDeleted"]) == (None, 0)
    before = month_start(now - timedelta(days=30)).isoformat().replace("+00:00", "Z")
    assert (done["before"], done["eventsDeleted"], done["partitionsDropped"]) == (before, 3, [])
    assert again.exit_code == 0 and f"raw events before {before} removed: 0 events" in again.stdout
    assert cli.json(*old_month) == shown
