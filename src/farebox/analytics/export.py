"""Usage exports: one account's raw usage events of a range, as CSV or a JSON array, produced a page at a time.

The same bytes for `GET /v1/usage/export` and `farebox export`. Each page of events is formatted where it was
read (on the reader thread, `Engine.export`), so the event loop only passes bytes on, and memory holds one page
whatever the range. On PostgreSQL the database writes the export itself, in the same bytes (`Engine.export_text`,
`farebox.ledger.export_sql`); CSV lines end in LF either way.

Voided events are left out, as every usage view leaves them out, so the costs of an export add up to the views'
totals for the same range. Money is exact: `cost_usd` in decimal USD, `credits_used` in
the operator's credit unit (`credits_per_usd`), both decimal strings.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson

from farebox.analytics.engine import Engine, Query
from farebox.core.credentials import Principal
from farebox.core.credits import CreditRate
from farebox.core.events import format_micro
from farebox.core.money import format_usd
from farebox.ledger.export_sql import TextFormat
from farebox.ledger.exports import ExportRow

__all__ = ["EXPORT_FIELDS", "ExportFormat", "Exporter", "csv_lines"]

EXPORT_FIELDS = (
    "id",
    "timestamp",
    "account_id",
    "key_id",
    "member_id",
    "agent_id",
    "app",
    "axis",
    "provider",
    "model",
    "canonical_model",
    "operation",
    "status",
    "http_status",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "characters",
    "seconds",
    "quantity",
    "cost_usd",
    "credits_used",
    "latency_ms",
    "ttft_ms",
    "streamed",
    "estimated",
)
"""An exported event's fields: the CSV header, the JSON objects' keys, in this order."""

_EPOCH = datetime(1970, 1, 1)
_MINUTE_US = 60_000_000
_COMMAS = len(EXPORT_FIELDS) - 1


def csv_lines(rows: Sequence[Sequence[Any]]) -> str:
    """Rows by the `csv` module, each ended by LF. Written with CRLF and the CR dropped: the module quotes a field
    holding a CR only when CR is in the line terminator, and PostgreSQL quotes it (`farebox.ledger.export_sql`)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerows(rows)
    written = text.getvalue()
    if written.count("\r") == len(rows):  # the common case: no field holds a CR, every CR ends a line
        return written.replace("\r\n", "\n")
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    for row in rows:
        writer.writerow(row)
        text.seek(text.tell() - 2)
        text.write("\n")
        text.truncate()
    return text.getvalue()


class ExportFormat(StrEnum):
    """What an export is written as."""

    CSV = "csv"
    JSON = "json"

    @property
    def media_type(self) -> str:
        return "text/csv; charset=utf-8" if self is ExportFormat.CSV else "application/json"


