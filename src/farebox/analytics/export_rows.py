"""The rows of a usage export file (seed 004's `POST /api/admin/analytics/export`, and `farebox export`): one
account's usage events (`raw`) or its sums per hour or day, key, provider, model and operation (`hourly`, `daily`),
the fields asked for, as CSV, a JSON array or NDJSON, streamed.

Raw rows are the usage events (`Engine.export`: a page at a time, formatted on the reader thread); hourly and daily
rows are the engine's sums, read a local day at a time. Memory holds a page or a day however long the period.
Voided events are left out and money is in exact decimal USD strings, as in every export, so the rows' costs add up
to the usage views' totals for the same days (but for what a minimum cost drops: the rows, raw or summed, that cost
less).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from operator import itemgetter
from typing import Any

import orjson

from farebox.analytics.calendar import Grain, Window, instant
from farebox.analytics.engine import Dimension, Engine, Measure, Query, Row
from farebox.analytics.export import EXPORT_FIELDS, Exporter, ExportFormat, csv_lines
from farebox.core.credentials import Principal
from farebox.core.credits import CreditRate
from farebox.core.money import NANO_PER_USD, format_usd
from farebox.ledger.export_sql import TextFormat
from farebox.ledger.exports import EXPORT_COLUMNS, ExportRow

__all__ = ["RAW_FIELDS", "SUMMED_FIELDS", "Format", "Granularity", "export_rows", "fields_of", "least_nano"]

RAW_FIELDS = (*EXPORT_FIELDS, "virtual_key_id", "virtual_key_name", "requests", "tokens", "cost", "latency", "errors")
"""A raw row's fields: an event's (`farebox.analytics.export`), and the seed's names for it: `virtual_key_id` (its
key), `virtual_key_name`, `requests` (1), `tokens` (input and output), `cost` (USD), `latency` (ms), `errors` (1 for
a failed request)."""
SUMMED_FIELDS = (
    "timestamp",
    "account_id",
    "virtual_key_id",
    "virtual_key_name",
    "provider",
    "model",
    "operation",
    "requests",
    "input_tokens",
    "output_tokens",
    "tokens",
    "cost",
    "latency",
    "errors",
)
"""An hourly or daily row's fields: the slot's first instant (UTC), the group, its sums; `latency` is the average
per request in whole ms, `errors` the failed requests."""
_COST = EXPORT_COLUMNS.index("cost_nano")
_GROUPS = (Dimension.KEY, Dimension.PROVIDER, Dimension.MODEL, Dimension.OPERATION)
_SUMS = (
    Measure.REQUESTS,
    Measure.INPUT_TOKENS,
    Measure.OUTPUT_TOKENS,
    Measure.COST_NANO,
    Measure.LATENCY_MS_SUM,
    Measure.FAILED_REQUESTS,
)


class Granularity(StrEnum):
    RAW = "raw"
    HOURLY = "hourly"
    DAILY = "daily"


class Format(StrEnum):
    CSV = "csv"
    JSON = "json"
    NDJSON = "ndjson"

    @property
    def media_type(self) -> str:
        return {
            Format.CSV: "text/csv; charset=utf-8",
            Format.JSON: "application/json",
            Format.NDJSON: "application/x-ndjson",
        }[self]


def fields_of(granularity: Granularity, asked: Sequence[str] | None) -> list[str]:
    """The columns of an export: those asked for, in their order, or every field of the granularity.

    Raises:
        ValueError: a field the granularity does not have (the message names them).
    """
    allowed = RAW_FIELDS if granularity is Granularity.RAW else SUMMED_FIELDS
    if not asked:
        return list(EXPORT_FIELDS if granularity is Granularity.RAW else SUMMED_FIELDS)
    unknown = [name for name in asked if name not in allowed]
    if unknown:
        raise ValueError(f"not a field of a {granularity.value} export: {', '.join(unknown)}")
    return list(asked)


def least_nano(min_cost: Decimal | None) -> int:
    """A minimum cost in USD as the least nano-USD a row keeps (rounded up: a row never costs less than asked)."""
    return 0 if min_cost is None else int((min_cost * NANO_PER_USD).to_integral_value(ROUND_CEILING))


def export_rows(
    engine: Engine,
    query: Query,
    *,
    granularity: Granularity,
    export_format: Format,
    fields: Sequence[str],
    names: dict[str, str],
    min_nano: int,
    viewer: Principal,
    rate: CreditRate,
) -> AsyncIterator[tuple[int, bytes]]:
    """The export of `query` (one account, its window and filters) as (rows in the chunk, bytes), in order; `names`
    gives the keys' names, `min_nano` the least cost a row keeps.

    Every field of every event as CSV or JSON is the export of `GET /v1/usage/export` (`Exporter`: its lines written
    in one f-string each, or by PostgreSQL itself). Other raw rows PostgreSQL writes too (`Engine.export_text`); on
    SQLite they are written here, a page of value tuples at a time, as are the sums.
    """
    writer = _Writer(export_format, fields)
    if granularity is not Granularity.RAW:
        grain = Grain.HOUR if granularity is Granularity.HOURLY else Grain.DAY
        return _summed(engine, query, grain, writer, _picker(fields, SUMMED_FIELDS), names, min_nano, viewer)
    if tuple(fields) == EXPORT_FIELDS and not min_nano and export_format is not Format.NDJSON:
        return Exporter(ExportFormat(export_format.value), rate=rate).export(engine, query, viewer=viewer)
    written = engine.export_text(
        query,
        viewer=viewer,
        fields=fields,
        text_format=_TEXT_FORMATS[export_format],
        credits_per_usd=rate.per_usd,
        min_nano=min_nano,
    )
    if written is not None:
        return _framed(writer, written)
    exporter = Exporter(ExportFormat.JSON, rate=rate)
    values = _raw_values(exporter, names, fields, csv_cells=export_format is Format.CSV)
    return _raw(engine, query, writer, values, min_nano, viewer)


async def _framed(writer: _Writer, rows: AsyncIterator[tuple[int, bytes]]) -> AsyncIterator[tuple[int, bytes]]:
    """Rows the database wrote, between the format's header and footer."""
    yield 0, writer.header()
    async for count, data in rows:
        if count:
            yield count, data
    yield 0, writer.footer()


