"""An export's CSV is the same bytes whether PostgreSQL writes it (`COPY … TO STDOUT`) or Python formats each row
(`Exporter`, as on SQLite): the same fields, decimals, times, quoting and line ends, voided events left out."""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection

from farebox.analytics.calendar import Window
from farebox.analytics.engine import Engine, Measure, Query
from farebox.analytics.export import EXPORT_FIELDS, Exporter, ExportFormat
from farebox.core.credentials import Principal, PrincipalKind
from farebox.core.credits import CreditRate
from farebox.core.events import Status, UsageEvent
from farebox.ledger.adjustments import Actor, Adjustments
from farebox.ledger.base import Ledger
from farebox.ledger.reader import EventFilter, LedgerReader

pytestmark = pytest.mark.anyio

EventFactory = Callable[..., UsageEvent]
START = datetime(1969, 12, 31, 23, 0, tzinfo=UTC)
ALPHABET = 'ab ,"\r\n\té€😀\\.'
COSTS = [0, 1, 7, 10_000_000, 500_000_000, 1_000_000_000, 123_456_789, 4_500_000, 987_654_321_987_654, 98_765_432_101]
RATE = CreditRate(20_000)


def _name(rng: random.Random) -> str | None:
    choice = rng.random()
    if choice < 0.15:
        return None
    if choice < 0.25:
        return ""
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(1, 8)))


def _events(make_event: EventFactory, n: int, *, seed: int) -> list[UsageEvent]:
    """`n` events with every kind of field an export writes: names that need quoting, empty and missing values,
    costs from a nano-USD to near a million USD, times with and without microseconds on both sides of 1970."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        micros = rng.choice([0, 1, 250_000, rng.randrange(1_000_000)])
        suffix = rng.choice(["", ",x", '"q"', "é"])
        events.append(
            make_event(
                id=f"e{i:05d}{suffix}",
                timestamp=START + timedelta(seconds=rng.randrange(0, 3 * 86_400), microseconds=micros),
                key_id=_name(rng),
                member_id=_name(rng),
                agent_id=_name(rng),
                app=_name(rng),
                provider=rng.choice(["openai", "anthropic", "a,b"]),
                model=rng.choice(["gpt-4o", 'say "hi"', "line\nbreak", "cr\rhere"]),
                cost_nano=rng.choice(COSTS),
                seconds=Decimal(rng.choice([0, 1, 3_600_500_000, 7])) / 1_000_000,
                quantity=Decimal(rng.choice([0, 2_000_000, 1])) / 1_000_000,
                status=rng.choice([Status.OK, Status.ERROR]),
                http_status=rng.choice([None, 200, 429]),
                latency_ms=rng.choice([None, 0, 850]),
                ttft_ms=rng.choice([None, 120]),
                streamed=rng.random() < 0.5,
                estimated=rng.random() < 0.3,
                cached_input_tokens=rng.choice([0, 10**12]),
                source=rng.choice(["proxy", "ingest"]),
            )
        )
    return events


async def _formatted(reader: LedgerReader, wanted: EventFilter) -> bytes:
    """The export's rows as Python formats them, a page at a time."""
    exporter = Exporter(ExportFormat.CSV, rate=RATE)
    pages = reader.export_pages(wanted, keep=exporter._page, page_size=97)
    return b"".join([data async for _count, data in pages])


async def test_postgresql_writes_the_bytes_python_formats(ledger: Ledger, make_event: EventFactory) -> None:
    events = _events(make_event, 400, seed=20261205)
    await ledger.record_many(events)
    voided = [event.id for event in events if event.source == "ingest"][:2]
    for event_id in voided:
        await Adjustments(ledger).void(event_id, reason="posted twice", by=Actor("master"))
    reader = LedgerReader(ledger)
    wanted = EventFilter(account_id="acct-1", voided=False)
    formatted = await _formatted(reader, wanted)
    assert formatted.count(b"\r\n") < formatted.count(b"\n"), "lines end in LF; a CR is only ever inside quotes"

    window = Window(date(1969, 12, 31), date(1970, 1, 3), ZoneInfo("UTC"))
    query = Query(window, (Measure.REQUESTS,), account_id="acct-1")
    exporter = Exporter(ExportFormat.CSV, rate=RATE)
    chunks = exporter.export(Engine(reader), query, viewer=Principal(kind=PrincipalKind.MASTER))
    assert (
        b"".join([data async for _count, data in chunks])
        == b",".join(f.encode() for f in EXPORT_FIELDS) + b"\n" + formatted
    )

    written = reader.export_csv(wanted, credits_per_usd=RATE.per_usd)
    if ledger.dialect == "sqlite":
        assert written is None, "SQLite cannot write CSV itself: the export formats its rows"
        return
    assert written is not None
    copied_chunks = [chunk async for chunk in written]
    assert b"".join(data for _count, data in copied_chunks) == formatted
    rows = sum(count for count, _data in copied_chunks)
    assert rows == len(events) - len(voided), "rows counted, whatever line breaks quoted fields hold"

    only = EventFilter(account_id="acct-1", voided=False, providers=("a,b",), since=START + timedelta(days=1))
    copied = reader.export_csv(only, credits_per_usd=RATE.per_usd)
    assert copied is not None
    assert b"".join([data async for _count, data in copied]) == await _formatted(reader, only)


async def test_a_copy_stopped_early_frees_its_connection(ledger: Ledger, make_event: EventFactory) -> None:
    if ledger.dialect != "postgresql":
        pytest.skip("only PostgreSQL writes an export's CSV itself")
    events = [make_event(timestamp=START + timedelta(seconds=n)) for n in range(6_000)]
    for at in range(0, len(events), 1_000):
        await ledger.record_many(events[at : at + 1_000])
    reader = LedgerReader(ledger)
    wanted = EventFilter(account_id="acct-1", voided=False)
    for _ in range(8):  # more than the reader pool holds connections, were any left behind
        written = reader.export_csv(wanted, credits_per_usd=RATE.per_usd)
        assert written is not None
        count, _data = await anext(written)
        assert 0 < count < len(events), "a chunk is a part of the export"
        await written.aclose()  # type: ignore[attr-defined]  # an async generator's
    whole = reader.export_csv(wanted, credits_per_usd=RATE.per_usd)
    assert whole is not None
    assert sum([count async for count, _data in whole]) == len(events)


async def test_a_failing_read_reaches_the_consumer_after_what_it_read(ledger: Ledger) -> None:
    def produce(_connection: Connection) -> Generator[int, None, None]:
        yield 1
        yield 2
        raise RuntimeError("the read broke")

    seen = []
    with pytest.raises(RuntimeError, match="the read broke"):
        async for item in ledger._read_stream(produce):
            seen.append(item)
    assert seen == [1, 2]
