"""The export's read (`LedgerReader.export_pages`) on every backend: large keyset pages on the driver's cursor, in
(timestamp, id) order through ties, one account, voided events left out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from farebox.core.events import UsageEvent, epoch_us
from farebox.ledger.adjustments import Actor, Adjustments
from farebox.ledger.base import Ledger
from farebox.ledger.exports import EXPORT_COLUMNS, ExportRow
from farebox.ledger.reader import EventFilter, LedgerReader

pytestmark = pytest.mark.anyio

EventFactory = Callable[..., UsageEvent]
NOON = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _ids(rows: list[ExportRow]) -> list[str]:
    return [row[0] for row in rows]


async def _pages(reader: LedgerReader, wanted: EventFilter, page_size: int) -> list[list[str]]:
    return [page async for page in reader.export_pages(wanted, keep=_ids, page_size=page_size)]


async def test_pages_follow_time_then_id_through_ties_and_leave_voided_events_out(
    ledger: Ledger, make_event: EventFactory
) -> None:
    tied = [make_event(id=f"tie-{n}", timestamp=NOON, source="ingest") for n in (5, 1, 4, 2, 6, 3, 0)]
    around = [
        make_event(id="before", timestamp=NOON - timedelta(microseconds=1)),
        make_event(id="after", timestamp=NOON + timedelta(microseconds=1)),
        make_event(id="other-account", timestamp=NOON, account_id="acct-2", key_id="key-9", member_id="m-9"),
    ]
    await ledger.record_many([*tied, *around])
    reader = LedgerReader(ledger)
    wanted = EventFilter(account_id="acct-1")

    assert await _pages(reader, wanted, 3) == [
        ["before", "tie-0", "tie-1"],
        ["tie-2", "tie-3", "tie-4"],
        ["tie-5", "tie-6", "after"],
        [],  # a full last page asks once more, and finds nothing
    ]
    await Adjustments(ledger).void("tie-3", reason="posted twice", by=Actor("master"))
    pages = await _pages(reader, wanted, 3)
    assert pages[1] == ["tie-2", "tie-4"], "a voided event is left out; its page still ends where it did"
    assert [event for page in pages for event in page] == [
        "before",
        *(f"tie-{n}" for n in (0, 1, 2, 4, 5, 6)),
        "after",
    ]


async def test_rows_hold_the_export_columns_and_filters_apply(ledger: Ledger, make_event: EventFactory) -> None:
    await ledger.record_many(
        [
            make_event(id="a", timestamp=NOON, seconds=Decimal("1.5"), streamed=True),
            make_event(id="b", timestamp=NOON + timedelta(hours=1), key_id="key-2", provider="anthropic"),
            make_event(id="c", timestamp=NOON + timedelta(hours=2), model="o3", canonical_model="o3"),
        ]
    )
    reader = LedgerReader(ledger)
    rows = [row async for page in reader.export_pages(EventFilter(account_id="acct-1"), keep=list) for row in page]
    first = dict(zip(EXPORT_COLUMNS, rows[0], strict=True))
    assert first["id"] == "a" and first["ts_us"] == epoch_us(NOON) and first["cost_nano"] == 4_500_000
    assert (first["seconds_micro"], bool(first["streamed"]), bool(first["estimated"])) == (1_500_000, True, False)

    async def ids(**fields: object) -> list[str]:
        wanted = EventFilter(account_id="acct-1", **fields)  # type: ignore[arg-type]  # each test's own fields
        return [event for page in await _pages(reader, wanted, 100) for event in page]

    assert await ids(key_ids=("key-2",)) == ["b"]
    assert await ids(providers=("openai",)) == ["a", "c"]
    assert await ids(models=("gpt-4o",)) == ["a", "b"], "a model matches as called or canonical"
    assert await ids(since=NOON + timedelta(hours=1), until=NOON + timedelta(hours=2)) == ["b"]
    assert await ids(key_ids=()) == []


async def test_an_export_reads_one_account(ledger: Ledger) -> None:
    reader = LedgerReader(ledger)
    with pytest.raises(ValueError, match="one account"):
        await anext(reader.export_pages(EventFilter(), keep=list))
    with pytest.raises(ValueError, match="page_size"):
        await anext(reader.export_pages(EventFilter(account_id="acct-1"), keep=list, page_size=0))
