"""Secrets sealed at rest: AES-256-GCM under a key derived from the server secret, each bound to its owner.

A sealed value is text, so it fits where the plain secret was kept:

    sealed:v1:<key id>:<base64url of nonce (12 bytes), ciphertext and tag (16 bytes)>

`v1` names the format (AES-256-GCM, a random 96-bit nonce per value). The key id is 8 hex digits of a SHA-256
over the key: it says which key sealed a value without revealing the key, so that a server started with
another server secret can say so rather than fail to decrypt, and so that a rotation can later keep the
keys it still needs by id. The associated data is the value's header and its context (for a webhook
signing secret, its endpoint's id): a sealed value copied into another row, or altered, does not open.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import TYPE_CHECKING

from farebox.core.server_secret import derive_key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["SEALED_PREFIX", "SecretBox", "UnreadableSecret", "WrongServerSecret"]

SEALED_PREFIX = "sealed:"
_FORMAT = "v1"
_NONCE_BYTES = 12
_KEY_BYTES = 32


class UnreadableSecret(Exception):
    """A sealed value that does not open: of an unknown format, altered, or sealed for another context.

    Outside the `FareboxError` tree: it is never an answer to a client, but a server's misconfiguration or a
    damaged row, reported at start-up or in a delivery's log.
    """


class WrongServerSecret(UnreadableSecret):
    """A value sealed under the key of another server secret."""

    def __init__(self, message: str, *, key_id: str) -> None:
        super().__init__(message)
        self.key_id = key_id
        """The id of the key the value was sealed under."""


class SecretBox:
    """Seals and opens secrets under one key (one purpose's key, derived from the server secret).

    The cipher, and with it the `cryptography` package (about 6 MB resident), is loaded when the box first
    seals or opens a value, or when `load` is called: a server that never touches a webhook signing secret
    never loads it.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise ValueError(f"a SecretBox key is {_KEY_BYTES} bytes, not {len(key)}")
        self._key = key
        self._aead: AESGCM | None = None
        self.key_id = hashlib.sha256(b"farebox key id\x00" + key).hexdigest()[:8]
        """Names the key in every value it seals; not secret."""

    @classmethod
    def derived(cls, server_secret: str, *, purpose: bytes) -> SecretBox:
        """The box of one purpose (`core.server_secret.WEBHOOK_SECRETS`, ...) under a server secret."""
        return cls(derive_key(server_secret, purpose=purpose))

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r})"

    @property
    def loaded(self) -> bool:
        """Whether the cipher is loaded (by `load`, or a first `seal` or `open`)."""
        return self._aead is not None

    def load(self) -> None:
        """Load the cipher if it is not yet: about 10 ms of imports the first time, which an async caller runs on
        a worker thread rather than where it would hold up others (the event loop, the ledger's writer)."""
        self._cipher()

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._aead = AESGCM(self._key)
        return self._aead

    @staticmethod
    def is_sealed(value: str) -> bool:
        """Whether `value` is a sealed value (of any format or key) rather than a plain secret."""
        return value.startswith(SEALED_PREFIX)

    def seal(self, secret: str, *, context: str) -> str:
        """`secret` sealed under this box's key, bound to `context` (which `open` must be given again)."""
        header = f"{SEALED_PREFIX}{_FORMAT}:{self.key_id}:"
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = self._cipher().encrypt(nonce, secret.encode(), (header + context).encode())
        return header + base64.urlsafe_b64encode(nonce + ciphertext).decode()

    def open(self, value: str, *, context: str) -> str:
        """The secret that `value` seals.

        Raises:
            WrongServerSecret: `value` was sealed under another key.
            UnreadableSecret: `value` is of an unknown format, altered, or bound to another context.
        """
        key_id = self.key_id_of(value)
        if key_id != self.key_id:
            raise WrongServerSecret(
                f"sealed under another server secret (key id {key_id}; this server's is {self.key_id})", key_id=key_id
            )
        from cryptography.exceptions import InvalidTag

        header, _, body = value.rpartition(":")
        try:
            raw = base64.urlsafe_b64decode(body.encode())
            plain = self._cipher().decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], f"{header}:{context}".encode())
            return plain.decode()
        except (InvalidTag, ValueError):  # a bad tag, bad base64 (binascii.Error) or bad UTF-8
            raise UnreadableSecret("altered, or copied from another row: it does not open here") from None

    @staticmethod
    def key_id_of(value: str) -> str:
        """The id of the key `value` was sealed under.

        Raises:
            UnreadableSecret: `value` is not a sealed value of a format this farebox knows.
        """
        parts = value.split(":")
        if len(parts) != 4 or f"{parts[0]}:" != SEALED_PREFIX or parts[1] != _FORMAT:
            raise UnreadableSecret(f"not a sealed value of a format this farebox reads ({_FORMAT})")
        return parts[2]
