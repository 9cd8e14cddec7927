"""An alert that should fire, and what firing a set of them did: plain values the alert rules and the ledger share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["DESTINATION_URL_PATTERN", "Action", "Alert", "Fired", "Severity"]

Action = Literal["webhook", "email", "slack", "pagerduty", "disable_key"]
"""What an alert does when it fires, besides being recorded."""

Severity = Literal["critical", "error", "warning", "info"]
"""How bad an alert is, in PagerDuty's words (Events API v2 `payload.severity`)."""

_PORT = r"(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
DESTINATION_URL_PATTERN = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://(?:[A-Za-z0-9._~%!$&'()*+,;=:-]*@)?[A-Za-z0-9._~-]+"
    rf"(?::{_PORT})?(?:[/?#][^\x00-\x20\x7f]*)?$"
)
"""A webhook or Slack URL as an admin may register it: http(s), a host name or IPv4 address (user info and a port
allowed), then any path, query and fragment without blanks or control characters."""


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
    recipients: tuple[str, ...] = ()
    """Where its `email` action goes instead of the account's recipients (none: the account's)."""
    channels: tuple[str, ...] = ()
    """The Slack channels its `slack` action names, one message each (none: the webhook's own channel)."""
    severity: Severity = "warning"
    """What its `pagerduty` action tells PagerDuty."""


@dataclass(slots=True)
class Fired:
    """What one transaction of firings did."""

    alerts: list[Alert] = field(default_factory=list)
    """The alerts that fired now (not those that had already fired for their period)."""
    disabled_keys: list[str] = field(default_factory=list)
    """Keys a `disable_key` action disabled."""
