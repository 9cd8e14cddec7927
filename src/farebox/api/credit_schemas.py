"""The bodies of the prepaid-credit routes, and how an account's credits are presented (API and CLI alike).

A top-up gives either `amount_usd` (decimal USD) or `credits` (converted at `credits_per_usd`), exactly one, and
an optional `note`. Amounts are decimal strings both ways, never floats: USD with at most 9 decimal places, and
credits exactly as many as the nano-USD they stand for (at the default 20,000 per USD, up to 5 places).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from farebox.api.fields import Usd
from farebox.core.credits import CreditRate
from farebox.core.money import MoneyError, format_usd
from farebox.errors import ValidationFailed
from farebox.ledger.credits import MAX_NOTE, CreditStatement, TopUp

__all__ = ["CreditsOut", "TopUpCreated", "TopUpIn", "TopUpOut", "credits_out", "top_up_created", "top_up_out"]


def _no_float(value: object) -> object:
    """A bool is not 1 credit, and a float is not exact; the rest is pydantic's and `CreditRate.parse`'s."""
    if isinstance(value, bool | float):
        raise ValueError('send credits as a decimal string such as "500000"')
    return value


Credits = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    WithJsonSchema({"type": "string", "description": "An amount of credits", "examples": ["500000"]}),
]


class TopUpIn(BaseModel):
    """A top-up: `amount_usd` or `credits` (exactly one), and why."""

    model_config = ConfigDict(extra="forbid")

    amount_usd: Usd | None = Field(None, description='What the top-up is worth in USD, e.g. `"25.00"`.')
    credits: Credits | None = Field(None, description="Or the same in credits, at `credits_per_usd`.")
    note: str | None = Field(None, max_length=MAX_NOTE, description="Why (an invoice, a grant); kept for the audit.")

    @model_validator(mode="after")
    def _one_amount(self) -> TopUpIn:
        if (self.amount_usd is None) == (self.credits is None):
            raise ValueError("give the amount as amount_usd or as credits, one of them")
        return self

    def amount_nano(self, rate: CreditRate) -> int:
        """The top-up in nano-USD.

        Raises:
            ValidationFailed: `credits` is not a whole number of nano-USD at `rate` (422 on `credits`).
        """
        if self.amount_usd is not None:
            return self.amount_usd
        assert self.credits is not None
        try:
            return rate.parse(self.credits)
        except MoneyError as exc:
            raise ValidationFailed(f"credits: {exc}", details=[{"loc": "credits", "message": str(exc)}]) from None


class TopUpOut(BaseModel):
    """One top-up, as recorded."""

    id: str
    account_id: str
    amount: str = Field(description="Decimal USD.")
    credits: str = Field(description="The amount in credits, at today's `credits_per_usd`.")
    note: str | None
    added_by: str = Field(description="Who made it: `master` (the master key), `member` (a member's token) or `cli`.")
    added_by_member_id: str | None = Field(description="The member who made it, when `added_by` is `member`.")
    created_at: datetime


class TopUpCreated(TopUpOut):
    """A new top-up, and the account's balance right after it."""

    balance: str = Field(description="Decimal USD.")
    balance_credits: str


class CreditsOut(BaseModel):
    """An account's prepaid credits: the balance, what it was given and what spend drew, and every top-up."""

    account_id: str
    prepaid: bool = Field(
        description="Whether the account holds credits (was ever topped up); only then is its spend held to a balance."
    )
    credits_per_usd: int
    balance: str | None = Field(
        description="Topped up minus used, decimal USD (below zero when ingested usage overdrew it); null: not prepaid."
    )
    balance_credits: str | None
    reserved: str = Field(description="Held on the balance by requests in flight, decimal USD.")
    reserved_credits: str
    topped_up: str = Field(description="Every top-up, summed, decimal USD.")
    topped_up_credits: str
    used: str = Field(description="What spend recorded since the first top-up drew, decimal USD.")
    used_credits: str
    top_ups: list[TopUpOut] = Field(description="Newest first.")


def top_up_out(top_up: TopUp, rate: CreditRate) -> TopUpOut:
    """The API shape of a top-up."""
    return TopUpOut(
        id=top_up.id,
        account_id=top_up.account_id,
        amount=format_usd(top_up.amount_nano),
        credits=rate.format(top_up.amount_nano),
        note=top_up.note,
        added_by=top_up.by.kind,
        added_by_member_id=top_up.by.member_id,
        created_at=top_up.created_at.replace(microsecond=0),  # times are answered to the second
    )


def top_up_created(top_up: TopUp, rate: CreditRate, *, balance_nano: int) -> TopUpCreated:
    """The API shape of a new top-up, with the account's balance right after it."""
    return TopUpCreated(
        **top_up_out(top_up, rate).model_dump(),
        balance=format_usd(balance_nano),
        balance_credits=rate.format(balance_nano),
    )


def credits_out(statement: CreditStatement, rate: CreditRate, *, reserved_nano: int) -> CreditsOut:
    """The API shape of an account's credits (`reserved_nano`: held by this process's requests in flight)."""
    prepaid, balance = statement.prepaid, statement.balance_nano
    granted = 0 if prepaid is None else prepaid.granted_nano
    used = 0 if prepaid is None else prepaid.drawn_nano(statement.spent_nano)
    return CreditsOut(
        account_id=statement.account_id,
        prepaid=prepaid is not None,
        credits_per_usd=rate.per_usd,
        balance=None if balance is None else format_usd(balance),
        balance_credits=None if balance is None else rate.format(balance),
        reserved=format_usd(reserved_nano),
        reserved_credits=rate.format(reserved_nano),
        topped_up=format_usd(granted),
        topped_up_credits=rate.format(granted),
        used=format_usd(used),
        used_credits=rate.format(used),
        top_ups=[top_up_out(top_up, rate) for top_up in statement.top_ups],
    )
