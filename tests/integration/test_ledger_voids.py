"""Voids on every backend: an appended, audited adjustment that nets an ingested event out of every spend figure.

The event row is never touched; the rollups and spend counters read as if the event had not been recorded; the
commit tells the listeners what it took off; `usage.voided` is written with it, or nothing is.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from farebox.core.events import UsageEvent
from farebox.core.periods import Period, period_start
from farebox.core.sealing import SecretBox
from farebox.core.server_secret import WEBHOOK_SECRETS
from farebox.core.spend import CounterId, Scope
from farebox.errors import Conflict, NotFound, ValidationFailed
from farebox.ledger.adjustments import Actor, Adjustments
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.schema import outbox, spend_counters, usage_adjustments, usage_events
from farebox.ledger.schema import usage_rollups as rollups
from farebox.ledger.webhooks import WebhookEndpoints
from farebox.webhooks.signing import new_secret

if TYPE_CHECKING:
    from conftest import TableRows, WriterGate

pytestmark = pytest.mark.anyio

EventFactory = Callable[..., UsageEvent]
UTC_ZONE = ZoneInfo("UTC")
WHEN = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)
NOW = datetime(2025, 6, 3, 9, 0, tzinfo=UTC)
ADMIN = Actor("member", "mem-admin")
BOX = SecretBox.derived("void-tests-server-secret-0123456789abcdef", purpose=WEBHOOK_SECRETS)


def ingested(make_event: EventFactory, **fields: Any) -> UsageEvent:
    return make_event(source="ingest", **fields)


async def spent(ledger: Ledger, scope: str, scope_id: str, period: Period = Period.MONTHLY) -> int:
    return await ledger.spent(scope=scope, scope_id=scope_id, period=period, at=WHEN, tz=UTC_ZONE)


def by_key(rows: list[dict[str, Any]], *columns: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(row[c] for c in columns): row for row in rows}


async def test_a_void_nets_the_event_out_of_rollups_and_counters_and_keeps_the_event(
    ledger: Ledger, make_event: EventFactory, table_rows: TableRows
) -> None:
    wrong = ingested(make_event, cost_nano=6_000_000, input_tokens=1_000, output_tokens=500, latency_ms=None)
    kept = ingested(make_event, cost_nano=2_000_000, input_tokens=300, output_tokens=100, latency_ms=None)
    await ledger.record_many([wrong, kept])
    (event_before,) = [row for row in await table_rows(ledger, usage_events) if row["id"] == wrong.id]
    heard: list[Mapping[CounterId, int]] = []
    ledger.on_commit(heard.append)

    void = await Adjustments(ledger, clock=lambda: NOW).void(wrong.id, reason="  posted twice  ", by=ADMIN)

    assert (void.event_id, void.reason, void.by, void.created_at) == (wrong.id, "posted twice", ADMIN, NOW)
    assert (void.account_id, void.key_id, void.member_id) == ("acct-1", "key-1", "mem-1")
    assert (void.cost_nano, void.input_tokens, void.output_tokens, void.event_timestamp) == (
        -6_000_000,
        -1_000,
        -500,
        wrong.timestamp,
    )
    (event_after,) = [row for row in await table_rows(ledger, usage_events) if row["id"] == wrong.id]
    assert event_after == event_before
    (rollup,) = await table_rows(ledger, rollups)
    assert (rollup["requests"], rollup["cost_nano"], rollup["input_tokens"], rollup["output_tokens"]) == (
        1,
        2_000_000,
        300,
        100,
    )
    for scope, owner in (("key", "key-1"), ("member", "mem-1"), ("account", "acct-1")):
        for period in (Period.DAILY, Period.MONTHLY, Period.TOTAL):
            assert await spent(ledger, scope, owner, period) == 2_000_000, (scope, period)
    month = int(period_start(Period.MONTHLY, at=WHEN, tz=UTC_ZONE).timestamp())
    (moved,) = heard
    assert moved[CounterId(Scope.KEY, "key-1", Period.MONTHLY, month)] == -6_000_000
    assert set(moved.values()) == {-6_000_000} and len(moved) == 12  # 3 owners x 4 periods


async def test_the_rollup_loses_every_measure_of_the_voided_event(
    ledger: Ledger, make_event: EventFactory, table_rows: TableRows
) -> None:
    from decimal import Decimal

    event = ingested(
        make_event,
        cost_nano=0,
        priced=False,
        estimated=True,
        latency_ms=850,
        cached_input_tokens=100,
        cache_write_tokens=50,
        reasoning_tokens=20,
        characters=7,
        seconds=Decimal("3600.5"),
        quantity=Decimal("2"),
    )
    await ledger.record(event)

    void = await Adjustments(ledger).void(event.id, reason="test data", by=Actor("master"))

    (rollup,) = await table_rows(ledger, rollups)
    measures = {name: value for name, value in rollup.items() if isinstance(value, int) and name != "bucket"}
    assert measures == dict.fromkeys(measures, 0)
    assert (void.seconds_micro, void.quantity_micro, void.characters) == (-3_600_500_000, -2_000_000, -7)
    assert await table_rows(ledger, spend_counters) == []  # a free event moved no counter


async def test_a_void_is_refused_for_an_unknown_event_another_account_a_proxied_request_and_a_second_time(
    ledger: Ledger, make_event: EventFactory, table_rows: TableRows
) -> None:
    proxied = make_event(cost_nano=1_000)
    event = ingested(make_event, cost_nano=5_000)
    await ledger.record_many([proxied, event])
    adjustments = Adjustments(ledger)

    with pytest.raises(NotFound) as unknown:
        await adjustments.void("no-such-event", reason="x", by=ADMIN)
    with pytest.raises(NotFound) as elsewhere:
        await adjustments.void(event.id, reason="x", by=ADMIN, account_id="acct-2")
    with pytest.raises(Conflict) as real:
        await adjustments.void(proxied.id, reason="x", by=ADMIN)
    with pytest.raises(ValidationFailed):
        await adjustments.void(event.id, reason=" \n ", by=ADMIN)
    first = await adjustments.void(event.id, reason="duplicate of e-7", by=ADMIN, account_id="acct-1")
    before = [await table_rows(ledger, table) for table in (rollups, spend_counters, usage_adjustments)]
    with pytest.raises(Conflict) as twice:
        await adjustments.void(event.id, reason="again", by=Actor("master"))

    assert (unknown.value.code, elsewhere.value.code) == ("event_not_found", "event_not_found")
    assert real.value.code == "event_not_ingested"
    assert twice.value.code == "event_already_voided"
    assert [await table_rows(ledger, table) for table in (rollups, spend_counters, usage_adjustments)] == before
    assert await adjustments.void_of(event.id) == first
    assert await adjustments.void_of(proxied.id) is None
    assert await adjustments.count() == 1
    assert await spent(ledger, "account", "acct-1", Period.TOTAL) == 1_000


async def test_usage_voided_is_written_with_the_void_for_the_endpoints_that_asked(
    ledger: Ledger, make_event: EventFactory, table_rows: TableRows
) -> None:
    directory = Directory(ledger)
    account = await directory.create_account(name="acme")
    endpoints = WebhookEndpoints(ledger, BOX)
    wants = await endpoints.create(account.id, url="https://a.test/", events=["usage.voided"], secret=new_secret())
    await endpoints.create(account.id, url="https://b.test/", events=["usage.recorded"], secret=new_secret())
    event = ingested(make_event, account_id=account.id, cost_nano=1_500_000_000)
    await ledger.record(event)

    void = await Adjustments(ledger, clock=lambda: NOW).void(event.id, reason="wrong key", by=ADMIN)

    (message,) = await table_rows(ledger, outbox)
    assert (message["endpoint_id"], message["event_type"]) == (wants.id, "usage.voided")
    body = json.loads(message["body"])
    assert body["type"] == "usage.voided"
    assert body["data"] | {"id": "-"} == {
        "id": "-",
        "event_id": event.id,
        "account_id": account.id,
        "key_id": "key-1",
        "member_id": "mem-1",
        "event_timestamp": "2025-06-01T12:30:00Z",
        "reason": "wrong key",
        "voided_at": "2025-06-03T09:00:00Z",
        "voided_by": "member",
        "voided_by_member_id": "mem-admin",
        "input_tokens": -1_000,
        "output_tokens": -200,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "characters": 0,
        "seconds": "0",
        "quantity": "0",
        "cost_usd": "-1.50",
    }
    assert body["data"]["id"] == void.id


async def test_a_void_that_fails_leaves_no_message_and_no_adjustment(
    ledger: Ledger, make_event: EventFactory, table_rows: TableRows
) -> None:
    directory = Directory(ledger)
    account = await directory.create_account(name="acme")
    endpoints = WebhookEndpoints(ledger, BOX)
    await endpoints.create(account.id, url="https://a.test/", events=["usage.voided"], secret=new_secret())
    event = ingested(make_event, account_id=account.id)
    await ledger.record(event)
    adjustments = Adjustments(ledger)
    await adjustments.void(event.id, reason="first", by=ADMIN)

    with pytest.raises(Conflict):
        await adjustments.void(event.id, reason="second", by=ADMIN)

    assert len(await table_rows(ledger, outbox)) == 1
    assert [row["reason"] for row in await table_rows(ledger, usage_adjustments)] == ["first"]


async def test_counters_read_in_the_voids_group_see_it_once(
    ledger: Ledger, make_event: EventFactory, writer_gate: type[WriterGate]
) -> None:
    event = ingested(make_event, cost_nano=9_000)
    await ledger.record_many([event, ingested(make_event, cost_nano=1_000)])
    total = CounterId(Scope.KEY, "key-1", Period.TOTAL, 0)
    held: dict[CounterId, int] = {}

    def add(moved: Mapping[CounterId, int]) -> None:
        for counter, amount in moved.items():
            if counter in held:
                held[counter] += amount

    ledger.on_commit(add)
    async with writer_gate(ledger):
        # Queued in this order, one group: the void must not be counted by both the read and the listener.
        voided = asyncio.ensure_future(Adjustments(ledger).void(event.id, reason="x", by=ADMIN))
        loaded = asyncio.ensure_future(ledger.load_counters([total], apply=held.update))
    await asyncio.gather(voided, loaded)

    assert held == {total: 1_000}


async def test_a_new_timezone_recounts_the_current_periods_without_the_voided_events(
    ledger: Ledger, make_event: EventFactory
) -> None:
    directory = Directory(ledger, clock=lambda: WHEN)
    account = await directory.create_account(name="acme")
    events = [ingested(make_event, account_id=account.id, cost_nano=cost) for cost in (4_000, 600)]
    await ledger.record_many(events)
    await Adjustments(ledger).void(events[0].id, reason="x", by=ADMIN)

    await directory.update_account(account.id, timezone="Asia/Kathmandu")

    tz = ZoneInfo("Asia/Kathmandu")
    for scope, owner in (("account", account.id), ("key", "key-1"), ("member", "mem-1")):
        got = await ledger.spent(scope=scope, scope_id=owner, period=Period.DAILY, at=WHEN, tz=tz)
        assert got == 600, scope
