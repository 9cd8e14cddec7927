"""`farebox usage`: a month's usage by model, key, member or day, from the same engine as the usage API.

The CLI opens the ledger itself and has every admin right, so it reads as the master key does: one account
(`--account`) or all of them. Money is exact decimal USD; each row's sparkline draws its daily cost.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.table import Table

from farebox.analytics import Dimension, Engine, Grain, month_window
from farebox.analytics.views import Scope, Totals, Views
from farebox.cli.output import Json
from farebox.cli.runtime import console, fail, print_json, with_ledger
from farebox.core.clock import utcnow
from farebox.core.credentials import Principal, PrincipalKind
from farebox.core.money import format_usd
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.reader import LedgerReader

__all__ = ["By", "usage"]

_BARS = "▁▂▃▄▅▆▇█"
_OPERATOR = Principal(kind=PrincipalKind.MASTER)


class By(StrEnum):
    MODEL = "model"
    KEY = "key"
    MEMBER = "member"
    DAY = "day"


_DIMENSIONS = {By.MODEL: Dimension.CANONICAL_MODEL, By.KEY: Dimension.KEY, By.MEMBER: Dimension.MEMBER}


def _month(value: str | None) -> str | None:
    if value is not None:
        try:
            datetime.strptime(value.strip(), "%Y-%m")
        except ValueError:
            raise typer.BadParameter(f"not a month like 2026-03: {value!r}") from None
    return value


def sparkline(values: list[int]) -> str:
    """One bar per value, scaled to the largest (a blank for zero)."""
    top = max(values, default=0)
    if top <= 0:
        return " " * len(values)
    return "".join(
        " " if value <= 0 else _BARS[min(len(_BARS) - 1, value * len(_BARS) // (top + 1))] for value in values
    )


def _row(name: str, totals: Totals, daily: list[int] | None) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name, "cost": format_usd(totals.cost_nano), "requests": totals.requests}
    row["tokens"] = totals.tokens
    if daily is not None:
        row |= {"errors": totals.errors, "daily_cost": [format_usd(cost) for cost in daily]}
    return row


def usage(
    account: Annotated[
        str | None, typer.Option("--account", help="Only this account (default: every account).")
    ] = None,
    month: Annotated[
        str | None, typer.Option("--month", callback=_month, metavar="YYYY-MM", help="Default: this month.")
    ] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="IANA zone (default: the account's, else UTC).")] = None,
    by: Annotated[By, typer.Option("--by", help="One row per model, key, member or day.")] = By.MODEL,
    as_json: Json = False,
) -> None:
    """A month's cost, requests and tokens, one row per model, key, member or day, each with its daily sparkline."""

    sparks: list[str] = []

    async def run(ledger: Ledger) -> dict[str, Any]:
        directory = Directory(ledger)
        own_zone = (await directory.get_account(account)).timezone if account else None
        zone_name = tz or own_zone or "UTC"
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            fail(f"not an IANA time zone: {zone_name!r}", code="usage_error", exit_code=2)
        chosen = datetime.strptime(month.strip(), "%Y-%m") if month else utcnow().astimezone(zone)
        window = month_window(chosen.year, chosen.month, zone)
        scope = Scope(_OPERATOR, window, account, local_days=zone_name == own_zone)
        views = Views(Engine(LedgerReader(ledger)))
        days: list[date] = window.days()
        if by is By.DAY:
            series = await views.series(scope, Dimension.ACCOUNT, Grain.DAY)
            per_day = [Totals() for _ in days]
            for slots in series.lines.values():
                for total, slot in zip(per_day, slots, strict=True):
                    total.cost_nano += slot.cost_nano
                    total.requests += slot.requests
                    total.input_tokens += slot.input_tokens
                    total.output_tokens += slot.output_tokens
            rows = [_row(day.isoformat(), total, None) for day, total in zip(days, per_day, strict=True)]
            sparks.extend(sparkline([total.cost_nano]) for total in per_day)
        else:
            dimension = _DIMENSIONS[by]
            breakdown = await views.breakdown(scope, dimension)
            series = await views.series(scope, dimension, Grain.DAY)
            rows = []
            for name, totals in breakdown:
                daily = [slot.cost_nano for slot in series.lines.get(name, [])] or [0] * len(days)
                rows.append(_row(name or "-", totals, daily))
                sparks.append(sparkline(daily))
        total = await views.totals(scope)
        return {
            "account_id": account,
            "from": window.first.isoformat(),
            "to": window.last.isoformat(),
            "tz": zone.key,
            "by": by.value,
            "total": _row("total", total, None),
            "rows": rows,
        }

    result = with_ledger(run)
    if as_json:
        print_json(result)
        return
    total = result["total"]
    title = (
        f"usage {result['from']} to {result['to']} ({result['tz']}): {total['cost']} USD, {total['requests']} requests"
    )
    table = Table(title=title)
    columns = [by.value, "cost (USD)", "requests", "tokens"] + ([] if by is By.DAY else ["errors", "daily cost"])
    for column in columns:
        table.add_column(column, justify="left" if column in (by.value, "daily cost") else "right")
    for row, spark in zip(result["rows"], sparks, strict=True):
        cells = [row["name"], row["cost"], str(row["requests"]), str(row["tokens"])]
        table.add_row(*cells, *([] if by is By.DAY else [str(row["errors"]), spark]))
    console.print(table)
