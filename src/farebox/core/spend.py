"""Spend as a typed domain: whose spend (`Scope`), which counter holds it (`CounterId`), the caps on it
(`Cap`), the rule every limit on a counter follows (`fits`; `refusal` says why a cap does not allow a request),
what a counter store holds requests to (`Limit`: a cap, or an account's prepaid balance in `core.credits`), and
where a cap stands in its period (`BudgetStatus`).

A key, a member and an account each own spend. Every recorded cost adds to a counter per owner and per
cap period (daily, weekly, monthly, total), the period's bounds taken in the account's timezone. A cap
allows a request when the counter's spend, plus what requests in flight hold, plus the request's own worst
case, fits under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo

from farebox.core.money import format_usd
from farebox.core.owners import Account, Member, VirtualKey
from farebox.core.periods import Period, period_end, period_start
from farebox.errors import BudgetExceeded

__all__ = [
    "BudgetStatus",
    "Cap",
    "CapRefused",
    "CounterId",
    "Limit",
    "Owner",
    "Scope",
    "account_of",
    "budget_status",
    "caps_of",
    "fits",
    "owner_label",
    "refusal",
    "scope_of",
]

Owner = Account | Member | VirtualKey
"""Anything spend is attributed to and a cap can be set on."""

_FIRST_HOUR_S = 3600
_DAY_S = 86_400


class Scope(StrEnum):
    """The kind of owner a counter or a cap belongs to."""

    KEY = "key"
    MEMBER = "member"
    ACCOUNT = "account"


def scope_of(owner: Owner) -> Scope:
    """The scope of a key, member or account: the one place that maps an owner's type to it."""
    if isinstance(owner, VirtualKey):
        return Scope.KEY
    if isinstance(owner, Member):
        return Scope.MEMBER
    return Scope.ACCOUNT


def account_of(owner: Owner) -> str:
    """The account an owner belongs to (an account's is itself)."""
    return owner.id if isinstance(owner, Account) else owner.account_id


def owner_label(owner: Owner) -> str:
    """How people know an owner: a member's e-mail, a key's or an account's name."""
    return owner.email if isinstance(owner, Member) else owner.name


class CounterId(NamedTuple):
    """One spend counter: an owner's spend in one period. A tuple, so that it keys dicts and binds to SQL cheaply."""

    scope: Scope
    owner_id: str
    period: Period
    start: int
    """The period's start in epoch seconds (in the account's timezone when the spend was counted)."""

    @classmethod
    def of(cls, scope: Scope, owner_id: str, period: Period, *, at: datetime, tz: ZoneInfo) -> CounterId:
        """The counter of the owner's period that contains `at`."""
        return cls(scope, owner_id, period, int(period_start(period, at=at, tz=tz).timestamp()))


def fits(limit_nano: int, *, used_nano: int, amount_nano: int) -> bool:
    """The rule of every limit: whether `amount_nano` more fits under `limit_nano` beside `used_nano` (spent and
    held). A limit already reached refuses even a request that may cost nothing."""
    return used_nano < limit_nano and used_nano + amount_nano <= limit_nano


class Limit(Protocol):
    """A limit on one owner's spend counter of one period, which a counter store holds requests to by `fits`."""

    @property
    def scope(self) -> Scope: ...

    @property
    def owner_id(self) -> str: ...

    @property
    def period(self) -> Period: ...

    @property
    def limit_nano(self) -> int:
        """The most the counter may hold, spent and reserved together."""
        ...

    def refused(self, *, used_nano: int, amount_nano: int) -> BudgetExceeded:
        """The error (402) that refuses a request this limit does not allow."""
        ...


