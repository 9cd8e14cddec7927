"""The directory: accounts, members and virtual keys, kept in the ledger database.

Every change goes through the ledger's single writer (`Ledger.write`), so checks such as "this e-mail
is not taken yet" and the change they guard run in one transaction. Reads run on the reader pool.
Secrets are handed back once, at creation and rotation, and never stored, logged or returned again:
the `key_secrets` table holds their SHA-256 digests, one row per secret still accepted.
"""

from __future__ import annotations

import math
import secrets
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, TypeVar, Unpack
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, RowMapping, Table, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from farebox.core.directory import (
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
    Plan,
    Role,
    Rule,
    VirtualKey,
    clean_fields,
    invalid,
)
from farebox.core.keys import display_prefix, generate_secret, hash_secret, looks_like_key, secrets_match
from farebox.core.periods import Period
from farebox.errors import AuthenticationFailed, Conflict, NotFound
from farebox.ledger.base import Ledger
from farebox.ledger.schema import accounts, key_secrets, members, virtual_keys
from farebox.ledger.spend import counter_of, read_counters, recount_current_periods

__all__ = ["MAX_GRACE_SECONDS", "Directory", "disable_key_row"]

MAX_GRACE_SECONDS = 365 * 86_400
"""The longest a rotated-out secret may keep working."""

_CHUNK = 500
Row = dict[str, Any]
T = TypeVar("T", Account, Member, VirtualKey)
R = TypeVar("R")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _epoch(at: datetime) -> int:
    """Whole epoch seconds (floored) of a datetime; a naive one is taken as UTC."""
    return math.floor(at.timestamp() if at.tzinfo else at.replace(tzinfo=UTC).timestamp())


_ENUMS: dict[str, type[Plan | Role | Period]] = {"plan": Plan, "role": Role, "cap_period": Period}
_TIMES = frozenset({"created_at", "updated_at", "expires_at", "revoked_at", "disabled_at"})
_TUPLES = frozenset({"allowed_models", "tags"})


def _build(cls: type[T], row: Mapping[str, Any] | RowMapping) -> T:
    """The dataclass of a row: epoch seconds become datetimes, strings enums, JSON lists tuples."""
    values: Row = {}
    for field in fields(cls):
        value = row[field.name]
        if value is not None:
            if field.name in _TIMES:
                value = datetime.fromtimestamp(value, tz=UTC)
            elif field.name in _ENUMS:
                value = _ENUMS[field.name](value)
            elif field.name in _TUPLES:
                value = tuple(value)
        values[field.name] = value
    return cls(**values)


def _columns(values: Mapping[str, Any]) -> Row:
    """Column values of cleaned fields: datetimes become epoch seconds, tuples JSON lists."""
    return {
        name: _epoch(value) if isinstance(value, datetime) else list(value) if isinstance(value, tuple) else value
        for name, value in values.items()
    }


def _clean(rules: Mapping[str, Rule], values: Mapping[str, Any]) -> Row:
    return _columns(clean_fields(rules, values))


def _fetch(connection: Connection, table: Table, row_id: str, *, what: str) -> Row:
    row = connection.execute(select(table).where(table.c.id == row_id)).mappings().first()
    if row is None:
        raise NotFound(f"no {what} with id {row_id!r}", code=f"{what.replace(' ', '_')}_not_found")
    return dict(row)


def _update(connection: Connection, table: Table, row_id: str, changes: Row, *, what: str, now: int) -> Row:
    _fetch(connection, table, row_id, what=what)
    if changes:
        connection.execute(update(table).where(table.c.id == row_id).values(**changes, updated_at=now))
    return _fetch(connection, table, row_id, what=what)


def _email_conflict(account_id: str, email: str) -> Conflict:
    return Conflict(f"account {account_id!r} already has a member with e-mail {email!r}", code="email_taken")


