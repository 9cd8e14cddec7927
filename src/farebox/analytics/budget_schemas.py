"""The budget status bodies of the admin API, and how a key's, a member's and an account's status is read.

Each status gives the cap, what is spent and what in-flight requests hold (`reserved`), what remains, the
utilisation (spent + reserved over the cap), the period's spend projected from the rate so far, whether
that stays under the cap (`on_track`), the days left in the period and the average daily spend. Amounts are
decimal USD strings; an owner without a cap shows its spend with null cap figures.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from farebox.core.money import format_usd
from farebox.core.spend import BudgetStatus, Owner, owner_label, scope_of
from farebox.ledger.directory import Directory
from farebox.metering import Budgets

__all__ = ["BudgetOut", "BudgetsOut", "account_budgets", "budget_of", "budget_out"]


class BudgetOut(BaseModel):
    """One cap's standing in its current period (the budget status shape)."""

    scope: str = Field(description="`key`, `member` or `account`.")
    id: str
    name: str
    period: str
    period_start: str
    period_end: str | None = Field(description="Start of the next period; null for `total`.")
    cap: str | None
    spent: str
    reserved: str = Field(description="Worst-case cost held by requests in flight.")
    remaining: str | None
    utilization: str | None = Field(description="(spent + reserved) / cap, four places.")
    projected_period_spend: str | None
    on_track: bool | None = Field(description="Whether the projected spend stays within the cap.")
    days_remaining: int | None
    average_daily_spend: str


class BudgetsOut(BaseModel):
    """An account's budget status: its own cap, and every member's and key's."""

    account: BudgetOut
    members: list[BudgetOut]
    keys: list[BudgetOut]


def budget_out(owner: Owner, status: BudgetStatus) -> BudgetOut:
    """The budget status shape: amounts in decimal USD strings, utilisation as a fraction to four places."""
    cap = status.cap
    remaining = status.remaining_nano
    utilization = status.utilization
    return BudgetOut(
        scope=scope_of(owner).value,
        id=owner.id,
        name=owner_label(owner),
        period=status.period.value,
        period_start=status.period_start.isoformat(),
        period_end=None if status.period_end is None else status.period_end.isoformat(),
        cap=None if cap is None else format_usd(cap.cap_nano),
        spent=format_usd(status.spent_nano),
        reserved=format_usd(status.reserved_nano),
        remaining=None if remaining is None else format_usd(remaining),
        utilization=None if utilization is None else str(utilization),
        projected_period_spend=None if status.projected_nano is None else format_usd(status.projected_nano),
        on_track=status.on_track,
        days_remaining=status.days_remaining,
        average_daily_spend=format_usd(status.average_daily_nano),
    )


async def budget_of(budgets: Budgets, directory: Directory, owner: Owner, *, tz: ZoneInfo) -> BudgetOut:
    """The budget status of one key, member or account (`tz`: its account's timezone)."""
    return budget_out(owner, await budgets.status(owner, tz=tz, now=directory.now()))


async def account_budgets(budgets: Budgets, directory: Directory, account_id: str) -> BudgetsOut:
    """The budget status of an account, of each of its members and of each of its keys not revoked.

    Raises:
        NotFound: no account has this id.
    """
    account = await directory.get_account(account_id)
    tz = ZoneInfo(account.timezone)
    members = await directory.list_members(account_id)
    keys = [key for key in await directory.list_keys(account_id=account_id) if key.revoked_at is None]
    owners: list[Owner] = [account, *members, *keys]
    statuses = await budgets.statuses([(owner, tz) for owner in owners], now=directory.now())
    shown = [budget_out(owner, status) for owner, status in zip(owners, statuses, strict=True)]
    return BudgetsOut(account=shown[0], members=shown[1 : 1 + len(members)], keys=shown[1 + len(members) :])
