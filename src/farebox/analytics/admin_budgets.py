"""Budget status under /api/admin: `GET /api/admin/budgets/status` (seed 004's shape, with farebox's per-cap detail
inside `data`) and `GET /api/admin/virtual-keys/{id}/budget` (one key's cap).

The seed's `globalBudget` is the calendar month of the account's zone: its spend so far comes from the analytics
engine (the daily cube), the same figures `budgetBreakdown.byProvider` splits, and its projection is that spend
divided by the elapsed fraction of the month (`core.spend.budget_status`: the month's length over the time since
its first local midnight, at least an hour). `maxBudget` is the account's cap when the cap is monthly. For the
master key without `account_id` it covers every account, each month in its own zone: `maxBudget` is the sum of the
accounts' monthly caps, or null when any account has none (no cap, or a cap over another period), since an
uncapped account has no budget to add. `budgetAlerts` and `byVirtualKey` read each cap in its own period from the
spend counters the caps are enforced on (`metering.Budgets.statuses`), against the account's alert rules.

Scope, the envelope and exact numbers: `farebox.analytics.admin_common`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from starlette.responses import Response

from farebox.alerts.config import AlertConfig
from farebox.analytics.admin_common import Caller, Scoped, envelope, ratio, scoped_responses, usd, views
from farebox.analytics.budget_schemas import BudgetOut, budget_of, budget_out
from farebox.analytics.calendar import Window
from farebox.analytics.engine import Dimension
from farebox.analytics.query_times import TimedRoute
from farebox.analytics.views import Scope, Totals
from farebox.core.owners import Account, Member, VirtualKey
from farebox.core.periods import Period
from farebox.core.spend import BudgetStatus, Owner, budget_status, owner_label, scope_of
from farebox.errors import NotFound
from farebox.services import services

__all__ = ["router"]

router = APIRouter(prefix="/api/admin", tags=["budgets"], route_class=TimedRoute)

_LABELS = {"key": "Virtual key", "member": "Member", "account": "Account"}
_NO_SPEND = Decimal(0)


@dataclass(frozen=True, slots=True)
class _Month:
    """One account's calendar month so far, in its zone: spend by provider (engine), and its cap if monthly."""

    account: Account
    providers: list[tuple[str, Totals]]
    status: BudgetStatus

    @property
    def cap_nano(self) -> int | None:
        account = self.account
        return account.spend_cap_nano if account.cap_period is Period.MONTHLY else None


@dataclass(frozen=True, slots=True)
class _Cap:
    """A key's, member's or account's standing in its own cap period, with its account's alert rules."""

    owner: Owner
    status: BudgetStatus
    rules: AlertConfig


async def _month(request: Request, scope: Scope, account: Account, now: datetime) -> _Month:
    tz = ZoneInfo(account.timezone)
    today = now.astimezone(tz).date()
    month = replace(scope, window=Window(today.replace(day=1), today, tz), account_id=account.id, local_days=True)
    providers = await views(request).breakdown(month, Dimension.PROVIDER)
    spent = sum(totals.cost_nano for _provider, totals in providers)
    status = budget_status(None, period=Period.MONTHLY, tz=tz, now=now, spent_nano=spent, reserved_nano=0)
    return _Month(account, providers, status)


def _utilization(spent_nano: int, cap_nano: int) -> Decimal:
    """Spend over the cap to four places; a zero cap with anything spent is fully used."""
    if cap_nano <= 0:
        return Decimal(1) if spent_nano > 0 else Decimal(0)
    found = ratio(spent_nano, cap_nano)
    assert found is not None
    return found


def _global(months: list[_Month], scope: Scope, now: datetime) -> dict[str, Any]:
    """The month so far of every account in scope, summed; its cap when every account has a monthly one."""
    caps = [month.cap_nano for month in months]
    cap = sum(c for c in caps if c is not None) if months and None not in caps else None
    spent = sum(month.status.spent_nano for month in months)
    projected = sum(month.status.projected_nano or 0 for month in months)
    clock = budget_status(None, period=Period.MONTHLY, tz=scope.window.tz, now=now, spent_nano=0, reserved_nano=0)
    return {
        "maxBudget": None if cap is None else usd(cap),
        "currentSpend": usd(spent),
        "remainingBudget": None if cap is None else usd(max(0, cap - spent)),
        "utilizationPercentage": None if cap is None else _utilization(spent, cap),
        "projectedMonthlySpend": usd(projected),
        "onTrack": None if cap is None else projected <= cap,
        "daysRemaining": clock.days_remaining,
        "averageDailySpend": usd(sum(month.status.average_daily_nano for month in months)),
        "timezone": scope.window.tz.key,
        "accounts": len(months),
    }


def _alert(cap: _Cap) -> dict[str, Any] | None:
    """The alert a cap calls for: `critical` once spend reached the cap, `warning` at the highest threshold of its
    rules it reached (none below the first, or with its rules off)."""
    status, owner = cap.status, cap.owner
    if status.cap is None:
        return None
    scope = scope_of(owner).value
    spent, limit = status.spent_nano, status.cap.cap_nano
    who = f"{_LABELS[scope]} {owner_label(owner)!r}"
    if spent >= limit:
        level, percentage = "critical", Decimal(1)
        message = f"{who} has spent its {status.period.value} budget of {usd(limit)} USD"
    else:
        rules = cap.rules.rules_for(scope, owner.id)
        reached = [t for t in rules.thresholds if Decimal(spent) >= t.fraction * limit] if rules.enabled else []
        if not reached:
            return None
        level, percentage = "warning", reached[-1].fraction
        message = reached[-1].message or (
            f"{who} has reached {(percentage * 100).normalize():f}% of its {status.period.value} budget"
        )
    return {
        "level": level,
        "message": message,
        "keyId": owner.id if isinstance(owner, VirtualKey) else None,
        "percentage": percentage,
        "remainingBudget": usd(max(0, limit - spent)),
        "scope": scope,
        "scopeId": owner.id,
        "accountId": owner.id if isinstance(owner, Account) else owner.account_id,
        "period": status.period.value,
        "utilizationPercentage": _utilization(spent, limit),
    }


