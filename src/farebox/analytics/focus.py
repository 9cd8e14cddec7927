"""The billing export as a FinOps FOCUS 1.2 cost-and-usage dataset (CSV), the open format cloud cost tools import.

Rows, each in one account's billing period (its local month, written as UTC instants as FOCUS wants):

- **Usage**, one per local day, virtual key, member, provider, model and operation: the exact cost (no discount, so
  billed, effective, list and contracted cost are equal), the tokens consumed (or the requests, for usage without
  tokens), the key as the sub-account, the model as the SKU and the operation as its meter.
- **Adjustment**, one per account whose lines rounding to whole cents moved: the subtotal minus the exact cost.
- **Tax**, one per invoice line taxed (with the tax calculations).

So the rows' `BilledCost` adds up to the invoice's total, to the cent. Every FOCUS 1.2 column that must be present
is; the ones that apply to farebox's usage are filled, and farebox's own measures follow as `x_` columns.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from farebox.analytics.billing import Invoice, Line
from farebox.analytics.calendar import Window
from farebox.analytics.engine import Dimension, Measure, Row
from farebox.core.money import NANO_PER_CENT, format_usd
from farebox.core.tax import format_rate

__all__ = ["COLUMNS", "DAILY_GROUPS", "DAILY_MEASURES", "Cycle", "focus_csv"]

COLUMNS = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "x_InputTokens",
    "x_MemberId",
    "x_Operation",
    "x_OutputTokens",
    "x_Requests",
)
"""The FOCUS columns in the specification's (alphabetical) order, then farebox's own."""
DAILY_GROUPS = (
    Dimension.ACCOUNT,
    Dimension.KEY,
    Dimension.MEMBER,
    Dimension.PROVIDER,
    Dimension.MODEL,
    Dimension.OPERATION,
)
"""How the usage rows are grouped, each local day."""
DAILY_MEASURES = (Measure.REQUESTS, Measure.INPUT_TOKENS, Measure.OUTPUT_TOKENS, Measure.COST_NANO)
ISSUER = "farebox"
"""Who issues the invoice (`InvoiceIssuerName`), and the provider of what is not an LLM's usage (rounding, tax)."""
_CATEGORY = "AI and Machine Learning"
_SUBCATEGORY = "Generative AI"


@dataclass(frozen=True, slots=True)
class Cycle:
    """A billing cycle (`YYYY-MM`) and the accounts in it: each one's window, name and key names."""

    name: str
    windows: dict[str, Window]
    account_names: dict[str, str]
    key_names: dict[str, str]


def focus_csv(daily: Sequence[Row], invoiced: Invoice, cycle: Cycle, *, with_tax: bool) -> bytes:
    """The dataset as CSV: a header, then the usage rows (`daily`: rows of `DAILY_GROUPS` and `DAILY_MEASURES` by
    local day) in time order, then each account's rounding adjustment and taxes."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    ordered = sorted(daily, key=lambda row: (row.dimensions[0], row.at or date.min, row.dimensions[1:]))
    writer.writerows(_usage(row, cycle) for row in ordered if row.measures[0] or row.measures[3])
    for account_id, lines in invoiced.accounts().items():
        writer.writerows(_charges(account_id, lines, cycle, with_tax=with_tax))
    return text.getvalue().encode()


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _common(account_id: str, cycle: Cycle) -> dict[str, Any]:
    window = cycle.windows[account_id]
    return {
        "BillingAccountId": account_id,
        "BillingAccountName": cycle.account_names.get(account_id),
        "BillingAccountType": "Account",
        "BillingCurrency": "USD",
        "BillingPeriodEnd": _utc(window.until),
        "BillingPeriodStart": _utc(window.since),
        "InvoiceId": f"{account_id}/{cycle.name}",
        "InvoiceIssuerName": ISSUER,
        "ServiceCategory": _CATEGORY,
        "ServiceSubcategory": _SUBCATEGORY,
    }


def _row(values: dict[str, Any]) -> list[Any]:
    return [values.get(column) for column in COLUMNS]


def _usage(row: Row, cycle: Cycle) -> list[Any]:
    account_id, key_id, member_id, provider, model, operation = row.dimensions
    requests, input_tokens, output_tokens, cost_nano = row.measures
    assert isinstance(row.at, date)
    day = Window(row.at, row.at, cycle.windows[account_id].tz)
    tokens = input_tokens + output_tokens
    quantity, unit = (tokens, "Tokens") if tokens else (requests, "Requests")
    cost = format_usd(cost_nano)
    return _row(
        {
            **_common(account_id, cycle),
            "BilledCost": cost,
            "ChargeCategory": "Usage",
            "ChargeDescription": f"{requests} {operation} requests to {model} through {provider}",
            "ChargeFrequency": "Usage-Based",
            "ChargePeriodEnd": _utc(day.until),
            "ChargePeriodStart": _utc(day.since),
            "ConsumedQuantity": quantity,
            "ConsumedUnit": unit,
            "ContractedCost": cost,
            "EffectiveCost": cost,
            "ListCost": cost,
            "PricingCategory": "Standard",
            "PricingQuantity": quantity,
            "PricingUnit": unit,
            "ProviderName": provider,
            "PublisherName": provider,
            "ServiceName": provider,
            "SkuId": model,
            "SkuMeter": operation,
            "SubAccountId": key_id or None,
            "SubAccountName": cycle.key_names.get(key_id) if key_id else None,
            "SubAccountType": "Virtual Key" if key_id else None,
            "x_InputTokens": input_tokens,
            "x_MemberId": member_id or None,
            "x_Operation": operation,
            "x_OutputTokens": output_tokens,
            "x_Requests": requests,
        }
    )


def _charge(account_id: str, cycle: Cycle, category: str, description: str, nano: int) -> list[Any]:
    """A charge of the whole billing period that is not usage: rounding or tax."""
    window = cycle.windows[account_id]
    cost = format_usd(nano)
    return _row(
        {
            **_common(account_id, cycle),
            "BilledCost": cost,
            "ChargeCategory": category,
            "ChargeDescription": description,
            "ChargeFrequency": "Recurring",
            "ChargePeriodEnd": _utc(window.until),
            "ChargePeriodStart": _utc(window.since),
            "ContractedCost": cost,
            "EffectiveCost": cost,
            "ListCost": cost,
            "ProviderName": ISSUER,
            "PublisherName": ISSUER,
            "ServiceName": ISSUER,
        }
    )


def _charges(account_id: str, lines: Sequence[Line], cycle: Cycle, *, with_tax: bool) -> Iterable[list[Any]]:
    """An account's rounding adjustment (when rounding moved its lines) and its lines' taxes."""
    rounded = sum(line.amount_cents for line in lines) * NANO_PER_CENT - sum(line.cost_nano for line in lines)
    if rounded:
        yield _charge(account_id, cycle, "Adjustment", "Each invoice line rounded to whole cents", rounded)
    if not with_tax:
        return
    for line in lines:
        if line.tax_cents:
            what = f" on {line.item}" if line.item else ""
            description = f"Tax{what} at a rate of {format_rate(line.tax_rate_ppm)}"
            yield _charge(account_id, cycle, "Tax", description, line.tax_cents * NANO_PER_CENT)
