"""`POST /api/admin/analytics/export` (seed 004): one account's usage of a period, raw or summed by the hour or the
day, as CSV, a JSON array or NDJSON, with the fields and the filters asked for, streamed.

Raw rows are the usage events (`Engine.export`: a page at a time, formatted on the reader thread); hourly and daily
rows are the engine's sums per (hour or day, key, provider, model, operation), read a local day at a time. Memory
holds a page or a day however long the period. Voided events are left out and money is in exact decimal USD strings,
as in every export, so the rows' costs add up to the usage views' totals for the same days (but for what a `minCost`
filter drops: the rows, raw or summed, that cost less).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.responses import StreamingResponse

from farebox.analytics.admin_common import PERIOD_PATTERN, Scoped, Span, engine, instant, invalid, scoped_responses
from farebox.analytics.calendar import Grain, Window
from farebox.analytics.engine import Dimension, Engine, Filters, Measure, Query, Row
from farebox.analytics.export import EXPORT_FIELDS, Exporter, ExportFormat
from farebox.core.credentials import Principal
from farebox.core.money import NANO_PER_USD, format_usd
from farebox.ledger.exports import EXPORT_COLUMNS, ExportRow
from farebox.services import services

__all__ = ["RAW_FIELDS", "SUMMED_FIELDS", "router"]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"])

MAX_EXPORT_DAYS = 366
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


class ExportFilters(BaseModel):
    """Which usage is exported: each list given keeps only its values; `minCost` drops the rows costing less."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)

    virtual_keys: Annotated[list[str] | None, Field(min_length=1, description="Virtual key ids.")] = None
    providers: Annotated[list[str] | None, Field(min_length=1)] = None
    models: Annotated[list[str] | None, Field(min_length=1, description="Models as called or canonical.")] = None
    members: Annotated[list[str] | None, Field(min_length=1, description="Member ids.")] = None
    min_cost: Annotated[Decimal | None, Field(ge=0, description="USD: a row's cost, raw or summed.")] = None


class ExportIn(BaseModel):
    """The seed's export: a format, a period (or explicit dates), a granularity, the fields and the filters."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)

    format: Format = Format.CSV
    period: Annotated[
        str | None, Field(pattern=PERIOD_PATTERN, description="The last `7d`, `4w`...: days or weeks, today included.")
    ] = None
    start_date: Annotated[
        date | None, Field(description="The first local day, with `endDate` (not with `period`).")
    ] = None
    end_date: Annotated[date | None, Field(description="The last local day, included.")] = None
    granularity: Granularity = Granularity.RAW
    include_fields: Annotated[
        list[str] | None,
        Field(min_length=1, description="The columns, in order (default: every field of the granularity)."),
    ] = None
    filters: ExportFilters = Field(default_factory=ExportFilters)


def _window(body: ExportIn, today: date, scope_window: Window) -> Window:
    """The local days asked for: the period ending today, or `startDate` to `endDate`.

    Raises:
        ValidationFailed: neither or both given, a period of hours, the end before the start, or over 366 days.
    """
    tz = scope_window.tz
    if (body.period is None) == (body.start_date is None and body.end_date is None):
        raise invalid("period", "give a period, or startDate and endDate")
    if body.period is not None:
        span = Span.parse(body.period)
        if span.unit == "h":
            raise invalid("period", "an export's period is in days or weeks")
        first, last = today - timedelta(days=span.days - 1), today
    elif body.start_date is None or body.end_date is None:
        raise invalid("startDate" if body.start_date is None else "endDate", "give both startDate and endDate")
    else:
        first, last = body.start_date, body.end_date
        if last < first:
            raise invalid("endDate", "endDate comes before startDate")
    if (last - first).days >= MAX_EXPORT_DAYS:
        raise invalid("period", f"an export spans at most {MAX_EXPORT_DAYS} days")
    return Window(first, last, tz)


class _Writer:
    """Rows of named values as CSV (a header, LF line ends), one JSON array, or NDJSON."""

    def __init__(self, export_format: Format, fields: Sequence[str]) -> None:
        self._format = export_format
        self._fields = fields
        self._written = False

    def header(self) -> bytes:
        if self._format is Format.CSV:
            return self._csv([list(self._fields)])
        return b"[" if self._format is Format.JSON else b""

    def rows(self, rows: Iterable[dict[str, Any]]) -> bytes:
        picked = [{name: row[name] for name in self._fields} for row in rows]
        if not picked:
            return b""
        if self._format is Format.CSV:
            return self._csv([[_cell(row[name]) for name in self._fields] for row in picked])
        if self._format is Format.NDJSON:
            return b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in picked)
        body = orjson.dumps(picked)[1:-1]  # the objects without the list's brackets: the array spans pages
        separated = b"," + body if self._written else body
        self._written = True
        return separated

    def footer(self) -> bytes:
        return b"]" if self._format is Format.JSON else b""

    @staticmethod
    def _csv(rows: list[list[Any]]) -> bytes:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        return text.getvalue().encode()


def _cell(value: Any) -> Any:
    """A value as a CSV cell: none empty, booleans as JSON writes them."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _raw_values(exporter: Exporter, names: dict[str, str]) -> Callable[[ExportRow], dict[str, Any]]:
    def values(row: ExportRow) -> dict[str, Any]:
        found = dict(zip(EXPORT_FIELDS, exporter.values(row), strict=True))
        key_id = found["key_id"]
        latency = found["latency_ms"]
        return found | {
            "virtual_key_id": key_id,
            "virtual_key_name": None if key_id is None else names.get(key_id),
            "requests": 1,
            "tokens": found["input_tokens"] + found["output_tokens"],
            "cost": found["cost_usd"],
            "latency": latency,
            "errors": int(found["status"] == "error"),
        }

    return values


