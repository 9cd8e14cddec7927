"""The outbox: notifications written in the same transaction as what caused them, delivered after commit.

An alert that fires, a key an alert disables and the webhook, Slack and e-mail messages that tell of it
commit together or not at all (`enqueue` and `notify_endpoints` take the caller's connection, for the
ledger's other modules). The sender, through `Outbox`, then claims due rows (`claim`: a lease, so two
senders never hold one row), tries them, and records each attempt (`finish`): delivered, or due again
after a backoff, or failed after the last attempt. Rows survive restarts: a lease of a sender that died
expires and another sender picks the row up, under the same message id. A claimed webhook carries its
endpoint's signing secret opened (`ledger.signing_secrets`), and a claimed PagerDuty message its account's
routing key opened (kept sealed in the row's `target`), or why it does not open.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, and_, case, delete, func, insert, or_, select, update

from farebox.core.sealing import SecretBox, UnreadableSecret
from farebox.ledger.base import Ledger
from farebox.ledger.schema import outbox, outbox_attempts, webhook_endpoints
from farebox.ledger.signing_secrets import load_cipher, open_bearer, open_routing_key, open_secret

__all__ = [
    "Attempt",
    "Claimed",
    "Message",
    "Outbox",
    "backoff_delays",
    "enqueue",
    "message_body",
    "new_message_id",
    "notify_endpoints",
    "retry_now",
    "subscribed_endpoints",
]

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
_LONGEST_DELAY_S = 3_600.0
"""The longest an endpoint's own retry schedule waits between attempts."""


def backoff_delays(*, attempts: int, base_seconds: float, max_seconds: float) -> tuple[int, ...]:
    """Microseconds to wait after attempt 1, 2, ...: doubling from `base_seconds`, at most `max_seconds`."""
    return tuple(int(min(base_seconds * 2**n, max_seconds) * 1_000_000) for n in range(attempts - 1))


def new_message_id() -> str:
    """A message id (`webhook-id`): `msg_` and 32 hex digits."""
    return "msg_" + uuid.uuid4().hex


def message_body(event_type: str, data: dict[str, Any], *, at: datetime) -> str:
    """The JSON body of a notification: `{"type", "timestamp", "data"}` (the Standard Webhooks payload shape)."""
    return orjson.dumps({"type": event_type, "timestamp": at.isoformat(), "data": data}).decode()


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery to write: to a webhook endpoint (`endpoint_id`), or a Slack URL, e-mail recipients or a PagerDuty
    routing key (`target`)."""

    account_id: str
    channel: str
    """`webhook`, `slack`, `email` or `pagerduty`."""
    event_type: str
    body: str
    endpoint_id: str | None = None
    target: str = ""
    """The Slack incoming-webhook URL, the e-mail recipients comma-separated, or the account's PagerDuty routing key
    sealed; empty for webhooks."""


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery a sender holds (until its lease ends): what to send and where."""

    id: str
    channel: str
    event_type: str
    body: str
    attempts: int
    """Attempts made before this one."""
    target: str
    url: str | None
    """The endpoint's current URL (webhooks); None when the endpoint was deleted or disabled."""
    secret: str | None
    """The endpoint's signing secret, or the PagerDuty routing key, opened; None without an endpoint (webhooks), or
    when it does not open."""
    secret_error: str | None = None
    """Why the stored signing secret or routing key does not open (another server secret, an altered row)."""
    bearer: str | None = None
    """The endpoint's bearer token, opened, sent as `Authorization`; None for none."""
    delays_us: tuple[int, ...] | None = None
    """The endpoint's own retry schedule (microseconds after attempt 1, 2, ...); None: the server's."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of trying one claimed delivery."""

    claimed: Claimed
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int
    retry: bool = True
    """False when trying again cannot help (the endpoint is gone): the delivery fails at once."""


def enqueue(connection: Connection, messages: Sequence[Message], *, now_us: int) -> list[str]:
    """Write deliveries in the caller's transaction, due at once; their message ids, in order."""
    rows: list[dict[str, Any]] = [
        {
            "id": new_message_id(),
            "account_id": message.account_id,
            "channel": message.channel,
            "endpoint_id": message.endpoint_id,
            "target": message.target,
            "event_type": message.event_type,
            "body": message.body,
            "created_at_us": now_us,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_us": now_us,
        }
        for message in messages
    ]
    if rows:
        connection.execute(insert(outbox), rows)
    return [str(row["id"]) for row in rows]


