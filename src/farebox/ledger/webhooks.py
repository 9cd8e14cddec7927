"""Webhook endpoints (per account, with the events they want) and their delivery log.

The signing secret is given once, to `create` or to `update(secret=...)` (a rotation), by the caller that
shows it to the user; it is kept sealed under the server secret (`ledger.signing_secrets`), for the sender
to sign with, and no listing or read returns it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import Connection, delete, insert, select, update

from farebox.core.clock import utcnow
from farebox.core.events import epoch_us, from_epoch_us
from farebox.core.sealing import SecretBox
from farebox.errors import Conflict, NotFound
from farebox.ledger.base import Ledger
from farebox.ledger.outbox import Message, enqueue, message_body, retry_now
from farebox.ledger.schema import accounts, outbox, outbox_attempts, webhook_endpoints
from farebox.ledger.signing_secrets import load_cipher, seal, seal_bearer, seal_stored

__all__ = ["EVENT_TYPES", "Delivery", "EventType", "WebhookEndpoint", "WebhookEndpoints", "unknown_endpoint"]

EventType = Literal[
    "usage.threshold",
    "credits.low",
    "budget.exceeded",
    "key.disabled",
    "anomaly.detected",
    "usage.recorded",
    "cost.calculated",
    "usage.voided",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    id: str
    account_id: str
    url: str
    description: str
    events: tuple[str, ...]
    enabled: bool
    batch_size: int
    """Most `usage.recorded` events in one message."""
    flush_interval_ms: int
    """Longest a `usage.recorded` event waits for its batch to fill."""
    created_at: datetime
    updated_at: datetime
    has_bearer: bool = False
    """Whether its deliveries carry a bearer token (never shown)."""
    max_retries: int | None = None
    """Retries after a failed first attempt; None: the server's schedule."""
    retry_delay_ms: int | None = None
    """The first retry's delay, doubling after (at most an hour); None: the server's schedule."""
    managed_by: str | None = None
    """`analytics` for an endpoint of the analytics webhooks settings; None for one of the webhook API."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message to an endpoint: its outcome so far and every attempt."""

    id: str
    event_type: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    body: str
    log: tuple[dict[str, Any], ...]


def _endpoint(row: Any) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row["id"],
        account_id=row["account_id"],
        url=row["url"],
        description=row["description"],
        events=tuple(row["events"]),
        enabled=bool(row["enabled"]),
        batch_size=row["batch_size"],
        flush_interval_ms=row["flush_interval_ms"],
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        updated_at=datetime.fromtimestamp(row["updated_at"], UTC),
        has_bearer=row["bearer_token"] is not None,
        max_retries=row["max_retries"],
        retry_delay_ms=row["retry_delay_ms"],
        managed_by=row["managed_by"],
    )


def unknown_endpoint(endpoint_id: str) -> NotFound:
    """The error for an endpoint id that names none (or none the caller may see)."""
    return NotFound(f"no webhook endpoint with id {endpoint_id!r}", code="webhook_not_found")


def _fetch(connection: Connection, endpoint_id: str) -> Any:
    row = connection.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)).mappings().first()
    if row is None:
        raise unknown_endpoint(endpoint_id)
    return row


