"""`PUT /api/admin/analytics/scheduled-reports` and `GET` (seed 004): an account's reports made daily, weekly or
monthly at a local time, and delivered by e-mail (the file attached) or to a webhook URL.

A PUT sets the account's whole list, matched by `name`: a report named again is changed (its next run stays
where it was unless its timing changed), a new one is created, one no longer named is deleted. A new or re-timed
report first runs at its next slot, never at one already past. Each report is the custom report of
`POST /api/admin/analytics/reports` (its `format`, `sections` and `filters`) over the local days before its slot:
the day before (daily), the 7 days before (weekly), the calendar month before (monthly), or the `period` given
(`24h`, `7d`, `4w`: whole days). `farebox.analytics.report_runner` runs the slots; `farebox.core.report_schedule`
says when they fall. The seed's section names `top_usage` and `cost_breakdown` are `top_items` and `breakdown`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from farebox.analytics.admin_common import PERIOD_PATTERN, Span, envelope, invalid
from farebox.analytics.admin_reports import ReportFilters, SectionIn, report_section
from farebox.analytics.report_data import SectionKind
from farebox.analytics.report_files import ReportFormat
from farebox.analytics.routes import account_zone
from farebox.core.alerts import DESTINATION_URL_PATTERN
from farebox.core.credentials import Principal
from farebox.core.events import from_epoch_us
from farebox.core.json_types import JSON_INTEGER, Timezone
from farebox.core.owners import EMAIL_PATTERN, clean_email, timezone_names
from farebox.core.report_schedule import WEEKDAYS, Frequency, Timing
from farebox.errors import ValidationFailed
from farebox.ledger.scheduled_reports import ReportSpec, ScheduledReport, ScheduledReports
from farebox.services import authenticate, services

__all__ = [
    "DEFAULT_SECTIONS",
    "MAX_REPORTS",
    "ReportRequest",
    "ScheduledReportIn",
    "report_days",
    "report_spec",
    "router",
    "shown",
]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"])

MAX_REPORTS = 50
"""The most scheduled reports an account holds."""
DEFAULT_SECTIONS: tuple[SectionName, ...] = ("summary", "breakdown", "trends", "top_items")
_TIME_PATTERN = r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$"
_ALIASES = {"top_usage": SectionKind.TOP_ITEMS.value, "cost_breakdown": SectionKind.BREAKDOWN.value}
SectionName = Literal[
    "summary", "breakdown", "trends", "top_items", "alerts", "forecasts", "top_usage", "cost_breakdown"
]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _default_sections() -> list[SectionIn | SectionName]:
    return list(DEFAULT_SECTIONS)


class _Camel(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)


class ReportRequest(_Camel):
    """What a scheduled report makes each time, as stored (`ScheduledReport.spec.request`)."""

    format: ReportFormat = ReportFormat.JSON
    period: Annotated[
        str | None, Field(pattern=PERIOD_PATTERN, description="Whole days before the slot: `24h`, `7d`, `4w`.")
    ] = None
    sections: list[SectionIn]
    filters: ReportFilters = Field(default_factory=ReportFilters)


class ScheduledReportIn(_Camel):
    """One scheduled report, in the seed's shape."""

    name: Annotated[str, Field(min_length=1, max_length=200, description="The report's title; one per name.")]
    schedule: Frequency
    time: Annotated[str, Field(pattern=_TIME_PATTERN, description="`HH:MM`, 24-hour, in `timezone`.")]
    timezone: Annotated[Timezone | None, Field(description="An IANA zone (default: the account's).")] = None
    day_of_week: Annotated[Weekday | None, Field(description="Weekly reports' day (default: monday).")] = None
    day_of_month: Annotated[
        int | None,
        Field(ge=1, le=31, description="Monthly reports' day (default: 1; past a month's end: its last)."),
        JSON_INTEGER,
    ] = None
    period: Annotated[
        str | None,
        Field(
            pattern=PERIOD_PATTERN, description="Whole days before the slot: `24h`, `7d`, `4w` (default: by schedule)."
        ),
    ] = None
    recipients: Annotated[
        list[Annotated[str, Field(min_length=3, max_length=320, json_schema_extra={"pattern": EMAIL_PATTERN})]],
        Field(max_length=50, description="E-mail addresses (needs the `smtp_host` setting)."),
    ] = []
    webhook_url: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=2000,
            json_schema_extra={"pattern": DESTINATION_URL_PATTERN},
            description="The URL of one of the account's webhook endpoints: the report is POSTed there as JSON, "
            "signed with the endpoint's secret (Standard Webhooks).",
        ),
    ] = None
    format: ReportFormat = ReportFormat.JSON
    sections: Annotated[list[SectionIn | SectionName], Field(min_length=1, max_length=20)] = Field(
        default_factory=_default_sections
    )
    filters: ReportFilters = Field(default_factory=ReportFilters)


