"""Cap and balance alerts: thresholds, credits-low and budget-exceeded, checked after the commits that move spend.

Every ledger commit tells the watcher which keys, members and accounts it added spend to (`Ledger.on_commit`,
on the writer thread); a refused request tells it which cap refused (`Budgets.on_refused`). The watcher
gathers them and, `debounce` seconds after the first, reads those owners' caps, spend and alert rules, and
fires what is due; under steady traffic, once every `interval` seconds. Checks are level-triggered
(spent >= fraction x cap, not "crossed in this commit"), so an alert a crash interrupted fires on the
owner's next commit, and a threshold lowered below the spend fires at once.

For an account that holds prepaid credits, the account's `credits_low` rule watches its balance (what is left of
its credits) instead of its cap, and fires once per top-up: a top-up that leaves the balance low fires it again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from farebox.alerts.actions import Alerter
from farebox.alerts.config import AlertConfig, ScopeAlerts
from farebox.alerts.store import parse_configs
from farebox.core.alerts import Alert, Fired
from farebox.core.clock import utcnow
from farebox.core.credits import CreditRate
from farebox.core.money import format_usd
from farebox.core.spend import Cap, CounterId
from farebox.ledger.alert_state import AlertState, BalanceReading, CappedOwner, CapReading, Owner
from farebox.ledger.base import Ledger

__all__ = ["CapWatcher"]

log = logging.getLogger(__name__)

_CHUNK = 500
_DEFAULT_RATE = CreditRate()


class CapWatcher:
    """Fires cap alerts for the owners recent commits and refusals touched. One per process and ledger."""

    def __init__(
        self,
        ledger: Ledger,
        alerter: Alerter,
        *,
        debounce: float = 0.05,
        interval: float = 0.5,
        clock: Callable[[], datetime] = utcnow,
        rate: CreditRate = _DEFAULT_RATE,
    ) -> None:
        self._state = AlertState(ledger)
        self._alerter = alerter
        self._rate = rate
        self._debounce = debounce
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()  # commits arrive on the writer thread
        self._touched: set[Owner] = set()
        self._refused: set[Owner] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        ledger.on_commit(self._committed)

    def refused(self, cap: Cap) -> None:
        """A request was refused by `cap` (called by `Budgets.on_refused`)."""
        self._note(self._refused, [(cap.scope, cap.owner_id)])

    def _committed(self, added: Mapping[CounterId, int]) -> None:
        self._note(self._touched, {(scope, scope_id) for scope, scope_id, _, _ in added})

    def _note(self, into: set[Owner], owners: Iterable[Owner]) -> None:
        with self._lock:
            into.update(owners)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Check touched owners until cancelled; first, every capped owner (see `sweep`)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            await self.sweep()
        except Exception:
            log.exception("the start-up sweep of cap alerts failed; each owner's next commit checks it")
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self._debounce)
            started = loop.time()
            try:
                await self.check()
            except Exception:
                log.exception("cap alert check failed; it is tried again with the next commit")
            # Under steady traffic every commit touches an owner: one check per interval, not per debounce.
            await asyncio.sleep(self._interval - (loop.time() - started))

    async def sweep(self) -> Fired:
        """Check every capped key, member and account, and every account holding credits: an alert due when the
        last process stopped (between a commit and its check) fires now, not only on the owner's next commit."""
        owners = await self._state.capped_owners()
        with self._lock:
            self._touched.update(owners)
        return await self.check()

    async def check(self) -> Fired:
        """Fire what is due for the owners touched since the last check (kept for the next one if this fails)."""
        with self._lock:
            touched, refused = self._touched | self._refused, set(self._refused)
            self._touched.clear()
            self._refused.clear()
        fired = Fired()
        now = self._clock()
        try:
            ordered = sorted(touched)
            for start in range(0, len(ordered), _CHUNK):
                chunk = set(ordered[start : start + _CHUNK])
                alerts = _due(await self._state.owner_caps(chunk, at=now), refused, rate=self._rate)
                done = await self._alerter.fire_all(alerts, at=now)
                fired.alerts.extend(done.alerts)
                fired.disabled_keys.extend(done.disabled_keys)
        except Exception:
            with self._lock:
                self._touched.update(touched)
                self._refused.update(refused)
            raise
        return fired


def _due(reading: CapReading, refused: set[Owner], *, rate: CreditRate) -> list[tuple[Alert, AlertConfig]]:
    """The alerts the owners' caps and spend, and the accounts' balances, call for, each with its account's rules."""
    configs = parse_configs(reading.configs)
    prepaid = {balance.account_id for balance in reading.balances}
    due = []
    for owner in reading.owners:
        rules = configs[owner.account_id].rules_for(owner.scope, owner.id)
        if owner.scope == "account" and owner.id in prepaid:
            rules = rules.model_copy(update={"credits_low": None})  # it watches the balance instead (below)
        for alert in _CapState(owner).alerts(rules, refused=(owner.scope, owner.id) in refused):
            due.append((alert, configs[owner.account_id]))
    for balance in reading.balances:
        config = configs[balance.account_id]
        low = _balance_alert(balance, config.account, rate=rate)
        if low is not None:
            due.append((low, config))
    return due


