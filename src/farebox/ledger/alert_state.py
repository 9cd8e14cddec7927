"""What the alerts keep in the ledger, and what they read from it: rules, firings, caps, balances and spend.

`fire` inserts each firing row first. The row's key (rule, scope, scope id, period start) is what makes a
threshold fire once per period: a second `fire` of the same alert inserts nothing and does nothing, on
SQLite and PostgreSQL alike, whichever process tries. Only a new firing enqueues its webhook, Slack, e-mail
and PagerDuty messages and disables its key, so they commit together with it, in one writer transaction, or not
at all. A PagerDuty message keeps the account's routing key sealed, as the rules keep it (`signing_secrets`).
Alert rules are stored as the JSON documents the alerts package validates; the ledger does not read them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from farebox.core.alerts import Alert, Fired
from farebox.core.credits import balance_counter
from farebox.core.events import epoch_us, from_epoch_us
from farebox.core.pagerduty import trigger_body
from farebox.core.periods import Period
from farebox.core.spend import CounterId, Scope
from farebox.ledger.base import Ledger
from farebox.ledger.credits import read_prepaid
from farebox.ledger.outbox import Message, enqueue, message_body, notify_endpoints
from farebox.ledger.rows import disable_key_row
from farebox.ledger.schema import (
    accounts,
    alert_firings,
    alert_settings,
    credit_balances,
    members,
    usage_rollups,
    virtual_keys,
)
from farebox.ledger.spend import read_counters

__all__ = [
    "AlertAccount",
    "AlertState",
    "BalanceReading",
    "CapReading",
    "CappedOwner",
    "FiredAlertRow",
    "Firing",
    "Owner",
]

Owner = tuple[str, str]
"""(scope, id) of a key, member or account."""
_TABLES: dict[str, Table] = {"key": virtual_keys, "member": members, "account": accounts}
_Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Firing:
    """An alert to fire, with where its Slack, e-mail and PagerDuty actions go (from the account's alert rules)."""

    alert: Alert
    slack_webhook_url: str | None = None
    email_recipients: tuple[str, ...] = ()
    pagerduty_routing_key: str | None = None
    """Sealed (`signing_secrets.seal_routing_key`), as the account's rules keep it."""


@dataclass(frozen=True, slots=True)
class FiredAlertRow:
    """An alert that fired, as recorded."""

    rule: str
    scope: str
    scope_id: str
    account_id: str
    period_start: datetime
    """The start of the period it fired for (it fires once per rule, scope and period)."""
    fired_at: datetime
    evidence: dict[str, Any]
    """The event type, the text and the alert's data."""

    @property
    def data(self) -> dict[str, Any]:
        """The alert's data: its evidence without the event type and the text."""
        return {name: value for name, value in self.evidence.items() if name not in ("event_type", "text")}


@dataclass(frozen=True, slots=True)
class CappedOwner:
    """A key, member or account with a spend cap, and what it spent in the cap's current period."""

    scope: str
    id: str
    account_id: str
    name: str
    """The member's e-mail; the key's or account's name."""
    cap_nano: int
    period: Period
    period_start: int
    """Epoch seconds: the start of the current period, in the account's timezone."""
    spent_nano: int


@dataclass(frozen=True, slots=True)
class BalanceReading:
    """An account that holds prepaid credits, and what is left of them."""

    account_id: str
    name: str
    balance_nano: int
    """Topped up minus used: below zero when ingested usage overdrew it."""
    topped_up_at: int
    """Epoch seconds of the latest top-up: a balance alert fires once per top-up."""


@dataclass(frozen=True, slots=True)
class CapReading:
    """Owners' caps and spend, the balances of the accounts among them that hold credits, and the stored alert
    rules of their accounts (None: the account set none)."""

    owners: list[CappedOwner]
    configs: dict[str, dict[str, Any] | None]
    balances: list[BalanceReading]


@dataclass(frozen=True, slots=True)
class AlertAccount:
    """An account as the anomaly scanner needs it: its timezone and stored alert rules (None: none set)."""

    id: str
    timezone: ZoneInfo
    config: dict[str, Any] | None


class AlertState:
    """The alerts' rules, firings and the caps and spend they watch, in one ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def load_configs(self, account_ids: Iterable[str]) -> dict[str, dict[str, Any] | None]:
        """Each account's stored alert rules, as stored (None for an account that set none)."""
        ids = list(set(account_ids))
        return await self._ledger._read(lambda connection: _configs(connection, ids))

    async def put_config(self, account_id: str, config: dict[str, Any], *, at: datetime) -> None:
        """Replace the account's alert rules with `config` (the account must exist: the caller checked)."""
        row = {"account_id": account_id, "config": config, "updated_at": int(at.timestamp())}

        def write(connection: Connection) -> None:
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(alert_settings).values(row)
            changes = {"config": statement.excluded.config, "updated_at": statement.excluded.updated_at}
            connection.execute(statement.on_conflict_do_update(index_elements=["account_id"], set_=changes))

        await self._ledger._write(write)

    async def history(
        self,
        account_id: str | None,
        *,
        limit: int,
        since: datetime | None = None,
        until: datetime | None = None,
        rule_prefix: str = "",
    ) -> list[FiredAlertRow]:
        """The alerts the account fired (None: every account), newest first: those fired at or after `since` and
        before `until` when given, whose rule starts with `rule_prefix` (`anomaly:` for the detectors')."""
        firings = alert_firings.c
        query = select(alert_firings).order_by(firings.fired_at_us.desc()).limit(limit)
        if account_id is not None:
            query = query.where(firings.account_id == account_id)
        if since is not None:
            query = query.where(firings.fired_at_us >= epoch_us(since))
        if until is not None:
            query = query.where(firings.fired_at_us < epoch_us(until))
        if rule_prefix:
            query = query.where(firings.rule.startswith(rule_prefix, autoescape=True))
        rows = await self._ledger._read(lambda connection: connection.execute(query).mappings().all())
        return [
            FiredAlertRow(
                rule=row["rule"],
                scope=row["scope"],
                scope_id=row["scope_id"],
                account_id=row["account_id"],
                period_start=datetime.fromtimestamp(row["period_start"], UTC),
                fired_at=from_epoch_us(row["fired_at_us"]),
                evidence=dict(row["evidence"]),
            )
            for row in rows
        ]

    async def fire(self, firings: Sequence[Firing], *, at: datetime) -> Fired:
        """Record each alert and take its actions, unless it already fired for its period: one transaction.

        Returns:
            The alerts that fired now, and the keys their `disable_key` actions disabled.
        """

        def write(connection: Connection) -> Fired:
            # A fresh result per run: the writer runs a transaction again after a conflict.
            fired = Fired()
            for firing in firings:
                _fire(connection, firing, at=at, fired=fired)
            return fired

        return await self._ledger._write(write)

    async def capped_owners(self) -> set[Owner]:
        """Every key (not revoked), member and account that has a spend cap, and every account holding credits."""
        return await self._ledger._read(_capped_owners)

    async def owner_caps(self, owners: Collection[Owner], *, at: datetime) -> CapReading:
        """The caps and spend (in the periods containing `at`) of those of `owners` that have a cap, the balances of
        the accounts among them that hold credits, and the alert rules of their accounts, from one read."""
        return await self._ledger._read(lambda connection: _owner_caps(connection, owners, at=at))

    async def account_caps(self, account_id: str, *, at: datetime, tz: ZoneInfo) -> list[CappedOwner]:
        """The account and its members and live keys that have a cap, with their spend in the periods containing
        `at` (bounded in `tz`, the account's timezone)."""
        return await self._ledger._read(lambda connection: _account_caps(connection, account_id, at=at, tz=tz))

    async def accounts(self) -> list[AlertAccount]:
        """Every account, with its timezone and stored alert rules."""

        def fetch(connection: Connection) -> list[AlertAccount]:
            zones = {
                row.id: ZoneInfo(row.timezone) for row in connection.execute(select(accounts.c.id, accounts.c.timezone))
            }
            configs = _configs(connection, list(zones))
            return [AlertAccount(account_id, tz, configs[account_id]) for account_id, tz in zones.items()]

        return await self._ledger._read(fetch)

    async def hourly_spend(self, account_id: str, *, since: datetime) -> dict[str, dict[int, int]]:
        """The account's spend (nano-USD) per key and hour, from the hour containing `since`.

        Returns:
            key id ('' for usage without a key) -> epoch seconds of the hour -> spend in that hour.
        """
        start = int(since.timestamp()) // 3600 * 3600
        rollups = usage_rollups.c
        query = (
            select(rollups.key_id, rollups.bucket, func.sum(rollups.cost_nano).label("cost"))
            .where(rollups.account_id == account_id, rollups.bucket >= start)
            .group_by(rollups.key_id, rollups.bucket)
        )

        def fetch(connection: Connection) -> dict[str, dict[int, int]]:
            spend: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
            for row in connection.execute(query):
                spend[row.key_id][int(row.bucket) // 3600 * 3600] += int(row.cost)
            return {key_id: dict(hours) for key_id, hours in spend.items()}

        return await self._ledger._read(fetch)


def _configs(connection: Connection, ids: list[str]) -> dict[str, dict[str, Any] | None]:
    query = select(alert_settings.c.account_id, alert_settings.c.config).where(alert_settings.c.account_id.in_(ids))
    found = {row.account_id: row.config for row in connection.execute(query)}
    return {account_id: found.get(account_id) for account_id in ids}


def _insert_once(connection: Connection, row: _Row) -> bool:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    # RETURNING, not rowcount: the PostgreSQL writer pipelines its statements, and a pipeline has no rowcount.
    statement = dialect.insert(alert_firings).values(row).on_conflict_do_nothing().returning(alert_firings.c.rule)
    return connection.execute(statement).first() is not None


def _fire(connection: Connection, firing: Firing, *, at: datetime, fired: Fired) -> None:
    alert = firing.alert
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
    enqueue(connection, _messages(firing, data, at=at), now_us=now_us)
    if "disable_key" in alert.actions and alert.scope == "key":
        reason = f"disabled by alert: {alert.text}"
        disable_key_row(connection, alert.scope_id, reason=reason, now=now_us // 1_000_000)
        fired.disabled_keys.append(alert.scope_id)
        key_data = {"key_id": alert.scope_id, "reason": reason, "alert": alert.rule}
        notify_endpoints(
            connection, account_id=alert.account_id, event_type="key.disabled", data=key_data, at=at, now_us=now_us
        )


def _messages(firing: Firing, data: dict[str, Any], *, at: datetime) -> list[Message]:
    """The Slack (one per channel the alert names), e-mail and PagerDuty messages of a new firing."""
    alert = firing.alert
    messages: list[Message] = []
    body = message_body(alert.event_type, data, at=at)
    if "slack" in alert.actions and firing.slack_webhook_url:
        bodies = [message_body(alert.event_type, data | {"slack_channel": c}, at=at) for c in alert.channels] or [body]
        messages.extend(
            Message(alert.account_id, "slack", alert.event_type, each, target=firing.slack_webhook_url)
            for each in bodies
        )
    recipients = alert.recipients or firing.email_recipients
    if "email" in alert.actions and recipients:
        messages.append(Message(alert.account_id, "email", alert.event_type, body, target=",".join(recipients)))
    if "pagerduty" in alert.actions and firing.pagerduty_routing_key:
        pagerduty = trigger_body(alert, at=at)
        messages.append(
            Message(alert.account_id, "pagerduty", alert.event_type, pagerduty, target=firing.pagerduty_routing_key)
        )
    return messages


def _capped_owners(connection: Connection) -> set[Owner]:
    owners: set[Owner] = set()
    for scope, table in _TABLES.items():
        where = [table.c.spend_cap_nano.is_not(None)]
        if scope == "key":
            where.append(virtual_keys.c.revoked_at.is_(None))
        owners.update((scope, owner_id) for owner_id in connection.scalars(select(table.c.id).where(*where)))
    owners.update(("account", account_id) for account_id in connection.scalars(select(credit_balances.c.account_id)))
    return owners


def _owner_caps(connection: Connection, owners: Collection[Owner], *, at: datetime) -> CapReading:
    rows: list[tuple[str, _Row]] = []
    for scope, table in _TABLES.items():
        ids = [owner_id for owner_scope, owner_id in owners if owner_scope == scope]
        if ids:
            query = select(table).where(table.c.id.in_(ids), table.c.spend_cap_nano.is_not(None))
            rows.extend((scope, dict(row)) for row in connection.execute(query).mappings())
    balances = _balances(connection, [owner_id for scope, owner_id in owners if scope == "account"])
    account_ids = {_account_of(scope, row) for scope, row in rows}
    zone_query = select(accounts.c.id, accounts.c.timezone).where(accounts.c.id.in_(account_ids))
    zones = {row.id: ZoneInfo(row.timezone) for row in connection.execute(zone_query)}
    configs = _configs(connection, list(account_ids | {balance.account_id for balance in balances}))
    return CapReading(_with_spend(connection, rows, zones, at=at), configs, balances)


def _balances(connection: Connection, account_ids: list[str]) -> list[BalanceReading]:
    """The balances of those of the accounts that hold credits."""
    prepaid = read_prepaid(connection, account_ids)
    if not prepaid:
        return []
    names = dict(
        connection.execute(select(accounts.c.id, accounts.c.name).where(accounts.c.id.in_(list(prepaid)))).all()
    )
    spent = read_counters(connection, [balance_counter(account_id) for account_id in prepaid])
    return [
        BalanceReading(
            account_id=account_id,
            name=names[account_id],
            balance_nano=credits.balance_nano(spent.get(balance_counter(account_id), 0)),
            topped_up_at=int(credits.topped_up_at.timestamp()),
        )
        for account_id, credits in prepaid.items()
    ]


def _account_caps(connection: Connection, account_id: str, *, at: datetime, tz: ZoneInfo) -> list[CappedOwner]:
    rows: list[tuple[str, _Row]] = []
    for scope, table, where in (
        ("account", accounts, accounts.c.id == account_id),
        ("member", members, members.c.account_id == account_id),
        ("key", virtual_keys, (virtual_keys.c.account_id == account_id) & virtual_keys.c.revoked_at.is_(None)),
    ):
        query = select(table).where(where, table.c.spend_cap_nano.is_not(None))
        rows.extend((scope, dict(row)) for row in connection.execute(query).mappings())
    return _with_spend(connection, rows, {account_id: tz}, at=at)


def _account_of(scope: str, row: Mapping[str, Any]) -> str:
    return str(row["id"] if scope == "account" else row["account_id"])


def _with_spend(
    connection: Connection, rows: list[tuple[str, _Row]], zones: Mapping[str, ZoneInfo], *, at: datetime
) -> list[CappedOwner]:
    """The capped owners of `rows`, with their spend in the periods containing `at` (in their account's zone)."""
    counters = [
        CounterId.of(Scope(scope), row["id"], Period(row["cap_period"]), at=at, tz=zones[_account_of(scope, row)])
        for scope, row in rows
    ]
    spent = read_counters(connection, counters)
    return [
        CappedOwner(
            scope=scope,
            id=row["id"],
            account_id=_account_of(scope, row),
            name=row["email"] if scope == "member" else row["name"],
            cap_nano=int(row["spend_cap_nano"]),
            period=Period(row["cap_period"]),
            period_start=counter.start,
            spent_nano=spent.get(counter, 0),
        )
        for (scope, row), counter in zip(rows, counters, strict=True)
    ]
