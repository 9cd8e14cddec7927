"""Prompt prefix counts on real ledgers (SQLite, and PostgreSQL with TEST_PG_URL): the successful requests that
carry a prefix, per local day of the account's zone, counted once per event id, read back as the prefixes that
repeat on a day, and summed again when the account's zone changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from farebox.core.events import Status
from farebox.ledger.base import Ledger
from farebox.ledger.daily import local_day
from farebox.ledger.directory import Directory
from farebox.ledger.prompt_prefixes import PrefixFilter
from farebox.ledger.reader import LedgerReader
from farebox.ledger.schema import prompt_prefixes, usage_events

if TYPE_CHECKING:
    from tests.conftest import EventFactory, TableRows

pytestmark = pytest.mark.anyio

# 20:00 UTC is 01:30 of the next day in Kolkata. Recent: a change of zone sums the last 190 days again.
LATE = (datetime.now(UTC) - timedelta(days=2)).replace(hour=20, minute=0, second=0, microsecond=0)
P1, P2 = "0123456789abcdef", "fedcba9876543210"


def _counts(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], tuple[int, int, int]]:
    return {
        (row["day"], row["key_id"], row["canonical_model"], row["prefix"]): (
            row["requests"],
            row["input_tokens"],
            row["cached_input_tokens"],
        )
        for row in rows
    }


async def test_successful_requests_with_a_prefix_are_counted_per_local_day(
    ledger: Ledger, make_event: EventFactory, table_rows: TableRows
) -> None:
    directory = Directory(ledger)
    account = await directory.create_account(name="Kolkata", timezone="Asia/Kolkata")
    day = local_day(int(LATE.timestamp()), ZoneInfo("Asia/Kolkata"))

    def event(n: int, prefix: str | None, **fields: Any) -> Any:
        values: dict[str, Any] = {"id": f"e{n}", "timestamp": LATE + timedelta(minutes=n), "account_id": account.id}
        values |= {"key_id": "k1", "input_tokens": 2_000, "cached_input_tokens": 0, "prompt_prefix": prefix}
        return make_event(**(values | fields))

    first = [
        event(1, P1),
        event(2, P1, cached_input_tokens=1_024),
        event(3, P1, key_id="k2"),
        event(4, P2),
        event(5, None),  # a short prompt: no prefix
        event(6, P1, status=Status.ERROR, input_tokens=0, http_status=500),  # failed: not counted
    ]
    await ledger.record_many(first)
    await ledger.record_many([first[0]])  # a replayed id counts once
    rows = await table_rows(ledger, prompt_prefixes)
    assert {row["account_id"] for row in rows} == {account.id}
    assert _counts(rows) == {
        (day, "k1", "gpt-4o", P1): (2, 4_000, 1_024),
        (day, "k2", "gpt-4o", P1): (1, 2_000, 0),
        (day, "k1", "gpt-4o", P2): (1, 2_000, 0),
    }
    stored = await table_rows(ledger, usage_events)
    assert sorted((row["id"], row["prompt_prefix"]) for row in stored) == [
        ("e1", P1),
        ("e2", P1),
        ("e3", P1),
        ("e4", P2),
        ("e5", None),
        ("e6", P1),
    ]

    reader = LedgerReader(ledger)
    repeated = await reader.repeated_prefixes(PrefixFilter(day, day + 1, account_id=account.id))
    assert sorted((row.key_id, row.prefix, row.requests, row.day_requests) for row in repeated) == [
        ("k1", P1, 2, 3),
        ("k2", P1, 1, 3),
    ], "P2 was sent once"
    assert await reader.repeated_prefixes(PrefixFilter(day + 1, day + 2, account_id=account.id)) == []
    only_k2 = await reader.repeated_prefixes(PrefixFilter(day, day + 1, account_id=account.id, key_ids=("k2",)))
    assert only_k2 == [], "read for one key, k2 sent P1 once"

    # In UTC the same events fall on the 4th: a change of zone sums them again.
    await directory.update_account(account.id, timezone="UTC")
    moved = _counts(await table_rows(ledger, prompt_prefixes))
    assert moved == {(day - 1, key, model, prefix): counts for (_, key, model, prefix), counts in _counts(rows).items()}