class ScheduledReportsIn(_Camel):
    reports: Annotated[list[ScheduledReportIn], Field(max_length=MAX_REPORTS)]


Account = Annotated[str | None, Query(min_length=1, description="The account (the master key; others: their own).")]


def report_days(period: str | None) -> int | None:
    """The whole days a scheduled report's `period` spans (None: its schedule's default).

    Raises:
        ValidationFailed: a period of hours that is not whole days, or over 183 days (422).
    """
    if period is None:
        return None
    span = Span.parse(period)
    if span.hours % 24:
        raise invalid("period", "a scheduled report covers whole days: 24h, 48h... or 7d, 4w")
    return span.hours // 24


async def _account(request: Request, principal: Principal, account_id: str | None) -> tuple[str, ZoneInfo]:
    account, zone, _own = await account_zone(request, principal, account_id, None)
    if account is None:
        raise invalid("account_id", "the master key must name the account")
    return account, zone


def _located(where: str, error: ValidationFailed) -> ValidationFailed:
    """`error` (of one field, `invalid`'s) as that field of `where`: `period` becomes `reports[0].period`."""
    (detail,) = error.details or [{"loc": "value", "message": error.message}]
    return invalid(f"{where}.{detail['loc']}", str(detail["message"]))


def report_spec(
    given: ScheduledReportIn, position: int, *, zone: ZoneInfo, endpoints: Collection[str], smtp: bool
) -> ReportSpec:
    """The report a body's `reports[position]` sets; `endpoints` are the URLs of the account's webhook endpoints,
    one of which a `webhookUrl` must be (its signing secret signs the report's POST).

    Raises:
        ValidationFailed: a field at fault, named `reports[n].field` (422).
    """
    where = f"reports[{position}]"
    if given.timezone is not None and given.timezone not in timezone_names():
        raise invalid(f"{where}.timezone", f"not an IANA time zone: {given.timezone!r}")
    if given.day_of_week is not None and given.schedule is not Frequency.WEEKLY:
        raise invalid(f"{where}.dayOfWeek", "only a weekly report has a dayOfWeek")
    if given.day_of_month is not None and given.schedule is not Frequency.MONTHLY:
        raise invalid(f"{where}.dayOfMonth", "only a monthly report has a dayOfMonth")
    if not given.recipients and given.webhook_url is None:
        raise invalid(where, "give recipients, a webhookUrl or both: where the report goes")
    if given.recipients and not smtp:
        raise invalid(f"{where}.recipients", "e-mail needs the smtp_host setting (farebox has no SMTP server)")
    recipients = []
    for n, address in enumerate(given.recipients):
        try:
            recipients.append(clean_email(address))
        except ValidationFailed:
            raise invalid(f"{where}.recipients[{n}]", f"not an e-mail address: {address!r}") from None
    url = given.webhook_url
    if url is not None and url not in endpoints:
        raise invalid(
            f"{where}.webhookUrl",
            "not the URL of one of the account's webhook endpoints: create one with POST /api/admin/webhooks "
            "(its signing secret signs each report)",
        )
    try:
        report_days(given.period)
    except ValidationFailed as exc:
        raise _located(where, exc) from None
    sections = [
        SectionIn(type=SectionKind(_ALIASES.get(item, item))) if isinstance(item, str) else item
        for item in given.sections
    ]
    for n, section in enumerate(sections):
        try:
            report_section(section, n)
        except ValidationFailed as exc:
            raise _located(where, exc) from None
    day = {Frequency.WEEKLY: WEEKDAYS.index(given.day_of_week or "monday"), Frequency.MONTHLY: given.day_of_month or 1}
    timing = Timing(
        given.schedule,
        time.fromisoformat(given.time),
        ZoneInfo(given.timezone) if given.timezone is not None else zone,
        day.get(given.schedule, 0),
    )
    request = ReportRequest(format=given.format, period=given.period, sections=sections, filters=given.filters)
    return ReportSpec(
        given.name,
        timing,
        request.model_dump(mode="json", by_alias=True, exclude_none=True),
        tuple(recipients),
        url,
    )


