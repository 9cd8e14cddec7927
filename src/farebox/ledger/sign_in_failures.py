"""Failed sign-ins, counted per name in a sliding window in the ledger: after `limit` failures within `window`, wait.

The dashboard's sign-in keeps two of these, one by e-mail address and one by client address, so that guessing
one member's password and trying many members' passwords from one place are both slowed down. The failures are
rows of the ledger, so every process of a ledger (`farebox serve --workers N`, several hosts) counts the same
ones: trying each process in turn gains nothing. A name is stored as an HMAC under a key derived from the server
secret, never as the address itself, and a failure is deleted once it has left the window.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select

from farebox.core.events import epoch_us, from_epoch_us
from farebox.ledger.base import Ledger
from farebox.ledger.schema import sign_in_failures

__all__ = ["SignInFailures"]

_failures = sign_in_failures.c


class SignInFailures:
    """Failures per name; a name with `limit` of them within `window` waits until the oldest leaves the window.

    Args:
        ledger: where the failures are kept.
        throttle: which count this is (`email`, `address`): one table holds both.
        limit: failures within `window` after which a name must wait.
        window: how long a failure counts.
        key: the key names are HMACs under.
    """

    def __init__(self, ledger: Ledger, *, throttle: str, limit: int, window: timedelta, key: bytes) -> None:
        if limit < 1 or window <= timedelta(0):
            raise ValueError("a sign-in throttle needs a limit and a window")
        self._ledger = ledger
        self._throttle = throttle
        self._limit = limit
        self._window = window
        self._key = key

    def _mac(self, name: str) -> str:
        return hmac.new(self._key, name.encode(), hashlib.sha256).hexdigest()

    async def wait(self, name: str, *, now: datetime) -> timedelta | None:
        """How long `name` must wait before its next attempt, or None when it may try now."""
        mac, since_us = self._mac(name), epoch_us(now - self._window)

        def latest(connection: Connection) -> list[int]:
            query = (
                select(_failures.at_us)
                .where(_failures.throttle == self._throttle, _failures.name_mac == mac, _failures.at_us > since_us)
                .order_by(_failures.at_us.desc())
                .limit(self._limit)
            )
            return list(connection.scalars(query))

        failures = await self._ledger._read(latest)
        if len(failures) < self._limit:
            return None
        left = from_epoch_us(failures[-1]) + self._window - now
        return left if left > timedelta(0) else None

    async def failed(self, name: str, *, now: datetime) -> None:
        """Count a failure of `name` at `now`, and delete every failure that has left the window."""
        row = {
            "id": os.urandom(16).hex(),
            "throttle": self._throttle,
            "name_mac": self._mac(name),
            "at_us": epoch_us(now),
        }
        before_us = epoch_us(now - self._window)

        def count(connection: Connection) -> None:
            connection.execute(sign_in_failures.insert().values(**row))
            connection.execute(delete(sign_in_failures).where(_failures.at_us <= before_us))

        await self._ledger._write(count)

    async def forget(self, name: str) -> None:
        """Clear the failures of `name` (it succeeded)."""
        mac = self._mac(name)

        def clear(connection: Connection) -> None:
            connection.execute(
                delete(sign_in_failures).where(_failures.throttle == self._throttle, _failures.name_mac == mac)
            )

        await self._ledger._write(clear)
