"""The directory: accounts, members and virtual keys, kept in the ledger database.

Every change goes through the ledger's single writer (`Ledger._write`), so checks such as "this e-mail
is not taken yet" and the change they guard run in one transaction. Reads run on the reader pool.
Secrets are handed back once, at creation and rotation, and never stored, logged or returned again:
the `key_secrets` table holds their SHA-256 digests, one row per secret still accepted.
"""

from __future__ import annotations

import math
import secrets
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import TypeVar, Unpack
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, RowMapping, Table, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from farebox.core.clock import utcnow
from farebox.core.keys import display_prefix, generate_secret, hash_secret, looks_like_key, secrets_match
from farebox.core.owners import (
    ACCOUNT_DEFAULTS,
    ACCOUNT_RULES,
    KEY_DEFAULTS,
    KEY_RULES,
    MEMBER_DEFAULTS,
    MEMBER_RULES,
    Account,
    AccountChanges,
    KeyChanges,
    KeyStatus,
    Member,
    MemberChanges,
    NewAccount,
    NewKey,
    NewMember,
    VirtualKey,
    invalid,
)
from farebox.core.spend import CounterId, account_of, scope_of
from farebox.errors import AuthenticationFailed, Conflict
from farebox.ledger.base import Ledger
from farebox.ledger.daily import rebuild_daily
from farebox.ledger.latency import rebuild_daily_latency
from farebox.ledger.prompt_prefixes import rebuild_prefixes
from farebox.ledger.rows import (
    KEY,
    Row,
    build,
    clean,
    disable_key_row,
    epoch_seconds,
    fetch_row,
    timezones,
    update_row,
)
from farebox.ledger.schema import accounts, audit_log, key_secrets, member_tokens, members, virtual_keys
from farebox.ledger.sessions import end_member_sessions
from farebox.ledger.spend import read_counters, recount_current_periods

__all__ = ["ERASED_KEY_NAME", "ERASED_NAME", "MAX_GRACE_SECONDS", "Directory", "member_erased"]

MAX_GRACE_SECONDS = 365 * 86_400
ERASED_NAME = "Erased member"
"""An erased member's name."""
ERASED_KEY_NAME = "erased"
"""The name an erased member's keys take (a key's name may name its holder)."""


def member_erased(member_id: str) -> Conflict:
    """The refusal to give an erased member back an identity or a credential."""
    return Conflict(f"member {member_id!r} was erased: it takes no new name, key or credential", code="member_erased")


"""The longest a rotated-out secret may keep working."""

T = TypeVar("T", Account, Member, VirtualKey)
R = TypeVar("R")


def _email_conflict(account_id: str, email: str) -> Conflict:
    return Conflict(f"account {account_id!r} already has a member with e-mail {email!r}", code="email_taken")


