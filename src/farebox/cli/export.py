"""`farebox export`: one account's usage of a date range to a CSV, JSON or NDJSON file, with a progress bar.

Every event, the same bytes as `GET /v1/usage/export` (`farebox.analytics.export`); or, with `--granularity`,
`--fields`, `--min-cost` or `--format ndjson`, the rows of `POST /api/admin/analytics/export`
(`farebox.analytics.export_rows`): events or sums per hour or day, the fields asked for. Read from the configured
ledger as the master key reads: a page (or a day of sums) at a time, so memory stays flat however long the range.
The file is written beside its destination and moved into place when complete, so a failed export leaves no half
file.
"""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from farebox.analytics import Engine, month_window
from farebox.analytics.calendar import Window
from farebox.analytics.engine import Filters, Measure, Query
from farebox.analytics.export import Exporter, ExportFormat
from farebox.analytics.export_rows import Format, Granularity, export_rows, fields_of, least_nano
from farebox.analytics.views import Scope, Views
from farebox.cli.output import Json
from farebox.cli.runtime import console, fail, load_or_exit, print_json, with_ledger
from farebox.core.clock import utcnow
from farebox.core.credentials import Principal, PrincipalKind
from farebox.core.credits import CreditRate
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.reader import LedgerReader

__all__ = ["export"]

_OPERATOR = Principal(kind=PrincipalKind.MASTER)
Values = Annotated[str | None, typer.Option(help="Only this usage: one value, or several separated by commas.")]


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"not a date like 2026-03-01: {value!r}") from None


def _least(min_cost: str | None) -> int:
    """`--min-cost` (USD) as the least nano-USD a row keeps; 0 without it."""
    if min_cost is None:
        return 0
    try:
        usd = Decimal(min_cost.strip())
    except InvalidOperation:
        raise typer.BadParameter(f"not an amount of USD like 1.50: {min_cost!r}", param_hint="--min-cost") from None
    if not usd.is_finite() or usd < 0:
        raise typer.BadParameter(f"not an amount of USD like 1.50: {min_cost!r}", param_hint="--min-cost")
    return least_nano(usd)


def _window(first: date | None, last: date | None, zone: ZoneInfo) -> Window:
    """The range asked for; a missing end is the month's (this month's, when neither is given)."""
    anchor = first or last or utcnow().astimezone(zone).date()
    month = month_window(anchor.year, anchor.month, zone)
    first, last = first or month.first, last or month.last
    if last < first:
        fail(f"--to {last.isoformat()} comes before --from {first.isoformat()}", code="usage_error", exit_code=2)
    return Window(first, last, zone)


def export(
    account: Annotated[str, typer.Option("--account", help="The account whose usage is exported.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write (replaced when complete).")],
    export_format: Annotated[Format, typer.Option("--format", help="csv (default), json or ndjson.")] = Format.CSV,
    granularity: Annotated[
        Granularity, typer.Option("--granularity", help="raw events (default), or sums per hour or day.")
    ] = Granularity.RAW,
    fields: Annotated[
        str | None, typer.Option("--fields", help="The columns, in order, separated by commas (default: all).")
    ] = None,
    min_cost: Annotated[
        str | None, typer.Option("--min-cost", metavar="USD", help="Only the rows costing at least this much.")
    ] = None,
    from_: Annotated[
        str | None, typer.Option("--from", metavar="YYYY-MM-DD", help="First local date (default: the month's 1st).")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", metavar="YYYY-MM-DD", help="Last local date, included (default: month end).")
    ] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="IANA zone the dates are in (default: the account's).")] = None,
    key: Values = None,
    model: Values = None,
    provider: Values = None,
    agent: Values = None,
    member: Values = None,
    as_json: Json = False,
) -> None:
    """Write the account's usage of a range, voided events left out, in time order: every event, or sums per hour or
    day, key, provider, model and operation; as CSV, a JSON array or NDJSON."""
    first, last = _day(from_), _day(to)
    rate = CreditRate(load_or_exit().credits_per_usd)
    filters = Filters.given(provider=provider, key=key, model=model, agent=agent, member=member)
    try:
        columns = fields_of(
            granularity, [name.strip() for name in fields.split(",") if name.strip()] if fields else None
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fields") from None
    least = _least(min_cost)
    # Every field of every event as CSV or JSON: the bytes of `GET /v1/usage/export` (written by PostgreSQL itself).
    plain = granularity is Granularity.RAW and not fields and not least and export_format is not Format.NDJSON

    async def run(ledger: Ledger) -> tuple[int, Window]:
        own_zone = (await Directory(ledger).get_account(account)).timezone
        try:
            zone = ZoneInfo(tz or own_zone)
        except (ZoneInfoNotFoundError, ValueError):
            fail(f"not an IANA time zone: {tz!r}", code="usage_error", exit_code=2)
        window = _window(first, last, zone)
        engine = Engine(LedgerReader(ledger))
        scope = Scope(_OPERATOR, window, account, filters, local_days=zone.key == own_zone)
        expected = (await Views(engine).totals(scope)).requests
        query = Query(window, (Measure.REQUESTS,), filters=filters, account_id=account, local_days=scope.local_days)
        if plain:
            chunks = Exporter(ExportFormat(export_format.value), rate=rate).export(engine, query, viewer=_OPERATOR)
        else:
            names = {found.id: found.name for found in await Directory(ledger).list_keys(account_id=account)}
            chunks = export_rows(
                engine,
                query,
                granularity=granularity,
                export_format=export_format,
                fields=columns,
                names=names,
                min_nano=least,
                viewer=_OPERATOR,
                rate=rate,
            )
        partial = output.with_name(f".{output.name}.partial")
        written = 0
        try:
            with partial.open("wb") as file, _progress() as progress:
                raw = granularity is Granularity.RAW
                task = progress.add_task(f"{output.name}", total=expected if raw else None)
                async for count, data in chunks:
                    file.write(data)
                    written += count
                    progress.update(task, completed=written)
            progress.update(task, total=written, completed=written)
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
        return written, window

    written, window = with_ledger(run)
    what = "events" if granularity is Granularity.RAW else f"{granularity.value} rows"
    if as_json:
        result = {"account_id": account, "from": window.first.isoformat(), "to": window.last.isoformat()}
        result |= {"tz": window.tz.key, "format": export_format.value, "granularity": granularity.value}
        print_json(result | {"rows" if what != "events" else "events": written, "output": str(output)})
        return
    console.print(
        f"{written} {what} of {account}, {window.first.isoformat()} to {window.last.isoformat()} ({window.tz.key}), "
        f"written to {output}"
    )


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