def _by_key(cap: _Cap, now: datetime) -> dict[str, Any]:
    key, status = cap.owner, cap.status
    assert isinstance(key, VirtualKey)
    limit = None if status.cap is None else status.cap.cap_nano
    return {
        "keyId": key.id,
        "keyName": key.name,
        "maxBudget": None if limit is None else usd(limit),
        "currentSpend": usd(status.spent_nano),
        "utilizationPercentage": None if limit is None else _utilization(status.spent_nano, limit),
        "accountId": key.account_id,
        "period": status.period.value,
        "status": key.status(now).value,
    }


def _by_provider(months: list[_Month]) -> dict[str, dict[str, Decimal | None]]:
    spend: dict[str, int] = defaultdict(int)
    for month in months:
        for provider, totals in month.providers:
            spend[provider] += totals.cost_nano
    total = sum(spend.values())
    ordered = sorted(spend.items(), key=lambda item: (-item[1], item[0]))
    return {provider: {"spend": usd(cost), "percentage": ratio(cost, total)} for provider, cost in ordered}


async def _caps(request: Request, accounts: list[Account], now: datetime) -> list[_Cap]:
    """Every account's, member's and live key's standing in its cap period, in that order (accounts, members,
    keys, each oldest first), from one read of the counters."""
    found = services(request)
    directory = found.directory
    ids = {account.id for account in accounts}
    # Independent reads, run together on the reader's threads.
    all_keys, rules, per_account = await asyncio.gather(
        directory.list_keys(account_id=accounts[0].id if len(accounts) == 1 else None),
        found.alerts.get_many(list(ids)),
        asyncio.gather(*(directory.list_members(account.id) for account in accounts)),
    )
    members = [member for listed in per_account for member in listed]
    keys = [key for key in all_keys if key.revoked_at is None and key.account_id in ids]
    zones = {account.id: ZoneInfo(account.timezone) for account in accounts}
    owners: list[Owner] = [*accounts, *members, *keys]
    statuses = await found.budgets.statuses(
        [(owner, zones[owner.id if isinstance(owner, Account) else owner.account_id]) for owner in owners], now=now
    )
    return [
        _Cap(owner, status, rules[owner.id if isinstance(owner, Account) else owner.account_id])
        for owner, status in zip(owners, statuses, strict=True)
    ]


def _alert_order(alert: dict[str, Any]) -> tuple[Any, ...]:
    return (alert["level"] != "critical", -alert["percentage"], -alert["utilizationPercentage"], alert["scopeId"])


def _key_order(row: dict[str, Any]) -> tuple[Any, ...]:
    utilization = row["utilizationPercentage"]
    return (utilization is None, -(utilization or _NO_SPEND), -row["currentSpend"], row["keyName"], row["keyId"])


@router.get(
    "/budgets/status",
    summary="Budget status (seed 004): the month against the cap, alerts, and spend by key and provider",
    responses=scoped_responses(),
)
async def budgets_status(request: Request, scope: Scoped) -> Response:
    """`globalBudget` (this calendar month against the account's cap, with its projection), `budgetAlerts` (caps at
    or past an alert threshold, or spent), `budgetBreakdown` (`byVirtualKey`, `byProvider`), and farebox's status of
    every cap (`accounts`, `members`, `keys`)."""
    directory = services(request).directory
    now = directory.now()
    accounts = [await directory.get_account(scope.account_id)] if scope.account_id else await directory.list_accounts()
    caps, months = await asyncio.gather(
        _caps(request, accounts, now), asyncio.gather(*(_month(request, scope, account, now) for account in accounts))
    )
    alerts = [alert for alert in map(_alert, caps) if alert is not None]
    keys = [cap for cap in caps if isinstance(cap.owner, VirtualKey)]
    shown = [budget_out(cap.owner, cap.status).model_dump(mode="json") for cap in caps]
    return envelope(
        {
            "globalBudget": _global(months, scope, now),
            "budgetAlerts": sorted(alerts, key=_alert_order),
            "budgetBreakdown": {
                "byVirtualKey": sorted((_by_key(cap, now) for cap in keys), key=_key_order),
                "byProvider": _by_provider(months),
            },
            "accounts": [row for row, cap in zip(shown, caps, strict=True) if isinstance(cap.owner, Account)],
            "members": [row for row, cap in zip(shown, caps, strict=True) if isinstance(cap.owner, Member)],
            "keys": [row for row, cap in zip(shown, caps, strict=True) if isinstance(cap.owner, VirtualKey)],
        }
    )


@router.get("/virtual-keys/{key_id}/budget", summary="Budget status of a virtual key")
async def key_budget(key_id: str, request: Request, principal: Caller) -> BudgetOut:
    found = services(request)
    directory = found.directory
    key = await directory.get_key(key_id)
    missing = NotFound.of("virtual key", key_id)
    principal.require_usage(key.account_id, key_id=key.id, member_id=key.member_id, missing=missing)
    account = await directory.get_account(key.account_id)
    return await budget_of(found.budgets, directory, key, tz=ZoneInfo(account.timezone))
