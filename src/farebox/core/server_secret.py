"""The server secret, and the keys derived from it: one per purpose.

farebox keeps one server secret (the `secret_key` setting) and never uses it as a key itself. Each use
gets its own 256-bit key, derived with HKDF-SHA256 (RFC 5869) under a label that names the purpose and its
version. Keys of different labels are independent: knowing one (or rotating its use to a new label) says
nothing of another, so a later purpose, such as signing dashboard cookies, is a new label and not a new
secret. The server secret is also not the master key: an operator rotates that for other reasons.
"""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["DASHBOARD_SESSIONS", "MIN_SERVER_SECRET_CHARS", "WEBHOOK_SECRETS", "derive_key", "generate_server_secret"]

WEBHOOK_SECRETS = b"farebox webhook secrets v1"
"""The label of the key that seals webhook signing secrets at rest."""

DASHBOARD_SESSIONS = b"farebox dashboard sessions v1"
"""The label of the key that dashboard sessions' CSRF tokens (and the operator session's master-key check) are
HMACs under."""

MIN_SERVER_SECRET_CHARS = 32
"""A shorter server secret is refused: every derived key is only as strong as the secret."""


def generate_server_secret() -> str:
    """A new server secret: 43 url-safe characters (256 random bits)."""
    return secrets.token_urlsafe(32)


def derive_key(server_secret: str, *, purpose: bytes, length: int = 32) -> bytes:
    """The key of one purpose: HKDF-SHA256 of the server secret, with `purpose` as the info label.

    No salt: RFC 5869 makes it optional, and a salt would be one more value to keep beside the secret and
    get right on every replica, for no strength a 256-bit generated secret lacks.
    """
    return HKDF(algorithm=SHA256(), length=length, salt=None, info=purpose).derive(server_secret.encode())