def _summed_values(row: Row, account_id: str, window: Window, names: dict[str, str]) -> dict[str, Any]:
    assert row.at is not None
    key_id, provider, model, operation = row.dimensions
    requests, input_tokens, output_tokens, cost_nano, latency_ms, failed = row.measures
    return {
        "timestamp": instant(row.at, window),
        "account_id": account_id,
        "virtual_key_id": key_id or None,
        "virtual_key_name": names.get(key_id) if key_id else None,
        "provider": provider,
        "model": model,
        "operation": operation,
        "requests": requests,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "tokens": input_tokens + output_tokens,
        "cost": format_usd(cost_nano),
        "latency": round(Decimal(latency_ms) / requests),
        "errors": failed,
    }


def _order(row: Row) -> tuple[Any, ...]:
    """Rows of one query by slot (all dates or all aware datetimes, which compare as instants), then group."""
    return (row.at, row.dimensions)


async def _summed(
    found: Engine, query: Query, grain: Grain, writer: _Writer, names: dict[str, str], min_nano: int, viewer: Principal
) -> AsyncIterator[bytes]:
    """The window's sums a local day at a time, each day's rows by slot, then key, provider, model and operation."""
    assert query.account_id is not None
    yield writer.header()
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
            account_id=query.account_id,
            local_days=query.local_days,
        )
        rows = await found.run(daily, viewer=viewer)
        kept = sorted(
            (row for row in rows if row.measures[0] and row.measures[3] >= min_nano),
            key=_order,
        )
        data = writer.rows(_summed_values(row, query.account_id, one, names) for row in kept)
        if data:
            yield data
        day += timedelta(days=1)
    yield writer.footer()


async def _raw(
    found: Engine,
    query: Query,
    writer: _Writer,
    exporter: Exporter,
    names: dict[str, str],
    min_nano: int,
    viewer: Principal,
) -> AsyncIterator[bytes]:
    """Every event of the query, a page at a time, formatted on the reader thread."""
    values = _raw_values(exporter, names)

    def page(rows: list[ExportRow]) -> bytes:
        """One page of events as bytes (on the reader thread, one page after another)."""
        return writer.rows(values(row) for row in rows if row[_COST] >= min_nano)

    yield writer.header()
    async for data in found.export(query, viewer=viewer, keep=page):
        if data:
            yield data
    yield writer.footer()


@router.post(
    "/export",
    summary="An account's usage of a period, raw or by the hour or the day, as CSV, JSON or NDJSON, streamed",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The rows in time order, streamed; `Content-Disposition` names the file.",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        },
        **scoped_responses(
            "A bad body: no period and no dates, or both; a period of hours or over 366 days; `endDate` before "
            "`startDate`; a field the granularity does not have; the master key naming no account. "
            "`error.details` names it."
        ),
    },
)
async def export(request: Request, body: ExportIn, scope: Scoped) -> StreamingResponse:
    """The account's usage of the local days asked for, voided events left out: every event (`raw`), or sums per
    hour or day, key, provider, model and operation (`hourly`, `daily`); the fields in the order asked; costs in
    exact decimal USD strings."""
    account_id = scope.account_id
    if account_id is None:
        raise invalid("account_id", "the master key must name the account")
    found = services(request)
    window = _window(body, found.directory.now().astimezone(scope.window.tz).date(), scope.window)
    allowed = RAW_FIELDS if body.granularity is Granularity.RAW else SUMMED_FIELDS
    fields = body.include_fields or list(EXPORT_FIELDS if body.granularity is Granularity.RAW else SUMMED_FIELDS)
    unknown = [name for name in fields if name not in allowed]
    if unknown:
        raise invalid("includeFields", f"not a field of a {body.granularity.value} export: {', '.join(unknown)}")
    asked = body.filters
    values = {
        dimension: tuple(given)
        for dimension, given in (
            (Dimension.KEY, asked.virtual_keys),
            (Dimension.PROVIDER, asked.providers),
            (Dimension.MEMBER, asked.members),
        )
        if given is not None
    }
    filters = Filters(values, models=None if asked.models is None else tuple(asked.models))
    query = Query(window, (Measure.REQUESTS,), filters=filters, account_id=account_id, local_days=scope.local_days)
    analytics = engine(request)
    analytics.source(query, viewer=scope.viewer)  # access is checked now, before the first byte
    min_nano = 0 if asked.min_cost is None else int((asked.min_cost * NANO_PER_USD).to_integral_value(ROUND_CEILING))
    names = {key.id: key.name for key in await found.directory.list_keys(account_id=account_id)}
    writer = _Writer(body.format, fields)
    if body.granularity is Granularity.RAW:
        exporter = Exporter(ExportFormat.JSON, rate=found.credit_rate)
        chunks = _raw(analytics, query, writer, exporter, names, min_nano, scope.viewer)
    else:
        grain = Grain.HOUR if body.granularity is Granularity.HOURLY else Grain.DAY
        chunks = _summed(analytics, query, grain, writer, names, min_nano, scope.viewer)
    filename = (
        f"usage-{account_id}-{window.first.isoformat()}-{window.last.isoformat()}-{body.granularity.value}."
        f"{body.format.value}"
    )
    return StreamingResponse(
        chunks, media_type=body.format.media_type, headers={"content-disposition": f'attachment; filename="{filename}"'}
    )
