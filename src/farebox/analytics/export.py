"""Usage exports: one account's raw usage events of a range, as CSV or a JSON array, produced a page at a time.

The same bytes for `GET /v1/usage/export` and `farebox export`. Each page of events is formatted where it was
read (on the reader thread, `Engine.export`), so the event loop only passes bytes on, and memory holds one page
whatever the range. Voided events are left out, as every usage view leaves them out, so the costs of an export
add up to the views' totals for the same range. Money is exact: `cost_usd` in decimal USD, `credits_used` in
the operator's credit unit (`credits_per_usd`), both decimal strings.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

import orjson

from farebox.analytics.engine import Engine, Query
from farebox.core.credentials import Principal
from farebox.core.credits import CreditRate
from farebox.core.events import format_micro
from farebox.core.money import format_usd
from farebox.ledger.exports import ExportRow

__all__ = ["EXPORT_FIELDS", "ExportFormat", "Exporter"]

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

_EPOCH = date(1970, 1, 1)
_DAY_SECONDS = 86_400


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
        self._days: dict[int, str] = {}
        self._rows = 0

    def export(
        self, engine: Engine, query: Query, *, viewer: Principal, page_size: int = 5_000
    ) -> AsyncIterator[tuple[int, bytes]]:
        """The export of `query` as `viewer` may see it: (events in the chunk, bytes) in order.

        Access is checked now (`Engine.export`), so a refusal comes before the first byte.

        Raises:
            NotFound, PermissionDenied: as `Engine.run`.
        """
        pages = engine.export(query, viewer=viewer, keep=self._page, page_size=page_size)
        return self._framed(pages)

    async def _framed(self, pages: AsyncIterator[tuple[int, bytes]]) -> AsyncIterator[tuple[int, bytes]]:
        if self.format is ExportFormat.CSV:
            yield 0, self._csv([EXPORT_FIELDS])
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
            return len(rows), self._csv([self._values(row, "true", "false") for row in rows])
        values = [dict(zip(EXPORT_FIELDS, self._values(row, True, False), strict=True)) for row in rows]
        body = orjson.dumps(values)[1:-1]  # the objects without the list's brackets: the array spans pages
        separated = body if self._rows == 0 else b"," + body
        self._rows += len(rows)
        return len(rows), separated

    @staticmethod
    def _csv(rows: list[Any]) -> bytes:
        text = io.StringIO()
        csv.writer(text, lineterminator="\r\n").writerows(rows)
        return text.getvalue().encode()

    def _values(self, row: ExportRow, true: Any, false: Any) -> tuple[Any, ...]:
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
            true if streamed else false,
            true if estimated else false,
        )

    def _time(self, ts_us: int) -> str:
        """ISO-8601 in UTC, as `datetime.isoformat` writes it (microseconds only when there are some), with `Z`.

        Built from the day's date, looked up once per day, and integer arithmetic: a third of the cost of a
        datetime per event.
        """
        seconds, micro = divmod(ts_us, 1_000_000)
        day, in_day = divmod(seconds, _DAY_SECONDS)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = f"{(_EPOCH + timedelta(days=day)).isoformat()}T"
        hour, rest = divmod(in_day, 3600)
        minute, second = divmod(rest, 60)
        if micro:
            return f"{prefix}{hour:02d}:{minute:02d}:{second:02d}.{micro:06d}Z"
        return f"{prefix}{hour:02d}:{minute:02d}:{second:02d}Z"
