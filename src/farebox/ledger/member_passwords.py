"""Members' passwords, kept as argon2id hashes on the `members` rows of the directory.

A password is set (or replaced) and removed here, and checked by `verify` for the dashboard's sign-in. Only
its hash is stored (`core.passwords`); no method returns or logs a password or a hash. Hashing is CPU-bound
(a few hundred milliseconds at the default parameters on a small server), so it runs on worker threads, a
few at a time, never on the event loop nor on the ledger's single writer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, select, update

from farebox.core.owners import Member
from farebox.core.passwords import MAX_PASSWORD_LENGTH, PasswordHashes, clean_password, normalise
from farebox.ledger.directory import Directory
from farebox.ledger.rows import Row, build, epoch_seconds, fetch_row, update_row
from farebox.ledger.schema import members
from farebox.ledger.sessions import end_member_sessions

__all__ = ["MAX_CONCURRENT_HASHES", "MemberPasswords"]

MAX_CONCURRENT_HASHES = 2
"""Hashes computed at once; each takes 64 MiB at the default parameters, so a burst of sign-ins queues."""

_MEMBER = "member"
R = TypeVar("R")


class MemberPasswords:
    """Set, remove and verify members' passwords.

    Args:
        directory: the directory of the same ledger (members, the clock).
        hashes: how passwords are hashed; the default parameters unless given (tests pass cheap ones).
    """

    def __init__(self, directory: Directory, *, hashes: PasswordHashes | None = None):
        self._directory = directory
        self._ledger = directory.ledger
        self._hashes = hashes or PasswordHashes()
        self._hashing = asyncio.Semaphore(MAX_CONCURRENT_HASHES)

    async def set(self, member_id: str, password: str) -> Member:
        """Give the member this password, replacing any it had, and end its dashboard sessions.

        Raises:
            NotFound: no member has this id.
            ValidationFailed: the password breaks the rule (`core.passwords.clean_password`).
        """
        member = await self._directory.get_member(member_id)
        cleaned = clean_password(password, email=member.email)
        digest = await self._off_loop(self._hashes.hash, cleaned)
        now = epoch_seconds(self._directory.now())
        changes = {"password_hash": digest, "password_changed_at": now}

        def write(connection: Connection) -> Row:
            current = fetch_row(connection, members, member_id, what=_MEMBER)
            clean_password(cleaned, email=current["email"])  # the e-mail may have changed while the hash was made
            end_member_sessions(connection, member_id)
            return update_row(connection, members, member_id, changes, what=_MEMBER, now=now)

        return build(Member, await self._ledger._write(write))

    async def remove(self, member_id: str) -> Member:
        """Take the member's password away, ending its dashboard sessions (a member without one is left as it is).

        Raises:
            NotFound: no member has this id.
        """
        now = epoch_seconds(self._directory.now())
        changes = {"password_hash": None, "password_changed_at": now}

        def write(connection: Connection) -> Row:
            current = fetch_row(connection, members, member_id, what=_MEMBER)
            if current["password_hash"] is None:
                return current
            end_member_sessions(connection, member_id)
            return update_row(connection, members, member_id, changes, what=_MEMBER, now=now)

        return build(Member, await self._ledger._write(write))

    async def verify(self, email: str, password: str, *, account_id: str | None = None) -> Member | None:
        """The member these credentials sign in as, or None.

        The e-mail is matched as stored (lower-cased), in `account_id` when given; without it, in every
        account, and the oldest membership whose password matches wins. Every candidate's hash is checked,
        and a decoy hash when there is none, so the time taken tells neither whether the e-mail is known nor
        whether the password was right. A hash made with older parameters is replaced by one made with the
        current parameters.
        """
        cleaned = normalise(password)
        if len(cleaned) > MAX_PASSWORD_LENGTH:
            return None  # no password this long was ever set: refuse before hashing megabytes
        query = (
            select(members)
            .where(members.c.email == email.strip().lower(), members.c.password_hash.is_not(None))
            .order_by(members.c.created_at, members.c.id)
        )
        if account_id is not None:
            query = query.where(members.c.account_id == account_id)
        rows = await self._ledger._read(lambda c: c.execute(query).mappings().all())
        if not rows:
            await self._off_loop(self._hashes.waste, cleaned)
            return None
        hashes = [str(row["password_hash"]) for row in rows]
        found = await self._off_loop(lambda: [self._hashes.matches(stored, cleaned) for stored in hashes])
        for row, stored, matched in zip(rows, hashes, found, strict=True):
            if matched:
                if self._hashes.needs_rehash(stored):
                    await self._rehash(str(row["id"]), stored, cleaned)
                return build(Member, row)
        return None

    async def _rehash(self, member_id: str, stored: str, password: str) -> None:
        """Replace `stored` with a hash under the current parameters, unless the password changed meanwhile.

        The password itself is the same, so `password_changed_at` stays as it is.
        """
        fresh = await self._off_loop(self._hashes.hash, password)
        same = (members.c.id == member_id) & (members.c.password_hash == stored)
        change = update(members).where(same).values(password_hash=fresh)
        await self._ledger._write(lambda c: c.execute(change))

    async def _off_loop(self, fn: Callable[..., R], *args: object) -> R:
        async with self._hashing:
            return await asyncio.to_thread(fn, *args)
