"""`farebox reports run`: a custom report of an account's period, as `POST /api/admin/analytics/reports` makes it
(`farebox.analytics.admin_reports.account_report`), printed as JSON or written as CSV, XLSX or PDF. Read from the
configured ledger as the master key reads.

`farebox reports schedule` sets one scheduled report of an account (or `--remove`s it), checked as
`PUT /api/admin/analytics/scheduled-reports` checks each (`farebox.analytics.scheduled_reports.report_spec`), the
account's other scheduled reports left alone; `farebox reports list` lists them with their next run. A running
`farebox serve` makes and delivers them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from rich.table import Table

from farebox.analytics import Engine
from farebox.analytics.admin_common import dated_window
from farebox.analytics.admin_reports import ReportFilters, SectionIn, account_report, report_json, report_section
from farebox.analytics.report_data import Section
from farebox.analytics.report_files import ReportFormat, render
from farebox.analytics.scheduled_reports import ScheduledReportIn, report_spec, shown
from farebox.cli.output import Json, cell, command_group
from farebox.cli.runtime import console, fail, load_or_exit, print_json, webhook_secrets_box, with_ledger
from farebox.core.credentials import Principal, PrincipalKind
from farebox.core.json_numbers import dumps_exact
from farebox.errors import ValidationFailed
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.reader import LedgerReader
from farebox.ledger.scheduled_reports import ScheduledReports
from farebox.ledger.webhooks import WebhookEndpoints

__all__ = ["reports_app"]

reports_app = command_group(name="reports", help="Custom reports of an account's usage: summary, breakdowns, trends.")

_OPERATOR = Principal(kind=PrincipalKind.MASTER)
_DEFAULT_SECTIONS = ["summary", "breakdown:provider", "trends:daily", "top_items:virtual_keys"]


_ARGUMENT = {"breakdown": "groupBy", "trends": "granularity", "top_items": "category"}


def _section_body(text: str) -> dict[str, str]:
    """`summary`, `breakdown:GROUP`, `trends:GRANULARITY` or `top_items:CATEGORY` (`top` for short), as the API's
    section body."""
    kind, _, argument = text.strip().partition(":")
    kind = "top_items" if kind == "top" else kind
    return {"type": kind} | ({_ARGUMENT[kind]: argument} if argument and kind in _ARGUMENT else {})


def _section(text: str) -> Section:
    try:
        return report_section(SectionIn.model_validate(_section_body(text)), 0)
    except (ValidationError, ValidationFailed) as exc:
        reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else exc.message
        raise typer.BadParameter(f"{text!r}: {reason}", param_hint="--section") from None


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"not a date like 2026-03-01: {value!r}", param_hint=option) from None


@reports_app.command("run")
def run_report(
    account: Annotated[str, typer.Option("--account", help="The account reported on.")],
    period: Annotated[
        str | None, typer.Option("--period", help="The last 7d, 4w...: local days, today included.")
    ] = None,
    from_: Annotated[str | None, typer.Option("--from", metavar="YYYY-MM-DD", help="First local date.")] = None,
    to: Annotated[str | None, typer.Option("--to", metavar="YYYY-MM-DD", help="Last local date, included.")] = None,
    sections: Annotated[
        list[str] | None,
        typer.Option(
            "--section",
            help="summary, breakdown:GROUP, trends:GRANULARITY or top_items:CATEGORY (repeat; default: all four).",
        ),
    ] = None,
    report_format: Annotated[ReportFormat, typer.Option("--format", help="json (default), csv, xlsx or pdf.")] = (
        ReportFormat.JSON
    ),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The file to write (xlsx and pdf need one).")
    ] = (None),
    name: Annotated[str, typer.Option("--name", help="The report's title.")] = "Usage report",
    exclude_test_keys: Annotated[bool, typer.Option("--exclude-test-keys", help="Leave out keys tagged test.")] = False,
    as_json: Json = False,
) -> None:
    """Make a report of the account's period: its sections in the order given."""
    wanted = [_section(text) for text in sections or _DEFAULT_SECTIONS]
    first, last = _day(from_, "--from"), _day(to, "--to")
    if output is None and report_format in (ReportFormat.XLSX, ReportFormat.EXCEL, ReportFormat.PDF):
        fail(f"a {report_format.value} report is written to a file: give --output", code="usage_error", exit_code=2)
    if period is None and first is None and last is None:
        period = "30d"

    async def run(ledger: Ledger) -> bytes:
        directory = Directory(ledger)
        zone = ZoneInfo((await directory.get_account(account)).timezone)
        window = dated_window(period, first, last, today=directory.now().astimezone(zone).date(), tz=zone)
        built = await account_report(
            directory,
            Engine(LedgerReader(ledger)),
            account_id=account,
            name=name,
            window=window,
            sections=wanted,
            asked=ReportFilters.model_validate({"excludeTestKeys": exclude_test_keys}),
            viewer=_OPERATOR,
        )
        if report_format is ReportFormat.JSON:
            return dumps_exact(report_json(built))
        return render(built, report_format)

    data = with_ledger(run)
    if output is None:
        typer.echo(data.decode())
        return
    output.write_bytes(data)
    if as_json:
        print_json({"written": len(data), "path": str(output)})
    else:
        console.print(f"wrote {len(data)} bytes to {output}", highlight=False)


