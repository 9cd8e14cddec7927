"""Members' personal API tokens, kept in the ledger database beside the directory.

A token is created for one member and shown once; only the SHA-256 digest of its secret is stored. It
acts with its member's role at the time of each request, so changing a member's role changes what its
tokens may do, and removing the member deletes them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from farebox.core.credentials import MemberToken
from farebox.core.keys import TOKEN_PREFIX, display_prefix, generate_secret, hash_secret, looks_like_key, secrets_match
from farebox.core.owners import KeyStatus, Member, clean_name, invalid
from farebox.errors import AuthenticationFailed, NotFound
from farebox.ledger.directory import Directory
from farebox.ledger.rows import Row, build, epoch_seconds, fetch_row
from farebox.ledger.schema import member_tokens, members

__all__ = ["LAST_USED_GRAIN_SECONDS", "MemberTokens"]

LAST_USED_GRAIN_SECONDS = 60
"""`last_used_at` is written at most once a minute per token, so reads do not become writes."""

_TOKEN = "member token"


class MemberTokens:
    """Create, list, revoke and authenticate member tokens.

    Args:
        directory: the directory of the same ledger (ids, the clock, members).
        clock: the current time (aware); defaults to the directory's.
    """

    def __init__(self, directory: Directory, *, clock: Callable[[], datetime] | None = None):
        self._directory = directory
        self._ledger = directory.ledger
        self._clock = clock or directory.now

    async def create(self, member_id: str, *, name: str, expires_at: datetime | None = None) -> tuple[MemberToken, str]:
        """A new token of `member_id` and its secret, which is not kept and cannot be shown again.

        Raises:
            NotFound: no member has this id.
            ValidationFailed: a bad name, or an expiry in the past.
        """
        token_id, now = self._directory.stamp()
        expires = None if expires_at is None else epoch_seconds(expires_at)
        if expires is not None and expires <= now:
            raise invalid("expires_at", "is in the past")
        secret = generate_secret(prefix=TOKEN_PREFIX)
        row: Row = {
            "id": token_id,
            "member_id": member_id,
            "name": clean_name(name),
            "secret_hash": hash_secret(secret),
            "display_prefix": display_prefix(secret),
            "expires_at": expires,
            "revoked_at": None,
            "last_used_at": None,
            "created_at": now,
        }

        def write(connection: Connection) -> Row:
            member = fetch_row(connection, members, member_id, what="member")
            values = row | {"account_id": member["account_id"]}
            connection.execute(insert(member_tokens).values(values))
            return values

        return build(MemberToken, await self._ledger._write(write)), secret

    async def get(self, token_id: str) -> MemberToken:
        """The token. Raises NotFound."""
        return build(
            MemberToken, await self._ledger._read(lambda c: fetch_row(c, member_tokens, token_id, what=_TOKEN))
        )

    async def list(self, member_id: str) -> list[MemberToken]:
        """A member's tokens, revoked and expired ones included, oldest first."""
        query = select(member_tokens).where(member_tokens.c.member_id == member_id).order_by(member_tokens.c.id)
        rows = await self._ledger._read(lambda c: c.execute(query).mappings().all())
        return [build(MemberToken, row) for row in rows]

    async def revoke(self, token_id: str) -> MemberToken:
        """Revoke a token for good (revoking it again changes nothing). Raises NotFound."""
        now = epoch_seconds(self._clock())

        def write(connection: Connection) -> Row:
            fetch_row(connection, member_tokens, token_id, what=_TOKEN)
            live = member_tokens.c.revoked_at.is_(None)
            connection.execute(update(member_tokens).where(member_tokens.c.id == token_id, live).values(revoked_at=now))
            return fetch_row(connection, member_tokens, token_id, what=_TOKEN)

        return build(MemberToken, await self._ledger._write(write))

    async def authenticate(self, secret: str) -> tuple[MemberToken, Member]:
        """The active token a secret belongs to, and its member (with the member's current role).

        Raises:
            AuthenticationFailed: the secret is unknown ("invalid"), or its token revoked or expired.
        """
        if not looks_like_key(secret, prefix=TOKEN_PREFIX):
            raise AuthenticationFailed("invalid API token", code="invalid_api_key")
        query = select(member_tokens).where(member_tokens.c.secret_hash == hash_secret(secret))
        row = await self._ledger._read(lambda c: c.execute(query).mappings().first())
        if row is None or not secrets_match(secret, row["secret_hash"]):
            raise AuthenticationFailed("invalid API token", code="invalid_api_key")
        token = build(MemberToken, row)
        now = self._clock()
        status = token.status(now)
        if status is KeyStatus.REVOKED:
            raise AuthenticationFailed("this API token has been revoked", code="token_revoked")
        if status is KeyStatus.EXPIRED:
            raise AuthenticationFailed("this API token has expired", code="token_expired")
        try:
            member = await self._directory.get_member(token.member_id)
        except NotFound:
            raise AuthenticationFailed("invalid API token", code="invalid_api_key") from None
        await self._touch(token, now)
        return token, member

    async def _touch(self, token: MemberToken, now: datetime) -> None:
        """Record the use, unless it was already recorded less than `LAST_USED_GRAIN_SECONDS` ago."""
        at = epoch_seconds(now)
        last = token.last_used_at
        if last is not None and at - epoch_seconds(last) < LAST_USED_GRAIN_SECONDS:
            return
        change = update(member_tokens).where(member_tokens.c.id == token.id).values(last_used_at=at)
        await self._ledger._write(lambda c: c.execute(change))
