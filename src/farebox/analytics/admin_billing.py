"""`POST /api/admin/analytics/billing-export` (seed 004): a billing cycle's invoice (`farebox.analytics.billing`) as
JSON or CSV lines, or as a FOCUS 1.2 cost-and-usage CSV (`farebox.analytics.focus`).

An account's cycle is its local calendar month; the master key naming no account gets every account's, in UTC (the
operator view, as `GET /api/usage?admin=1`). Owners, admins and billing members export their own account.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.responses import Response

from farebox.analytics.admin_common import Scoped, engine, envelope, invalid, scoped_responses
from farebox.analytics.billing import MEASURES, GroupBy, Invoice, Line, invoice
from farebox.analytics.calendar import MONTH_PATTERN, Grain, Window, month_window, parse_month
from farebox.analytics.engine import Query
from farebox.analytics.focus import DAILY_GROUPS, DAILY_MEASURES, Cycle, focus_csv
from farebox.analytics.query_times import TimedRoute
from farebox.analytics.views import Scope
from farebox.core.money import format_usd
from farebox.core.owners import Account
from farebox.core.tax import format_rate
from farebox.services import services

__all__ = ["router"]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"], route_class=TimedRoute)

ROUNDING_RULE = "each line's exact cost rounded to whole cents, half to even; the subtotal is the sum of the lines"
_ITEM = {
    GroupBy.VIRTUAL_KEY: "virtualKeyId",
    GroupBy.MEMBER: "memberId",
    GroupBy.MODEL: "model",
}
_NAMED = {GroupBy.VIRTUAL_KEY: "virtualKeyName", GroupBy.MEMBER: "memberName"}


class BillingFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    FOCUS = "focus"


class BillingExportIn(BaseModel):
    """The seed's billing export: a cycle, how its lines are grouped, and what they carry."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)

    format: BillingFormat = Field(
        BillingFormat.JSON, description="`json`, `csv` (the lines), or `focus` (a FinOps FOCUS 1.2 CSV)."
    )
    period: Literal["monthly"] = Field("monthly", description="Billing cycles are calendar months.")
    billing_cycle: Annotated[str, Field(pattern=MONTH_PATTERN, description="The month, `YYYY-MM`.")]
    group_by: GroupBy = Field(GroupBy.VIRTUAL_KEY, description="A line per account and key, member or model.")
    include_metadata: bool = Field(False, description="Names, the cycle's bounds, the rounding rule.")
    include_tax_calculations: bool = Field(False, description="Each line taxed at its account's `tax_rate`.")


@router.post(
    "/billing-export",
    summary="A billing cycle's invoice lines, each rounded to whole cents, as JSON, CSV or FOCUS 1.2",
    responses={
        200: {
            "description": "The invoice: `json` in the seed's envelope, or a CSV file (`csv`, `focus`).",
            "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
        },
        **scoped_responses(
            "A bad body: no `billingCycle`, or not a month; an unknown `format`, `period` or `groupBy`. "
            "`error.details` names it."
        ),
    },
)
async def billing_export(request: Request, body: BillingExportIn, scope: Scoped) -> Response:
    """The cycle's usage in lines (voided events left out), each line's exact cost and its whole cents; the
    subtotal is the sum of the rounded lines and the residual what rounding moved, so the exact total equals
    `GET /api/usage` for the month."""
    try:
        year, month = parse_month(body.billing_cycle)
    except ValueError as exc:
        raise invalid("billingCycle", str(exc)) from None
    found = services(request)
    window = month_window(year, month, scope.window.tz)
    accounts = await _accounts(request, scope)
    rates = {account.id: account.tax_rate_ppm for account in accounts} if body.include_tax_calculations else {}
    analytics = engine(request)
    query = Query(
        window,
        MEASURES,
        group_by=body.group_by.dimensions,
        account_id=scope.account_id,
        local_days=scope.local_days,
    )
    invoiced = invoice(await analytics.run(query, viewer=scope.viewer), rates)
    names = await _names(request, scope, accounts, body.group_by)
    stem = f"{scope.account_id or 'all-accounts'}-{body.billing_cycle}"
    if body.format is BillingFormat.FOCUS:
        daily = Query(
            window,
            DAILY_MEASURES,
            group_by=DAILY_GROUPS,
            grain=Grain.DAY,
            account_id=scope.account_id,
            local_days=scope.local_days,
        )
        cycle = Cycle(
            body.billing_cycle,
            windows={account.id: window for account in accounts},
            account_names={account.id: account.name for account in accounts},
            key_names=names if body.group_by is GroupBy.VIRTUAL_KEY else await _key_names(request, scope),
        )
        data = focus_csv(
            await analytics.run(daily, viewer=scope.viewer), invoiced, cycle, with_tax=body.include_tax_calculations
        )
        return _file(data, f"focus-{stem}.csv")
    account_names = {account.id: account.name for account in accounts}
    if body.format is BillingFormat.CSV:
        return _file(_csv(invoiced, body, account_names, names), f"billing-{stem}.csv")
    data_out: dict[str, Any] = {
        "billingCycle": body.billing_cycle,
        "accountId": scope.account_id,
        "groupBy": body.group_by.value,
        "currency": "USD",
        "complete": found.directory.now() >= window.until,
        "lines": [_line(line, body, account_names, names) for line in invoiced.lines],
        "totals": _totals(invoiced, with_tax=body.include_tax_calculations),
    }
    if body.include_metadata:
        data_out["metadata"] = _metadata(found.directory.now(), window, scope, accounts)
    return envelope(data_out)


