"""The read side of the ledger: usage events and their quarter-hour rollups as typed, read-only rows.

`LedgerReader` only reads, on the ledger's reader pool, never through the writer. Events come in
(timestamp, id) order with keyset pagination: `events(..., after=cursor)` continues after a row as
exactly as after any other, ties on the timestamp included, whatever was recorded in between.
`export_pages` walks any number of one account's events a page at a time, so its memory does not grow with
them. Each page is its own read: an event recorded while an export runs is in it when it sorts after the page
being read, not otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Column, ColumnElement, Connection, RowMapping, and_, or_, select

from farebox.core.events import epoch_us, from_epoch_us
from farebox.ledger.aggregates import Aggregate, AggregateRow, aggregate
from farebox.ledger.base import Ledger
from farebox.ledger.export_sql import TextFormat, copy_rows, export_query
from farebox.ledger.exports import ExportQuery, ExportRow
from farebox.ledger.latency import LatencyGroup, LatencyQuery, read_latencies
from farebox.ledger.prompt_prefixes import PrefixFilter, PrefixRow, repeated_prefixes
from farebox.ledger.schema import (
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
    adjusted_events,
    usage_events,
    usage_rollups,
    voided,
)

__all__ = ["EventCursor", "EventFilter", "EventRow", "LedgerReader", "RollupFilter", "RollupRow", "event_row"]

_events = usage_events.c
_rollups = usage_rollups.c
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EventCursor:
    """Where a page of events ended: the last row's timestamp and id. The next page starts after it."""

    timestamp: datetime
    id: str


@dataclass(frozen=True, slots=True)
class EventRow:
    """A usage event as the ledger recorded it: every column, money in nano-USD, times as aware UTC datetimes."""

    id: str
    timestamp: datetime
    account_id: str
    key_id: str | None
    member_id: str | None
    agent_id: str | None
    app: str | None
    tags: tuple[str, ...]
    axis: str
    provider: str
    model: str
    canonical_model: str
    operation: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    characters: int
    seconds_micro: int
    """Seconds (voice, compute) in millionths."""
    quantity_micro: int
    """Units of a per-unit price, in millionths."""
    cost_nano: int
    unit_prices: dict[str, str]
    """The prices it was priced at (decimal USD strings), by unit."""
    priced: bool
    status: str
    http_status: int | None
    error_type: str | None
    latency_ms: int | None
    ttft_ms: int | None
    streamed: bool
    estimated: bool
    source: str
    metadata: dict[str, Any]
    recorded_at: datetime
    """When the ledger committed it (the usage feed's order); `timestamp` is when the usage happened."""

    @property
    def cursor(self) -> EventCursor:
        """The cursor of this row, to read the events after it."""
        return EventCursor(self.timestamp, self.id)


