"""Firing alerts: once per period each, with their actions, in one ledger transaction.

The ledger (`AlertState.fire`) records each firing and, only for one that is new, enqueues its webhook,
Slack, e-mail and PagerDuty messages and disables its key, all in one transaction. The `Alerter` adds what only
this process knows: the alerts it already saw fire (not sent to the ledger again), where the account's
Slack, e-mail and PagerDuty actions go, and who to tell once something fired.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from farebox.alerts.config import AlertConfig
from farebox.core.alerts import Alert, Fired
from farebox.ledger.alert_state import AlertState, Firing
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory

__all__ = ["Alerter"]

_MAX_REMEMBERED = 100_000


class Alerter:
    """Fires alerts in one ledger transaction, skipping those this process already saw fire."""

    def __init__(self, ledger: Ledger, directory: Directory) -> None:
        self._state = AlertState(ledger)
        self._directory = directory
        self._fired: set[tuple[str, str, str, int]] = set()
        self.on_fired: list[Callable[[], None]] = []
        """Called after a transaction that fired something (the sender looks at the outbox at once)."""

    async def fire_all(self, alerts: Sequence[tuple[Alert, AlertConfig]], *, at: datetime) -> Fired:
        """Fire each alert not fired yet for its period; tell the directory's listeners of keys it disabled."""
        due = [(alert, config) for alert, config in alerts if _identity(alert) not in self._fired]
        if not due:
            return Fired()
        firings = [
            Firing(alert, config.slack_webhook_url, tuple(config.email_recipients), config.pagerduty_routing_key)
            for alert, config in due
        ]
        fired = await self._state.fire(firings, at=at)
        if len(self._fired) > _MAX_REMEMBERED:
            self._fired.clear()
        self._fired.update(_identity(alert) for alert, _ in due)
        if fired.disabled_keys:
            self._directory.changed()
        if fired.alerts:
            for listener in self.on_fired:
                listener()
        return fired


def _identity(alert: Alert) -> tuple[str, str, str, int]:
    return alert.rule, alert.scope, alert.scope_id, alert.period_start
