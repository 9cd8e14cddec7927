"""`POST /api/admin/analytics/reports` (seed 004): a custom report of one account's period, its sections in the order
asked (`farebox.analytics.report_data`), as JSON, CSV, XLSX or PDF (`farebox.analytics.report_files`), the spreadsheet
and the PDF with charts.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.responses import Response

from farebox.analytics.admin_common import (
    PERIOD_PATTERN,
    Scoped,
    dated_window,
    engine,
    envelope,
    invalid,
    scoped_responses,
)
from farebox.analytics.admin_export import MinCost
from farebox.analytics.calendar import Window
from farebox.analytics.engine import Dimension, Engine, Filters
from farebox.analytics.export_rows import least_nano
from farebox.analytics.query_times import TimedRoute
from farebox.analytics.report_data import (
    Category,
    GroupBy,
    Metric,
    Report,
    Section,
    SectionKind,
    SummaryMetric,
    TrendGrain,
    build_report,
)
from farebox.analytics.report_files import ReportFormat, render
from farebox.core.credentials import Principal
from farebox.ledger.directory import Directory
from farebox.services import services

__all__ = ["ReportFilters", "SectionIn", "account_report", "report_filename", "report_json", "report_section", "router"]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"], route_class=TimedRoute)

_TEST_TAG = "test"


class _Camel(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)


class SectionIn(_Camel):
    """A section: `summary` takes `metrics` of its own; `breakdown` a `groupBy`; `trends` a `granularity`;
    `top_items` a `category`, `sortBy` and `limit`."""

    type: SectionKind
    metrics: Annotated[list[str] | None, Field(min_length=1, max_length=10)] = None
    group_by: GroupBy = GroupBy.PROVIDER
    granularity: TrendGrain = TrendGrain.DAILY
    category: Category = Category.VIRTUAL_KEYS
    sort_by: Metric = Metric.COST
    limit: Annotated[int, Field(ge=1, le=100)] = 10


class ReportFilters(_Camel):
    virtual_keys: Annotated[list[str] | None, Field(min_length=1)] = None
    providers: Annotated[list[str] | None, Field(min_length=1)] = None
    models: Annotated[list[str] | None, Field(min_length=1)] = None
    members: Annotated[list[str] | None, Field(min_length=1)] = None
    exclude_test_keys: bool = Field(False, description="Leave out the keys tagged `test`.")
    min_cost: Annotated[MinCost | None, Field(description="USD: breakdown and top rows costing less are left out.")] = (
        None
    )


class ReportIn(_Camel):
    report_name: Annotated[str, Field(min_length=1, max_length=200)] = "Usage report"
    format: ReportFormat = ReportFormat.JSON
    period: Annotated[str | None, Field(pattern=PERIOD_PATTERN, description="The last `7d`, `4w`...")] = None
    start_date: date | None = None
    end_date: date | None = None
    sections: Annotated[list[SectionIn], Field(min_length=1, max_length=20)]
    filters: ReportFilters = Field(default_factory=ReportFilters)
    schedule: dict[str, Any] | None = Field(
        None,
        description="Not taken here: `PUT /api/admin/analytics/scheduled-reports` schedules reports (a 422 says so).",
    )


async def account_report(
    directory: Directory,
    analytics: Engine,
    *,
    account_id: str,
    name: str,
    window: Window,
    sections: list[Section],
    asked: ReportFilters,
    viewer: Principal,
) -> Report:
    """The report of an account's window: the filters asked resolved (test keys among them), keys and members
    named."""
    keys = await directory.list_keys(account_id=account_id)
    members = await directory.list_members(account_id)
    values: dict[Dimension, tuple[str, ...]] = {
        dimension: tuple(given)
        for dimension, given in (
            (Dimension.KEY, asked.virtual_keys),
            (Dimension.PROVIDER, asked.providers),
            (Dimension.MEMBER, asked.members),
        )
        if given is not None
    }
    if asked.exclude_test_keys:
        kept = [key.id for key in keys if _TEST_TAG not in key.tags]
        given_keys = values.get(Dimension.KEY)
        values[Dimension.KEY] = tuple(k for k in kept if given_keys is None or k in given_keys)
    filters = Filters(values, models=None if asked.models is None else tuple(asked.models))
    key_names = {key.id: key.name for key in keys}
    member_names = {member.id: member.name for member in members}

    def names(group: GroupBy, item: str) -> str:
        if not item:
            return "(none)"
        return {GroupBy.VIRTUAL_KEY: key_names, GroupBy.MEMBER: member_names}.get(group, {}).get(item, item)

    return await build_report(
        analytics,
        directory,
        name=name,
        window=window,
        account_id=account_id,
        sections=sections,
        filters=filters,
        min_nano=least_nano(asked.min_cost),
        viewer=viewer,
        names=names,
        generated_at=directory.now(),
    )


def report_section(given: SectionIn, position: int) -> Section:
    """The section a body asks for at `sections[position]`.

    Raises:
        ValidationFailed: a metric its kind does not have (422).
    """
    metrics: tuple[Any, ...] = ()
    try:
        if given.type is SectionKind.SUMMARY:
            metrics = tuple(SummaryMetric(name) for name in given.metrics or ()) or Section(given.type).summary
            return Section(given.type, summary=metrics)
        metrics = tuple(Metric(name) for name in given.metrics or ()) or Section(given.type).metrics
    except ValueError as exc:
        raise invalid(f"sections[{position}].metrics", str(exc)) from None
    return Section(
        given.type,
        metrics=metrics,
        group_by=given.group_by,
        granularity=given.granularity,
        category=given.category,
        sort_by=given.sort_by,
        limit=given.limit,
    )


def report_filename(report: Report, fmt: ReportFormat) -> str:
    """The file a report is sent as: its name's letters and digits, its dates and the format's suffix."""
    stem = "".join(char if char.isalnum() else "-" for char in report.name.lower()).strip("-") or "report"
    return f"{stem}-{report.window.first.isoformat()}-{report.window.last.isoformat()}.{fmt.suffix}"


def report_json(report: Report) -> dict[str, Any]:
    """The report as the JSON answer's `data`."""
    return {
        "reportName": report.name,
        "accountId": report.account_id,
        "period": {
            "startDate": report.window.first.isoformat(),
            "endDate": report.window.last.isoformat(),
            "timezone": report.window.tz.key,
        },
        "generatedAt": report.generated_at.isoformat().replace("+00:00", "Z"),
        "sections": [
            {"type": table.kind.value, "title": table.title, "columns": list(table.columns), "rows": table.rows}
            for table in report.tables
        ],
    }