async def _accounts(request: Request, scope: Scope) -> list[Account]:
    directory = services(request).directory
    if scope.account_id is not None:
        return [await directory.get_account(scope.account_id)]
    return await directory.list_accounts()


async def _key_names(request: Request, scope: Scope) -> dict[str, str]:
    keys = await services(request).directory.list_keys(account_id=scope.account_id)
    return {key.id: key.name for key in keys}


async def _names(request: Request, scope: Scope, accounts: list[Account], group_by: GroupBy) -> dict[str, str]:
    """The names of the lines' items: keys' or members' (models and accounts are their own names)."""
    if group_by is GroupBy.VIRTUAL_KEY:
        return await _key_names(request, scope)
    if group_by is GroupBy.MEMBER:
        directory = services(request).directory
        return {member.id: member.name for account in accounts for member in await directory.list_members(account.id)}
    return {}


def _line(line: Line, body: BillingExportIn, account_names: dict[str, str], names: dict[str, str]) -> dict[str, Any]:
    shown: dict[str, Any] = {"accountId": line.account_id}
    item = _ITEM.get(body.group_by)
    if item is not None:
        shown[item] = line.item
    if body.include_metadata:
        shown["accountName"] = account_names.get(line.account_id)
        named = _NAMED.get(body.group_by)
        if named is not None:
            shown[named] = names.get(line.item) if line.item else None
    shown |= {
        "requests": line.requests,
        "inputTokens": line.input_tokens,
        "outputTokens": line.output_tokens,
        "cost": format_usd(line.cost_nano),
        "exactCents": line.exact_cents,
        "amountCents": line.amount_cents,
    }
    if body.include_tax_calculations:
        shown |= {
            "taxRate": format_rate(line.tax_rate_ppm),
            "taxCents": line.tax_cents,
            "totalCents": line.amount_cents + line.tax_cents,
        }
    return shown


def _totals(invoiced: Invoice, *, with_tax: bool) -> dict[str, Any]:
    tax = invoiced.tax_cents if with_tax else 0
    totals: dict[str, Any] = {
        "requests": sum(line.requests for line in invoiced.lines),
        "inputTokens": sum(line.input_tokens for line in invoiced.lines),
        "outputTokens": sum(line.output_tokens for line in invoiced.lines),
        "cost": format_usd(invoiced.cost_nano),
        "exactCents": invoiced.exact_cents,
        "subtotalCents": invoiced.subtotal_cents,
        "roundingResidualCents": invoiced.residual_cents,
    }
    if with_tax:
        totals["taxCents"] = tax
    totals["totalCents"] = invoiced.subtotal_cents + tax
    return totals


def _metadata(now: datetime, window: Window, scope: Scope, accounts: list[Account]) -> dict[str, Any]:
    return {
        "generatedAt": now.isoformat().replace("+00:00", "Z"),
        "timezone": window.tz.key,
        "periodStart": window.since.astimezone(window.tz).isoformat(),
        "periodEnd": window.until.astimezone(window.tz).isoformat(),
        "roundingRule": ROUNDING_RULE,
        "accounts": [
            {"id": account.id, "name": account.name, "taxRate": format_rate(account.tax_rate_ppm)}
            for account in accounts
        ],
    }


def _csv(invoiced: Invoice, body: BillingExportIn, account_names: dict[str, str], names: dict[str, str]) -> bytes:
    """The lines as CSV, a column per field of a JSON line (snake case), the cycle first."""
    rows = [_line(line, body, account_names, names) for line in invoiced.lines]
    fields = list(_line(Line("", None, 0, 0, 0, 0, 0), body, {}, {}))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["billing_cycle", *(_snake(field) for field in fields)])
    writer.writerows([body.billing_cycle, *(_cell(row[field]) for field in fields)] for row in rows)
    return text.getvalue().encode()


def _snake(name: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in name)


def _cell(value: Any) -> Any:
    return "" if value is None else format(value.normalize(), "f") if isinstance(value, Decimal) else value


def _file(data: bytes, filename: str) -> Response:
    return Response(
        data,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
