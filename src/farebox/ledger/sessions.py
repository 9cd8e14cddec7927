"""Dashboard sessions, kept in the ledger database: who signed in to the web dashboard, and until when.

A session is made at each sign-in and named by a random secret, the session cookie's value; only the
secret's SHA-256 digest is stored, so reading the table does not let anyone sign in. A session ends at its
absolute expiry, after `idle` without a request, at sign-out, and, for a member, when its password is set or
removed or the member is removed (`end_member_sessions`, called in those changes' own transactions). A member's
session acts with the member's role at each request: it is read with the session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, insert, or_, select, update

from farebox.core.clock import utcnow
from farebox.core.keys import generate_secret, hash_secret
from farebox.core.owners import Role
from farebox.ledger.base import Ledger
from farebox.ledger.rows import epoch_seconds, fetch_row
from farebox.ledger.schema import dashboard_sessions, members

__all__ = ["LAST_SEEN_GRAIN_SECONDS", "SESSION_PREFIX", "DashboardSession", "DashboardSessions", "end_member_sessions"]

SESSION_PREFIX = "fbx_ds_"
"""A session secret's prefix, so that a leaked cookie is recognised for what it is."""

LAST_SEEN_GRAIN_SECONDS = 60
"""`last_seen_at` is written at most once a minute per session, so page views do not each become a write."""

_MASTER, _MEMBER = "master", "member"


@dataclass(frozen=True, slots=True)
class DashboardSession:
    """A live session, as read at one request."""

    secret_hash: str
    account_id: str | None
    """None for the operator's session (every account)."""
    member_id: str | None
    role: Role | None
    """The member's role now (None for the operator)."""
    master_check: str | None
    """For the operator's session: the keyed digest of the master key it signed in with."""
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime

    @property
    def is_master(self) -> bool:
        return self.member_id is None


def end_member_sessions(connection: Connection, member_id: str) -> None:
    """End every session of a member, in the caller's transaction (its password changed, or it is removed)."""
    connection.execute(delete(dashboard_sessions).where(dashboard_sessions.c.member_id == member_id))


class DashboardSessions:
    """Begin, find and end dashboard sessions.

    Args:
        ledger: the started ledger whose database holds the sessions.
        lifetime: how long a session lasts from its sign-in, however busy.
        idle: how long a session lasts without a request.
        clock: the current time (aware).
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        lifetime: timedelta,
        idle: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ):
        self._ledger = ledger
        self._lifetime = lifetime
        self._idle = idle
        self._clock = clock

    async def begin(self, *, member_id: str | None, master_check: str | None = None) -> str:
        """A new session of the member (None: the operator, with `master_check`); its secret, which is not kept.

        Sessions that have ended by time are deleted in the same transaction, so the table holds only live ones
        (and those ended since the last sign-in).

        Raises:
            NotFound: no member has this id.
        """
        now = epoch_seconds(self._clock())
        secret = generate_secret(prefix=SESSION_PREFIX)
        row = {
            "secret_hash": hash_secret(secret),
            "kind": _MASTER if member_id is None else _MEMBER,
            "member_id": member_id,
            "master_check": master_check,
            "created_at": now,
            "last_seen_at": now,
            "expires_at": now + int(self._lifetime.total_seconds()),
        }
        stale = or_(
            dashboard_sessions.c.expires_at <= now,
            dashboard_sessions.c.last_seen_at <= now - int(self._idle.total_seconds()),
        )

        def write(connection: Connection) -> None:
            connection.execute(delete(dashboard_sessions).where(stale))
            account_id = None
            if member_id is not None:
                account_id = fetch_row(connection, members, member_id, what="member")["account_id"]
            connection.execute(insert(dashboard_sessions).values(row | {"account_id": account_id}))

        await self._ledger._write(write)
        return secret

    async def find(self, secret: str) -> DashboardSession | None:
        """The live session a secret names, or None (unknown, ended, past its expiry or idle too long).

        Finding a session is a request in it: `last_seen_at` moves, to the minute.
        """
        if not secret.startswith(SESSION_PREFIX):
            return None
        digest = hash_secret(secret)
        query = (
            select(dashboard_sessions, members.c.role)
            .select_from(dashboard_sessions.outerjoin(members, members.c.id == dashboard_sessions.c.member_id))
            .where(dashboard_sessions.c.secret_hash == digest)
        )
        row = await self._ledger._read(lambda c: c.execute(query).mappings().first())
        now = epoch_seconds(self._clock())
        if row is None or now >= row["expires_at"] or now - row["last_seen_at"] >= self._idle.total_seconds():
            return None
        if row["kind"] == _MEMBER and row["role"] is None:
            return None  # its member is gone; the removal deleted the session, unless it raced this read
        last_seen = row["last_seen_at"]
        if now - last_seen >= LAST_SEEN_GRAIN_SECONDS:
            change = update(dashboard_sessions).where(dashboard_sessions.c.secret_hash == digest)
            await self._ledger._write(lambda c: c.execute(change.values(last_seen_at=now)))
            last_seen = now
        return DashboardSession(
            secret_hash=digest,
            account_id=row["account_id"],
            member_id=row["member_id"],
            role=None if row["role"] is None else Role(row["role"]),
            master_check=row["master_check"],
            created_at=_at(row["created_at"]),
            last_seen_at=_at(last_seen),
            expires_at=_at(row["expires_at"]),
        )

    async def end(self, secret: str) -> None:
        """End the session a secret names (an unknown or ended one is left as it is)."""
        change = delete(dashboard_sessions).where(dashboard_sessions.c.secret_hash == hash_secret(secret))
        await self._ledger._write(lambda c: c.execute(change))


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
