"""Alerts and the outbox on a real ledger (SQLite and PostgreSQL): thresholds fire once per period, their
messages commit with them, keys are disabled atomically, deliveries are leased, retried and failed, the usage
feed batches and never hands an event over twice, and the anomaly scanner fires on a synthetic history."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from farebox.alerts.actions import Alerter
from farebox.alerts.config import AlertConfig
from farebox.alerts.scanner import AnomalyScanner
from farebox.alerts.store import AlertStore
from farebox.alerts.watcher import CapWatcher
from farebox.core.alerts import Fired
from farebox.core.events import UsageEvent, epoch_us
from farebox.core.money import NANO_PER_USD
from farebox.core.owners import KeyStatus, VirtualKey
from farebox.core.sealing import SecretBox
from farebox.core.server_secret import WEBHOOK_SECRETS
from farebox.errors import AuthenticationFailed, BudgetExceeded
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.outbox import Attempt, Message, Outbox
from farebox.ledger.schema import outbox, outbox_attempts
from farebox.ledger.webhooks import WebhookEndpoints
from farebox.metering import Budgets, LocalCounters
from farebox.webhooks.feed import UsageFeed
from farebox.webhooks.sender import Sender
from farebox.webhooks.signing import new_secret

if TYPE_CHECKING:
    from tests.conftest import EventFactory, TableRows

pytestmark = pytest.mark.anyio

USD = NANO_PER_USD
JUNE_10 = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
BOX = SecretBox.derived("alerts-outbox-tests-server-secret-0123456789", purpose=WEBHOOK_SECRETS)


Spend = Callable[..., UsageEvent]
"""`spend(key, cost_nano, at=JUNE_10)`: an event of the key spending that much."""


@pytest.fixture
def spend(make_event: EventFactory) -> Spend:
    def build(key: VirtualKey, cost_nano: int, *, at: datetime = JUNE_10) -> UsageEvent:
        return make_event(
            account_id=key.account_id, key_id=key.id, member_id=key.member_id, cost_nano=cost_nano, timestamp=at
        )

    return build


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


async def setup(ledger: Ledger, clock: Clock, *, events: list[str]) -> tuple[Directory, VirtualKey, CapWatcher, str]:
    """A $10/month key, an endpoint for `events`, and a watcher."""
    directory = Directory(ledger, clock=clock)
    account = await directory.create_account(name="acme")
    key, _ = await directory.create_key(account.id, name="prod", spend_cap_nano=10 * USD)
    endpoint = await WebhookEndpoints(ledger, BOX, clock=clock).create(
        account.id, url="https://hooks.example.com/farebox", events=events, secret=new_secret()
    )
    return directory, key, CapWatcher(ledger, Alerter(ledger, directory), clock=clock), endpoint.id


async def outbox_rows(ledger: Ledger, table_rows: TableRows) -> list[dict[str, Any]]:
    rows = await table_rows(ledger, outbox)
    return sorted(rows, key=lambda row: (row["created_at_us"], row["event_type"], row["body"]))


async def test_thresholds_fire_once_per_period_for_the_endpoints_that_asked(
    ledger: Ledger, table_rows: TableRows, spend: Spend
) -> None:
    clock = Clock(JUNE_10)
    directory, key, watcher, endpoint_id = await setup(ledger, clock, events=["usage.threshold"])
    await WebhookEndpoints(ledger, BOX).create(
        key.account_id, url="https://other.example.com/", events=["usage.recorded"], secret=new_secret()
    )

    await ledger.record(spend(key, 6 * USD))
    fired = await watcher.check()
    assert [alert.rule for alert in fired.alerts] == ["threshold:0.5"]
    (row,) = await outbox_rows(ledger, table_rows)
    assert (row["endpoint_id"], row["event_type"], row["status"]) == (endpoint_id, "usage.threshold", "pending")
    data = json.loads(row["body"])["data"]
    assert (data["key_id"], data["spent"], data["cap"], data["threshold"]) == (key.id, "6.00", "10.00", "0.5")

    await ledger.record(spend(key, USD // 2))
    assert (await watcher.check()).alerts == []
    another_process = CapWatcher(ledger, Alerter(ledger, directory), clock=clock)
    await ledger.record(spend(key, USD // 4))
    assert (await another_process.check()).alerts == []
    assert len(await outbox_rows(ledger, table_rows)) == 1

    await ledger.record(spend(key, 2 * USD))  # 8.75 of 10
    assert [alert.rule for alert in (await watcher.check()).alerts] == ["threshold:0.8"]

    clock.at = datetime(2025, 7, 2, tzinfo=UTC)  # a new month: every threshold may fire again
    await ledger.record(spend(key, 6 * USD, at=clock.at))
    assert [alert.rule for alert in (await watcher.check()).alerts] == ["threshold:0.5"]
    assert len(await outbox_rows(ledger, table_rows)) == 3


async def test_under_steady_commits_the_watcher_checks_once_per_interval(
    ledger: Ledger, spend: Spend, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(JUNE_10)
    directory, key, _, _ = await setup(ledger, clock, events=["usage.threshold"])
    watcher = CapWatcher(ledger, Alerter(ledger, directory), debounce=0.01, interval=0.25, clock=clock)
    loop = asyncio.get_running_loop()
    checks: list[float] = []
    check = watcher.check

    async def timed_check() -> Fired:
        checks.append(loop.time())
        return await check()

    monkeypatch.setattr(watcher, "check", timed_check)
    running = asyncio.ensure_future(watcher.run())
    try:
        until = loop.time() + 1.2
        while loop.time() < until:  # a commit touching the key every 10 ms
            await ledger.record(spend(key, 1_000))
            await asyncio.sleep(0.01)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    after_sweep = checks[1:]
    gaps = [later - earlier for earlier, later in itertools.pairwise(after_sweep)]
    assert len(after_sweep) >= 3, "steady traffic is still checked"
    assert min(gaps) >= 0.24, f"checks {gaps} apart: more often than once per interval"


async def test_a_new_process_fires_what_a_crash_left_unchecked(ledger: Ledger, spend: Spend) -> None:
    clock = Clock(JUNE_10)
    directory, key, crashed, _ = await setup(ledger, clock, events=["usage.threshold"])
    await ledger.record(spend(key, 9 * USD))  # the process that committed this stopped before checking it
    restarted = CapWatcher(ledger, Alerter(ledger, directory), clock=clock)
    fired = await restarted.sweep()
    assert sorted(alert.rule for alert in fired.alerts) == ["threshold:0.5", "threshold:0.8"]
    assert (await crashed.check()).alerts == [], "the firing in the ledger stops a second one"


async def test_disable_key_action_disables_it_with_the_firing(
    ledger: Ledger, table_rows: TableRows, spend: Spend
) -> None:
    clock = Clock(JUNE_10)
    directory, key, watcher, _ = await setup(ledger, clock, events=["usage.threshold", "key.disabled"])
    rules = {"keys": {"thresholds": [{"fraction": "0.9", "actions": ["webhook", "disable_key"]}]}}
    await AlertStore(ledger).put(key.account_id, AlertConfig.model_validate(rules), at=JUNE_10)

    await ledger.record(spend(key, 9 * USD))
    fired = await watcher.check()
    assert fired.disabled_keys == [key.id]
    stopped = await directory.get_key(key.id)
    assert stopped.status(JUNE_10) is KeyStatus.DISABLED
    assert "90% of its monthly spend cap" in (stopped.disabled_reason or "")
    assert sorted(row["event_type"] for row in await outbox_rows(ledger, table_rows)) == [
        "key.disabled",
        "usage.threshold",
    ]
    enabled = await directory.enable_key(key.id)
    assert enabled.status(JUNE_10) is KeyStatus.ACTIVE


async def test_a_disabled_key_fails_authentication_with_its_reason(ledger: Ledger) -> None:
    directory = Directory(ledger, clock=lambda: JUNE_10)
    account = await directory.create_account(name="acme")
    key, secret = await directory.create_key(account.id, name="prod")
    await directory.disable_key(key.id, reason="leaked on a forum")
    with pytest.raises(AuthenticationFailed, match="disabled: leaked on a forum") as refused:
        await directory.authenticate(secret)
    assert refused.value.code == "key_disabled"


async def test_credits_low_and_a_refusal_fire_their_events(ledger: Ledger, table_rows: TableRows, spend: Spend) -> None:
    clock = Clock(JUNE_10)
    directory, key, watcher, _ = await setup(ledger, clock, events=["credits.low", "budget.exceeded"])
    rules = {"keys": {"thresholds": [], "credits_low": {"below": "3.00"}}}
    await AlertStore(ledger).put(key.account_id, AlertConfig.model_validate(rules), at=JUNE_10)
    budgets = Budgets(directory, LocalCounters(ledger))
    budgets.on_refused.append(watcher.refused)

    await ledger.record(spend(key, 7 * USD + 1))
    assert [alert.rule for alert in (await watcher.check()).alerts] == ["credits_low"]
    caps = await budgets.caps_for(key)
    with pytest.raises(BudgetExceeded):
        await budgets.reserve(caps, 4 * USD, at=JUNE_10)
    (alert,) = (await watcher.check()).alerts
    assert (alert.rule, alert.event_type) == ("budget_exceeded", "budget.exceeded")
    assert "had a request refused" in alert.text
    bodies = {json.loads(row["body"])["type"]: json.loads(row["body"]) for row in await outbox_rows(ledger, table_rows)}
    assert set(bodies) == {"credits.low", "budget.exceeded"}
    assert bodies["credits.low"]["data"]["remaining"] == "2.999999999"


async def test_deliveries_are_leased_retried_with_backoff_then_failed(ledger: Ledger, table_rows: TableRows) -> None:
    deliveries = Outbox(ledger, BOX)
    now = epoch_us(JUNE_10)
    messages = [Message("acct", "slack", "usage.threshold", f'{{"n":{n}}}', target="https://x.test") for n in range(3)]
    ids = await deliveries.enqueue(messages, now_us=now)

    first = await deliveries.claim(now_us=now, lease_us=1_000_000, limit=2)
    second = await deliveries.claim(now_us=now, lease_us=1_000_000, limit=2)
    assert (len(first), len(second)) == (2, 1)
    assert {item.id for item in first + second} == set(ids), "a leased delivery was claimed twice"

    delays = (5_000_000, 10_000_000)  # three attempts in all
    outcomes = [
        Attempt(first[0], ok=True, status_code=200, error=None, duration_ms=3),
        Attempt(first[1], ok=False, status_code=500, error="HTTP 500: boom", duration_ms=4),
        Attempt(second[0], ok=False, status_code=None, error="gone", duration_ms=1, retry=False),
    ]
    await deliveries.finish(outcomes, now_us=now, delays_us=delays)
    rows = {row["id"]: row for row in await table_rows(ledger, outbox)}
    retried = first[1].id
    assert [rows[item.id]["status"] for item in (first[0], first[1], second[0])] == ["delivered", "pending", "failed"]
    assert rows[retried]["next_attempt_us"] == now + 5_000_000

    assert await deliveries.claim(now_us=now + 4_999_999, lease_us=1, limit=9) == []
    for attempt_at in (now + 5_000_000, now + 15_000_000):
        (again,) = await deliveries.claim(now_us=attempt_at, lease_us=1, limit=9)
        failed = Attempt(again, ok=False, status_code=503, error="HTTP 503", duration_ms=2)
        await deliveries.finish([failed], now_us=attempt_at, delays_us=delays)
    final = {row["id"]: row for row in await table_rows(ledger, outbox)}[retried]
    assert (final["status"], final["attempts"], final["last_status_code"]) == ("failed", 3, 503)
    log = sorted(
        (r["attempt"], r["status_code"]) for r in await table_rows(ledger, outbox_attempts) if r["outbox_id"] == retried
    )
    assert log == [(1, 500), (2, 503), (3, 503)]


async def test_prune_forgets_only_finished_deliveries_older_than_the_cut(ledger: Ledger, table_rows: TableRows) -> None:
    deliveries = Outbox(ledger, BOX)
    old, cut, new = epoch_us(JUNE_10), epoch_us(JUNE_10) + 10, epoch_us(JUNE_10) + 20
    for at in (old, new):
        messages = [Message("a", "slack", "x", f'{{"n":{n}}}', target="t") for n in range(3)]
        await deliveries.enqueue(messages, now_us=at)
        claimed = await deliveries.claim(now_us=at, lease_us=10**12, limit=3)
        done = [
            Attempt(claimed[0], ok=True, status_code=200, error=None, duration_ms=1),
            Attempt(claimed[1], ok=False, status_code=500, error="x", duration_ms=1, retry=False),
        ]  # the third stays pending
        await deliveries.finish(done, now_us=at, delays_us=(1,))

    assert await deliveries.prune(before_us=cut, limit=1) == 1
    assert await deliveries.prune(before_us=cut, limit=100) == 1
    assert await deliveries.prune(before_us=cut, limit=100) == 0
    left = await table_rows(ledger, outbox)
    assert sorted((row["created_at_us"], row["status"]) for row in left) == [
        (old, "pending"),
        (new, "delivered"),
        (new, "failed"),
        (new, "pending"),
    ]
    assert {row["outbox_id"] for row in await table_rows(ledger, outbox_attempts)} <= {row["id"] for row in left}


async def test_a_lease_of_a_dead_sender_expires(ledger: Ledger) -> None:
    deliveries = Outbox(ledger, BOX)
    now = epoch_us(JUNE_10)
    await deliveries.enqueue([Message("a", "slack", "x", "{}", target="t")], now_us=now)
    (held,) = await deliveries.claim(now_us=now, lease_us=30_000_000, limit=1)
    assert await deliveries.claim(now_us=now + 29_000_000, lease_us=1, limit=1) == []
    (again,) = await deliveries.claim(now_us=now + 30_000_000, lease_us=1, limit=1)
    assert again.id == held.id and again.attempts == 0


async def test_the_usage_feed_batches_and_hands_each_event_over_once(
    ledger: Ledger, table_rows: TableRows, spend: Spend
) -> None:
    directory = Directory(ledger)
    account = await directory.create_account(name="acme")
    key, _ = await directory.create_key(account.id, name="prod")
    endpoints = WebhookEndpoints(ledger, BOX)
    await endpoints.create(
        account.id,
        url="https://hooks.example.com/",
        events=["usage.recorded", "cost.calculated"],
        secret=new_secret(),
        batch_size=2,
        flush_interval_ms=3_600_000,
    )
    events = [spend(key, (n + 1) * USD, at=datetime.now(UTC)) for n in range(5)]
    for event in events:
        await ledger.record(event)
    feed, other = UsageFeed(ledger), UsageFeed(ledger)

    assert await feed.flush() == 2 + 4  # two whole batches (the fifth event waits), four cost.calculated
    assert await other.flush() == 0
    assert await feed.flush(force=True) == 2  # the partial batch, and its cost.calculated

    bodies = [json.loads(row["body"]) for row in await outbox_rows(ledger, table_rows)]
    batches = [body["data"] for body in bodies if body["type"] == "usage.recorded"]
    assert [batch["count"] for batch in batches] == [2, 2, 1]
    sent = [record["id"] for batch in batches for record in batch["events"]]
    assert sorted(sent) == sorted(event.id for event in events)
    costs = sorted(body["data"]["cost_usd"] for body in bodies if body["type"] == "cost.calculated")
    assert costs == ["1.00", "2.00", "3.00", "4.00", "5.00"]
    assert await feed.flush(force=True) == 0


async def test_the_scanner_flags_a_quiet_key_that_suddenly_spends(
    ledger: Ledger, table_rows: TableRows, spend: Spend
) -> None:
    now = datetime(2025, 6, 10, 12, 30, tzinfo=UTC)
    directory = Directory(ledger, clock=lambda: now)
    account = await directory.create_account(name="acme")
    quiet, _ = await directory.create_key(account.id, name="quiet")
    busy, _ = await directory.create_key(account.id, name="busy")
    await WebhookEndpoints(ledger, BOX).create(
        account.id, url="https://hooks.example.com/", events=["anomaly.detected"], secret=new_secret()
    )
    await ledger.record(spend(quiet, USD // 10, at=now - timedelta(days=5)))
    for hour in range(1, 24 * 7 + 1):  # the busy key spends $2 every hour: its $2 this hour is normal
        await ledger.record(spend(busy, 2 * USD, at=now - timedelta(hours=hour)))
    await ledger.record(spend(busy, 2 * USD, at=now))
    await ledger.record(spend(quiet, 8 * USD, at=now - timedelta(minutes=10)))

    scanner = AnomalyScanner(ledger, Alerter(ledger, directory), interval=60, clock=lambda: now)
    fired = await scanner.scan()
    # The quiet key is also a runaway script (near-zero days, then a huge one), and lifts the account's hour
    # to 5x its usual: three anomalies, none of them on the busy key.
    assert {(alert.rule, alert.scope_id) for alert in fired.alerts} == {
        ("anomaly:leaked_key", quiet.id),
        ("anomaly:runaway_script", quiet.id),
        ("anomaly:cost_spike", account.id),
    }
    bodies = [json.loads(row["body"])["data"] for row in await outbox_rows(ledger, table_rows)]
    (leak,) = [body for body in bodies if body["kind"] == "leaked_key"]
    assert (leak["key_id"], leak["observed"], leak["scope"]) == (quiet.id, "8.00", "key")
    (spike,) = [body for body in bodies if body["kind"] == "cost_spike"]
    # the account's baseline: the busy key's 168 hours of $2 and the quiet key's dime, over 168 hours
    assert (spike["scope_id"], spike["observed"], spike["baseline"]) == (account.id, "10.00", "2.000595238")
    assert (await scanner.scan()).alerts == [], "the same anomaly fired twice on one day"
    assert (
        await AnomalyScanner(ledger, Alerter(ledger, directory), interval=60, clock=lambda: now).scan()
    ).alerts == []


async def test_a_sender_waits_out_another_senders_lease_without_polling_by_writes(ledger: Ledger) -> None:
    # A delivery leased by a sender that died (or by another replica) is not claimable until the lease ends:
    # the sender must sleep until then, not spin through claim transactions that find nothing.
    deliveries = Outbox(ledger, BOX)
    now = epoch_us(datetime.now(UTC))
    await deliveries.enqueue([Message("a", "slack", "x", "{}", target="t")], now_us=now)
    await deliveries.claim(now_us=now, lease_us=60_000_000, limit=1)
    assert await deliveries.next_claimable_us() == now + 60_000_000
    sender = Sender(ledger, BOX, timeout=1, delays_us=[1], allow_private=False, smtp=None, poll_seconds=0.05)
    task = asyncio.create_task(sender.run())
    await asyncio.sleep(0.2)  # the first round prunes the delivery log once: one write
    commits = ledger.commits
    await asyncio.sleep(0.5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert ledger.commits == commits