@dataclass(frozen=True, slots=True)
class Cap:
    """One spend cap: `cap_nano` per `period` for a key, member or account."""

    scope: Scope
    owner_id: str
    name: str
    cap_nano: int
    period: Period

    @property
    def limit_nano(self) -> int:
        return self.cap_nano

    def allows(self, used_nano: int, amount_nano: int) -> bool:
        """The cap rule (`fits`): a spent cap refuses even a request that may cost nothing, its period is over."""
        return fits(self.cap_nano, used_nano=used_nano, amount_nano=amount_nano)

    def refused(self, *, used_nano: int, amount_nano: int) -> CapRefused:
        """The refusal (402 `budget_exceeded`) of a request the cap does not allow, naming the cap."""
        return CapRefused(refusal(self, used_nano=used_nano, amount_nano=amount_nano), cap=self)

    def describe(self) -> str:
        return (
            f"the {self.period.value} spend cap of {self.scope.value} {self.name!r} ({format_usd(self.cap_nano)} USD)"
        )


class CapRefused(BudgetExceeded):
    """A cap refused a request (402); `cap` is the one that did."""

    def __init__(self, message: str, *, cap: Cap) -> None:
        super().__init__(message)
        self.cap = cap


def caps_of(owners: tuple[Owner, ...] | list[Owner]) -> tuple[Cap, ...]:
    """The caps the owners set, in order (an owner without a cap sets none)."""
    return tuple(
        Cap(scope_of(owner), owner.id, owner_label(owner), owner.spend_cap_nano, owner.cap_period)
        for owner in owners
        if owner.spend_cap_nano is not None
    )


def refusal(cap: Cap, *, used_nano: int, amount_nano: int) -> str:
    """Why `cap` does not allow `amount_nano` more beside `used_nano` (`Cap.allows` said it does not)."""
    if used_nano >= cap.cap_nano:
        return f"budget exceeded: {cap.describe()} is spent for this period (0 USD remaining)"
    return (
        f"budget exceeded: this request may cost up to {format_usd(amount_nano)} USD, "
        f"and {cap.describe()} has {format_usd(cap.cap_nano - used_nano)} USD remaining"
    )


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Where one owner's cap (or, without a cap, its spend) stands in its current period."""

    cap: Cap | None
    period: Period
    period_start: datetime
    period_end: datetime | None
    """Start of the next period; None for `total`."""
    spent_nano: int
    reserved_nano: int
    """Worst-case cost held by requests in flight."""
    projected_nano: int | None
    """Spend at the period's end if it goes on at the rate so far (None for the `total` period)."""
    average_daily_nano: int
    days_remaining: int | None
    """Whole or partial days left in the period, counting today (None for `total`)."""

    @property
    def remaining_nano(self) -> int | None:
        return None if self.cap is None else max(0, self.cap.cap_nano - self.spent_nano - self.reserved_nano)

    @property
    def utilization(self) -> Decimal | None:
        """(spent + reserved) / cap to four places; a zero cap with anything used is fully used."""
        if self.cap is None:
            return None
        used, whole = self.spent_nano + self.reserved_nano, self.cap.cap_nano
        if whole <= 0:
            return Decimal("1.0000") if used > 0 else Decimal("0.0000")
        return (Decimal(used) / Decimal(whole)).quantize(Decimal("0.0001"))

    @property
    def on_track(self) -> bool | None:
        """Whether the projected spend stays within the cap (None without a cap or a period end)."""
        if self.cap is None or self.projected_nano is None:
            return None
        return self.projected_nano <= self.cap.cap_nano


def budget_status(
    cap: Cap | None, *, period: Period, tz: ZoneInfo, now: datetime, spent_nano: int, reserved_nano: int
) -> BudgetStatus:
    """Where spend stands in the period containing `now`: projected linearly from the rate so far.

    The first hour of a period projects as if a full hour had passed, so one early request does not
    project a month's spend from a few seconds.
    """
    start = period_start(period, at=now, tz=tz)
    end = period_end(period, start=start, tz=tz)
    elapsed = max(int((now - start).total_seconds()), _FIRST_HOUR_S)
    projected = None
    days = None
    if end is not None:
        projected = spent_nano * int((end - start).total_seconds()) // elapsed
        days = (end - now + timedelta(days=1, microseconds=-1)).days
    average_daily = spent_nano * _DAY_S // max(elapsed, _DAY_S)
    return BudgetStatus(cap, period, start, end, spent_nano, reserved_nano, projected, average_daily, days)