def subscribed_endpoints(connection: Connection, account_id: str, event_type: str) -> list[str]:
    """Ids of the account's enabled endpoints that asked for `event_type`."""
    query = select(webhook_endpoints.c.id, webhook_endpoints.c.events).where(
        webhook_endpoints.c.account_id == account_id, webhook_endpoints.c.enabled.is_(True)
    )
    return [row.id for row in connection.execute(query) if event_type in row.events]


def notify_endpoints(
    connection: Connection, *, account_id: str, event_type: str, data: dict[str, Any], at: datetime, now_us: int
) -> list[str]:
    """Enqueue `event_type` for every endpoint of the account that wants it; the message ids."""
    body = message_body(event_type, data, at=at)
    messages = [
        Message(account_id, "webhook", event_type, body, endpoint_id=endpoint_id)
        for endpoint_id in subscribed_endpoints(connection, account_id, event_type)
    ]
    return enqueue(connection, messages, now_us=now_us)


def _claim(connection: Connection, box: SecretBox, *, now_us: int, lease_us: int, limit: int) -> list[Claimed]:
    """Take up to `limit` due deliveries, oldest first, leasing each to the caller until `now_us + lease_us`."""
    due = and_(
        outbox.c.status == PENDING,
        outbox.c.next_attempt_us <= now_us,
        or_(outbox.c.lease_until_us.is_(None), outbox.c.lease_until_us <= now_us),
    )
    query = (
        select(
            outbox.c.id,
            outbox.c.account_id,
            outbox.c.channel,
            outbox.c.event_type,
            outbox.c.body,
            outbox.c.attempts,
            outbox.c.target,
            outbox.c.endpoint_id,
            webhook_endpoints.c.url,
            webhook_endpoints.c.secret,
            webhook_endpoints.c.enabled,
            webhook_endpoints.c.bearer_token,
            webhook_endpoints.c.max_retries,
            webhook_endpoints.c.retry_delay_ms,
        )
        .select_from(outbox.outerjoin(webhook_endpoints, outbox.c.endpoint_id == webhook_endpoints.c.id))
        .where(due)
        .order_by(outbox.c.next_attempt_us, outbox.c.id)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(of=outbox, skip_locked=True)
    rows = connection.execute(query).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    connection.execute(update(outbox).where(outbox.c.id.in_(ids)).values(lease_until_us=now_us + lease_us))
    claimed = []
    for row in rows:
        secret = error = bearer = None
        if row.channel == "pagerduty":
            try:
                secret = open_routing_key(box, row.account_id, row.target)
            except UnreadableSecret as exc:
                error = f"the account's PagerDuty routing key does not open: {exc}"
        elif row.enabled and row.secret is not None:
            try:
                secret = open_secret(box, row.endpoint_id, row.secret)
            except UnreadableSecret as exc:
                error = f"the endpoint's signing secret does not open: {exc}"
            if row.bearer_token is not None and error is None:
                try:
                    bearer = open_bearer(box, row.endpoint_id, row.bearer_token)
                except UnreadableSecret as exc:
                    error = f"the endpoint's bearer token does not open: {exc}"
        delays = None
        if row.max_retries is not None and row.retry_delay_ms is not None:
            delays = backoff_delays(
                attempts=row.max_retries + 1, base_seconds=row.retry_delay_ms / 1000, max_seconds=_LONGEST_DELAY_S
            )
        claimed.append(
            Claimed(
                id=row.id,
                channel=row.channel,
                event_type=row.event_type,
                body=row.body,
                attempts=row.attempts,
                target=row.target,
                url=row.url if row.enabled else None,
                secret=secret,
                secret_error=error,
                bearer=bearer,
                delays_us=delays,
            )
        )
    return claimed


def _next_claimable_us(connection: Connection) -> int | None:
    """When `_claim` can next take a delivery: the earliest pending one's due time, or its lease's end if later."""
    ready = case(
        (outbox.c.lease_until_us > outbox.c.next_attempt_us, outbox.c.lease_until_us),
        else_=outbox.c.next_attempt_us,
    )
    earliest = connection.scalar(select(func.min(ready)).where(outbox.c.status == PENDING))
    return None if earliest is None else int(earliest)


def _finish(connection: Connection, attempts: Sequence[Attempt], *, now_us: int, delays_us: Sequence[int]) -> None:
    """Record attempts: delivered, due again after `delays_us[attempt number - 1]`, or failed after the last."""
    if attempts:
        connection.execute(
            insert(outbox_attempts),
            [
                {
                    "outbox_id": attempt.claimed.id,
                    "attempt": attempt.claimed.attempts + 1,
                    "at_us": now_us,
                    "status_code": attempt.status_code,
                    "error": attempt.error,
                    "duration_ms": attempt.duration_ms,
                }
                for attempt in attempts
            ],
        )
    for attempt in attempts:
        made = attempt.claimed.attempts + 1
        schedule = delays_us if attempt.claimed.delays_us is None else attempt.claimed.delays_us
        values: dict[str, Any] = {
            "attempts": made,
            "lease_until_us": None,
            "last_status_code": attempt.status_code,
            "last_error": attempt.error,
        }
        if attempt.ok:
            values |= {"status": DELIVERED, "delivered_at_us": now_us}
        elif not attempt.retry or made >= len(schedule) + 1:
            values |= {"status": FAILED}
        else:
            values |= {"next_attempt_us": now_us + schedule[made - 1]}
        connection.execute(update(outbox).where(outbox.c.id == attempt.claimed.id).values(**values))


def _prune(connection: Connection, *, before_us: int, limit: int) -> int:
    """Delete up to `limit` delivered or failed deliveries created before `before_us`, with their attempts."""
    ids = list(
        connection.scalars(
            select(outbox.c.id)
            .where(outbox.c.status.in_((DELIVERED, FAILED)), outbox.c.created_at_us < before_us)
            .limit(limit)
        )
    )
    if ids:
        connection.execute(delete(outbox_attempts).where(outbox_attempts.c.outbox_id.in_(ids)))
        connection.execute(delete(outbox).where(outbox.c.id.in_(ids)))
    return len(ids)


class Outbox:
    """The deliveries of one ledger, for the sender. Each method is one transaction of its own.

    `box` opens the endpoints' signing secrets (the webhook-secrets key of the server secret).
    """

    def __init__(self, ledger: Ledger, box: SecretBox) -> None:
        self._ledger = ledger
        self._box = box

    async def enqueue(self, messages: Sequence[Message], *, now_us: int) -> list[str]:
        """Write deliveries, due at once; their message ids, in order."""
        return await self._ledger._write(lambda connection: enqueue(connection, messages, now_us=now_us))

    async def claim(self, *, now_us: int, lease_us: int, limit: int) -> list[Claimed]:
        """Take up to `limit` due deliveries, oldest first, leasing each to the caller until `now_us + lease_us`."""
        await load_cipher(self._box)  # their secrets are opened on the writer
        return await self._ledger._write(
            lambda connection: _claim(connection, self._box, now_us=now_us, lease_us=lease_us, limit=limit)
        )

    async def finish(self, attempts: Sequence[Attempt], *, now_us: int, delays_us: Sequence[int]) -> None:
        """Record attempts: delivered, due again after `delays_us[attempt number - 1]`, or failed after the last."""
        await self._ledger._write(lambda connection: _finish(connection, attempts, now_us=now_us, delays_us=delays_us))

    async def prune(self, *, before_us: int, limit: int) -> int:
        """Delete up to `limit` delivered or failed deliveries created before `before_us`, with their attempts;
        how many were deleted."""
        return await self._ledger._write(lambda connection: _prune(connection, before_us=before_us, limit=limit))

    async def next_claimable_us(self) -> int | None:
        """When `claim` can next take a delivery (epoch microseconds); None when nothing is pending. A read."""
        return await self._ledger._read(_next_claimable_us)


def retry_now(connection: Connection, message_id: str, *, endpoint_id: str, now_us: int) -> str | None:
    """Make a failed delivery due again at once, for one more attempt; its status before (None: no such message)."""
    where = (outbox.c.id == message_id, outbox.c.endpoint_id == endpoint_id)
    status = connection.scalar(select(outbox.c.status).where(*where))
    if status == FAILED:
        connection.execute(update(outbox).where(*where).values(status=PENDING, next_attempt_us=now_us))
    return status
