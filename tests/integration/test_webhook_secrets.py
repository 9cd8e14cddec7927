"""Webhook signing secrets at rest, on every backend: sealed in the ledger and in no file in plain text, opened
only for the sender, bound to their endpoint, sealed at start-up when an older ledger holds them in plain text,
and never used under another server secret."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from sqlalchemy import Connection, select, update

from farebox.core.sealing import SecretBox, UnreadableSecret, WrongServerSecret
from farebox.core.server_secret import WEBHOOK_SECRETS
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.outbox import Claimed, Outbox
from farebox.ledger.schema import metadata, webhook_endpoints
from farebox.ledger.webhooks import WebhookEndpoints
from farebox.webhooks.sender import Sender
from farebox.webhooks.signing import new_secret

pytestmark = pytest.mark.anyio

BOX = SecretBox.derived("webhook-secrets-tests-server-secret-0123", purpose=WEBHOOK_SECRETS)
OTHER_BOX = SecretBox.derived("another-server-secret-entirely-456789", purpose=WEBHOOK_SECRETS)


async def new_endpoint(ledger: Ledger, secret: str, *, box: SecretBox = BOX) -> str:
    account = await Directory(ledger).create_account(name="acme")
    endpoint = await WebhookEndpoints(ledger, box).create(
        account.id, url="https://hooks.example.com/", events=["usage.threshold"], secret=secret
    )
    return endpoint.id


async def stored_secrets(ledger: Ledger) -> dict[str, str]:
    def fetch(connection: Connection) -> dict[str, str]:
        rows = connection.execute(select(webhook_endpoints.c.id, webhook_endpoints.c.secret))
        return {row.id: row.secret for row in rows}

    return await ledger._read(fetch)


async def store_plain(ledger: Ledger, endpoint_id: str, value: str) -> None:
    """Write a secret column as an older farebox (or someone with the database) did: as given."""
    query = update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id).values(secret=value)
    await ledger._write(lambda connection: connection.execute(query))


async def claim_test_delivery(ledger: Ledger, endpoint_id: str, *, box: SecretBox = BOX) -> Claimed:
    message_id = await WebhookEndpoints(ledger, box).send_test(endpoint_id)
    claimed = await Outbox(ledger, box).claim(now_us=2**62, lease_us=1, limit=100)
    (item,) = [item for item in claimed if item.id == message_id]
    return item


async def test_a_signing_secret_is_sealed_in_the_ledger_and_in_no_file_in_plain_text(
    ledger: Ledger, ledger_url: str
) -> None:
    secret, rotated = new_secret(), new_secret()
    endpoint_id = await new_endpoint(ledger, secret)
    await WebhookEndpoints(ledger, BOX).update(endpoint_id, secret=rotated)

    stored = (await stored_secrets(ledger))[endpoint_id]
    assert stored.startswith(f"sealed:v1:{BOX.key_id}:")

    def dump(connection: Connection) -> str:
        return repr([connection.execute(select(table)).all() for table in metadata.sorted_tables])

    everything = await ledger._read(dump)
    assert endpoint_id in everything
    for plain in (secret, rotated):
        key = base64.b64decode(plain.removeprefix("whsec_"))
        assert plain not in everything and plain.removeprefix("whsec_") not in everything
        if ledger.dialect == "sqlite":
            database = Path(ledger_url.removeprefix("sqlite:///"))
            files = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))
            assert endpoint_id.encode() in files
            assert plain.encode() not in files and key not in files


async def test_the_sender_gets_the_secret_opened_and_a_rotation_takes_over_at_once(ledger: Ledger) -> None:
    secret = new_secret()
    endpoint_id = await new_endpoint(ledger, secret)
    first = await claim_test_delivery(ledger, endpoint_id)
    assert (first.secret, first.secret_error) == (secret, None)

    rotated = new_secret()
    await WebhookEndpoints(ledger, BOX).update(endpoint_id, secret=rotated)
    second = await claim_test_delivery(ledger, endpoint_id)
    assert (second.secret, second.secret_error) == (rotated, None)


async def test_a_sealed_secret_copied_into_another_endpoint_signs_nothing(ledger: Ledger) -> None:
    victim = await new_endpoint(ledger, new_secret())
    attacker = await new_endpoint(ledger, new_secret())
    await store_plain(ledger, attacker, (await stored_secrets(ledger))[victim])

    item = await claim_test_delivery(ledger, attacker)
    assert item.secret is None
    assert item.secret_error == (
        "the endpoint's signing secret does not open: altered, or copied from another row: it does not open here"
    )
    assert (await claim_test_delivery(ledger, victim)).secret is not None


async def test_under_another_server_secret_a_delivery_fails_with_its_reason_and_is_retried(ledger: Ledger) -> None:
    endpoint_id = await new_endpoint(ledger, new_secret())
    endpoints = WebhookEndpoints(ledger, OTHER_BOX)
    await endpoints.send_test(endpoint_id)
    sender = Sender(ledger, OTHER_BOX, timeout=1, delays_us=[60_000_000], allow_private=False, smtp=None)

    assert await sender.deliver_due() == 1
    (delivery,) = await endpoints.deliveries(endpoint_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
    assert delivery.last_error == (
        "the endpoint's signing secret does not open: sealed under another server secret "
        f"(key id {BOX.key_id}; this server's is {OTHER_BOX.key_id})"
    )


async def test_plain_text_secrets_of_an_older_ledger_are_sealed_once_and_still_open(ledger: Ledger) -> None:
    secrets = {await new_endpoint(ledger, secret): secret for secret in (new_secret(), new_secret())}
    for endpoint_id, secret in secrets.items():
        await store_plain(ledger, endpoint_id, secret)  # the ledger as farebox left it before sealing
    endpoints = WebhookEndpoints(ledger, BOX)

    assert await endpoints.seal_stored_secrets() == 2
    sealed = await stored_secrets(ledger)
    assert all(value.startswith(f"sealed:v1:{BOX.key_id}:") for value in sealed.values())
    assert not set(secrets.values()) & set(sealed.values())
    for endpoint_id, secret in secrets.items():
        assert (await claim_test_delivery(ledger, endpoint_id)).secret == secret

    assert await endpoints.seal_stored_secrets() == 0
    assert await stored_secrets(ledger) == sealed, "a second start changed sealed secrets"


async def test_start_up_under_another_server_secret_is_refused_and_changes_nothing(ledger: Ledger) -> None:
    sealed_id = await new_endpoint(ledger, new_secret())
    plain = new_secret()
    plain_id = await new_endpoint(ledger, plain)
    await store_plain(ledger, plain_id, plain)
    before = await stored_secrets(ledger)

    with pytest.raises(WrongServerSecret) as refused:
        await WebhookEndpoints(ledger, OTHER_BOX).seal_stored_secrets()
    assert str(refused.value) == (
        f"the webhook signing secrets of endpoints {sealed_id} are sealed under another server secret "
        f"(key id {BOX.key_id}; this server's is {OTHER_BOX.key_id})"
    )
    assert await stored_secrets(ledger) == before, "the plain secret was sealed under the wrong key"


async def test_a_secret_sealed_in_an_unknown_format_stops_start_up_naming_its_endpoint(ledger: Ledger) -> None:
    endpoint_id = await new_endpoint(ledger, new_secret())
    await store_plain(ledger, endpoint_id, "sealed:v9:0123abcd:AAAA")
    with pytest.raises(UnreadableSecret, match=f"^the signing secret of webhook endpoint {endpoint_id}: not a sealed"):
        await WebhookEndpoints(ledger, BOX).seal_stored_secrets()


async def test_a_refusal_names_a_few_endpoints_and_counts_the_rest(ledger: Ledger) -> None:
    ids = [await new_endpoint(ledger, new_secret(), box=OTHER_BOX) for _ in range(7)]
    with pytest.raises(WrongServerSecret, match=" and 2 more are sealed under another server secret") as refused:
        await WebhookEndpoints(ledger, BOX).seal_stored_secrets()
    assert sum(endpoint_id in str(refused.value) for endpoint_id in ids) == 5
    assert refused.value.key_id == OTHER_BOX.key_id
