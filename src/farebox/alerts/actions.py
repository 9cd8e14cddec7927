"""What an alert does once it fires: record the firing, then its actions, all in the caller's transaction.

`fire` inserts the firing row first. The row's key (rule, scope, scope id, period start) is what makes a
threshold fire once per period: a second `fire` of the same alert inserts nothing and does nothing, on
SQLite and PostgreSQL alike, whichever process tries. Only a new firing enqueues its webhook, Slack and
e-mail messages and disables its key, so they commit together with it or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from farebox.alerts.config import Action, AlertConfig
from farebox.core.events import epoch_us
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.outbox import Message, enqueue, message_body, notify_endpoints
from farebox.ledger.rows import disable_key_row
from farebox.ledger.schema import alert_firings

__all__ = ["Alert", "Alerter", "Fired", "fire"]

_MAX_REMEMBERED = 100_000


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert that should fire (unless it already has for this period)."""

    rule: str
    """`threshold:0.8`, `credits_low`, `budget_exceeded` or `anomaly:<kind>`."""
    event_type: str
    """The webhook event: `usage.threshold`, `credits.low`, `budget.exceeded` or `anomaly.detected`."""
    account_id: str
    scope: str
    scope_id: str
    period_start: int
    """Epoch seconds: the firing is unique per rule, scope and this."""
    text: str
    """One line for people (Slack, e-mail subject)."""
    data: dict[str, Any]
    actions: tuple[Action, ...]


@dataclass(slots=True)
class Fired:
    """What one transaction of firings did."""

    alerts: list[Alert] = field(default_factory=list)
    disabled_keys: list[str] = field(default_factory=list)


def _insert_once(connection: Connection, row: dict[str, Any]) -> bool:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    # RETURNING, not rowcount: the PostgreSQL writer pipelines its statements, and a pipeline has no rowcount.
    statement = dialect.insert(alert_firings).values(row).on_conflict_do_nothing().returning(alert_firings.c.rule)
    return connection.execute(statement).first() is not None


def fire(connection: Connection, alert: Alert, *, config: AlertConfig, at: datetime, fired: Fired) -> None:
    """Record `alert` and take its actions, unless it already fired for its period."""
    now_us = epoch_us(at)
    row = {
        "rule": alert.rule,
        "scope": alert.scope,
        "scope_id": alert.scope_id,
        "period_start": alert.period_start,
        "account_id": alert.account_id,
        "fired_at_us": now_us,
        "evidence": {"event_type": alert.event_type, "text": alert.text, **alert.data},
    }
    if not _insert_once(connection, row):
        return
    fired.alerts.append(alert)
    data = {"alert": alert.rule, "text": alert.text, **alert.data}
    if "webhook" in alert.actions:
        notify_endpoints(
            connection, account_id=alert.account_id, event_type=alert.event_type, data=data, at=at, now_us=now_us
        )
    messages = []
    body = message_body(alert.event_type, data, at=at)
    if "slack" in alert.actions and config.slack_webhook_url:
        messages.append(Message(alert.account_id, "slack", alert.event_type, body, target=config.slack_webhook_url))
    if "email" in alert.actions and config.email_recipients:
        target = ",".join(config.email_recipients)
        messages.append(Message(alert.account_id, "email", alert.event_type, body, target=target))
    enqueue(connection, messages, now_us=now_us)
    if "disable_key" in alert.actions and alert.scope == "key":
        reason = f"disabled by alert: {alert.text}"
        disable_key_row(connection, alert.scope_id, reason=reason, now=now_us // 1_000_000)
        fired.disabled_keys.append(alert.scope_id)
        key_data = {"key_id": alert.scope_id, "reason": reason, "alert": alert.rule}
        notify_endpoints(
            connection, account_id=alert.account_id, event_type="key.disabled", data=key_data, at=at, now_us=now_us
        )


class Alerter:
    """Fires alerts in one ledger transaction, skipping those this process already saw fire."""

    def __init__(self, ledger: Ledger, directory: Directory) -> None:
        self._ledger = ledger
        self._directory = directory
        self._fired: set[tuple[str, str, str, int]] = set()
        self.on_fired: list[Callable[[], None]] = []
        """Called after a transaction that fired something (the sender looks at the outbox at once)."""

    async def fire_all(self, alerts: Sequence[tuple[Alert, AlertConfig]], *, at: datetime) -> Fired:
        """Fire each alert not fired yet for its period; tell the directory's listeners of keys it disabled."""
        fired = Fired()
        due = [(alert, config) for alert, config in alerts if _identity(alert) not in self._fired]
        if not due:
            return fired

        def write(connection: Connection) -> None:
            for alert, config in due:
                fire(connection, alert, config=config, at=at, fired=fired)

        await self._ledger.write(write)
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
