"""Members' passwords: the rule a new one must meet, and how it is hashed and checked (argon2id).

Only the hash is ever kept. `PasswordHashes` wraps argon2-cffi with the parameters of RFC 9106's second
recommended option (argon2id, 3 passes over 64 MiB with 4 lanes, a 16-byte random salt, a 32-byte tag);
tests pass cheaper ones. A stored hash made with other parameters still verifies, and `needs_rehash` says
it should be replaced by one made with the current parameters.

A password is normalised to Unicode NFKC before it is checked or hashed (NIST SP 800-63B, 5.1.1.2), so the
same password typed on keyboards that compose characters differently is the same password.
"""

from __future__ import annotations

import base64
import secrets
import unicodedata
from typing import TYPE_CHECKING

from farebox.core.owners import invalid

if TYPE_CHECKING:
    from argon2 import Parameters, PasswordHasher

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "PasswordHashes",
    "clean_password",
    "default_parameters",
    "normalise",
]

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1_024


def default_parameters() -> Parameters:
    """argon2id, time cost 3, memory 64 MiB, parallelism 4, 16-byte salt, 32-byte hash (RFC 9106, section 4)."""
    from argon2 import profiles

    return profiles.RFC_9106_LOW_MEMORY


def normalise(password: str) -> str:
    """The form of a password that is checked and hashed (NFKC)."""
    return unicodedata.normalize("NFKC", password)


def clean_password(password: str, *, email: str) -> str:
    """A new password, normalised, if it meets the rule; the error never repeats the password.

    Raises:
        ValidationFailed: shorter than 12 or longer than 1,024 characters, or the member's own e-mail address.
    """
    cleaned = normalise(password)
    if len(cleaned) < MIN_PASSWORD_LENGTH:
        raise invalid("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(cleaned) > MAX_PASSWORD_LENGTH:
        raise invalid("password", f"must be at most {MAX_PASSWORD_LENGTH:,} characters")
    if cleaned.strip().casefold() == email.strip().casefold():
        raise invalid("password", "must not be the member's e-mail address")
    return cleaned


class PasswordHashes:
    """Hash passwords with argon2id and check them against stored hashes. CPU-bound: call it off the event loop.

    argon2 is loaded by the first hash or check (on the caller's worker thread), not when the server starts:
    a server whose members never sign in nor set a password never loads it.

    Args:
        parameters: the argon2 parameters new hashes are made with (`default_parameters()` when not given;
            tests pass `argon2.profiles.CHEAPEST`).
    """

    def __init__(self, parameters: Parameters | None = None) -> None:
        self._parameters = parameters
        self._loaded: tuple[PasswordHasher, str] | None = None

    @property
    def decoy(self) -> str:
        """A hash in the current parameters whose password nobody knows (its tag is random): what `waste` checks."""
        return self._load()[1]

    def hash(self, password: str) -> str:
        """The encoded argon2id hash (`$argon2id$v=19$m=...`) of a normalised password, with a fresh salt."""
        return self._load()[0].hash(password)

    def matches(self, stored: str, password: str) -> bool:
        """Whether `password` (normalised) is the one `stored` was made from; a malformed hash matches nothing."""
        return self._check(stored, password)

    def needs_rehash(self, stored: str) -> bool:
        """Whether `stored` was made with other parameters than the current ones."""
        return self._load()[0].check_needs_rehash(stored)

    def waste(self, password: str) -> None:
        """Spend the time a check takes, against `decoy`.

        Run when there is no hash to check (no such member, or no password), so that how long a sign-in
        takes does not tell whether the member exists.
        """
        self._check(self.decoy, password)

    def _check(self, stored: str, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return self._load()[0].verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    def _load(self) -> tuple[PasswordHasher, str]:
        """The hasher and the decoy, made at first use. Two threads' first uses may both make them: the decoy is
        random either way, and each is a whole decoy of the same parameters."""
        if self._loaded is None:
            from argon2 import PasswordHasher

            parameters = default_parameters() if self._parameters is None else self._parameters
            self._loaded = (PasswordHasher.from_parameters(parameters), _decoy(parameters))
        return self._loaded


def _decoy(parameters: Parameters) -> str:
    """An encoded hash in `parameters` with a random salt and a random tag, made without hashing anything.

    Checking a password against it costs what checking against a real hash costs; no password matches it
    but by a 2^-(8 * hash_len) chance.
    """

    from argon2 import Type

    def encoded(size: int) -> str:
        return base64.b64encode(secrets.token_bytes(size)).decode().rstrip("=")

    names = {Type.ID: "argon2id", Type.I: "argon2i", Type.D: "argon2d"}
    p = parameters
    settings = f"v={p.version}$m={p.memory_cost},t={p.time_cost},p={p.parallelism}"
    return f"${names[p.type]}${settings}${encoded(p.salt_len)}${encoded(p.hash_len)}"