def shown(report: ScheduledReport) -> dict[str, Any]:
    """A scheduled report as the API answers it; `nextRunAt` is its next slot (past while a missed one waits)."""
    spec, timing = report.spec, report.spec.timing
    request = ReportRequest.model_validate(spec.request)
    days: dict[str, Any] = {}
    if timing.frequency is Frequency.WEEKLY:
        days["dayOfWeek"] = WEEKDAYS[timing.day]
    elif timing.frequency is Frequency.MONTHLY:
        days["dayOfMonth"] = timing.day
    return {
        "id": report.id,
        "accountId": report.account_id,
        "name": spec.name,
        "schedule": timing.frequency.value,
        "time": timing.at.strftime("%H:%M"),
        "timezone": timing.zone.key,
        **days,
        "period": request.period,
        "recipients": list(spec.recipients),
        "webhookUrl": spec.webhook_url,
        "format": request.format.value,
        "sections": [section.model_dump(mode="json", by_alias=True, exclude_none=True) for section in request.sections],
        "filters": request.filters.model_dump(mode="json", by_alias=True, exclude_none=True),
        "nextRunAt": _instant(timing.following(from_epoch_us(report.last_slot_us))),
        "createdAt": _instant(from_epoch_us(report.created_at_us)),
        "updatedAt": _instant(from_epoch_us(report.updated_at_us)),
    }


def _instant(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "A billing member (`not_admin`, on PUT), a plain member (`not_yours`), a virtual key."},
    404: {"description": "`account_id` names no account the caller is in (`account_not_found`)."},
}


@router.get(
    "/scheduled-reports",
    summary="The account's scheduled reports: when each runs, what it holds, where it goes",
    responses=_RESPONSES | {422: {"description": "The master key naming no account (`account_id`)."}},
)
async def get_scheduled_reports(
    request: Request, principal: Annotated[Principal, Depends(authenticate)], account_id: Account = None
) -> Any:
    """The account's scheduled reports, by name, each with its next run."""
    account, _zone = await _account(request, principal, account_id)
    principal.require_read(account)
    reports = await ScheduledReports(services(request).ledger).list(account_id=account)
    return envelope({"reports": [shown(report) for report in reports]})


@router.put(
    "/scheduled-reports",
    summary="Set the account's scheduled reports: daily, weekly or monthly, by e-mail or webhook",
    responses=_RESPONSES
    | {
        422: {
            "description": "A field missing, unknown or bad (`error.details` names it, e.g. `reports[0].time`): a "
            "schedule other than daily, weekly or monthly; a time not HH:MM; an unknown zone; a day of the week or "
            "month on another schedule; a period not of whole days; an e-mail address or URL farebox refuses (a "
            "private address, unless `allow_private_webhook_urls`); no recipients and no webhookUrl; e-mail without "
            "SMTP; a name twice; the master key naming no account."
        }
    },
)
async def put_scheduled_reports(
    request: Request,
    body: ScheduledReportsIn,
    principal: Annotated[Principal, Depends(authenticate)],
    account_id: Account = None,
) -> Any:
    """Make the account's scheduled reports these (matched by name); each first runs at its next slot."""
    account, zone = await _account(request, principal, account_id)
    principal.require_manage(account)
    found = services(request)
    names = [given.name for given in body.reports]
    if len(set(names)) != len(names):
        raise invalid("reports", "each report's name appears once")
    endpoints = {endpoint.url for endpoint in await found.webhooks.list_endpoints(account_id=account)}
    specs = [
        report_spec(given, n, zone=zone, endpoints=endpoints, smtp=found.smtp_configured)
        for n, given in enumerate(body.reports)
    ]
    reports = await ScheduledReports(found.ledger).replace(account, specs, now=found.directory.now())
    return envelope({"reports": [shown(report) for report in reports]})
