"""`farebox reports run`: a custom report of an account's period, as `POST /api/admin/analytics/reports` makes it
(`farebox.analytics.admin_reports.account_report`), printed as JSON or written as CSV, XLSX or PDF. Read from the
configured ledger as the master key reads.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from farebox.analytics import Engine
from farebox.analytics.admin_common import dated_window
from farebox.analytics.admin_reports import ReportFilters, account_report, report_json
from farebox.analytics.report_data import Category, GroupBy, Section, SectionKind, TrendGrain
from farebox.analytics.report_files import ReportFormat, render
from farebox.cli.output import Json, command_group
from farebox.cli.runtime import console, fail, print_json, with_ledger
from farebox.core.credentials import Principal, PrincipalKind
from farebox.core.json_numbers import dumps_exact
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.reader import LedgerReader

__all__ = ["reports_app"]

reports_app = command_group(name="reports", help="Custom reports of an account's usage: summary, breakdowns, trends.")

_OPERATOR = Principal(kind=PrincipalKind.MASTER)
_DEFAULT_SECTIONS = ["summary", "breakdown:provider", "trends:daily", "top_items:virtual_keys"]


def _section(text: str) -> Section:
    """`summary`, `breakdown:GROUP`, `trends:GRANULARITY` or `top_items:CATEGORY` (`top` for short)."""
    kind, _, argument = text.strip().partition(":")
    try:
        section = Section(SectionKind("top_items" if kind == "top" else kind))
        if section.kind is SectionKind.BREAKDOWN and argument:
            return Section(section.kind, group_by=GroupBy(argument))
        if section.kind is SectionKind.TRENDS and argument:
            return Section(section.kind, granularity=TrendGrain(argument))
        if section.kind is SectionKind.TOP_ITEMS and argument:
            return Section(section.kind, category=Category(argument))
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: {exc}", param_hint="--section") from None
    return section


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
