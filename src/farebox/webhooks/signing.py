"""Standard Webhooks signatures (https://www.standardwebhooks.com), the scheme Svix and others verify.

A message carries three headers: `webhook-id` (the same on every retry, so a receiver drops repeats),
`webhook-timestamp` (epoch seconds of this attempt) and `webhook-signature`: `v1,` then the base64
HMAC-SHA256 of `{id}.{timestamp}.{body}` under the endpoint's secret. The secret is `whsec_` then base64 of
32 random bytes; the key is those bytes.

To verify a delivery: recompute the signature from the raw body and the two headers, compare it in constant
time with each space-separated `v1,` entry of `webhook-signature`, and refuse a timestamp more than five
minutes from your clock (replays).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["SECRET_PREFIX", "new_secret", "sign", "signed_headers"]

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A new endpoint secret: `whsec_` and base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, *, msg_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` value (`v1,<base64 HMAC-SHA256>`) of one attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, *, msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The headers of one signed attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id=msg_id, timestamp=timestamp, body=body),
        "content-type": "application/json",
    }
