"""PagerDuty's Events API v2: the `trigger` event an alert's `pagerduty` action sends.

An event is a JSON object POSTed to the enqueue URL (`https://events.pagerduty.com/v2/enqueue`), which answers
`202` with `{"status": "success", "dedup_key": ...}`:

    {"routing_key": "<32 characters: the service's Events API v2 integration key>",
     "event_action": "trigger",
     "dedup_key": "<at most 255 characters>",
     "client": "farebox",
     "payload": {"summary": "<at most 1024 characters>", "source": "...", "severity": "critical|error|warning|info",
                 "timestamp": "<ISO 8601>", "component": "...", "group": "...", "class": "...",
                 "custom_details": {...}}}

The routing key is a secret: the outbox keeps the event without it (`trigger_body`) and the sender adds it as it
sends (`with_routing_key`), so it is never written out in plain text. The `dedup_key` names the alert's firing
(rule, key, member or account, and the period it fired for), the same on every retry: PagerDuty opens one alert
however many attempts reach it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from farebox.core.alerts import Alert

__all__ = ["EVENTS_URL", "SUMMARY_MAX_CHARS", "dedup_key", "trigger_body", "with_routing_key"]

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
"""PagerDuty's enqueue URL (the `pagerduty_url` setting's default; `events.eu.pagerduty.com` for EU accounts)."""

SUMMARY_MAX_CHARS = 1024
_DEDUP_MAX_CHARS = 255


def dedup_key(alert: Alert) -> str:
    """The alert's firing, named for PagerDuty: the same for every attempt to deliver it (at most 255 characters)."""
    return f"farebox/{alert.account_id}/{alert.rule}/{alert.scope}/{alert.scope_id}/{alert.period_start}"[
        :_DEDUP_MAX_CHARS
    ]


def trigger_body(alert: Alert, *, at: datetime) -> str:
    """The `trigger` event of an alert that fired at `at`, without its routing key."""
    event: dict[str, Any] = {
        "event_action": "trigger",
        "dedup_key": dedup_key(alert),
        "client": "farebox",
        "payload": {
            "summary": alert.text[:SUMMARY_MAX_CHARS],
            "source": "farebox",
            "severity": alert.severity,
            "timestamp": at.isoformat(),
            "component": f"{alert.scope}:{alert.scope_id}",
            "group": alert.account_id,
            "class": alert.event_type,
            "custom_details": {"alert": alert.rule, **alert.data},
        },
    }
    return orjson.dumps(event).decode()


def with_routing_key(body: str, routing_key: str) -> bytes:
    """The event to POST: `body` (from `trigger_body`) with the routing key first."""
    event: dict[str, Any] = orjson.loads(body)
    return orjson.dumps({"routing_key": routing_key, **event})
