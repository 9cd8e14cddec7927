"""The ledger's named queries for alerts and the usage feed, on every backend, and its own database error.

What commits together must still: a firing with its messages and the key it disables; a feed cursor with the
messages that hand its events over.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import DBAPIError

from farebox.core.alerts import Action, Alert
from farebox.core.events import UsageEvent, epoch_us
from farebox.core.owners import Account, KeyStatus, Member, VirtualKey
from farebox.core.periods import Period, period_start
from farebox.core.sealing import SecretBox
from farebox.core.server_secret import WEBHOOK_SECRETS
from farebox.errors import NotFound
from farebox.ledger.alert_state import AlertAccount, AlertState, CappedOwner, Firing
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.errors import DatabaseUnusable
from farebox.ledger.outbox import Message
from farebox.ledger.schema import alert_firings, outbox
from farebox.ledger.usage_feed import UsageFeedStore
from farebox.ledger.webhooks import WebhookEndpoints
from farebox.webhooks.signing import new_secret

if TYPE_CHECKING:
    from tests.conftest import TableRows

pytestmark = pytest.mark.anyio

EventFactory = Callable[..., UsageEvent]
JUNE_10 = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")
USD = 1_000_000_000
BOX = SecretBox.derived("ledger-state-tests-server-secret-0123456789", purpose=WEBHOOK_SECRETS)


async def owners(ledger: Ledger) -> tuple[Directory, Account, Member, VirtualKey]:
    """A capped New York account with a capped member and a capped key of that member."""
    directory = Directory(ledger, clock=lambda: JUNE_10)
    account = await directory.create_account(name="acme", timezone="America/New_York", spend_cap_nano=100 * USD)
    member = await directory.create_member(
        account.id, email="ada@acme.test", name="Ada", spend_cap_nano=50 * USD, cap_period="daily"
    )
    key, _ = await directory.create_key(account.id, member_id=member.id, name="prod", spend_cap_nano=10 * USD)
    return directory, account, member, key


def alert(
    account_id: str, key_id: str, *, rule: str = "threshold:0.9", actions: tuple[Action, ...] = ("webhook",)
) -> Alert:
    data = {"key_id": key_id, "spent": "9.00"}
    return Alert(rule, "usage.threshold", account_id, "key", key_id, 1_748_750_400, "key 'prod' at 90%", data, actions)


async def test_alert_rules_are_kept_as_the_documents_given(ledger: Ledger) -> None:
    _, account, _, _ = await owners(ledger)
    state = AlertState(ledger)

    assert await state.load_configs([account.id, "no-such-account"]) == {account.id: None, "no-such-account": None}
    await state.put_config(account.id, {"slack_webhook_url": "https://hooks.slack.test/1"}, at=JUNE_10)
    await state.put_config(account.id, {"email_recipients": ["ops@acme.test"], "keys": {"enabled": False}}, at=JUNE_10)

    stored = {account.id: {"email_recipients": ["ops@acme.test"], "keys": {"enabled": False}}}
    assert await state.load_configs([account.id]) == stored
    assert await state.accounts() == [AlertAccount(account.id, NEW_YORK, stored[account.id])]


async def test_a_firing_commits_once_with_its_messages_and_the_key_it_disables(
    ledger: Ledger, table_rows: TableRows
) -> None:
    directory, account, _, key = await owners(ledger)
    await WebhookEndpoints(ledger, BOX).create(
        account.id, url="https://hooks.example.com/", events=["usage.threshold", "key.disabled"], secret=new_secret()
    )
    state = AlertState(ledger)
    firing = Firing(
        alert(account.id, key.id, actions=("webhook", "slack", "email", "disable_key")),
        slack_webhook_url="https://hooks.slack.test/1",
        email_recipients=("ops@acme.test", "cfo@acme.test"),
    )

    fired = await state.fire([firing], at=JUNE_10)

    assert (fired.alerts, fired.disabled_keys) == ([firing.alert], [key.id])
    sent = sorted((row["channel"], row["event_type"], row["target"]) for row in await table_rows(ledger, outbox))
    assert sent == [
        ("email", "usage.threshold", "ops@acme.test,cfo@acme.test"),
        ("slack", "usage.threshold", "https://hooks.slack.test/1"),
        ("webhook", "key.disabled", ""),
        ("webhook", "usage.threshold", ""),
    ]
    disabled = await directory.get_key(key.id)
    assert disabled.status(JUNE_10) is KeyStatus.DISABLED
    assert disabled.disabled_reason == "disabled by alert: key 'prod' at 90%"

    again = await state.fire([firing], at=JUNE_10 + timedelta(hours=1))
    assert (again.alerts, again.disabled_keys) == ([], [])
    assert len(await table_rows(ledger, outbox)) == 4
    (row,) = await state.history(account.id, limit=10)
    assert (row.rule, row.scope, row.scope_id, row.fired_at) == ("threshold:0.9", "key", key.id, JUNE_10)
    assert row.period_start == datetime.fromtimestamp(1_748_750_400, UTC)
    assert row.evidence == {"event_type": "usage.threshold", "text": "key 'prod' at 90%", **firing.alert.data}


async def test_firings_commit_together_or_not_at_all(ledger: Ledger, table_rows: TableRows) -> None:
    _, account, _, key = await owners(ledger)
    await WebhookEndpoints(ledger, BOX).create(
        account.id, url="https://hooks.example.com/", events=["usage.threshold"], secret=new_secret()
    )
    state = AlertState(ledger)
    good = Firing(alert(account.id, key.id))
    unknown_key = Firing(alert(account.id, "no-such-key", rule="credits_low", actions=("webhook", "disable_key")))

    with pytest.raises(NotFound):
        await state.fire([good, unknown_key], at=JUNE_10)

    assert await table_rows(ledger, alert_firings) == []
    assert await table_rows(ledger, outbox) == []
    assert (await state.fire([good], at=JUNE_10)).alerts == [good.alert], "the failed transaction recorded it"


async def test_history_is_newest_first_limited_and_since_a_time(ledger: Ledger) -> None:
    _, account, _, key = await owners(ledger)
    state = AlertState(ledger)
    for hours, rule in enumerate(("threshold:0.5", "threshold:0.8", "threshold:0.9")):
        await state.fire([Firing(alert(account.id, key.id, rule=rule))], at=JUNE_10 + timedelta(hours=hours))

    assert [row.rule for row in await state.history(account.id, limit=2)] == ["threshold:0.9", "threshold:0.8"]
    since = await state.history(account.id, limit=10, since=JUNE_10 + timedelta(hours=1))
    assert [row.rule for row in since] == ["threshold:0.9", "threshold:0.8"]
    assert await state.history("another-account", limit=10) == []


async def test_history_of_every_account_up_to_a_time_and_by_rule_prefix(ledger: Ledger) -> None:
    _, account, _, key = await owners(ledger)
    directory = Directory(ledger, clock=lambda: JUNE_10)
    other = await directory.create_account(name="other", timezone="UTC")
    other_key, _ = await directory.create_key(other.id, name="ci")
    state = AlertState(ledger)
    fired = (
        (account.id, key.id, "anomaly:leaked_key", 0),
        (account.id, key.id, "threshold:0.8", 1),
        (other.id, other_key.id, "anomaly:cost_spike", 2),
        (account.id, key.id, "anomaly:runaway_script", 3),
    )
    for account_id, key_id, rule, hours in fired:
        await state.fire([Firing(alert(account_id, key_id, rule=rule))], at=JUNE_10 + timedelta(hours=hours))

    anomalies = await state.history(None, limit=10, rule_prefix="anomaly:")
    assert [row.rule for row in anomalies] == ["anomaly:runaway_script", "anomaly:cost_spike", "anomaly:leaked_key"]
    until = await state.history(None, limit=10, until=JUNE_10 + timedelta(hours=3), rule_prefix="anomaly:")
    assert [row.rule for row in until] == ["anomaly:cost_spike", "anomaly:leaked_key"], "until is left out"
    ours = await state.history(account.id, limit=10, since=JUNE_10 + timedelta(hours=1), rule_prefix="anomaly:")
    assert [row.rule for row in ours] == ["anomaly:runaway_script"]
    assert ours[0].data == alert(account.id, key.id).data, "the evidence without the event type and the text"


async def test_caps_and_spend_of_capped_owners(ledger: Ledger, make_event: EventFactory) -> None:
    directory, account, member, key = await owners(ledger)
    uncapped, _ = await directory.create_key(account.id, name="free")
    revoked, _ = await directory.create_key(account.id, name="old", spend_cap_nano=USD)
    await directory.revoke_key(revoked.id)
    await ledger.record(make_event(account_id=account.id, key_id=key.id, member_id=member.id, cost_nano=3 * USD))
    await ledger.record(make_event(account_id=account.id, key_id=uncapped.id, member_id=None, cost_nano=USD))
    state = AlertState(ledger)
    at = make_event().timestamp

    assert await state.capped_owners() == {("account", account.id), ("member", member.id), ("key", key.id)}

    def capped(scope: str, owner_id: str, name: str, cap: int, period: Period, spent: int) -> CappedOwner:
        start = int(period_start(period, at=at, tz=NEW_YORK).timestamp())
        return CappedOwner(scope, owner_id, account.id, name, cap, period, start, spent)

    expected = [
        capped("account", account.id, "acme", 100 * USD, Period.MONTHLY, 4 * USD),
        capped("member", member.id, "ada@acme.test", 50 * USD, Period.DAILY, 3 * USD),
        capped("key", key.id, "prod", 10 * USD, Period.MONTHLY, 3 * USD),
    ]
    assert await state.account_caps(account.id, at=at, tz=NEW_YORK) == expected
    reading = await state.owner_caps({("key", key.id), ("key", uncapped.id), ("member", member.id)}, at=at)
    assert reading.owners == [expected[2], expected[1]]
    assert reading.configs == {account.id: None}


async def test_hourly_spend_per_key_from_the_hour_containing_since(ledger: Ledger, make_event: EventFactory) -> None:
    noon = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    await ledger.record_many(
        [
            make_event(timestamp=noon - timedelta(minutes=1), cost_nano=1),
            make_event(timestamp=noon + timedelta(minutes=5), cost_nano=20),
            make_event(timestamp=noon + timedelta(minutes=50), cost_nano=300),
            make_event(timestamp=noon + timedelta(hours=1), cost_nano=4_000, key_id=None),
            make_event(timestamp=noon + timedelta(hours=1), cost_nano=50_000, account_id="acct-2"),
        ]
    )
    state = AlertState(ledger)

    hour = int(noon.timestamp())
    spend = await state.hourly_spend("acct-1", since=noon + timedelta(minutes=30))
    assert spend == {"key-1": {hour: 320}, "": {hour + 3600: 4_000}}


async def test_the_feed_hands_events_over_once_moving_its_cursor_with_the_messages(
    ledger: Ledger, make_event: EventFactory, table_rows: TableRows
) -> None:
    _, account, _, _ = await owners(ledger)
    endpoints = WebhookEndpoints(ledger, BOX)
    feed = await endpoints.create(account.id, url="https://a.test/", events=["usage.recorded"], secret=new_secret())
    await endpoints.create(account.id, url="https://b.test/", events=["usage.threshold"], secret=new_secret())
    off = await endpoints.create(account.id, url="https://c.test/", events=["cost.calculated"], secret=new_secret())
    await endpoints.update(off.id, enabled=False)
    for n in range(3):
        await ledger.record(make_event(id=f"evt-{n}", account_id=account.id))
    await ledger.record(make_event(account_id="another-account"))
    store = UsageFeedStore(ledger)

    (endpoint,) = await store.endpoints(wanting=("usage.recorded", "cost.calculated"))
    assert (endpoint.id, endpoint.events, endpoint.batch_size) == (feed.id, ("usage.recorded",), 100)
    first = await store.events_after(endpoint, limit=2)
    assert [row.id for row in first] == ["evt-0", "evt-1"]
    message = Message(account.id, "webhook", "usage.recorded", json.dumps({"n": 2}), endpoint_id=endpoint.id)

    assert await store.hand_over(endpoint, first, [message], now_us=epoch_us(JUNE_10)) is True
    assert await store.hand_over(endpoint, first, [message], now_us=epoch_us(JUNE_10)) is False, "handed over twice"

    assert [row["body"] for row in await table_rows(ledger, outbox)] == [message.body]
    (moved,) = await store.endpoints(wanting=("usage.recorded",))
    assert moved.cursor == (epoch_us(first[-1].recorded_at), "evt-1")
    assert [row.id for row in await store.events_after(moved, limit=10)] == ["evt-2"]


async def test_a_database_error_is_the_ledgers_own(ledger: Ledger) -> None:
    with pytest.raises(DatabaseUnusable) as refused:
        await ledger._read(lambda connection: connection.exec_driver_sql("SELECT * FROM no_such_table").all())
    assert isinstance(refused.value.__cause__, DBAPIError)
    assert refused.value.reason
    with pytest.raises(DatabaseUnusable):
        await ledger._write(lambda connection: connection.exec_driver_sql("INSERT INTO no_such_table VALUES (1)"))


async def test_an_unreachable_database_is_unusable_without_its_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ledger = Ledger(f"postgresql://farebox:s3cret@127.0.0.1:{port}/ledger")
    try:
        with pytest.raises(DatabaseUnusable) as refused:
            await ledger.start()
    finally:
        ledger.engines.dispose()
    assert "s3cret" not in refused.value.reason
