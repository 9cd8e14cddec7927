"""The ledger's read side (`LedgerReader`) on every backend: typed rows, filters, keyset pages and streams."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from farebox.core.events import UsageEvent
from farebox.ledger.adjustments import Actor, Adjustments
from farebox.ledger.base import Ledger
from farebox.ledger.reader import EventCursor, EventFilter, EventRow, LedgerReader, RollupFilter

pytestmark = pytest.mark.anyio

EventFactory = Callable[..., UsageEvent]
NOON = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def in_order(events: list[UsageEvent]) -> list[str]:
    """Ids in the reader's order: by timestamp, then by id."""
    return [event.id for event in sorted(events, key=lambda event: (event.timestamp, event.id))]


async def read_all(reader: LedgerReader, wanted: EventFilter | None = None) -> list[str]:
    """Every matching event's id, read two at a time."""
    ids: list[str] = []
    after: EventCursor | None = None
    while page := await reader.events(wanted or EventFilter(), limit=2, after=after):
        ids += [row.id for row in page]
        after = page[-1].cursor
    return ids


async def test_pages_continue_after_their_cursor_through_ties_on_the_timestamp(
    ledger: Ledger, make_event: EventFactory
) -> None:
    tied = [make_event(id=f"tie-{n}", timestamp=NOON) for n in (5, 1, 4, 2, 6, 3, 0)]
    around = [make_event(id="before", timestamp=NOON - timedelta(microseconds=1))]
    around.append(make_event(id="after", timestamp=NOON + timedelta(microseconds=1)))
    await ledger.record_many([*tied, *around])
    reader = LedgerReader(ledger)

    pages: list[list[str]] = []
    after: EventCursor | None = None
    while page := await reader.events(limit=3, after=after):
        pages.append([row.id for row in page])
        after = page[-1].cursor

    assert pages == [["before", "tie-0", "tie-1"], ["tie-2", "tie-3", "tie-4"], ["tie-5", "tie-6", "after"]]
    # A cursor holds its place: what is recorded later sorts before or after it, never into a page read twice.
    await ledger.record_many([make_event(id="tie-00", timestamp=NOON), make_event(id="tie-7", timestamp=NOON)])
    resumed = await reader.events(limit=10, after=EventCursor(NOON, "tie-4"))
    assert [row.id for row in resumed] == ["tie-5", "tie-6", "tie-7", "after"]


async def test_filters_match_every_field_given(ledger: Ledger, make_event: EventFactory) -> None:
    later, latest = NOON + timedelta(hours=1), NOON + timedelta(hours=2)
    await ledger.record_many(
        [
            make_event(id="a", timestamp=NOON, model="gpt-4o-2024-08-06", canonical_model="gpt-4o"),
            make_event(id="b", timestamp=later, key_id="key-2", member_id=None, canonical_model="gpt-4o-mini"),
            make_event(id="c", timestamp=latest, provider="anthropic", model="sonnet", canonical_model="sonnet"),
            make_event(id="d", timestamp=latest, account_id="acct-2", key_id="key-9", member_id="m-9", model="gpt-4o"),
        ]
    )
    reader = LedgerReader(ledger)

    assert await read_all(reader) == ["a", "b", "c", "d"]
    assert await read_all(reader, EventFilter(account_id="acct-1")) == ["a", "b", "c"]
    assert await read_all(reader, EventFilter(key_ids=("key-2", "key-9"))) == ["b", "d"]
    assert await read_all(reader, EventFilter(member_ids=("mem-1",))) == ["a", "c"]
    assert await read_all(reader, EventFilter(providers=("anthropic",))) == ["c"]
    # A model matches as called or as its canonical model.
    assert await read_all(reader, EventFilter(models=("gpt-4o",))) == ["a", "d"]
    assert await read_all(reader, EventFilter(models=("gpt-4o-mini", "sonnet"))) == ["b", "c"]
    # `since` is included, `until` is not.
    assert await read_all(reader, EventFilter(since=later, until=latest)) == ["b"]
    assert await read_all(reader, EventFilter(account_id="acct-1", since=later)) == ["b", "c"]
    assert await read_all(reader, EventFilter(key_ids=())) == [], "an empty tuple matches nothing"
    assert await reader.events(EventFilter(account_id="acct-1"), limit=2) == [
        await reader.event("a"),
        await reader.event("b"),
    ]


