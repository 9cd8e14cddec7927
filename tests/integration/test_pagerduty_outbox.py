"""The `pagerduty` action on a real ledger (SQLite and PostgreSQL): the account's routing key is stored sealed, a
fired threshold enqueues an Events API v2 `trigger` in the same transaction without the key, and only a sender's
claim opens the key; a key sealed for another account does not open, and the attempt says why."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from farebox.alerts.actions import Alerter
from farebox.alerts.config import AlertConfig
from farebox.alerts.store import AlertStore
from farebox.alerts.watcher import CapWatcher
from farebox.core.events import epoch_us
from farebox.core.money import NANO_PER_USD
from farebox.core.pagerduty import with_routing_key
from farebox.core.sealing import SecretBox
from farebox.core.server_secret import WEBHOOK_SECRETS
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.outbox import Message, Outbox
from farebox.ledger.schema import alert_settings, outbox

if TYPE_CHECKING:
    from tests.conftest import EventFactory, TableRows

pytestmark = pytest.mark.anyio

JUNE_10 = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
BOX = SecretBox.derived("pagerduty-outbox-tests-server-secret-0123456789", purpose=WEBHOOK_SECRETS)
ROUTING_KEY = "PagerDuty0Routing0Key0For0Tests0"


async def test_a_threshold_pages_with_the_key_opened_only_when_claimed(
    ledger: Ledger, table_rows: TableRows, make_event: EventFactory
) -> None:
    directory = Directory(ledger, clock=lambda: JUNE_10)
    account = await directory.create_account(name="acme", spend_cap_nano=10 * NANO_PER_USD)
    key, _ = await directory.create_key(account.id, name="prod")
    threshold = {"fraction": "0.9", "actions": ["pagerduty"], "urgency": "high", "message": "90% of the budget"}
    rules = {"account": {"thresholds": [threshold]}, "pagerduty_routing_key": ROUTING_KEY}
    stored = await AlertStore(ledger, BOX).put(account.id, AlertConfig.model_validate(rules), at=JUNE_10)
    assert stored.pagerduty_routing_key is not None and BOX.is_sealed(stored.pagerduty_routing_key)
    assert ROUTING_KEY not in repr(await table_rows(ledger, alert_settings))

    watcher = CapWatcher(ledger, Alerter(ledger, directory), clock=lambda: JUNE_10)
    await ledger.record(make_event(account_id=account.id, key_id=key.id, cost_nano=9 * NANO_PER_USD, timestamp=JUNE_10))
    fired = await watcher.check()
    assert [(alert.rule, alert.scope, alert.severity) for alert in fired.alerts] == [
        ("threshold:0.9", "account", "critical")
    ]
    (row,) = await table_rows(ledger, outbox)
    assert (row["channel"], row["event_type"]) == ("pagerduty", "usage.threshold")
    assert ROUTING_KEY not in row["target"] + row["body"], "kept sealed, and out of the body"

    (claimed,) = await Outbox(ledger, BOX).claim(now_us=epoch_us(JUNE_10), lease_us=1_000_000, limit=5)
    assert (claimed.secret, claimed.secret_error) == (ROUTING_KEY, None)
    event = json.loads(with_routing_key(claimed.body, claimed.secret))
    assert list(event) == ["routing_key", "event_action", "dedup_key", "client", "payload"]
    june = int(datetime(2025, 6, 1, tzinfo=UTC).timestamp())  # the cap's period: June in the account's zone (UTC)
    assert event["dedup_key"] == f"farebox/{account.id}/threshold:0.9/account/{account.id}/{june}"
    assert event["payload"]["summary"] == "90% of the budget"
    assert event["payload"]["custom_details"]["spent"] == "9.00"


async def test_a_routing_key_sealed_for_another_account_does_not_open(ledger: Ledger) -> None:
    directory = Directory(ledger, clock=lambda: JUNE_10)
    acme, globex = [await directory.create_account(name=name) for name in ("acme", "globex")]
    rules = AlertConfig.model_validate({"pagerduty_routing_key": ROUTING_KEY})
    sealed = (await AlertStore(ledger, BOX).put(acme.id, rules, at=JUNE_10)).pagerduty_routing_key
    assert sealed is not None
    deliveries = Outbox(ledger, BOX)
    now = epoch_us(JUNE_10)
    await deliveries.enqueue([Message(globex.id, "pagerduty", "usage.threshold", "{}", target=sealed)], now_us=now)

    (claimed,) = await deliveries.claim(now_us=now, lease_us=1_000_000, limit=1)
    assert claimed.secret is None
    assert (claimed.secret_error or "").startswith("the account's PagerDuty routing key does not open")
