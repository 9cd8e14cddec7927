"""`POST /api/admin/analytics/export` (seed 004): one account's usage of a period, raw or summed by the hour or the
day, as CSV, a JSON array or NDJSON, with the fields and the filters asked for, streamed
(`farebox.analytics.export_rows` writes the rows).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel
from starlette.responses import StreamingResponse

from farebox.analytics.admin_common import PERIOD_PATTERN, Scoped, dated_window, engine, invalid, scoped_responses
from farebox.analytics.engine import Dimension, Filters, Measure, Query
from farebox.analytics.export_rows import Format, Granularity, export_rows, fields_of, least_nano
from farebox.analytics.query_times import TimedRoute
from farebox.services import services

__all__ = ["MinCost", "router"]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"], route_class=TimedRoute)


MinCost = Annotated[
    Decimal,
    Field(ge=0),
    WithJsonSchema(
        {
            "description": 'USD, a decimal string (`"1.00"`) or a JSON number, at least 0.',
            "anyOf": [
                {"type": "string", "pattern": r"^[0-9]{1,12}(?:\.[0-9]{1,18})?$", "examples": ["1.00"]},
                {"type": "number", "minimum": 0},
            ],
        }
    ),
]
"""A minimum cost: pydantic's own schema for a decimal allows strings it refuses, so this one says what it takes."""


class ExportFilters(BaseModel):
    """Which usage is exported: each list given keeps only its values; `minCost` drops the rows costing less."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)

    virtual_keys: Annotated[list[str] | None, Field(min_length=1, description="Virtual key ids.")] = None
    providers: Annotated[list[str] | None, Field(min_length=1)] = None
    models: Annotated[list[str] | None, Field(min_length=1, description="Models as called or canonical.")] = None
    members: Annotated[list[str] | None, Field(min_length=1, description="Member ids.")] = None
    min_cost: Annotated[MinCost | None, Field(description="USD: a row's cost, raw or summed.")] = None


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
    today = found.directory.now().astimezone(scope.window.tz).date()
    window = dated_window(body.period, body.start_date, body.end_date, today=today, tz=scope.window.tz)
    try:
        fields = fields_of(body.granularity, body.include_fields)
    except ValueError as exc:
        raise invalid("includeFields", str(exc)) from None
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
    names = {key.id: key.name for key in await found.directory.list_keys(account_id=account_id)}
    chunks = export_rows(
        analytics,
        query,
        granularity=body.granularity,
        export_format=body.format,
        fields=fields,
        names=names,
        min_nano=least_nano(asked.min_cost),
        viewer=scope.viewer,
        rate=found.credit_rate,
    )
    filename = (
        f"usage-{account_id}-{window.first.isoformat()}-{window.last.isoformat()}-{body.granularity.value}."
        f"{body.format.value}"
    )
    return StreamingResponse(
        (data async for _count, data in chunks),
        media_type=body.format.media_type,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