def _balance_alert(balance: BalanceReading, rules: ScopeAlerts, *, rate: CreditRate) -> Alert | None:
    """`credits.low` when what is left of an account's credits is below its account rules' `credits_low`."""
    low = rules.credits_low
    if not rules.enabled or low is None or balance.balance_nano >= low.below_nano:
        return None
    left, below = balance.balance_nano, low.below_nano
    text = (
        f"account {balance.name!r} has {rate.format(left)} credits ({format_usd(left)} USD) left of its prepaid "
        f"balance, below {rate.format(below)} credits ({format_usd(below)} USD)"
    )
    data: dict[str, Any] = {
        "scope": "account",
        "scope_id": balance.account_id,
        "name": balance.name,
        "account_id": balance.account_id,
        "balance": format_usd(left),
        "balance_credits": rate.format(left),
        "credits_low_below": format_usd(below),
        "credits_low_below_credits": rate.format(below),
        "topped_up_at": datetime.fromtimestamp(balance.topped_up_at, UTC).isoformat(),
    }
    account_id = balance.account_id
    return Alert(
        "credits_low",
        "credits.low",
        account_id,
        "account",
        account_id,
        balance.topped_up_at,
        text,
        data,
        tuple(low.actions),
    )


class _CapState:
    """One owner's cap and spend this period, and the alerts they call for."""

    def __init__(self, owner: CappedOwner):
        self.scope, self.id, self.account_id, self.period = owner.scope, owner.id, owner.account_id, owner.period
        self.start, self.cap, self.spent, self.name = owner.period_start, owner.cap_nano, owner.spent_nano, owner.name

    def alerts(self, rules: ScopeAlerts, *, refused: bool) -> list[Alert]:
        found = []
        if self.spent >= self.cap or refused:
            text = (
                f"{self.scope} {self.name!r} reached its {self.period.value} spend cap of {format_usd(self.cap)} USD"
                if self.spent >= self.cap
                else f"{self.scope} {self.name!r} had a request refused by its {self.period.value} spend cap "
                f"({format_usd(max(0, self.cap - self.spent))} USD left)"
            )
            found.append(self._alert("budget_exceeded", "budget.exceeded", text, ("webhook",)))
        if not rules.enabled:
            return found
        for threshold in rules.thresholds:
            if Decimal(self.spent) >= threshold.fraction * self.cap:
                percent = (threshold.fraction * 100).normalize()
                text = threshold.message or (
                    f"{self.scope} {self.name!r} has spent {percent:f}% of its {self.period.value} spend cap "
                    f"({format_usd(self.spent)} of {format_usd(self.cap)} USD)"
                )
                extra = {"threshold": str(threshold.fraction)}
                alert = self._alert(
                    f"threshold:{threshold.fraction}", "usage.threshold", text, threshold.actions, extra
                )
                found.append(
                    replace(
                        alert,
                        recipients=tuple(threshold.recipients or ()),
                        channels=tuple(threshold.channels or ()),
                        severity=threshold.severity,
                    )
                )
        low = rules.credits_low
        if low is not None and self.cap - self.spent < low.below_nano:
            text = (
                f"{self.scope} {self.name!r} has {format_usd(max(0, self.cap - self.spent))} USD left under its "
                f"{self.period.value} spend cap, below {format_usd(low.below_nano)} USD"
            )
            extra = {"credits_low_below": format_usd(low.below_nano)}
            found.append(self._alert("credits_low", "credits.low", text, low.actions, extra))
        return found

    def _alert(
        self, rule: str, event_type: str, text: str, actions: Iterable[Any], extra: dict[str, Any] | None = None
    ) -> Alert:
        data: dict[str, Any] = {
            "scope": self.scope,
            "scope_id": self.id,
            "name": self.name,
            "account_id": self.account_id,
            "period": self.period.value,
            "period_start": datetime.fromtimestamp(self.start, UTC).isoformat(),
            "cap": format_usd(self.cap),
            "spent": format_usd(self.spent),
            "remaining": format_usd(max(0, self.cap - self.spent)),
            "utilization": str((Decimal(self.spent) / max(self.cap, 1)).quantize(Decimal("0.0001"))),
            **(extra or {}),
        }
        if self.scope == "key":
            data["key_id"] = self.id
        return Alert(rule, event_type, self.account_id, self.scope, self.id, self.start, text, data, tuple(actions))