@router.post(
    "/reports",
    summary="A custom report of a period: summary, breakdowns, trends and top items, as JSON, CSV, XLSX or PDF",
    response_class=Response,
    responses={
        200: {
            "description": "The report: JSON in the seed's envelope, or a file (`Content-Disposition` names it).",
            "content": {
                "application/json": {},
                "text/csv": {"schema": {"type": "string"}},
                ReportFormat.XLSX.media_type: {"schema": {"type": "string", "format": "binary"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **scoped_responses(
            "A bad body: no period and no dates, or both; a period of hours or over 366 days; an unknown section, "
            "metric, group, category or format; a `schedule`; the master key naming no account. "
            "`error.details` names it."
        ),
    },
)
async def report(request: Request, body: ReportIn, scope: Scoped) -> Response:
    """The account's usage of the period in the sections asked, in their order; every figure from the analytics
    engine, so it equals the other views'."""
    account_id = scope.account_id
    if account_id is None:
        raise invalid("account_id", "the master key must name the account")
    if body.schedule is not None:
        raise invalid("schedule", "schedule reports with PUT /api/admin/analytics/scheduled-reports")
    found = services(request)
    today = found.directory.now().astimezone(scope.window.tz).date()
    window = dated_window(body.period, body.start_date, body.end_date, today=today, tz=scope.window.tz)
    built = await account_report(
        found.directory,
        engine(request),
        account_id=account_id,
        name=body.report_name,
        window=window,
        sections=[report_section(given, n) for n, given in enumerate(body.sections)],
        asked=body.filters,
        viewer=scope.viewer,
    )
    if body.format is ReportFormat.JSON:
        return envelope(report_json(built))
    filename = report_filename(built, body.format)
    return Response(
        render(built, body.format),
        media_type=body.format.media_type,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
