"""The Events API v2 `trigger` event an alert's `pagerduty` action sends: PagerDuty's limits are kept (a summary of
at most 1024 characters, a dedup key of at most 255), the firing names the dedup key, and the routing key is
added only to the bytes sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from farebox.core.alerts import Alert
from farebox.core.pagerduty import dedup_key, trigger_body, with_routing_key

AT = datetime(2026, 3, 10, 12, 20, tzinfo=UTC)


def _alert(**fields: object) -> Alert:
    values: dict[str, object] = {
        "rule": "threshold:0.9",
        "event_type": "usage.threshold",
        "account_id": "acct",
        "scope": "key",
        "scope_id": "key-1",
        "period_start": 1_772_323_200,
        "text": "key 'prod' has spent 90% of its monthly spend cap",
        "data": {"key_id": "key-1", "spent": "9.00"},
        "actions": ("pagerduty",),
        "severity": "critical",
    }
    return Alert(**(values | fields))


def test_the_event_names_the_firing_and_carries_the_alert() -> None:
    event = json.loads(trigger_body(_alert(), at=AT))

    assert "routing_key" not in event
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "farebox/acct/threshold:0.9/key/key-1/1772323200"
    assert event["payload"] == {
        "summary": "key 'prod' has spent 90% of its monthly spend cap",
        "source": "farebox",
        "severity": "critical",
        "timestamp": "2026-03-10T12:20:00+00:00",
        "component": "key:key-1",
        "group": "acct",
        "class": "usage.threshold",
        "custom_details": {"alert": "threshold:0.9", "key_id": "key-1", "spent": "9.00"},
    }
    assert dedup_key(_alert(period_start=1_775_001_600)) != event["dedup_key"], "the next period is a new alert"


def test_pagerduty_s_limits_are_kept() -> None:
    alert = _alert(text="x" * 5000, scope_id="k" * 300)
    event = json.loads(trigger_body(alert, at=AT))
    assert len(event["payload"]["summary"]) == 1024
    assert len(event["dedup_key"]) == 255 and event["dedup_key"] == dedup_key(alert)


def test_the_routing_key_is_added_first_to_what_is_sent() -> None:
    body = trigger_body(_alert(), at=AT)
    sent = json.loads(with_routing_key(body, "K" * 32))
    assert list(sent) == ["routing_key", "event_action", "dedup_key", "client", "payload"]
    assert sent["routing_key"] == "K" * 32 and {k: v for k, v in sent.items() if k != "routing_key"} == json.loads(body)