async def test_an_event_row_is_typed_and_a_missing_one_is_none(ledger: Ledger, make_event: EventFactory) -> None:
    event = make_event(timestamp=datetime(2025, 6, 1, 14, 30, 1, 5, tzinfo=UTC), cost_nano=12_345_678_901)
    await ledger.record(event)
    reader = LedgerReader(ledger)

    row = await reader.event(event.id)

    assert isinstance(row, EventRow)
    assert (row.cost_nano, row.timestamp, row.tags) == (12_345_678_901, event.timestamp, event.tags)
    assert row.timestamp.utcoffset() == timedelta(0) and row.recorded_at.utcoffset() == timedelta(0)
    assert row.cursor == EventCursor(event.timestamp, event.id)
    assert await reader.event("no-such-event") is None


async def test_rollups_are_the_quarter_hour_sums_by_dimension(ledger: Ledger, make_event: EventFactory) -> None:
    await ledger.record_many(
        [
            make_event(timestamp=NOON + timedelta(minutes=5), cost_nano=100, input_tokens=10),
            make_event(timestamp=NOON + timedelta(minutes=14), cost_nano=200, input_tokens=20),
            make_event(timestamp=NOON + timedelta(minutes=10), cost_nano=7, key_id="key-2", model="gpt-4o-mini"),
            make_event(timestamp=NOON + timedelta(minutes=15), cost_nano=1_000, app="helpdesk"),
            make_event(timestamp=NOON, cost_nano=5, account_id="acct-2", provider="anthropic"),
        ]
    )
    reader = LedgerReader(ledger)

    rows = await reader.rollups(RollupFilter(account_id="acct-1"))

    summary = [
        (row.start, row.key_id, row.model, row.app, row.requests, row.cost_nano, row.input_tokens) for row in rows
    ]
    quarter = NOON + timedelta(minutes=15)
    assert summary == [
        (NOON, "key-1", "gpt-4o-2024-08-06", "", 2, 300, 30),
        (NOON, "key-2", "gpt-4o-mini", "", 1, 7, 1_000),
        (quarter, "key-1", "gpt-4o-2024-08-06", "helpdesk", 1, 1_000, 1_000),
    ]
    assert all(isinstance(row.cost_nano, int) and row.start.utcoffset() == timedelta(0) for row in rows)
    later = await reader.rollups(RollupFilter(since=NOON + timedelta(minutes=1)))
    assert [(row.start, row.cost_nano) for row in later] == [(quarter, 1_000)]
    first_quarter = RollupFilter(until=quarter, providers=("openai",), key_ids=("key-1",))
    assert [row.cost_nano for row in await reader.rollups(first_quarter)] == [300]
    assert [row.account_id for row in await reader.rollups(RollupFilter(models=("gpt-4o-mini",)))] == ["acct-1"]
    assert [row.account_id for row in await reader.rollups(RollupFilter(providers=("anthropic",)))] == ["acct-2"]


async def test_a_page_of_nothing_is_refused(ledger: Ledger) -> None:
    reader = LedgerReader(ledger)
    with pytest.raises(ValueError, match="limit"):
        await reader.events(limit=0)


async def test_voided_events_are_left_out_when_asked(ledger: Ledger, make_event: EventFactory) -> None:
    events = [make_event(id=f"evt-{n}", timestamp=NOON + timedelta(seconds=n), source="ingest") for n in range(3)]
    await ledger.record_many(events)
    await Adjustments(ledger).void("evt-1", reason="posted twice", by=Actor("cli"))
    reader = LedgerReader(ledger)
    assert await read_all(reader) == ["evt-0", "evt-1", "evt-2"]
    assert await read_all(reader, EventFilter(voided=False)) == ["evt-0", "evt-2"]
