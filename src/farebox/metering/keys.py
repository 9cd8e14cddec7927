"""Virtual-key authorization for the proxy, from memory: the directory is read at most once a second per key.

`KeyCache.authenticate(secret)` answers from an entry keyed by the secret's SHA-256 digest. An entry
older than `ttl` seconds is reloaded from the directory before it is used, so a key revoked through the
CLI or another replica stops working within `ttl`; a change this process's directory makes (the admin
API) drops every entry at once. Failures (unknown, revoked, expired) are cached for the same time, so a
flood of bad keys costs one database read per key per second. Concurrent requests that find the same
entry stale share one reload. Expiry is checked on every request against the clock, not only at reload.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from farebox.core.clock import utcnow
from farebox.core.keys import hash_secret, looks_like_key
from farebox.core.owners import KeyStatus, VirtualKey
from farebox.core.singleflight import SingleFlight
from farebox.errors import AuthenticationFailed
from farebox.ledger.directory import Directory

__all__ = ["KeyCache"]

_MAX_ENTRIES = 50_000
"""Beyond this many cached secrets the oldest are dropped (a flood of random keys cannot grow memory)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    """A cache entry: the key, or why the secret fails."""

    digest: str
    key: VirtualKey | None
    failure: AuthenticationFailed | None
    loaded_at: float
    """`time.monotonic()` of the directory read."""


class KeyCache:
    """Virtual keys by secret, each reloaded from the directory when older than `ttl` seconds.

    Args:
        directory: where keys and spend are read from.
        ttl: how old an entry may be before it is reloaded (seconds).
        clock: the wall clock used for key expiry (aware).
        monotonic: the clock entries are aged by.
    """

    def __init__(
        self,
        directory: Directory,
        *,
        ttl: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._ttl = ttl
        self._clock = clock
        self._monotonic = monotonic
        self._entries: dict[str, _Entry] = {}
        self._loads: SingleFlight[str, _Entry] = SingleFlight()

    async def authenticate(self, secret: str) -> VirtualKey:
        """The active key of `secret`.

        Raises:
            AuthenticationFailed: unknown (`invalid_api_key`), revoked (`key_revoked`), disabled (`key_disabled`)
                or expired (`key_expired`).
        """
        if not looks_like_key(secret):
            raise AuthenticationFailed("invalid API key", code="invalid_api_key")
        digest = hash_secret(secret)
        entry = self._entries.get(digest)
        if entry is None or self._monotonic() - entry.loaded_at >= self._ttl:
            entry = await self._reload(digest, secret)
        if entry.failure is not None:
            raise entry.failure
        assert entry.key is not None
        if entry.key.status(self._clock()) is KeyStatus.EXPIRED:
            raise AuthenticationFailed("this API key has expired", code="key_expired")
        return entry.key

    def clear(self) -> None:
        """Forget every entry (each is read again on its next use)."""
        self._entries.clear()

    async def _reload(self, digest: str, secret: str) -> _Entry:
        return await self._loads.run(digest, lambda: self._load(digest, secret))

    async def _load(self, digest: str, secret: str) -> _Entry:
        loaded_at = self._monotonic()
        try:
            entry = _Entry(digest, await self._directory.authenticate(secret), None, loaded_at)
        except AuthenticationFailed as exc:
            entry = _Entry(digest, None, exc, loaded_at)
        self._entries.pop(digest, None)
        self._entries[digest] = entry
        while len(self._entries) > _MAX_ENTRIES:
            del self._entries[next(iter(self._entries))]
        return entry