class _Writer:
    """Rows of values in the fields' order as CSV (a header, LF line ends), one JSON array, or NDJSON."""

    def __init__(self, export_format: Format, fields: Sequence[str]) -> None:
        self.format = export_format
        self._fields = tuple(fields)
        self._written = False

    def header(self) -> bytes:
        if self.format is Format.CSV:
            return csv_lines([self._fields]).encode()
        return b"[" if self.format is Format.JSON else b""

    def rows(self, rows: list[tuple[Any, ...]]) -> tuple[int, bytes]:
        """Rows as bytes, and how many. For CSV a row holds no booleans (`_BOOLEANS`); None is an empty cell."""
        if not rows:
            return 0, b""
        if self.format is Format.CSV:
            return len(rows), csv_lines(rows).encode()
        fields = self._fields
        named = [dict(zip(fields, row, strict=True)) for row in rows]
        if self.format is Format.NDJSON:
            # Line by line into one buffer: each line's bytes are freed before the next is made, where a list of a
            # page's lines held thousands of them at once (resident memory rose by ~90 MB over a million rows).
            lines = bytearray()
            for row in named:
                lines += orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
            return len(rows), bytes(lines)
        body = orjson.dumps(named)[1:-1]  # the objects without the list's brackets: the array spans pages
        separated = b"," + body if self._written else body
        self._written = True
        return len(rows), separated

    def footer(self) -> bytes:
        return b"]" if self.format is Format.JSON else b""


_TEXT_FORMATS: dict[Format, TextFormat] = {Format.CSV: "csv", Format.JSON: "json", Format.NDJSON: "ndjson"}
_BOOLEANS = {True: "true", False: "false"}
"""Booleans in a CSV cell, as JSON writes them."""
_STREAMED = EXPORT_FIELDS.index("streamed")
assert EXPORT_FIELDS[_STREAMED:] == ("streamed", "estimated")