class Exporter:
    """Turns pages of exported events into the bytes of one CSV file or JSON array.

    `export` gives the chunks in order: the CSV header (or the array's `[`), each page's rows, and the JSON
    array's closing `]`. One exporter makes one export.
    """

    def __init__(self, export_format: ExportFormat, *, rate: CreditRate) -> None:
        self.format = export_format
        self._rate = rate
        self._rows = 0
        self._minute = -1
        self._minute_text = ""

    def export(
        self, engine: Engine, query: Query, *, viewer: Principal, page_size: int = 5_000
    ) -> AsyncIterator[tuple[int, bytes]]:
        """The export of `query` as `viewer` may see it: (events in the chunk, bytes) in order.

        Access is checked now (`Engine.export`), so a refusal comes before the first byte.

        Raises:
            NotFound, PermissionDenied: as `Engine.run`.
        """
        text_format: TextFormat = "csv" if self.format is ExportFormat.CSV else "json"
        written = engine.export_text(
            query, viewer=viewer, fields=EXPORT_FIELDS, text_format=text_format, credits_per_usd=self._rate.per_usd
        )
        if written is not None:
            return self._framed(written)
        return self._framed(engine.export(query, viewer=viewer, keep=self._page, page_size=page_size))

    async def _framed(self, pages: AsyncIterator[tuple[int, bytes]]) -> AsyncIterator[tuple[int, bytes]]:
        if self.format is ExportFormat.CSV:
            yield 0, csv_lines([EXPORT_FIELDS]).encode()
        else:
            yield 0, b"["
        async for count, data in pages:
            if count:
                yield count, data
        if self.format is ExportFormat.JSON:
            yield 0, b"]"

    def _page(self, rows: list[ExportRow]) -> tuple[int, bytes]:
        """One page's events as bytes (called on the reader thread, one page after another)."""
        if not rows:
            return 0, b""
        if self.format is ExportFormat.CSV:
            return len(rows), "".join([self._csv_line(row) for row in rows]).encode()
        values = [dict(zip(EXPORT_FIELDS, self.values(row), strict=True)) for row in rows]
        body = orjson.dumps(values)[1:-1]  # the objects without the list's brackets: the array spans pages
        separated = body if self._rows == 0 else b"," + body
        self._rows += len(rows)
        return len(rows), separated

    def _csv_line(self, row: ExportRow) -> str:
        """One event's CSV line, written in one f-string: several times faster than the `csv` module. A line with a
        field that needs quoting (a comma, quote or line break in a name) is written by the `csv` module instead."""
        (
            event_id,
            ts_us,
            account_id,
            key_id,
            member_id,
            agent_id,
            app,
            axis,
            provider,
            model,
            canonical_model,
            operation,
            status,
            http_status,
            input_tokens,
            output_tokens,
            cached_input_tokens,
            cache_write_tokens,
            reasoning_tokens,
            characters,
            seconds_micro,
            quantity_micro,
            cost_nano,
            latency_ms,
            ttft_ms,
            streamed,
            estimated,
        ) = row
        line = (
            f"{event_id},{self._time(ts_us)},{account_id},{'' if key_id is None else key_id},"
            f"{'' if member_id is None else member_id},{'' if agent_id is None else agent_id},"
            f"{'' if app is None else app},{axis},{provider},{model},{canonical_model},{operation},{status},"
            f"{'' if http_status is None else http_status},{input_tokens},{output_tokens},{cached_input_tokens},"
            f"{cache_write_tokens},{reasoning_tokens},{characters},"
            f"{format_micro(seconds_micro) if seconds_micro else '0'},"
            f"{format_micro(quantity_micro) if quantity_micro else '0'},"
            f"{format_usd(cost_nano)},{self._rate.format(cost_nano)},{'' if latency_ms is None else latency_ms},"
            f"{'' if ttft_ms is None else ttft_ms},{'true' if streamed else 'false'},{'true' if estimated else 'false'}"
        )
        if line.count(",") == _COMMAS and '"' not in line and "\n" not in line and "\r" not in line:
            return line + "\n"
        values = ["" if value is None else value for value in self.values(row)]
        return csv_lines([[*values[:-2], "true" if streamed else "false", "true" if estimated else "false"]])

    def values(self, row: ExportRow) -> tuple[Any, ...]:
        """An event's exported values, in `EXPORT_FIELDS` order, as JSON has them."""
        (
            event_id,
            ts_us,
            account_id,
            key_id,
            member_id,
            agent_id,
            app,
            axis,
            provider,
            model,
            canonical_model,
            operation,
            status,
            http_status,
            input_tokens,
            output_tokens,
            cached_input_tokens,
            cache_write_tokens,
            reasoning_tokens,
            characters,
            seconds_micro,
            quantity_micro,
            cost_nano,
            latency_ms,
            ttft_ms,
            streamed,
            estimated,
        ) = row
        return (
            event_id,
            self._time(ts_us),
            account_id,
            key_id,
            member_id,
            agent_id,
            app,
            axis,
            provider,
            model,
            canonical_model,
            operation,
            status,
            http_status,
            input_tokens,
            output_tokens,
            cached_input_tokens,
            cache_write_tokens,
            reasoning_tokens,
            characters,
            format_micro(seconds_micro) if seconds_micro else "0",
            format_micro(quantity_micro) if quantity_micro else "0",
            format_usd(cost_nano),
            self._rate.format(cost_nano),
            latency_ms,
            ttft_ms,
            bool(streamed),
            bool(estimated),
        )

    def _time(self, ts_us: int) -> str:
        """ISO-8601 in UTC, as `datetime.isoformat` writes it (microseconds only when there are some), with `Z`.

        Events come in time order, so the minute's text (`2026-03-05T10:00:`) is kept from the event before while
        the minute lasts; only the seconds are written per event.
        """
        minute, in_minute = divmod(ts_us, _MINUTE_US)
        if minute != self._minute:
            self._minute = minute
            at = _EPOCH + timedelta(minutes=minute)
            self._minute_text = f"{at.date().isoformat()}T{at.hour:02d}:{at.minute:02d}:"
        second, micro = divmod(in_minute, 1_000_000)
        if micro:
            return f"{self._minute_text}{second:02d}.{micro:06d}Z"
        return f"{self._minute_text}{second:02d}Z"
