"""Members' passwords: the rule a new one must meet, and how it is hashed and checked (argon2id).

Only the hash is ever kept. `PasswordHashes` wraps argon2-cffi with the parameters of RFC 9106's second
recommended option (argon2id, 3 passes over 64 MiB with 4 lanes, a 16-byte random salt, a 32-byte tag);
tests pass cheaper ones. A stored hash made with other parameters still verifies, and `needs_rehash` says
it should be replaced by one made with the current parameters.

A password is normalised to Unicode NFKC before it is checked or hashed (NIST SP 800-63B, 5.1.1.2), so the
same password typed on keyboards that compose characters differently is the same password.
"""

from __future__ import annotations

import secrets
import unicodedata

from argon2 import Parameters, PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from farebox.core.owners import invalid

__all__ = [
    "DEFAULT_PARAMETERS",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "PasswordHashes",
    "clean_password",
    "normalise",
]

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1_024
DEFAULT_PARAMETERS: Parameters = profiles.RFC_9106_LOW_MEMORY
"""argon2id, time cost 3, memory 64 MiB, parallelism 4, 16-byte salt, 32-byte hash (RFC 9106, section 4)."""


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

    Args:
        parameters: the argon2 parameters new hashes are made with (`DEFAULT_PARAMETERS`; tests pass
            `argon2.profiles.CHEAPEST`).
    """

    def __init__(self, parameters: Parameters = DEFAULT_PARAMETERS) -> None:
        self._hasher = PasswordHasher.from_parameters(parameters)
        self._decoy: str | None = None

    def hash(self, password: str) -> str:
        """The encoded argon2id hash (`$argon2id$v=19$m=...`) of a normalised password, with a fresh salt."""
        return self._hasher.hash(password)

    def matches(self, stored: str, password: str) -> bool:
        """Whether `password` (normalised) is the one `stored` was made from; a malformed hash matches nothing."""
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether `stored` was made with other parameters than the current ones."""
        return self._hasher.check_needs_rehash(stored)

    def waste(self, password: str) -> None:
        """Spend the time a check would, against a hash of nothing anyone knows.

        Run when there is no hash to check (no such member, or no password), so that how long a sign-in
        takes does not tell whether the account exists.
        """
        if self._decoy is None:
            self._decoy = self.hash(secrets.token_urlsafe(32))
        self.matches(self._decoy, password)