class WebhookEndpoints:
    """Create, read, change and delete webhook endpoints; read their delivery logs.

    `box` seals the signing secrets (the webhook-secrets key of the server secret).
    """

    def __init__(self, ledger: Ledger, box: SecretBox, *, clock: Callable[[], datetime] = utcnow):
        self._ledger = ledger
        self._box = box
        self._clock = clock

    async def seal_stored_secrets(self) -> int:
        """Seal the signing secrets a ledger from before encryption at rest holds in plain text; how many.

        Run at start-up; running it again changes nothing.

        Raises:
            WrongServerSecret: the stored secrets are sealed under another server secret.
            UnreadableSecret: a stored secret is sealed in a format this farebox does not know.
        """
        return await self._ledger._write(lambda connection: seal_stored(connection, self._box))

    async def create(
        self,
        account_id: str,
        *,
        url: str,
        events: Sequence[str],
        secret: str,
        description: str = "",
        batch_size: int = 100,
        flush_interval_ms: int = 5_000,
        bearer_token: str | None = None,
        max_retries: int | None = None,
        retry_delay_ms: int | None = None,
        managed_by: str | None = None,
    ) -> WebhookEndpoint:
        """Register an endpoint; it hears of usage recorded from now on. Raises NotFound for an unknown account."""
        await load_cipher(self._box)
        now = self._clock()
        endpoint_id = str(uuid.uuid4())
        row = {
            "id": endpoint_id,
            "account_id": account_id,
            "url": url,
            "description": description,
            "events": list(events),
            "secret": seal(self._box, endpoint_id, secret),
            "enabled": True,
            "batch_size": batch_size,
            "flush_interval_ms": flush_interval_ms,
            "feed_cursor_us": epoch_us(now),
            "feed_cursor_id": "",
            "created_at": int(now.timestamp()),
            "updated_at": int(now.timestamp()),
            "bearer_token": None if bearer_token is None else seal_bearer(self._box, endpoint_id, bearer_token),
            "max_retries": max_retries,
            "retry_delay_ms": retry_delay_ms,
            "managed_by": managed_by,
        }

        def write(connection: Connection) -> None:
            if connection.scalar(select(accounts.c.id).where(accounts.c.id == account_id)) is None:
                raise NotFound(f"no account with id {account_id!r}", code="account_not_found")
            connection.execute(insert(webhook_endpoints).values(row))

        await self._ledger._write(write)
        return _endpoint(row)

    async def get(self, endpoint_id: str) -> WebhookEndpoint:
        """The endpoint. Raises NotFound."""
        return _endpoint(await self._ledger._read(lambda c: _fetch(c, endpoint_id)))

    async def list_endpoints(self, *, account_id: str | None = None) -> list[WebhookEndpoint]:
        """Endpoints, oldest first; of one account when given."""
        query = select(webhook_endpoints).order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
        if account_id is not None:
            query = query.where(webhook_endpoints.c.account_id == account_id)
        return [_endpoint(row) for row in await self._ledger._read(lambda c: c.execute(query).mappings().all())]

    async def update(self, endpoint_id: str, **changes: Any) -> WebhookEndpoint:
        """Change fields (`url`, `events`, `description`, `enabled`, `batch_size`, `flush_interval_ms`, `secret`,
        `bearer_token` (None: none), `max_retries`, `retry_delay_ms`)."""
        values = {name: list(value) if name == "events" else value for name, value in changes.items()}
        if "secret" in changes or changes.get("bearer_token") is not None:
            await load_cipher(self._box)
        if "secret" in changes:
            values["secret"] = seal(self._box, endpoint_id, changes["secret"])
        if changes.get("bearer_token") is not None:
            values["bearer_token"] = seal_bearer(self._box, endpoint_id, changes["bearer_token"])

        def write(connection: Connection) -> Any:
            _fetch(connection, endpoint_id)
            if values:
                stamp = int(self._clock().timestamp())
                query = update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
                connection.execute(query.values(**values, updated_at=stamp))
            return _fetch(connection, endpoint_id)

        return _endpoint(await self._ledger._write(write))

    async def delete(self, endpoint_id: str) -> None:
        """Delete an endpoint; its pending deliveries fail rather than go out. Raises NotFound."""

        def write(connection: Connection) -> None:
            _fetch(connection, endpoint_id)
            connection.execute(delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id))

        await self._ledger._write(write)

    async def send_test(self, endpoint_id: str) -> str:
        """Queue a `webhook.test` message to the endpoint, whatever events it asked for; its message id.

        Raises:
            NotFound: no such endpoint.
        """
        at = self._clock()

        def write(connection: Connection) -> str:
            endpoint = _fetch(connection, endpoint_id)
            data = {"endpoint_id": endpoint_id, "text": "a test delivery from farebox"}
            body = message_body("webhook.test", data, at=at)
            message = Message(endpoint["account_id"], "webhook", "webhook.test", body, endpoint_id=endpoint_id)
            (message_id,) = enqueue(connection, [message], now_us=epoch_us(at))
            return message_id

        return await self._ledger._write(write)

    async def retry(self, endpoint_id: str, message_id: str) -> None:
        """Send a failed delivery once more, now.

        Raises:
            NotFound: no such endpoint, or no such message to it.
            Conflict: the message is not failed (pending, or already delivered).
        """
        now_us = epoch_us(self._clock())

        def write(connection: Connection) -> None:
            _fetch(connection, endpoint_id)
            status = retry_now(connection, message_id, endpoint_id=endpoint_id, now_us=now_us)
            if status is None:
                raise NotFound(
                    f"no delivery {message_id!r} to webhook endpoint {endpoint_id!r}", code="delivery_not_found"
                )
            if status != "failed":
                raise Conflict(f"delivery {message_id!r} is {status}, not failed", code="delivery_not_failed")

        await self._ledger._write(write)

    async def deliveries(self, endpoint_id: str, *, limit: int = 50, status: str | None = None) -> list[Delivery]:
        """The endpoint's latest deliveries, newest first, each with its attempts. Raises NotFound."""

        def fetch(connection: Connection) -> list[Delivery]:
            _fetch(connection, endpoint_id)
            query = (
                select(outbox)
                .where(outbox.c.endpoint_id == endpoint_id)
                .order_by(outbox.c.created_at_us.desc(), outbox.c.id.desc())
                .limit(limit)
            )
            if status is not None:
                query = query.where(outbox.c.status == status)
            rows = connection.execute(query).mappings().all()
            ids = [row["id"] for row in rows]
            logs: dict[str, list[dict[str, Any]]] = {message_id: [] for message_id in ids}
            attempts = select(outbox_attempts).where(outbox_attempts.c.outbox_id.in_(ids))
            for attempt in connection.execute(attempts.order_by(outbox_attempts.c.attempt)).mappings():
                logs[attempt["outbox_id"]].append(
                    {
                        "attempt": attempt["attempt"],
                        "at": from_epoch_us(attempt["at_us"]).isoformat(),
                        "status_code": attempt["status_code"],
                        "error": attempt["error"],
                        "duration_ms": attempt["duration_ms"],
                    }
                )
            return [
                Delivery(
                    id=row["id"],
                    event_type=row["event_type"],
                    status=row["status"],
                    attempts=row["attempts"],
                    created_at=from_epoch_us(row["created_at_us"]),
                    next_attempt_at=from_epoch_us(row["next_attempt_us"]) if row["status"] == "pending" else None,
                    delivered_at=from_epoch_us(row["delivered_at_us"]) if row["delivered_at_us"] else None,
                    last_status_code=row["last_status_code"],
                    last_error=row["last_error"],
                    body=row["body"],
                    log=tuple(logs[row["id"]]),
                )
                for row in rows
            ]

        return await self._ledger._read(fetch)
