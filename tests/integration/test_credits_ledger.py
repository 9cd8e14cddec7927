"""Prepaid credits on every backend (SQLite, and PostgreSQL with TEST_PG_URL): top-ups appended with who and when,
the balance drawn by proxied and ingested spend alike, voids that give back only what the credits paid, top-ups
that apply to the next request, and `credits.low` fired from the real balance once per top-up."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from farebox.alerts.actions import Alerter
from farebox.alerts.config import AlertConfig
from farebox.alerts.store import AlertStore
from farebox.alerts.watcher import CapWatcher
from farebox.core.credits import MAX_GRANTED_NANO, CreditRate, CreditsExhausted
from farebox.core.events import UsageEvent, epoch_us
from farebox.core.money import NANO_PER_USD
from farebox.core.owners import Account, VirtualKey
from farebox.core.sealing import SecretBox
from farebox.core.server_secret import WEBHOOK_SECRETS
from farebox.errors import NotFound, ValidationFailed
from farebox.ledger.actors import Actor
from farebox.ledger.adjustments import Adjustments
from farebox.ledger.base import Ledger
from farebox.ledger.credits import Credits
from farebox.ledger.directory import Directory
from farebox.ledger.reprices import RepriceRange, Reprices
from farebox.ledger.schema import credit_top_ups, outbox
from farebox.ledger.webhooks import WebhookEndpoints
from farebox.metering import Budgets, LocalCounters
from farebox.prices import PriceBook
from farebox.webhooks.signing import new_secret

if TYPE_CHECKING:
    from tests.conftest import EventFactory, TableRows

pytestmark = pytest.mark.anyio

USD = NANO_PER_USD
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
ADMIN = Actor("member", "mem-admin")
BOX = SecretBox.derived("credits-tests-server-secret-0123456789abcdef", purpose=WEBHOOK_SECRETS)


class Clock:
    def __init__(self) -> None:
        self.at = NOW

    def __call__(self) -> datetime:
        return self.at


class World:
    """An account with one key, its credits store, budgets over both, and events that spend through the key."""

    def __init__(
        self, ledger: Ledger, directory: Directory, clock: Clock, account: Account, key: VirtualKey, make: EventFactory
    ):
        self.ledger, self.directory, self.clock, self.account, self.key = ledger, directory, clock, account, key
        self.credits = Credits(directory)
        self.budgets = Budgets(directory, LocalCounters(ledger), credits=self.credits)
        self._make = make

    def event(self, cost_nano: int, *, source: str = "proxy") -> UsageEvent:
        key = self.key
        return self._make(
            account_id=key.account_id, key_id=key.id, member_id=None, cost_nano=cost_nano, source=source, timestamp=NOW
        )

    async def balance(self) -> int | None:
        return (await self.credits.statement(self.account.id)).balance_nano

    async def remaining(self) -> int | None:
        return await self.budgets.remaining(await self.budgets.caps_for(self.key), at=NOW)


@pytest.fixture
async def world(ledger: Ledger, make_event: EventFactory) -> World:
    clock = Clock()
    directory = Directory(ledger, clock=clock)
    account = await directory.create_account(name="Acme")
    key, _secret = await directory.create_key(account.id, name="ci-bot")
    return World(ledger, directory, clock, account, key, make_event)


async def test_top_ups_are_appended_with_who_when_and_why(world: World, table_rows: TableRows) -> None:
    first, balance = await world.credits.top_up(world.account.id, amount_nano=10 * USD, by=ADMIN, note="  PO 1  ")
    assert balance == 10 * USD
    assert (first.amount_nano, first.note, first.by, first.created_at) == (10 * USD, "PO 1", ADMIN, NOW)
    second, balance = await world.credits.top_up(world.account.id, amount_nano=USD // 2, by=Actor("cli"))
    assert balance == 10 * USD + USD // 2 and second.note is None

    statement = await world.credits.statement(world.account.id)
    assert statement.top_ups == (second, first)  # newest first
    assert statement.prepaid is not None and statement.prepaid.granted_nano == 10 * USD + USD // 2
    rows = await table_rows(world.ledger, credit_top_ups)
    assert sorted((row["amount_nano"], row["actor_kind"], row["actor_member_id"]) for row in rows) == [
        (USD // 2, "cli", None),
        (10 * USD, "member", "mem-admin"),
    ]


async def test_an_account_never_topped_up_holds_no_credits_and_is_not_limited_by_them(world: World) -> None:
    await world.ledger.record(world.event(3 * USD))
    statement = await world.credits.statement(world.account.id)
    assert (statement.prepaid, statement.balance_nano, statement.top_ups) == (None, None, ())
    assert await world.remaining() is None


async def test_spend_before_the_first_top_up_is_not_drawn_and_ingested_usage_may_overdraw(world: World) -> None:
    await world.ledger.record(world.event(7 * USD))
    await world.credits.top_up(world.account.id, amount_nano=2 * USD, by=ADMIN)
    assert await world.balance() == 2 * USD
    await world.ledger.record(world.event(USD // 2))
    assert await world.balance() == 2 * USD - USD // 2
    await world.ledger.record_many([world.event(3 * USD, source="ingest")])  # it happened: it is recorded
    assert await world.balance() == -USD - USD // 2
    statement = await world.credits.statement(world.account.id)
    assert statement.prepaid is not None and statement.prepaid.drawn_nano(statement.spent_nano) == 3 * USD + USD // 2
    _top_up, balance = await world.credits.top_up(world.account.id, amount_nano=2 * USD, by=ADMIN)
    assert balance == USD // 2  # a top-up pays the overdraft first


async def test_a_void_gives_back_only_what_the_credits_paid(world: World) -> None:
    adjustments = Adjustments(world.ledger, clock=lambda: NOW)
    adjustments.on_void.append(world.budgets.reload)
    before = world.event(4 * USD, source="ingest")
    await world.ledger.record_many([before])
    await world.credits.top_up(world.account.id, amount_nano=5 * USD, by=ADMIN)
    after = world.event(3 * USD, source="ingest")
    await world.ledger.record_many([after])
    assert await world.balance() == 2 * USD
    assert await world.remaining() == 2 * USD

    await adjustments.void(before.id, reason="posted before the credits", by=ADMIN)
    assert await world.balance() == 2 * USD  # the credits never paid for it
    assert await world.remaining() == 2 * USD  # this process's budgets agree at once
    await adjustments.void(after.id, reason="posted twice", by=ADMIN)
    assert await world.balance() == 5 * USD
    assert await world.remaining() == 5 * USD


async def test_a_reprice_moves_the_balance_only_for_what_the_credits_paid(world: World) -> None:
    reprices = Reprices(world.ledger, PriceBook(), clock=lambda: NOW)
    reprices.on_reprice.append(world.budgets.reload)
    before = world.event(4 * USD, source="ingest")
    await world.ledger.record_many([before])
    await world.credits.top_up(world.account.id, amount_nano=5 * USD, by=ADMIN)
    await world.ledger.record_many([world.event(3 * USD)])
    assert await world.balance() == 2 * USD

    # The catalog prices each event (gpt-4o, 1,000 tokens in and 200 out) at $0.0045.
    whole = RepriceRange(world.account.id, epoch_us(NOW), epoch_us(NOW) + 1)
    done = await reprices.recalculate([whole], reason="priced by hand", by=ADMIN)
    assert done.repriced == 2
    assert await world.balance() == 5 * USD - 4_500_000, "the credits paid for the second event only"
    assert await world.remaining() == 5 * USD - 4_500_000


async def test_a_top_up_applies_to_the_next_request(world: World) -> None:
    await world.credits.top_up(world.account.id, amount_nano=USD, by=ADMIN)
    caps = await world.budgets.caps_for(world.key)
    held = await world.budgets.reserve(caps, USD, at=NOW)
    with pytest.raises(CreditsExhausted, match="has no prepaid credits left"):
        await world.budgets.reserve(caps, 0, at=NOW)
    assert await world.budgets.reserved_credits(world.account.id) == USD
    await world.credits.top_up(world.account.id, amount_nano=USD, by=ADMIN)  # tells the directory's listeners
    more = await world.budgets.reserve(await world.budgets.caps_for(world.key), USD, at=NOW)
    await world.budgets.release(held)
    await world.budgets.release(more)
    assert await world.budgets.reserved_credits(world.account.id) == 0


async def test_concurrent_top_ups_all_count(world: World) -> None:
    await asyncio.gather(*(world.credits.top_up(world.account.id, amount_nano=USD + n, by=ADMIN) for n in range(20)))
    statement = await world.credits.statement(world.account.id)
    assert len(statement.top_ups) == 20
    assert statement.balance_nano == 20 * USD + sum(range(20))


@pytest.mark.parametrize(
    ("amount", "note", "loc"),
    [(0, None, "amount"), (-USD, None, "amount"), (MAX_GRANTED_NANO + 1, None, "amount"), (USD, "x" * 501, "note")],
)
async def test_a_bad_top_up_is_refused_and_writes_nothing(
    world: World, amount: int, note: str | None, loc: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await world.credits.top_up(world.account.id, amount_nano=amount, by=ADMIN, note=note)
    assert refused.value.details is not None and refused.value.details[0]["loc"] == loc
    assert (await world.credits.statement(world.account.id)).prepaid is None


async def test_what_an_account_is_given_in_all_is_bounded(world: World) -> None:
    await world.credits.top_up(world.account.id, amount_nano=MAX_GRANTED_NANO, by=ADMIN)
    with pytest.raises(ValidationFailed, match="more than 1000000000.00 USD in all"):
        await world.credits.top_up(world.account.id, amount_nano=1, by=ADMIN)
    statement = await world.credits.statement(world.account.id)
    assert len(statement.top_ups) == 1 and statement.balance_nano == MAX_GRANTED_NANO


async def test_an_unknown_account_cannot_be_topped_up_or_read(world: World) -> None:
    with pytest.raises(NotFound):
        await world.credits.top_up("no-such-account", amount_nano=USD, by=ADMIN)
    with pytest.raises(NotFound):
        await world.credits.statement("no-such-account")


async def test_credits_low_fires_from_the_balance_once_per_top_up(world: World, table_rows: TableRows) -> None:
    ledger, account_id = world.ledger, world.account.id
    rules = {"account": {"thresholds": [], "credits_low": {"below": "5.00"}}}
    await AlertStore(ledger).put(account_id, AlertConfig.model_validate(rules), at=NOW)
    await WebhookEndpoints(ledger, BOX).create(
        account_id, url="https://hooks.example.com/credits", events=["credits.low"], secret=new_secret()
    )
    watcher = CapWatcher(ledger, Alerter(ledger, world.directory), clock=lambda: NOW, rate=CreditRate())
    await world.credits.top_up(account_id, amount_nano=10 * USD, by=ADMIN)

    await ledger.record(world.event(4 * USD))
    assert (await watcher.sweep()).alerts == []  # 6 USD left
    await ledger.record(world.event(2 * USD))
    (alert,) = (await watcher.check()).alerts
    assert (alert.rule, alert.event_type, alert.scope, alert.scope_id) == (
        "credits_low",
        "credits.low",
        "account",
        account_id,
    )
    await ledger.record(world.event(USD))
    assert (await watcher.check()).alerts == []  # once per top-up, however low it goes

    world.clock.at = NOW + timedelta(hours=1)
    await world.credits.top_up(account_id, amount_nano=USD, by=ADMIN)  # still below 5 USD after it
    await ledger.record(world.event(USD // 2))
    assert [alert.rule for alert in (await watcher.check()).alerts] == ["credits_low"]
    bodies = [json.loads(row["body"]) for row in await table_rows(ledger, outbox)]
    assert [body["type"] for body in bodies] == ["credits.low", "credits.low"]
    data: dict[str, Any] = min(bodies, key=lambda body: body["data"]["balance"])["data"]
    assert (data["balance"], data["balance_credits"], data["credits_low_below"]) == ("3.50", "70000", "5.00")
    assert "has 70000 credits (3.50 USD) left of its prepaid balance" in data["text"]
