"""The server secret, and the keys derived from it: one per purpose.

farebox keeps one server secret (the `secret_key` setting) and never uses it as a key itself. Each use
gets its own 256-bit key, derived with HKDF-SHA256 (RFC 5869) under a label that names the purpose and its
version. Keys of different labels are independent: knowing one (or rotating its use to a new label) says
nothing of another, so a later purpose, such as signing dashboard cookies, is a new label and not a new
secret. The server secret is also not the master key: an operator rotates that for other reasons.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = [
    "DASHBOARD_SESSIONS",
    "MIN_SERVER_SECRET_CHARS",
    "MOCK_KEY",
    "PROMPT_PREFIXES",
    "SIGN_IN_FAILURES",
    "WEBHOOK_SECRETS",
    "derive_key",
    "generate_server_secret",
]

WEBHOOK_SECRETS = b"farebox webhook secrets v1"
"""The label of the key that seals webhook signing secrets at rest."""

DASHBOARD_SESSIONS = b"farebox dashboard sessions v1"
"""The label of the key that dashboard sessions' CSRF tokens (and the operator session's master-key check) are
HMACs under."""

PROMPT_PREFIXES = b"farebox prompt prefixes v1"
"""The label of the key that the hashes of long prompts' beginnings (`usage_events.prompt_prefix`) are HMACs
under: the same on every replica, so that their requests' hashes compare."""

SIGN_IN_FAILURES = b"farebox sign-in failures v1"
"""The label of the key the dashboard's failed sign-ins are counted under: an HMAC of the e-mail or client address
names each (`ledger.sign_in_failures`), the same in every process."""

MOCK_KEY = b"farebox mock key v1"
"""The label of the key the gateway sends its mounted mock provider (`x-farebox-mock-key`): the same in every
process of `farebox serve --workers N`, which share one port, so a process's upstream request may reach the mock of
another."""

MIN_SERVER_SECRET_CHARS = 32
"""A shorter server secret is refused: every derived key is only as strong as the secret."""


def generate_server_secret() -> str:
    """A new server secret: 43 url-safe characters (256 random bits)."""
    return secrets.token_urlsafe(32)


def derive_key(server_secret: str, *, purpose: bytes, length: int = 32) -> bytes:
    """The key of one purpose: HKDF-SHA256 of the server secret, with `purpose` as the info label.

    No salt: RFC 5869 makes it optional, and a salt would be one more value to keep beside the secret and
    get right on every replica, for no strength a 256-bit generated secret lacks.

    HKDF is two HMAC steps, here on the standard library's HMAC (OpenSSL's), so that deriving a key, and
    naming it (`SecretBox.key_id`), loads no `cryptography` (about 6 MB resident): a server loads it only
    when it first seals or opens a secret.

    Raises:
        ValueError: `length` is not between 1 and 8,160 bytes (255 blocks, RFC 5869's limit).
    """
    size = hashlib.sha256().digest_size
    if not 0 < length <= 255 * size:
        raise ValueError(f"an HKDF-SHA256 key is 1 to {255 * size} bytes, not {length}")
    # Extract: with no salt, RFC 5869 keys the HMAC with a hash length of zeros.
    pseudorandom = hmac.digest(bytes(size), server_secret.encode(), "sha256")
    # Expand: T(i) = HMAC(PRK, T(i-1) | info | i), as many blocks as `length` needs.
    output, block = b"", b""
    for counter in range(1, -(-length // size) + 1):
        block = hmac.digest(pseudorandom, block + purpose + bytes([counter]), "sha256")
        output += block
    return output[:length]