@reports_app.command("schedule")
def schedule_report(
    account: Annotated[str, typer.Option("--account", help="The account reported on.")],
    name: Annotated[str, typer.Option("--name", help="The report's title: one scheduled report per name.")],
    every: Annotated[
        str | None, typer.Option("--every", metavar="daily|weekly|monthly", help="How often it runs.")
    ] = None,
    at: Annotated[str | None, typer.Option("--at", metavar="HH:MM", help="The local time it runs at.")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", help="An IANA zone (default: the account's).")] = None,
    day_of_week: Annotated[str | None, typer.Option("--day-of-week", help="Weekly: monday (default)...")] = None,
    day_of_month: Annotated[int | None, typer.Option("--day-of-month", help="Monthly: 1 (default) to 31.")] = None,
    period: Annotated[
        str | None, typer.Option("--period", help="Whole days before the run: 24h, 7d, 4w (default: by --every).")
    ] = None,
    emails: Annotated[list[str] | None, typer.Option("--email", help="A recipient (repeat).")] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option("--webhook-url", help="The URL of one of the account's webhook endpoints, POSTed to signed."),
    ] = None,
    report_format: Annotated[ReportFormat, typer.Option("--format", help="json (default), csv, xlsx or pdf.")] = (
        ReportFormat.JSON
    ),
    sections: Annotated[
        list[str] | None,
        typer.Option("--section", help="As for `run` (repeat; default: all four)."),
    ] = None,
    exclude_test_keys: Annotated[bool, typer.Option("--exclude-test-keys", help="Leave out keys tagged test.")] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Delete the account's scheduled report of this name.")] = (
        False
    ),
    as_json: Json = False,
) -> None:
    """Schedule a report of the account (or change the one of this name): it first runs at its next slot."""
    settings = load_or_exit()
    body: dict[str, Any] = {"name": name, "schedule": every, "time": at, "format": report_format.value}
    optional = {"timezone": timezone, "dayOfWeek": day_of_week, "dayOfMonth": day_of_month, "period": period}
    body |= {field: value for field, value in optional.items() if value is not None}
    body |= {"recipients": emails or [], "webhookUrl": webhook_url}
    body |= {"sections": [_section_body(text) for text in sections or _DEFAULT_SECTIONS]}
    body |= {"filters": {"excludeTestKeys": exclude_test_keys}}
    given = None
    if not remove:
        if every is None or at is None:
            fail("give --every and --at (or --remove)", code="usage_error", exit_code=2)
        try:
            given = ScheduledReportIn.model_validate(body)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"])
            fail(f"{field}: {error['msg']}", code="validation_failed", exit_code=2)

    async def run(ledger: Ledger) -> list[dict[str, Any]]:
        zone = ZoneInfo((await Directory(ledger).get_account(account)).timezone)
        store = ScheduledReports(ledger)
        existing = await store.list(account_id=account)
        kept = [report.spec for report in existing if report.spec.name != name]
        if given is not None:
            smtp = settings.smtp_host is not None
            listed = await WebhookEndpoints(ledger, webhook_secrets_box(settings)).list_endpoints(account_id=account)
            endpoints = {endpoint.url for endpoint in listed}
            kept.append(report_spec(given, 0, zone=zone, endpoints=endpoints, smtp=smtp))
        elif len(kept) == len(existing):
            fail(f"the account has no scheduled report named {name!r}", code="not_found")
        return [shown(report) for report in await store.replace(account, kept, now=Directory(ledger).now())]

    reports = with_ledger(run)
    if as_json:
        print_json({"reports": reports})
        return
    verb = "removed" if remove else "scheduled"
    console.print(f"{verb} {name!r}; the account has {len(reports)} scheduled report(s)", highlight=False)
    _table(reports)


@reports_app.command("list")
def list_reports(
    account: Annotated[str | None, typer.Option("--account", help="One account's (default: every account's).")] = None,
    as_json: Json = False,
) -> None:
    """The scheduled reports: when each runs next, its format and where it goes."""

    async def run(ledger: Ledger) -> list[dict[str, Any]]:
        if account is not None:
            await Directory(ledger).get_account(account)  # an unknown account is refused, not listed as empty
        return [shown(report) for report in await ScheduledReports(ledger).list(account_id=account)]

    reports = with_ledger(run)
    if as_json:
        print_json({"reports": reports})
        return
    _table(reports)


def _table(reports: list[dict[str, Any]]) -> None:
    table = Table(title="Scheduled reports")
    for column in ("account", "name", "schedule", "next run", "format", "to"):
        table.add_column(column, overflow="fold")
    for report in reports:
        when = f"{report['schedule']} {report['time']} {report['timezone']}"
        destinations = [*report["recipients"], *([report["webhookUrl"]] if report["webhookUrl"] else [])]
        row = (
            report["accountId"],
            report["name"],
            when,
            report["nextRunAt"],
            report["format"],
            ", ".join(destinations),
        )
        table.add_row(*(cell(value) for value in row))
    console.print(table)