@dataclass(frozen=True, slots=True)
class RollupRow:
    """One bucket (a quarter hour of UTC) of usage summed over one combination of dimensions. A dimension with
    no value is ''."""

    start: datetime
    """When the bucket starts; it lasts `farebox.ledger.schema.ROLLUP_BUCKET_SECONDS`."""
    account_id: str
    key_id: str
    member_id: str
    agent_id: str
    app: str
    axis: str
    provider: str
    model: str
    canonical_model: str
    operation: str
    status: str
    error_class: str
    """The class of the bucket's errors (`farebox.core.error_classes`); '' for requests that did not fail."""
    requests: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    characters: int
    seconds_micro: int
    quantity_micro: int
    cost_nano: int
    unpriced_requests: int
    estimated_requests: int
    latency_ms_sum: int


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events to read. Every field given must match; None matches anything (an empty tuple, nothing).

    `models` matches the model as called or its canonical model. `since` and `until` bound the event's
    timestamp (aware datetimes): `since` included, `until` not.
    """

    account_id: str | None = None
    key_ids: tuple[str, ...] | None = None
    member_ids: tuple[str, ...] | None = None
    agent_ids: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None
    providers: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    voided: bool = True
    """Whether voided events are read too (the usage views leave them out, as the rollups do)."""


@dataclass(frozen=True, slots=True)
class RollupFilter:
    """Which rollups to read; the fields match as `EventFilter`'s do. `since` and `until` bound the bucket: a
    bucket is read when it starts at or after `since` and before `until`."""

    account_id: str | None = None
    key_ids: tuple[str, ...] | None = None
    member_ids: tuple[str, ...] | None = None
    agent_ids: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None
    providers: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    voided: bool = True
    """Whether voided events are read too (the usage views leave them out, as the rollups do)."""


def event_row(row: RowMapping) -> EventRow:
    """The typed row of a `usage_events` row."""
    return EventRow(
        id=row["id"],
        timestamp=from_epoch_us(int(row["ts_us"])),
        account_id=row["account_id"],
        key_id=row["key_id"],
        member_id=row["member_id"],
        agent_id=row["agent_id"],
        app=row["app"],
        tags=tuple(row["tags"] or ()),
        axis=row["axis"],
        provider=row["provider"],
        model=row["model"],
        canonical_model=row["canonical_model"],
        operation=row["operation"],
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        cached_input_tokens=int(row["cached_input_tokens"]),
        cache_write_tokens=int(row["cache_write_tokens"]),
        reasoning_tokens=int(row["reasoning_tokens"]),
        characters=int(row["characters"]),
        seconds_micro=int(row["seconds_micro"]),
        quantity_micro=int(row["quantity_micro"]),
        cost_nano=int(row["cost_nano"]),
        unit_prices=dict(row["unit_prices"] or {}),
        priced=bool(row["priced"]),
        status=row["status"],
        http_status=row["http_status"],
        error_type=row["error_type"],
        latency_ms=row["latency_ms"],
        ttft_ms=row["ttft_ms"],
        streamed=bool(row["streamed"]),
        estimated=bool(row["estimated"]),
        source=row["source"],
        metadata=dict(row["metadata"] or {}),
        recorded_at=from_epoch_us(int(row["recorded_at_us"])),
    )


def _rollup_row(row: RowMapping) -> RollupRow:
    values: dict[str, Any] = {name: row[name] for name in ROLLUP_DIMENSIONS}
    values.update((name, int(row[name])) for name in ROLLUP_MEASURES)
    return RollupRow(start=datetime.fromtimestamp(int(row["bucket"]), UTC), **values)


def _matching(
    wanted: EventFilter | RollupFilter,
    *,
    account_id: Column[Any],
    key_id: Column[Any],
    member_id: Column[Any],
    agent_id: Column[Any],
    models: Sequence[Column[Any]],
    provider: Column[Any],
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if wanted.account_id is not None:
        where.append(account_id == wanted.account_id)
    if wanted.key_ids is not None:
        where.append(key_id.in_(wanted.key_ids))
    if wanted.member_ids is not None:
        where.append(member_id.in_(wanted.member_ids))
    if wanted.agent_ids is not None:
        where.append(agent_id.in_(wanted.agent_ids))
    if wanted.models is not None:
        where.append(or_(*(column.in_(wanted.models) for column in models)))
    if wanted.providers is not None:
        where.append(provider.in_(wanted.providers))
    return where


class LedgerReader:
    """Reads usage events and their rollups from a started ledger; never writes."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def event(self, event_id: str) -> EventRow | None:
        """The event with this id, None when the ledger has none."""
        query = select(*adjusted_events()).where(_events.id == event_id)

        def fetch(connection: Connection) -> EventRow | None:
            row = connection.execute(query).mappings().first()
            return None if row is None else event_row(row)

        return await self._ledger._read(fetch)

    async def events(
        self, wanted: EventFilter = EventFilter(), *, limit: int = 100, after: EventCursor | None = None
    ) -> list[EventRow]:
        """Up to `limit` events matching `wanted`, in (timestamp, id) order, after the `after` cursor if given.

        Raises:
            ValueError: `limit` is not positive.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        where = _matching(
            wanted,
            account_id=_events.account_id,
            key_id=_events.key_id,
            member_id=_events.member_id,
            agent_id=_events.agent_id,
            models=(_events.model, _events.canonical_model),
            provider=_events.provider,
        )
        if wanted.since is not None:
            where.append(_events.ts_us >= epoch_us(wanted.since))
        if wanted.until is not None:
            where.append(_events.ts_us < epoch_us(wanted.until))
        if not wanted.voided:
            where.append(~voided())
        if after is not None:
            after_us = epoch_us(after.timestamp)
            where.append(or_(_events.ts_us > after_us, and_(_events.ts_us == after_us, _events.id > after.id)))
        query = select(*adjusted_events()).where(*where).order_by(_events.ts_us, _events.id).limit(limit)
        return await self._ledger._read(
            lambda connection: [event_row(row) for row in connection.execute(query).mappings()]
        )

    async def export_pages(
        self, wanted: EventFilter, *, keep: Callable[[list[ExportRow]], T], page_size: int = 5_000
    ) -> AsyncIterator[T]:
        """Every event of one account matching `wanted`, voided ones left out, in (timestamp, id) order: read
        `page_size` at a time on the driver's cursor (`farebox.ledger.exports`), each page handed to `keep` on
        the reader thread (rows in `EXPORT_COLUMNS` order), and what `keep` made of it yielded.

        `keep` runs off the event loop, so it is the place to turn rows into bytes. Memory holds one page.

        Raises:
            ValueError: `wanted` names no account, or `page_size` is not positive.
        """
        query = ExportQuery(wanted, page_size=page_size)
        after: tuple[int, str] | None = None
        while True:
            page = await self._ledger._read(partial(query.page, after=after, keep=keep))
            yield page.result
            if page.read < page_size:
                return
            after = page.after

    def export_text(
        self,
        wanted: EventFilter,
        *,
        fields: Sequence[str],
        text_format: TextFormat,
        credits_per_usd: int,
        min_nano: int = 0,
    ) -> AsyncIterator[tuple[int, bytes]] | None:
        """An export's rows (no header, no array brackets) as the database writes them, in (rows, bytes) chunks: the
        events `export_pages` reads costing at least `min_nano`, their `fields` as CSV, JSON array members or NDJSON
        lines, formatted as `farebox.analytics.export` formats them (`farebox.ledger.export_sql`).

        None where the database cannot write them itself (SQLite): the caller formats `export_pages` instead.

        Raises:
            ValueError: `wanted` names no account, or a field the database cannot write.
        """
        if self._ledger.dialect != "postgresql":
            return None
        query = export_query(
            wanted, fields=fields, text_format=text_format, credits_per_usd=credits_per_usd, min_nano=min_nano
        )
        return self._ledger._read_stream(partial(copy_rows, query=query, text_format=text_format))

    async def aggregate(self, wanted: Aggregate) -> list[AggregateRow]:
        """The rollups summed as `wanted` says (`farebox.ledger.aggregates`), in one query."""
        return await self._ledger._read(lambda connection: aggregate(connection, wanted))

    async def repeated_prefixes(self, wanted: PrefixFilter) -> list[PrefixRow]:
        """The counts of the prompt prefixes sent more than once on a day (`farebox.ledger.prompt_prefixes`)."""
        return await self._ledger._read(lambda connection: repeated_prefixes(connection, wanted))

    async def latencies(self, wanted: LatencyQuery) -> list[LatencyGroup]:
        """Latency sketches summed as `wanted` says (`farebox.ledger.latency`): every writer's, per group."""
        return await self._ledger._read(lambda connection: read_latencies(connection, wanted))

    async def rollups(self, wanted: RollupFilter = RollupFilter()) -> list[RollupRow]:
        """The rollups matching `wanted`, by bucket, then by their dimensions."""
        where = _matching(
            wanted,
            account_id=_rollups.account_id,
            key_id=_rollups.key_id,
            member_id=_rollups.member_id,
            agent_id=_rollups.agent_id,
            models=(_rollups.model, _rollups.canonical_model),
            provider=_rollups.provider,
        )
        if wanted.since is not None:
            where.append(_rollups.bucket >= int(wanted.since.timestamp()))
        if wanted.until is not None:
            where.append(_rollups.bucket < int(wanted.until.timestamp()))
        order = [_rollups.bucket, *(_rollups[name] for name in ROLLUP_DIMENSIONS)]
        query = select(usage_rollups).where(*where).order_by(*order)
        return await self._ledger._read(
            lambda connection: [_rollup_row(row) for row in connection.execute(query).mappings()]
        )