class Directory:
    """Accounts, members and virtual keys. All methods are coroutines; none blocks the event loop.

    Args:
        ledger: the started ledger whose database holds the directory.
        clock: the current time (aware); tests pass a controllable one.
    """

    def __init__(self, ledger: Ledger, *, clock: Callable[[], datetime] = _utcnow):
        self._ledger = ledger
        self._clock = clock
        self._last_id = 0
        self.on_change: list[Callable[[], None]] = []
        """Called after every change this directory makes (caches of keys and caps drop what they hold)."""

    def now(self) -> datetime:
        """The directory's current time."""
        return self._clock()

    async def _write(self, fn: Callable[[Connection], R]) -> R:
        """Run a directory change in the ledger's writer; then tell the `on_change` listeners."""
        result = await self._ledger.write(fn)
        self.changed()
        return result

    def _stamp(self) -> tuple[str, int]:
        """A new id, and the current time in epoch seconds.

        Ids are UUIDv7 (RFC 9562): a millisecond timestamp then a 12-bit counter, so that they grow
        with creation time, strictly within this directory; listings use them to break ties between
        records created in the same second.
        """
        self._last_id = max(self._last_id + 1, time.time_ns() // 1_000_000 << 12)
        ms, sequence = self._last_id >> 12, self._last_id & 0xFFF
        value = ms << 80 | 0x7 << 76 | sequence << 64 | 0b10 << 62 | secrets.randbits(62)
        return str(uuid.UUID(int=value)), _epoch(self._clock())

    # Accounts

    async def create_account(self, **fields: Unpack[NewAccount]) -> Account:
        """Create an account (organisation). Raises ValidationFailed for a bad field."""
        row = _clean(ACCOUNT_RULES, {**ACCOUNT_DEFAULTS, **fields})
        row["id"], row["created_at"] = self._stamp()
        row["updated_at"] = row["created_at"]
        await self._write(lambda connection: connection.execute(insert(accounts).values(row)))
        return _build(Account, row)

    async def get_account(self, account_id: str) -> Account:
        """The account. Raises NotFound."""
        return _build(Account, await self._ledger.read(lambda c: _fetch(c, accounts, account_id, what="account")))

    async def list_accounts(self) -> list[Account]:
        """Every account, oldest first."""
        query = select(accounts).order_by(accounts.c.created_at, accounts.c.id)
        rows = await self._ledger.read(lambda c: c.execute(query).mappings().all())
        return [_build(Account, row) for row in rows]

    async def update_account(self, account_id: str, **changes: Unpack[AccountChanges]) -> Account:
        """Change the given fields (a None cap removes the cap). Raises NotFound or ValidationFailed."""
        values = _clean(ACCOUNT_RULES, changes)
        now = _epoch(self._clock())

        def write(connection: Connection) -> Row:
            row = _update(connection, accounts, account_id, values, what="account", now=now)
            if "timezone" in values:
                # On the writer thread, inside the transaction: the next events use the new timezone, and the
                # current periods' counters are recounted within the new bounds.
                self._ledger.recorder.forget_timezone(account_id)
                tz = ZoneInfo(values["timezone"])
                recount_current_periods(connection, account_id, tz=tz, at=self._clock())
            return row

        return _build(Account, await self._write(write))

    # Members

    async def create_member(self, account_id: str, **fields: Unpack[NewMember]) -> Member:
        """Add a member to an account. Raises NotFound (account), ValidationFailed, or Conflict (e-mail taken)."""
        row = _clean(MEMBER_RULES, {**MEMBER_DEFAULTS, **fields})
        row["id"], row["created_at"] = self._stamp()
        row["updated_at"], row["account_id"] = row["created_at"], account_id

        def write(connection: Connection) -> None:
            _fetch(connection, accounts, account_id, what="account")
            try:
                connection.execute(insert(members).values(row))
            except IntegrityError:  # the unique (account, email) index; the writer rolls back to its savepoint
                raise _email_conflict(account_id, row["email"]) from None

        await self._write(write)
        return _build(Member, row)

    async def get_member(self, member_id: str) -> Member:
        """The member. Raises NotFound."""
        return _build(Member, await self._ledger.read(lambda c: _fetch(c, members, member_id, what="member")))

    async def list_members(self, account_id: str) -> list[Member]:
        """The account's members, oldest first. Raises NotFound (account)."""
        query = select(members).where(members.c.account_id == account_id).order_by(members.c.created_at, members.c.id)

        def fetch(connection: Connection) -> Sequence[RowMapping]:
            _fetch(connection, accounts, account_id, what="account")
            return connection.execute(query).mappings().all()

        return [_build(Member, row) for row in await self._ledger.read(fetch)]

    async def update_member(self, member_id: str, **changes: Unpack[MemberChanges]) -> Member:
        """Change the given fields. Raises NotFound, ValidationFailed, or Conflict (new e-mail taken)."""
        values = _clean(MEMBER_RULES, changes)
        now = _epoch(self._clock())

        def write(connection: Connection) -> Row:
            account_id = _fetch(connection, members, member_id, what="member")["account_id"]
            try:
                return _update(connection, members, member_id, values, what="member", now=now)
            except IntegrityError:
                raise _email_conflict(account_id, values["email"]) from None

        return _build(Member, await self._write(write))

    async def remove_member(self, member_id: str) -> Member:
        """Remove a member. Its keys are revoked and kept, detached from it; past usage keeps its id.

        Raises:
            NotFound: no member has this id.
        """
        now = _epoch(self._clock())

        def write(connection: Connection) -> Row:
            row = _fetch(connection, members, member_id, what="member")
            owned, live = virtual_keys.c.member_id == member_id, virtual_keys.c.revoked_at.is_(None)
            connection.execute(update(virtual_keys).where(owned, live).values(revoked_at=now))
            connection.execute(update(virtual_keys).where(owned).values(member_id=None, updated_at=now))
            connection.execute(delete(members).where(members.c.id == member_id))
            return row

        return _build(Member, await self._write(write))

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
        key_id, now = self._stamp()
        row = _clean(KEY_RULES, {**KEY_DEFAULTS, **fields}) | {
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
            _fetch(connection, accounts, account_id, what="account")
            if member_id is not None:
                owner = connection.scalar(select(members.c.account_id).where(members.c.id == member_id))
                if owner != account_id:
                    raise invalid("member_id", f"no member {member_id!r} in account {account_id!r}")
            connection.execute(insert(virtual_keys).values(row))
            connection.execute(insert(key_secrets).values(secret_row))

        await self._write(write)
        return _build(VirtualKey, row), secret

    async def get_key(self, key_id: str) -> VirtualKey:
        """The key. Raises NotFound."""
        return _build(VirtualKey, await self._ledger.read(lambda c: _fetch(c, virtual_keys, key_id, what=_KEY)))

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
        rows = await self._ledger.read(lambda c: c.execute(query).mappings().all())
        return [_build(cls, dict(row)) for row in rows]

    async def list_keys(self, *, account_id: str | None = None, member_id: str | None = None) -> list[VirtualKey]:
        """Keys, oldest first, optionally of one account and/or one member."""
        query = select(virtual_keys).order_by(virtual_keys.c.created_at, virtual_keys.c.id)
        if account_id is not None:
            query = query.where(virtual_keys.c.account_id == account_id)
        if member_id is not None:
            query = query.where(virtual_keys.c.member_id == member_id)
        rows = await self._ledger.read(lambda c: c.execute(query).mappings().all())
        return [_build(VirtualKey, row) for row in rows]

    async def update_key(self, key_id: str, **changes: Unpack[KeyChanges]) -> VirtualKey:
        """Change the given fields. None clears a nullable field; a past `expires_at` expires the key.

        Raises:
            NotFound: no key has this id.
            ValidationFailed: a bad field.
        """
        values = _clean(KEY_RULES, changes)
        now = _epoch(self._clock())
        row = await self._write(lambda c: _update(c, virtual_keys, key_id, values, what=_KEY, now=now))
        return _build(VirtualKey, row)

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
        now = _epoch(at)
        # Rounded up, so that an old secret works for at least the grace asked for.
        old_until = math.ceil(at.timestamp() + grace_seconds) if grace_seconds else now
        secret = generate_secret()
        digest = hash_secret(secret)

        def write(connection: Connection) -> Row:
            if _fetch(connection, virtual_keys, key_id, what=_KEY)["revoked_at"] is not None:
                raise Conflict(f"virtual key {key_id!r} is revoked and cannot be rotated", code="key_revoked")
            of_key = key_secrets.c.key_id == key_id
            connection.execute(delete(key_secrets).where(of_key, key_secrets.c.expires_at <= now))
            still_valid = or_(key_secrets.c.expires_at.is_(None), key_secrets.c.expires_at > old_until)
            connection.execute(update(key_secrets).where(of_key, still_valid).values(expires_at=old_until))
            connection.execute(insert(key_secrets).values(secret_hash=digest, key_id=key_id, created_at=now))
            changes = {"display_prefix": display_prefix(secret)}
            return _update(connection, virtual_keys, key_id, changes, what=_KEY, now=now)

        return _build(VirtualKey, await self._write(write)), secret

    async def revoke_key(self, key_id: str) -> VirtualKey:
        """Revoke the key, every secret of it, for good. Revoking twice keeps the first time. Raises NotFound."""
        now = _epoch(self._clock())

        def write(connection: Connection) -> Row:
            current = _fetch(connection, virtual_keys, key_id, what=_KEY)
            if current["revoked_at"] is not None:
                return current
            return _update(connection, virtual_keys, key_id, {"revoked_at": now}, what=_KEY, now=now)

        return _build(VirtualKey, await self._write(write))

    async def disable_key(self, key_id: str, *, reason: str) -> VirtualKey:
        """Stop the key until `enable_key`; a key already disabled keeps its first reason. Raises NotFound."""
        now = _epoch(self._clock())
        return _build(VirtualKey, await self._write(lambda c: disable_key_row(c, key_id, reason=reason, now=now)))

    async def enable_key(self, key_id: str) -> VirtualKey:
        """Let a disabled key work again (a revoked or expired one stays stopped). Raises NotFound."""
        now = _epoch(self._clock())
        changes = {"disabled_at": None, "disabled_reason": None}
        return _build(
            VirtualKey, await self._write(lambda c: _update(c, virtual_keys, key_id, changes, what=_KEY, now=now))
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
        row = await self._ledger.read(lambda c: c.execute(query).mappings().first())
        if row is None or not secrets_match(secret, row["secret_hash"]):
            raise AuthenticationFailed("invalid API key", code="invalid_api_key")
        key = _build(VirtualKey, row)
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
            zones = _timezones(connection, {_account_of(owner) for owner in owners})
            wanted = [
                counter_of(_SCOPES[type(owner)], owner.id, owner.cap_period, at=now, tz=zones[_account_of(owner)])
                for owner in owners
            ]
            found = read_counters(connection, wanted)
            return [found.get(counter, 0) for counter in wanted]

        return await self._ledger.read(fetch)


_KEY = "virtual key"


def disable_key_row(connection: Connection, key_id: str, *, reason: str, now: int) -> Row:
    """Disable a key inside the caller's transaction (an alert disables it atomically with its firing)."""
    current = _fetch(connection, virtual_keys, key_id, what=_KEY)
    if current["disabled_at"] is not None:
        return current
    return _update(
        connection, virtual_keys, key_id, {"disabled_at": now, "disabled_reason": reason}, what=_KEY, now=now
    )


_SCOPES: dict[type, str] = {Account: "account", Member: "member", VirtualKey: "key"}


def _account_of(owner: Account | Member | VirtualKey) -> str:
    return owner.id if isinstance(owner, Account) else owner.account_id


def _timezones(connection: Connection, account_ids: set[str]) -> dict[str, ZoneInfo]:
    """The timezones of accounts (UTC for an unknown one)."""
    ids = list(account_ids)
    names: dict[str, str] = {}
    for start in range(0, len(ids), _CHUNK):
        query = select(accounts.c.id, accounts.c.timezone).where(accounts.c.id.in_(ids[start : start + _CHUNK]))
        names.update((row.id, row.timezone) for row in connection.execute(query))
    return {account_id: ZoneInfo(names.get(account_id, "UTC")) for account_id in ids}
