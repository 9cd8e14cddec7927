"""Secrets of virtual keys and member tokens: generation, hashing and constant-time verification.

A virtual key's secret starts `fbx_sk_`, a member token's `fbx_mt_`, so neither is mistaken for the
other (and secret scanners can tell them apart). A secret is shown once, at creation or rotation.
Only its SHA-256 digest is stored: the secret carries 256 bits of randomness, so a fast hash is
as strong as a slow one here and keeps auth cheap on the hot path. Lookups go by digest; the final
comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

from farebox.errors import AuthenticationFailed

__all__ = [
    "KEY_PREFIX",
    "TOKEN_PREFIX",
    "display_prefix",
    "generate_secret",
    "hash_secret",
    "looks_like_key",
    "secret_from_headers",
    "secrets_match",
]

KEY_PREFIX = "fbx_sk_"
TOKEN_PREFIX = "fbx_mt_"
_DISPLAY_CHARS = 6


def generate_secret(*, prefix: str = KEY_PREFIX) -> str:
    """A new secret: the recognisable prefix (a key's by default) and 43 url-safe characters (256 bits)."""
    return prefix + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """Hex SHA-256 digest of a secret: what the ledger stores and looks keys up by."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secrets_match(secret: str, stored_hash: str) -> bool:
    """Constant-time check that `secret` hashes to `stored_hash`."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def looks_like_key(token: str, *, prefix: str = KEY_PREFIX) -> bool:
    """Whether a bearer token has the shape of a farebox secret with `prefix` (a virtual key's by default)."""
    return token.startswith(prefix) and len(token) > len(prefix) + 16


def display_prefix(secret: str) -> str:
    """The part of a secret safe to show in listings, e.g. `fbx_sk_Ab3dE9…` (both prefixes are 7 characters)."""
    return secret[: len(KEY_PREFIX) + _DISPLAY_CHARS] + "…"


def secret_from_headers(headers: Mapping[str, str], *, query_key: str | None = None) -> str:
    """The virtual-key secret of a request.

    `Authorization: Bearer <key>`, else `x-api-key: <key>` (Anthropic's SDK), else `x-goog-api-key: <key>`
    (Gemini's), else `query_key` (Gemini's `?key=`, on the routes that take it).

    Raises:
        AuthenticationFailed: no header (nor `query_key`) holds a key.
    """
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for name in ("x-api-key", "x-goog-api-key"):
        api_key = headers.get(name, "").strip()
        if api_key:
            return api_key
    if query_key is not None and query_key.strip():
        return query_key.strip()
    raise AuthenticationFailed("missing API key: send 'Authorization: Bearer <key>'", code="missing_api_key")