def _picker(fields: Sequence[str], among: Sequence[str]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A function picking `fields` out of a tuple of `among`'s values, in the fields' order (in C)."""
    positions = [among.index(name) for name in fields]
    if len(positions) == 1:
        (only,) = positions
        return lambda values: (values[only],)
    return itemgetter(*positions)


def _raw_values(
    exporter: Exporter, names: dict[str, str], fields: Sequence[str], *, csv_cells: bool
) -> Callable[[ExportRow], tuple[Any, ...]]:
    """An event's values of `fields`: its exported ones (`Exporter.values`) and the seed's names for them."""
    pick = _picker(fields, RAW_FIELDS)
    key_at, status_at = EXPORT_FIELDS.index("key_id"), EXPORT_FIELDS.index("status")
    input_at, output_at = EXPORT_FIELDS.index("input_tokens"), EXPORT_FIELDS.index("output_tokens")
    cost_at, latency_at = EXPORT_FIELDS.index("cost_usd"), EXPORT_FIELDS.index("latency_ms")

    def values(row: ExportRow) -> tuple[Any, ...]:
        found = exporter.values(row)
        if csv_cells:
            found = (*found[:_STREAMED], _BOOLEANS[found[_STREAMED]], _BOOLEANS[found[_STREAMED + 1]])
        key_id = found[key_at]
        return pick(
            (
                *found,
                key_id,
                None if key_id is None else names.get(key_id),
                1,
                found[input_at] + found[output_at],
                found[cost_at],
                found[latency_at],
                1 if found[status_at] == "error" else 0,
            )
        )

    return values


def _summed_values(row: Row, account_id: str, window: Window, names: dict[str, str]) -> tuple[Any, ...]:
    """A sum's values of every field of `SUMMED_FIELDS`, in their order."""
    assert row.at is not None
    key_id, provider, model, operation = row.dimensions
    requests, input_tokens, output_tokens, cost_nano, latency_ms, failed = row.measures
    return (
        instant(row.at, window),
        account_id,
        key_id or None,
        names.get(key_id) if key_id else None,
        provider,
        model,
        operation,
        requests,
        input_tokens,
        output_tokens,
        input_tokens + output_tokens,
        format_usd(cost_nano),
        round(Decimal(latency_ms) / requests),
        failed,
    )


def _order(row: Row) -> tuple[Any, ...]:
    """Rows of one query by slot (all dates or all aware datetimes, which compare as instants), then group."""
    return (row.at, row.dimensions)


async def _summed(
    found: Engine,
    query: Query,
    grain: Grain,
    writer: _Writer,
    pick: Callable[[tuple[Any, ...]], tuple[Any, ...]],
    names: dict[str, str],
    min_nano: int,
    viewer: Principal,
) -> AsyncIterator[tuple[int, bytes]]:
    """The window's sums a local day at a time, each day's rows by slot, then key, provider, model and operation."""
    account_id = query.account_id
    assert account_id is not None
    yield 0, writer.header()
    window = query.window
    day = window.first
    while day <= window.last:
        one = Window(day, day, window.tz)
        daily = Query(
            one,
            _SUMS,
            group_by=_GROUPS,
            grain=grain,
            filters=query.filters,
            account_id=account_id,
            local_days=query.local_days,
        )
        rows = await found.run(daily, viewer=viewer)
        kept = sorted((row for row in rows if row.measures[0] and row.measures[3] >= min_nano), key=_order)
        count, data = writer.rows([pick(_summed_values(row, account_id, one, names)) for row in kept])
        if count:
            yield count, data
        day += timedelta(days=1)
    yield 0, writer.footer()


async def _raw(
    found: Engine,
    query: Query,
    writer: _Writer,
    values: Callable[[ExportRow], tuple[Any, ...]],
    min_nano: int,
    viewer: Principal,
) -> AsyncIterator[tuple[int, bytes]]:
    """Every event of the query, a page at a time, formatted on the reader thread."""

    def page(rows: list[ExportRow]) -> tuple[int, bytes]:
        """One page of events as bytes (on the reader thread, one page after another)."""
        return writer.rows([values(row) for row in rows if row[_COST] >= min_nano])

    yield 0, writer.header()
    async for count, data in found.export(query, viewer=viewer, keep=page):
        if count:
            yield count, data
    yield 0, writer.footer()
