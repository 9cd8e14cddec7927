"""Delivery secrets at rest: webhook signing secrets sealed in `webhook_endpoints.secret`, each bound to its
endpoint, and accounts' PagerDuty routing keys sealed in their alert rules, each bound to its account.

The ledger seals a secret as it writes it (`seal`) and opens it only to hand it to the sender (`open_secret`);
no listing or read returns it. A ledger from before secrets were sealed holds them in plain text: an
Alembic migration cannot seal them, since it does not know the server secret, so `seal_stored` does at
start-up, in one transaction, and a second run finds nothing left to do. It also refuses to start a server
whose server secret is not the one the stored secrets were sealed under: a webhook it could not sign
would otherwise fail only later, one delivery at a time.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Connection, select, update

from farebox.core.sealing import SecretBox, UnreadableSecret, WrongServerSecret
from farebox.ledger.schema import webhook_endpoints

__all__ = [
    "load_cipher",
    "open_bearer",
    "open_routing_key",
    "open_secret",
    "seal",
    "seal_bearer",
    "seal_routing_key",
    "seal_stored",
]

log = logging.getLogger(__name__)

_NAMED = 5
"""Endpoints a refusal names (a ledger may have thousands)."""


def _context(endpoint_id: str) -> str:
    """What a sealed secret is bound to: its column and its endpoint, so that it opens nowhere else."""
    return f"webhook_endpoints.secret:{endpoint_id}"


async def load_cipher(box: SecretBox) -> None:
    """Load the box's cipher before its first seal or open, on a worker thread: its first load imports
    `cryptography` (about 10 ms), which would otherwise hold up the event loop, or the writer and every commit
    waiting for it."""
    if not box.loaded:
        await asyncio.to_thread(box.load)


def seal(box: SecretBox, endpoint_id: str, secret: str) -> str:
    """The value to store for the endpoint's signing secret."""
    return box.seal(secret, context=_context(endpoint_id))


def open_secret(box: SecretBox, endpoint_id: str, stored: str) -> str:
    """The endpoint's signing secret from its stored value.

    Raises:
        UnreadableSecret: sealed under another server secret (`WrongServerSecret`), altered, or another
            endpoint's.
    """
    return box.open(stored, context=_context(endpoint_id))


def _bearer_context(endpoint_id: str) -> str:
    return f"webhook_endpoints.bearer_token:{endpoint_id}"


def seal_bearer(box: SecretBox, endpoint_id: str, token: str) -> str:
    """The value to store for the bearer token an endpoint's deliveries carry."""
    return box.seal(token, context=_bearer_context(endpoint_id))


def open_bearer(box: SecretBox, endpoint_id: str, stored: str) -> str:
    """The endpoint's bearer token from its stored value.

    Raises:
        UnreadableSecret: sealed under another server secret, altered, or another endpoint's.
    """
    return box.open(stored, context=_bearer_context(endpoint_id))


def _routing_key_context(account_id: str) -> str:
    return f"alert_settings.pagerduty_routing_key:{account_id}"


def seal_routing_key(box: SecretBox, account_id: str, routing_key: str) -> str:
    """The value to keep for the account's PagerDuty routing key (in its alert rules, and in the outbox)."""
    return box.seal(routing_key, context=_routing_key_context(account_id))


def open_routing_key(box: SecretBox, account_id: str, stored: str) -> str:
    """The account's PagerDuty routing key from its kept value.

    Raises:
        UnreadableSecret: sealed under another server secret (`WrongServerSecret`), altered, or another account's.
    """
    return box.open(stored, context=_routing_key_context(account_id))


def seal_stored(connection: Connection, box: SecretBox) -> int:
    """Seal every signing secret still in plain text; how many were sealed.

    Each is replaced only if it is still the plain value read (another replica starting at the same time
    may have sealed it first).

    Raises:
        WrongServerSecret: secrets are sealed under another server secret (nothing is changed).
        UnreadableSecret: a secret is sealed in a format this farebox does not know (a newer one's).
    """
    rows = connection.execute(select(webhook_endpoints.c.id, webhook_endpoints.c.secret)).all()
    foreign: dict[str, str] = {}
    sealed = 0
    for endpoint_id, stored in rows:
        if not SecretBox.is_sealed(stored):
            replaced = connection.execute(
                update(webhook_endpoints)
                .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.secret == stored)
                .values(secret=seal(box, endpoint_id, stored))
            )
            sealed += replaced.rowcount
            continue
        try:
            key_id = box.key_id_of(stored)
        except UnreadableSecret as exc:
            raise UnreadableSecret(f"the signing secret of webhook endpoint {endpoint_id}: {exc}") from None
        if key_id != box.key_id:
            foreign[endpoint_id] = key_id
    if foreign:
        named = ", ".join(list(foreign)[:_NAMED])
        more = f" and {len(foreign) - _NAMED} more" if len(foreign) > _NAMED else ""
        key_id = next(iter(foreign.values()))
        raise WrongServerSecret(
            f"the webhook signing secrets of endpoints {named}{more} are sealed under another server secret "
            f"(key id {key_id}; this server's is {box.key_id})",
            key_id=key_id,
        )
    if sealed:
        log.info("sealed %d webhook signing secret(s) that were stored in plain text", sealed)
    return sealed
