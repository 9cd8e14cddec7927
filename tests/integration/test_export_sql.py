"""An export is the same bytes whether PostgreSQL writes it (`COPY … TO STDOUT`) or Python formats each row (as on
SQLite): CSV, a JSON array and NDJSON; every field or a chosen few (the seed's names among them) and a minimum cost;
the same decimals, times, quoting, escapes and line ends, voided events left out and reprices added."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Generator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection

from farebox.analytics.calendar import Window
from farebox.analytics.engine import Engine, Measure, Query
from farebox.analytics.export import EXPORT_FIELDS, Exporter, ExportFormat
from farebox.analytics.export_rows import Format, Granularity, export_rows
from farebox.core.credentials import Principal, PrincipalKind
from farebox.core.credits import CreditRate
from farebox.core.events import Status, UsageEvent, epoch_us
from farebox.ledger.adjustments import Actor, Adjustments
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.reader import EventFilter, LedgerReader
from farebox.ledger.schema import ADJUSTED_MEASURES, usage_adjustments

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


async def _recorded(ledger: Ledger, make_event: EventFactory) -> list[UsageEvent]:
    """The events, two ingested ones voided and a few repriced (a reprice of +7 nano-USD, one of -1)."""
    events = _events(make_event, 400, seed=20261205)
    await ledger.record_many(events)
    voided = [event.id for event in events if event.source == "ingest"][:2]
    for event_id in voided:
        await Adjustments(ledger).void(event_id, reason="posted twice", by=Actor("master"))
    with ledger.engines.writer.begin() as connection:
        for n, event in enumerate(events[10:16]):
            connection.execute(
                usage_adjustments.insert().values(
                    id=f"adj-{n}",
                    kind="reprice",
                    event_id=event.id,
                    account_id=event.account_id,
                    key_id=event.key_id,
                    member_id=event.member_id,
                    event_ts_us=epoch_us(event.timestamp),
                    **dict.fromkeys(ADJUSTED_MEASURES, 0) | {"cost_nano": 7 if n % 2 else -1},
                    reason="test",
                    actor_kind="cli",
                    created_at_us=0,
                )
            )
    return [event for event in events if event.id not in voided]


async def test_postgresql_writes_the_bytes_python_formats(ledger: Ledger, make_event: EventFactory) -> None:
    kept = await _recorded(ledger, make_event)
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

    written = reader.export_text(wanted, fields=EXPORT_FIELDS, text_format="csv", credits_per_usd=RATE.per_usd)
    if ledger.dialect == "sqlite":
        assert written is None, "SQLite cannot write CSV itself: the export formats its rows"
        return
    assert written is not None
    copied_chunks = [chunk async for chunk in written]
    assert b"".join(data for _count, data in copied_chunks) == formatted
    rows = sum(count for count, _data in copied_chunks)
    assert rows == len(kept), "rows counted, whatever line breaks quoted fields hold"

    only = EventFilter(account_id="acct-1", voided=False, providers=("a,b",), since=START + timedelta(days=1))
    copied = reader.export_text(only, fields=EXPORT_FIELDS, text_format="csv", credits_per_usd=RATE.per_usd)
    assert copied is not None
    assert b"".join([data async for _count, data in copied]) == await _formatted(reader, only)


SEED_FIELDS = ["timestamp", "virtual_key_id", "virtual_key_name", "provider", "model", "requests", "tokens", "cost"]
SEED_FIELDS += ["latency", "errors", "streamed"]


@pytest.mark.parametrize("export_format", list(Format))
@pytest.mark.parametrize(
    ("fields", "min_nano"),
    [(list(EXPORT_FIELDS), 0), (list(EXPORT_FIELDS), 10_000_000), (SEED_FIELDS, 0), (["id", "cost_usd"], 7)],
)
async def test_every_format_and_field_is_written_by_postgresql_as_python_writes_it(
    ledger: Ledger,
    make_event: EventFactory,
    monkeypatch: pytest.MonkeyPatch,
    export_format: Format,
    fields: list[str],
    min_nano: int,
) -> None:
    if ledger.dialect != "postgresql":
        pytest.skip("only PostgreSQL writes an export itself")
    kept = await _recorded(ledger, make_event)
    directory = Directory(ledger)
    account = await directory.create_account(name="Acme")
    key, _secret = await directory.create_key(account.id, name='ci "bot", é')
    await ledger.record_many([make_event(account_id=account.id, key_id=key.id, timestamp=START) for _ in range(3)])
    await ledger.record_many([event.__class__(**{**_fields_of(event), "account_id": account.id}) for event in kept])
    names = {key.id: key.name}
    window = Window(date(1969, 12, 31), date(1970, 1, 3), ZoneInfo("UTC"))
    query = Query(window, (Measure.REQUESTS,), account_id=account.id)
    engine = Engine(LedgerReader(ledger))
    master = Principal(kind=PrincipalKind.MASTER)

    async def written() -> bytes:
        chunks = export_rows(
            engine,
            query,
            granularity=Granularity.RAW,
            export_format=export_format,
            fields=fields,
            names=names,
            min_nano=min_nano,
            viewer=master,
            rate=RATE,
        )
        return b"".join([data async for _count, data in chunks])

    by_postgresql = await written()
    monkeypatch.setattr(Engine, "export_text", lambda *_args, **_kwargs: None)
    by_python = await written()
    assert by_postgresql == by_python
    if export_format is Format.JSON:
        parsed = json.loads(by_postgresql)
        assert len(parsed) > 100 and list(parsed[0]) == fields


def _fields_of(event: UsageEvent) -> dict[str, Any]:
    return {field.name: getattr(event, field.name) for field in dataclasses.fields(event)} | {"id": event.id + "-b"}


async def test_a_copy_stopped_early_frees_its_connection(ledger: Ledger, make_event: EventFactory) -> None:
    if ledger.dialect != "postgresql":
        pytest.skip("only PostgreSQL writes an export's CSV itself")
    events = [make_event(timestamp=START + timedelta(seconds=n)) for n in range(6_000)]
    for at in range(0, len(events), 1_000):
        await ledger.record_many(events[at : at + 1_000])
    reader = LedgerReader(ledger)
    wanted = EventFilter(account_id="acct-1", voided=False)
    for _ in range(8):  # more than the reader pool holds connections, were any left behind
        written = reader.export_text(wanted, fields=EXPORT_FIELDS, text_format="csv", credits_per_usd=RATE.per_usd)
        assert written is not None
        count, _data = await anext(written)
        assert 0 < count < len(events), "a chunk is a part of the export"
        await written.aclose()  # type: ignore[attr-defined]  # an async generator's
    whole = reader.export_text(wanted, fields=EXPORT_FIELDS, text_format="csv", credits_per_usd=RATE.per_usd)
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