class Directory:
    """Accounts, members and virtual keys. All methods are coroutines; none blocks the event loop.

    Args:
        ledger: the started ledger whose database holds the directory.
        clock: the current time (aware); tests pass a controllable one.
    """

    def __init__(self, ledger: Ledger, *, clock: Callable[[], datetime] = utcnow):
        self._ledger = ledger
        self._clock = clock
        self._last_id = 0
        self.on_change: list[Callable[[], None]] = []
        """Called after every change this directory makes (caches of keys and caps drop what they hold)."""

    def now(self) -> datetime:
        """The directory's current time."""
        return self._clock()

    @property
    def ledger(self) -> Ledger:
        """The ledger whose database holds the directory (for stores kept beside it)."""
        return self._ledger

    async def _write(self, fn: Callable[[Connection], R]) -> R:
        """Run a directory change in the ledger's writer; then tell the `on_change` listeners."""
        result = await self._ledger._write(fn)
        self.changed()
        return result

    def stamp(self) -> tuple[str, int]:
        """A new id, and the current time in epoch seconds.

        Ids are UUIDv7 (RFC 9562): a millisecond timestamp then a 12-bit counter, so that they grow
        with creation time, strictly within this directory; listings use them to break ties between
        records created in the same second.
        """
        self._last_id = max(self._last_id + 1, time.time_ns() // 1_000_000 << 12)
        ms, sequence = self._last_id >> 12, self._last_id & 0xFFF
        value = ms << 80 | 0x7 << 76 | sequence << 64 | 0b10 << 62 | secrets.randbits(62)
        return str(uuid.UUID(int=value)), epoch_seconds(self._clock())

    # Accounts

    async def create_account(self, **fields: Unpack[NewAccount]) -> Account:
        """Create an account (organisation). Raises ValidationFailed for a bad field."""
        row = clean(ACCOUNT_RULES, {**ACCOUNT_DEFAULTS, **fields})
        row["id"], row["created_at"] = self.stamp()
        row["updated_at"] = row["created_at"]
        await self._write(lambda connection: connection.execute(insert(accounts).values(row)))
        return build(Account, row)

    async def get_account(self, account_id: str) -> Account:
        """The account. Raises NotFound."""
        return build(Account, await self._ledger._read(lambda c: fetch_row(c, accounts, account_id, what="account")))

    async def list_accounts(self) -> list[Account]:
        """Every account, oldest first."""
        query = select(accounts).order_by(accounts.c.created_at, accounts.c.id)
        rows = await self._ledger._read(lambda c: c.execute(query).mappings().all())
        return [build(Account, row) for row in rows]

    async def update_account(self, account_id: str, **changes: Unpack[AccountChanges]) -> Account:
        """Change the given fields (a None cap removes the cap). Raises NotFound or ValidationFailed."""
        values = clean(ACCOUNT_RULES, changes)
        now = epoch_seconds(self._clock())

        def write(connection: Connection) -> Row:
            row = update_row(connection, accounts, account_id, values, what="account", now=now)
            if "timezone" in values:
                # On the writer thread, inside the transaction: the next events use the new timezone, and the
                # current periods' counters are recounted within the new bounds.
                self._ledger.recorder.forget_timezone(connection, account_id)
                tz = ZoneInfo(values["timezone"])
                recount_current_periods(connection, account_id, tz=tz, at=self._clock())
                rebuild_daily(connection, account_id, tz=tz)
                rebuild_prefixes(connection, account_id, tz=tz, now=self._clock())
                rebuild_daily_latency(connection, account_id, tz=tz)
            return row

        return build(Account, await self._write(write))

    # Members

    async def create_member(self, account_id: str, **fields: Unpack[NewMember]) -> Member:
        """Add a member to an account. Raises NotFound (account), ValidationFailed, or Conflict (e-mail taken)."""
        row = clean(MEMBER_RULES, {**MEMBER_DEFAULTS, **fields})
        row["id"], row["created_at"] = self.stamp()
        row["updated_at"], row["account_id"] = row["created_at"], account_id
        row["password_hash"] = row["password_changed_at"] = row["erased_at"] = None

        def write(connection: Connection) -> None:
            fetch_row(connection, accounts, account_id, what="account")
            try:
                connection.execute(insert(members).values(row))
            except IntegrityError:  # the unique (account, email) index; the writer rolls back to its savepoint
                raise _email_conflict(account_id, row["email"]) from None

        await self._write(write)
        return build(Member, row)

    async def get_member(self, member_id: str) -> Member:
        """The member. Raises NotFound."""
        return build(Member, await self._ledger._read(lambda c: fetch_row(c, members, member_id, what="member")))

    async def list_members(self, account_id: str) -> list[Member]:
        """The account's members, oldest first. Raises NotFound (account)."""
        query = select(members).where(members.c.account_id == account_id).order_by(members.c.created_at, members.c.id)

        def fetch(connection: Connection) -> Sequence[RowMapping]:
            fetch_row(connection, accounts, account_id, what="account")
            return connection.execute(query).mappings().all()

        return [build(Member, row) for row in await self._ledger._read(fetch)]

    async def update_member(self, member_id: str, **changes: Unpack[MemberChanges]) -> Member:
        """Change the given fields. Raises NotFound, ValidationFailed, or Conflict (new e-mail taken; an erased
        member's name or e-mail address)."""
        values = clean(MEMBER_RULES, changes)
        now = epoch_seconds(self._clock())

        def write(connection: Connection) -> Row:
            found = fetch_row(connection, members, member_id, what="member")
            account_id = found["account_id"]
            if found["erased_at"] is not None and {"name", "email"} & set(values):
                raise member_erased(member_id)
            try:
                return update_row(connection, members, member_id, values, what="member", now=now)
            except IntegrityError:
                raise _email_conflict(account_id, values["email"]) from None

        return build(Member, await self._write(write))

    async def remove_member(self, member_id: str) -> Member:
        """Remove a member. Its keys are revoked and kept, detached from it; its API tokens and dashboard sessions
        are deleted; past usage keeps its id.

        Raises:
            NotFound: no member has this id.
        """
        now = epoch_seconds(self._clock())

        def write(connection: Connection) -> Row:
            row = fetch_row(connection, members, member_id, what="member")
            owned, live = virtual_keys.c.member_id == member_id, virtual_keys.c.revoked_at.is_(None)
            connection.execute(update(virtual_keys).where(owned, live).values(revoked_at=now))
            connection.execute(update(virtual_keys).where(owned).values(member_id=None, updated_at=now))
            connection.execute(delete(member_tokens).where(member_tokens.c.member_id == member_id))
            end_member_sessions(connection, member_id)
            connection.execute(delete(members).where(members.c.id == member_id))
            return row

        return build(Member, await self._write(write))

    async def erase_member(self, member_id: str) -> Member:
        """Pseudonymise a member (a data subject's erasure): its name becomes `ERASED_NAME` and its e-mail address
        one naming only its id; its password, API tokens and dashboard sessions go; its keys are revoked and
        renamed; the client addresses of its requests in the audit log are dropped. Its id stays, and with it
        every amount of its usage. Erasing an erased member changes nothing.

        Raises:
            NotFound: no member has this id.
        """
        now = epoch_seconds(self._clock())

        def write(connection: Connection) -> Row:
            row = fetch_row(connection, members, member_id, what="member")
            if row["erased_at"] is not None:
                return row
            identity = {"name": ERASED_NAME, "email": f"erased-{member_id}@erased.invalid"}
            gone = {"password_hash": None, "password_changed_at": now, "erased_at": now, "updated_at": now}
            connection.execute(update(members).where(members.c.id == member_id).values(**identity, **gone))
            owned, live = virtual_keys.c.member_id == member_id, virtual_keys.c.revoked_at.is_(None)
            connection.execute(update(virtual_keys).where(owned, live).values(revoked_at=now))
            connection.execute(update(virtual_keys).where(owned).values(name=ERASED_KEY_NAME, tags=[], updated_at=now))
            connection.execute(delete(member_tokens).where(member_tokens.c.member_id == member_id))
            end_member_sessions(connection, member_id)
            connection.execute(
                update(audit_log).where(audit_log.c.principal_member_id == member_id).values(client_address="erased")
            )
            return fetch_row(connection, members, member_id, what="member")

        return build(Member, await self._write(write))

    # Virtual keys

    async def create_key(
        self, account_id: str, *, member_id: str | None = None, **fields: Unpack[NewKey]
    ) -> tuple[VirtualKey, str]:
        """Create a key; return it and its secret, which is not kept and cannot be shown again.

        Usage through the key is attributed to `member_id`, who must belong to the account.

        Raises:
            NotFound: no account has this id.
            ValidationFailed: a bad field, an expiry in the past, or a member of another account.
        """
        key_id, now = self.stamp()
        row = clean(KEY_RULES, {**KEY_DEFAULTS, **fields}) | {
            "id": key_id,
            "account_id": account_id,
            "member_id": member_id,
        }
        if row["expires_at"] is not None and row["expires_at"] <= now:
            raise invalid("expires_at", "is in the past")
        secret = generate_secret()
        row |= {"display_prefix": display_prefix(secret), "created_at": now, "updated_at": now}
        row |= {"revoked_at": None, "disabled_at": None, "disabled_reason": None}
        secret_row = {"secret_hash": hash_secret(secret), "key_id": key_id, "created_at": now}

        def write(connection: Connection) -> None:
            fetch_row(connection, accounts, account_id, what="account")
            if member_id is not None:
                owner = connection.execute(
                    select(members.c.account_id, members.c.erased_at).where(members.c.id == member_id)
                ).first()
                if owner is None or owner.account_id != account_id:
                    raise invalid("member_id", f"no member {member_id!r} in account {account_id!r}")
                if owner.erased_at is not None:
                    raise member_erased(member_id)
            connection.execute(insert(virtual_keys).values(row))
            connection.execute(insert(key_secrets).values(secret_row))

        await self._write(write)
        return build(VirtualKey, row), secret

    async def get_key(self, key_id: str) -> VirtualKey:
        """The key. Raises NotFound."""
        return build(VirtualKey, await self._ledger._read(lambda c: fetch_row(c, virtual_keys, key_id, what=KEY)))

    async def find_keys(self, key_ids: Collection[str]) -> dict[str, VirtualKey]:
        """The keys among `key_ids` that exist, by id, in one read (ids not found are absent)."""
        return {k.id: k for k in await self._find(VirtualKey, virtual_keys, key_ids)}

    async def find_accounts(self, account_ids: Collection[str]) -> dict[str, Account]:
        """The accounts among `account_ids` that exist, by id, in one read (ids not found are absent)."""
        return {a.id: a for a in await self._find(Account, accounts, account_ids)}

    async def _find(self, cls: type[T], table: Table, ids: Collection[str]) -> list[T]:
        if not ids:
            return []
        query = select(table).where(table.c.id.in_(list(ids)))
        rows = await self._ledger._read(lambda c: c.execute(query).mappings().all())
        return [build(cls, dict(row)) for row in rows]

    async def list_keys(self, *, account_id: str | None = None, member_id: str | None = None) -> list[VirtualKey]:
        """Keys, oldest first, optionally of one account and/or one member."""
        query = select(virtual_keys).order_by(virtual_keys.c.created_at, virtual_keys.c.id)
        if account_id is not None:
            query = query.where(virtual_keys.c.account_id == account_id)
        if member_id is not None:
            query = query.where(virtual_keys.c.member_id == member_id)
        rows = await self._ledger._read(lambda c: c.execute(query).mappings().all())
        return [build(VirtualKey, row) for row in rows]

    async def update_key(self, key_id: str, **changes: Unpack[KeyChanges]) -> VirtualKey:
        """Change the given fields. None clears a nullable field; a past `expires_at` expires the key.

        Raises:
            NotFound: no key has this id.
            ValidationFailed: a bad field.
        """
        values = clean(KEY_RULES, changes)
        now = epoch_seconds(self._clock())
        row = await self._write(lambda c: update_row(c, virtual_keys, key_id, values, what=KEY, now=now))
        return build(VirtualKey, row)

    async def rotate_key(self, key_id: str, *, grace_seconds: int = 0) -> tuple[VirtualKey, str]:
        """Give the key a new secret; the secrets it had keep working for `grace_seconds` more, then stop.

        A grace of 0 stops them at once. Rotation never extends an old secret's life.

        Raises:
            NotFound: no key has this id.
            Conflict: the key is revoked.
            ValidationFailed: the grace is negative or longer than a year.
        """
        if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
            raise invalid("grace_period_seconds", f"must be between 0 and {MAX_GRACE_SECONDS}")
        at = self._clock()
        now = epoch_seconds(at)
        # Rounded up, so that an old secret works for at least the grace asked for.
        old_until = math.ceil(at.timestamp() + grace_seconds) if grace_seconds else now
        secret = generate_secret()
        digest = hash_secret(secret)

        def write(connection: Connection) -> Row:
            if fetch_row(connection, virtual_keys, key_id, what=KEY)["revoked_at"] is not None:
                raise Conflict(f"virtual key {key_id!r} is revoked and cannot be rotated", code="key_revoked")
            of_key = key_secrets.c.key_id == key_id
            connection.execute(delete(key_secrets).where(of_key, key_secrets.c.expires_at <= now))
            still_valid = or_(key_secrets.c.expires_at.is_(None), key_secrets.c.expires_at > old_until)
            connection.execute(update(key_secrets).where(of_key, still_valid).values(expires_at=old_until))
            connection.execute(insert(key_secrets).values(secret_hash=digest, key_id=key_id, created_at=now))
            changes = {"display_prefix": display_prefix(secret)}
            return update_row(connection, virtual_keys, key_id, changes, what=KEY, now=now)

        return build(VirtualKey, await self._write(write)), secret

    async def revoke_key(self, key_id: str) -> VirtualKey:
        """Revoke the key, every secret of it, for good. Revoking twice keeps the first time. Raises NotFound."""
        now = epoch_seconds(self._clock())

        def write(connection: Connection) -> Row:
            current = fetch_row(connection, virtual_keys, key_id, what=KEY)
            if current["revoked_at"] is not None:
                return current
            return update_row(connection, virtual_keys, key_id, {"revoked_at": now}, what=KEY, now=now)

        return build(VirtualKey, await self._write(write))

    async def disable_key(self, key_id: str, *, reason: str) -> VirtualKey:
        """Stop the key until `enable_key`; a key already disabled keeps its first reason. Raises NotFound."""
        now = epoch_seconds(self._clock())
        return build(VirtualKey, await self._write(lambda c: disable_key_row(c, key_id, reason=reason, now=now)))

    async def enable_key(self, key_id: str) -> VirtualKey:
        """Let a disabled key work again (a revoked or expired one stays stopped). Raises NotFound."""
        now = epoch_seconds(self._clock())
        changes = {"disabled_at": None, "disabled_reason": None}
        return build(
            VirtualKey, await self._write(lambda c: update_row(c, virtual_keys, key_id, changes, what=KEY, now=now))
        )

    def changed(self) -> None:
        """Tell the `on_change` listeners of a directory change made in some other transaction."""
        for listener in self.on_change:
            listener()

    async def authenticate(self, secret: str) -> VirtualKey:
        """The active key a secret belongs to. The secret is looked up by its hash, never logged.

        Raises:
            AuthenticationFailed: the secret is unknown ("invalid"), its key is revoked ("revoked"), or
                the key, or this secret of it (rotated out, grace over), has expired ("expired").
        """
        if not looks_like_key(secret):
            raise AuthenticationFailed("invalid API key", code="invalid_api_key")
        query = (
            select(virtual_keys, key_secrets.c.secret_hash, key_secrets.c.expires_at.label("secret_expires_at"))
            .select_from(key_secrets.join(virtual_keys, key_secrets.c.key_id == virtual_keys.c.id))
            .where(key_secrets.c.secret_hash == hash_secret(secret))
        )
        row = await self._ledger._read(lambda c: c.execute(query).mappings().first())
        if row is None or not secrets_match(secret, row["secret_hash"]):
            raise AuthenticationFailed("invalid API key", code="invalid_api_key")
        key = build(VirtualKey, row)
        now = self._clock()
        status = key.status(now)
        if status is KeyStatus.REVOKED:
            raise AuthenticationFailed("this API key has been revoked", code="key_revoked")
        if status is KeyStatus.DISABLED:
            raise AuthenticationFailed(f"this API key is disabled: {key.disabled_reason}", code="key_disabled")
        if status is KeyStatus.EXPIRED:
            raise AuthenticationFailed("this API key has expired", code="key_expired")
        if row["secret_expires_at"] is not None and now.timestamp() >= row["secret_expires_at"]:
            message = "this API key was rotated and its grace period has expired; use the new key"
            raise AuthenticationFailed(message, code="key_expired")
        return key

    # Spend

    async def spend(self, owner: Account | Member | VirtualKey) -> int:
        """Nano-USD an account, member or key spent in its current cap period (in the account's timezone)."""
        (spent,) = await self.spends([owner])
        return spent

    async def spends(self, owners: Sequence[Account | Member | VirtualKey]) -> list[int]:
        """`spend` of many accounts, members and keys, in one read."""
        if not owners:
            return []
        now = self._clock()

        def fetch(connection: Connection) -> list[int]:
            zones = timezones(connection, {account_of(owner) for owner in owners})
            wanted = [
                CounterId.of(scope_of(owner), owner.id, owner.cap_period, at=now, tz=zones[account_of(owner)])
                for owner in owners
            ]
            found = read_counters(connection, wanted)
            return [found.get(counter, 0) for counter in wanted]

        return await self._ledger._read(fetch)
