"""Prepaid credits: what an account was given (`Prepaid`), the balance as a limit on its spend (`Balance`), and
credits as the unit people read them in (`CreditRate`).

Money stays nano-USD; credits are only how it is presented and typed. An operator sets how many credits one
USD buys (`credits_per_usd`, a whole number), so every nano-USD amount is an exact, finite number of credits.

An account's balance draws on its all-time spend counter (the account's `total` counter, which every proxied
request and every ingested event adds to): it holds `granted` credits from its top-ups, and is empty when the
spend counted since its first top-up reaches them. So the balance is one more limit on a spend counter, held
and refused by the counter store under the same rule as a cap (`core.spend.fits`): no parallel requests can
draw it below zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from farebox.core.money import NANO_PER_USD, MoneyError, format_usd
from farebox.core.periods import Period
from farebox.core.spend import CounterId, Scope, fits
from farebox.errors import BudgetExceeded

__all__ = [
    "DEFAULT_CREDITS_PER_USD",
    "MAX_GRANTED_NANO",
    "Balance",
    "CreditRate",
    "CreditsExhausted",
    "Prepaid",
    "balance_counter",
]

DEFAULT_CREDITS_PER_USD = 20_000
"""One credit is 0.00005 USD: the rate that turns the seed's per-model figures into its credits exactly."""
MAX_GRANTED_NANO = 10**18
"""The most an account may be given in all, a billion USD: far from the 64-bit limit of the ledger's columns."""


def balance_counter(account_id: str) -> CounterId:
    """The spend counter an account's balance draws on: its all-time (`total`) spend."""
    return CounterId(Scope.ACCOUNT, account_id, Period.TOTAL, 0)


@dataclass(frozen=True, slots=True)
class CreditRate:
    """How many credits one USD buys; converts nano-USD to credits and back, exactly."""

    per_usd: int = DEFAULT_CREDITS_PER_USD

    def __post_init__(self) -> None:
        if self.per_usd < 1:
            raise ValueError(f"credits per USD must be a whole number of at least 1, not {self.per_usd}")

    def credits(self, nano: int) -> Decimal:
        """The exact number of credits `nano` nano-USD make."""
        return Decimal(nano * self.per_usd).scaleb(-9)

    def format(self, nano: int) -> str:
        """Credits as a decimal string without trailing zeros or exponent (`"857605"`, `"0.00002"`, `"-12.5"`).

        Integer arithmetic only: it runs for every proxied request of a prepaid account.
        """
        whole, fraction = divmod(abs(nano) * self.per_usd, NANO_PER_USD)
        sign = "-" if nano < 0 else ""
        digits = f"{fraction:09d}".rstrip("0")
        return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"

    def parse(self, value: str | int | Decimal) -> int:
        """Nano-USD of an amount of credits a user typed ("500000", 12, Decimal("0.5")).

        Taken exactly or not at all: an amount that is not a whole number of nano-USD is refused.

        Raises:
            MoneyError: not a number, not finite, a float, or finer than one nano-USD.
        """
        if isinstance(value, bool | float):
            raise MoneyError("amounts are decimal strings or integers, never floats")
        try:
            credits = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
        except InvalidOperation:
            raise MoneyError(f"not a decimal amount: {value!r}") from None
        if not credits.is_finite():
            raise MoneyError(f"not a finite amount: {value!r}")
        numerator, denominator = credits.as_integer_ratio()
        nano, rest = divmod(numerator * NANO_PER_USD, denominator * self.per_usd)
        if rest:
            smallest = self.format(1)
            raise MoneyError(f"{value!r} credits is not a whole number of nano-USD (1 nano-USD is {smallest} credits)")
        return nano


@dataclass(frozen=True, slots=True)
class Prepaid:
    """What an account holding credits was given, and where its drawing on them starts."""

    account_id: str
    granted_nano: int
    """Every top-up, summed."""
    opening_nano: int
    """The account's all-time spend when its first top-up was made (less the voids of spend recorded before it)."""
    topped_up_at: datetime
    """When the latest top-up was made."""

    @property
    def limit_nano(self) -> int:
        """The all-time spend at which the balance is empty."""
        return self.opening_nano + self.granted_nano

    def balance_nano(self, spent_nano: int) -> int:
        """What is left, given the account's all-time spend (negative when ingested usage overdrew it)."""
        return self.limit_nano - spent_nano

    def drawn_nano(self, spent_nano: int) -> int:
        """What the spend since the first top-up drew from the credits."""
        return spent_nano - self.opening_nano


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's prepaid balance as a limit: its all-time spend may not pass `limit_nano`."""

    owner_id: str
    """The account."""
    name: str
    limit_nano: int
    rate: CreditRate

    @property
    def scope(self) -> Scope:
        return Scope.ACCOUNT

    @property
    def period(self) -> Period:
        return Period.TOTAL

    def allows(self, used_nano: int, amount_nano: int) -> bool:
        """The cap rule, on the balance: an empty balance refuses even a request that may cost nothing."""
        return fits(self.limit_nano, used_nano=used_nano, amount_nano=amount_nano)

    def refused(self, *, used_nano: int, amount_nano: int) -> CreditsExhausted:
        """The refusal of a request the balance does not allow (`allows` said it does not)."""
        left = self.limit_nano - used_nano
        if left <= 0:
            message = f"credits exhausted: account {self.name!r} has no prepaid credits left; top up to continue"
        else:
            message = (
                f"credits exhausted: this request may cost up to {self._credits(amount_nano)}, and account "
                f"{self.name!r} has {self._credits(left)} remaining"
            )
        return CreditsExhausted(message, balance=self)

    def _credits(self, nano: int) -> str:
        return f"{self.rate.format(nano)} credits ({format_usd(nano)} USD)"


class CreditsExhausted(BudgetExceeded):
    """An account's prepaid balance refused a request (402 `credits_exhausted`); `balance` is the one that did."""

    default_code = "credits_exhausted"

    def __init__(self, message: str, *, balance: Balance) -> None:
        super().__init__(message)
        self.balance = balance
