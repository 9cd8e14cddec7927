"""Reprices in the ledger: a recalculation with a changed price book appends each difference once (two at once
included, page after page), and the raw events' sums (the current minute's reads), the rollups and the spend
counters then agree on the new total; the book the events were priced by changes nothing; a dry run writes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from farebox.core.events import epoch_us
from farebox.core.periods import Period
from farebox.ledger.actors import Actor
from farebox.ledger.adjustments import Adjustments
from farebox.ledger.aggregates import Aggregate, Source
from farebox.ledger.base import Ledger
from farebox.ledger.reader import LedgerReader
from farebox.ledger.reprices import RepriceRange, Reprices
from farebox.prices import PriceBook
from farebox.prices.overrides import PriceOverrides

if TYPE_CHECKING:
    from tests.conftest import EventFactory

pytestmark = pytest.mark.anyio

AT = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)
NOW = datetime(2025, 7, 1, tzinfo=UTC)
PRICIER = """
[[prices]]
model = "gpt-4o"
input_mtok = "5"
output_mtok = "20"
"""
"""gpt-4o at twice the catalog's $2.50/$10: the fixture's event (1,000 in, 200 out) costs $0.009, not $0.0045."""
WHOLE = RepriceRange("acct-1", epoch_us(AT), epoch_us(AT + timedelta(minutes=1)))
BY = Actor("cli")


async def _costs(ledger: Ledger) -> tuple[int, int, int, int]:
    """(the raw events' cost in the minute, the rollups' in its quarter hour, key-1's and key-2's spend counters)."""
    reader = LedgerReader(ledger)
    where = {"account_id": ("acct-1",)}
    (events,) = await reader.aggregate(
        Aggregate(WHOLE.since_us, WHOLE.until_us, ("cost_nano",), where=where, source=Source.EVENTS)
    )
    bucket = int(AT.timestamp()) // 900 * 900
    (rollups,) = await reader.aggregate(Aggregate(bucket, bucket + 900, ("cost_nano",), where=where))
    spent = [
        await ledger.spent(scope="key", scope_id=key, period=Period.TOTAL, at=AT, tz=UTC) for key in ("key-1", "key-2")
    ]
    return events.measures[0], rollups.measures[0], *spent


async def test_a_changed_book_reprices_each_event_once_and_every_sum_follows(
    ledger: Ledger, make_event: EventFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("farebox.ledger.reprices._PAGE", 5)
    events = [make_event(timestamp=AT + timedelta(seconds=n)) for n in range(12)]
    events.append(make_event(key_id="key-2", timestamp=AT + timedelta(seconds=5)))
    await ledger.record_many(events)
    assert await _costs(ledger) == (13 * 4_500_000, 13 * 4_500_000, 12 * 4_500_000, 4_500_000)

    same = await Reprices(ledger, PriceBook(), clock=lambda: NOW).recalculate([WHOLE], reason="check", by=BY)
    assert (same.examined, same.repriced) == (13, 0), "the catalog the events were priced by"

    pricier = Reprices(ledger, PriceBook(overrides=PriceOverrides.parse(PRICIER, source="test")), clock=lambda: NOW)
    dry = await pricier.recalculate([WHOLE], reason="check", by=BY, dry_run=True)
    assert (dry.repriced, dry.new_nano - dry.previous_nano) == (13, 13 * 4_500_000)
    assert await Adjustments(ledger).count() == 0, "a dry run writes nothing"

    first, second = await asyncio.gather(
        pricier.recalculate([WHOLE], reason="list price doubled", by=BY),
        pricier.recalculate([WHOLE], reason="list price doubled", by=BY),
    )
    assert first.repriced + second.repriced == 13, "two runs at once add each difference once"
    assert await Adjustments(ledger).count() == 13
    assert await _costs(ledger) == (13 * 9_000_000, 13 * 9_000_000, 12 * 9_000_000, 9_000_000)

    again = await pricier.recalculate([WHOLE], reason="again", by=BY)
    assert (again.examined, again.repriced) == (13, 0)

    back = await Reprices(ledger, PriceBook(), clock=lambda: NOW).recalculate([WHOLE], reason="undo", by=BY)
    assert (back.repriced, back.new_nano - back.previous_nano) == (13, -13 * 4_500_000), "a second reprice of each"
    assert await _costs(ledger) == (13 * 4_500_000, 13 * 4_500_000, 12 * 4_500_000, 4_500_000)
    row = await LedgerReader(ledger).event(events[0].id)
    assert row is not None and row.cost_nano == 4_500_000


async def test_only_the_keys_asked_for_are_repriced(ledger: Ledger, make_event: EventFactory) -> None:
    await ledger.record_many([make_event(key_id=key, timestamp=AT) for key in ("key-1", "key-2", "key-3")])
    pricier = Reprices(ledger, PriceBook(overrides=PriceOverrides.parse(PRICIER, source="test")), clock=lambda: NOW)
    wanted = RepriceRange(WHOLE.account_id, WHOLE.since_us, WHOLE.until_us, key_ids=("key-2", "key-3"))
    done = await pricier.recalculate([wanted], reason="two keys", by=BY)
    assert (done.examined, done.repriced, sorted(change.key_id or "" for change in done.changes)) == (
        2,
        2,
        ["key-2", "key-3"],
    )
    assert (await _costs(ledger))[2:] == (4_500_000, 9_000_000)
