"""An invoice of a billing cycle (seed 004's billing export): a month of usage in lines per account and key, member
or model, each line rounded to whole cents by the one rounding rule, and taxed at its account's rate.

The rule (`farebox.core.money.whole_cents`): a line's exact cost is rounded to whole cents, half to even. The
invoice's subtotal is the sum of its rounded lines, never the rounded sum, and what rounding moved (the exact cost
minus the subtotal, under half a cent a line) is reported as the residual. A line's tax is its whole cents times
its account's rate, rounded half to even (`farebox.core.tax`); the invoice's tax is the sum of its lines' taxes. The
lines hold every event of the month but the voided ones, as every view does, so the exact total is
`GET /api/usage`'s for the same month.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from farebox.analytics.engine import Dimension, Measure, Row
from farebox.core.money import nano_to_cents, whole_cents
from farebox.core.tax import tax_cents

__all__ = ["MEASURES", "GroupBy", "Invoice", "Line", "invoice"]

MEASURES = (Measure.REQUESTS, Measure.INPUT_TOKENS, Measure.OUTPUT_TOKENS, Measure.COST_NANO)
"""What a line sums, in the order `invoice` reads it."""


class GroupBy(StrEnum):
    """What a line is, within its account."""

    VIRTUAL_KEY = "virtual_key"
    MEMBER = "member"
    ACCOUNT = "account"
    MODEL = "model"

    @property
    def dimensions(self) -> tuple[Dimension, ...]:
        """The engine's grouping: the account, then the line's item (models as canonical, as `/api/usage` has
        them)."""
        item = {
            GroupBy.VIRTUAL_KEY: (Dimension.KEY,),
            GroupBy.MEMBER: (Dimension.MEMBER,),
            GroupBy.ACCOUNT: (),
            GroupBy.MODEL: (Dimension.CANONICAL_MODEL,),
        }[self]
        return (Dimension.ACCOUNT, *item)


@dataclass(frozen=True, slots=True)
class Line:
    """One account's usage of the cycle for one item (a key, a member, a model; None: usage without one)."""

    account_id: str
    item: str | None
    requests: int
    input_tokens: int
    output_tokens: int
    cost_nano: int
    tax_rate_ppm: int

    @property
    def exact_cents(self) -> Decimal:
        return nano_to_cents(self.cost_nano)

    @property
    def amount_cents(self) -> int:
        """What the line bills: its cost in whole cents, half to even."""
        return whole_cents(self.cost_nano)

    @property
    def tax_cents(self) -> int:
        return tax_cents(self.amount_cents, self.tax_rate_ppm)


@dataclass(frozen=True, slots=True)
class Invoice:
    """The lines of a cycle, by account, then by descending cost, then by item."""

    lines: Sequence[Line]

    @property
    def cost_nano(self) -> int:
        return sum(line.cost_nano for line in self.lines)

    @property
    def exact_cents(self) -> Decimal:
        return nano_to_cents(self.cost_nano)

    @property
    def subtotal_cents(self) -> int:
        """The sum of the rounded lines."""
        return sum(line.amount_cents for line in self.lines)

    @property
    def residual_cents(self) -> Decimal:
        """What rounding each line moved: the exact total minus the subtotal (under half a cent a line)."""
        return self.exact_cents - self.subtotal_cents

    @property
    def tax_cents(self) -> int:
        return sum(line.tax_cents for line in self.lines)

    def accounts(self) -> dict[str, list[Line]]:
        """The lines of each account, in the invoice's order."""
        found: dict[str, list[Line]] = {}
        for line in self.lines:
            found.setdefault(line.account_id, []).append(line)
        return found


def invoice(rows: Sequence[Row], rates: dict[str, int]) -> Invoice:
    """The invoice of the engine's rows of a cycle (grouped by `GroupBy.dimensions`, summing `MEASURES`), each
    account's lines taxed at its rate in `rates` (parts per million; 0 when absent). A group whose every event
    was voided (no request, no cost) is no line."""
    lines = [
        Line(
            account_id=row.dimensions[0],
            item=(row.dimensions[1] or None) if len(row.dimensions) > 1 else None,
            requests=row.measures[0],
            input_tokens=row.measures[1],
            output_tokens=row.measures[2],
            cost_nano=row.measures[3],
            tax_rate_ppm=rates.get(row.dimensions[0], 0),
        )
        for row in rows
        if row.measures[0] or row.measures[3]
    ]
    lines.sort(key=lambda line: (line.account_id, -line.cost_nano, line.item or ""))
    return Invoice(lines)
