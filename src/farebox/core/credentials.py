"""Credentials and what they may do: members' personal API tokens, and the caller a credential makes.

A virtual key calls models and reads its own usage; a member token does admin work with its member's
role; the master key is the operator. Each credential does one job. `Principal` is the authenticated
caller; its `require_*` methods are the one access table every route and the analytics engine apply
(docs/api.md, "Authentication"). Another account's things answer 404, as if they did not exist: a caller
learns nothing of an account it is not in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from farebox.core.owners import KeyStatus, Role
from farebox.errors import NotFound, PermissionDenied

__all__ = ["MemberToken", "Principal", "PrincipalKind"]


@dataclass(frozen=True, slots=True)
class MemberToken:
    """A member's personal API token for the admin API; it acts with the member's current role.

    Like a key's, its secret is shown once at creation and only its hash is kept.
    """

    id: str
    account_id: str
    member_id: str
    name: str
    display_prefix: str
    """The start of the secret, safe to show (e.g. `fbx_mt_Ab3dE9…`)."""
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    """When the token last authenticated a request (to the minute)."""
    created_at: datetime

    def status(self, now: datetime) -> KeyStatus:
        """Revoked (for good), expired (at or after `expires_at`), or active."""
        if self.revoked_at is not None:
            return KeyStatus.REVOKED
        if self.expires_at is not None and now >= self.expires_at:
            return KeyStatus.EXPIRED
        return KeyStatus.ACTIVE


_READS_ACCOUNT = frozenset({Role.OWNER, Role.ADMIN, Role.BILLING})
_MANAGES_ACCOUNT = frozenset({Role.OWNER, Role.ADMIN})


class PrincipalKind(StrEnum):
    """Which credential the caller holds."""

    MASTER = "master"
    MEMBER = "member"
    """A member's personal API token."""
    KEY = "key"
    """A virtual key: a proxy credential that may also read its own usage."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller. `account_id` is None for the master key (every account)."""

    kind: PrincipalKind
    account_id: str | None = None
    member_id: str | None = None
    role: Role | None = None
    key_id: str | None = None
    """The virtual key calling, for `PrincipalKind.KEY`."""

    @property
    def is_master(self) -> bool:
        return self.kind is PrincipalKind.MASTER

    def require_read(self, account_id: str, *, member_id: str | None = None, missing: NotFound | None = None) -> None:
        """Refuse a caller who may not read this account's records, or, given `member_id`, that member's.

        Owners, admins and billing read the whole account; a `member` only what `member_id` says is its own.

        Raises:
            NotFound: the caller is not in the account: `missing` (the error an unknown id of the thing asked for
                gets), or `account_not_found`.
            PermissionDenied: the caller is in the account but may not read this (403).
        """
        if self._in_account(account_id, missing) in _READS_ACCOUNT:
            return
        if member_id is None or member_id != self.member_id:
            raise PermissionDenied("a member's token sees only its own member, keys and usage", code="not_yours")

    def require_manage(self, account_id: str, *, holder: str | None = None, missing: NotFound | None = None) -> None:
        """Refuse a caller who may not change things in this account (404 outside it, as `require_read`; 403 in it).

        Owners and admins may; given `holder` (the member a key or token belongs to), that member may too.
        """
        role = self._in_account(account_id, missing)
        if role in _MANAGES_ACCOUNT or (holder is not None and holder == self.member_id):
            return
        raise PermissionDenied(f"a {role} token may not change this; ask an owner or admin", code="not_admin")

    def require_usage(
        self, account_id: str, *, key_id: str | None, member_id: str | None, missing: NotFound | None = None
    ) -> None:
        """Refuse a caller who may not read the usage of this key, or of a request made with it (as `require_read`)."""
        if self.kind is PrincipalKind.KEY and key_id is not None and key_id == self.key_id:
            return
        self.require_read(account_id, member_id=member_id, missing=missing)

    def _in_account(self, account_id: str, missing: NotFound | None) -> Role | None:
        """The caller's role in the account (`owner` for the master key); 404 for anyone not in it, 403 for a key."""
        if self.is_master:
            return Role.OWNER
        if self.account_id != account_id:
            raise missing or NotFound.of("account", account_id)
        if self.kind is PrincipalKind.KEY:
            message = "a virtual key calls models and reads its own usage; use a member token for admin work"
            raise PermissionDenied(message, code="proxy_key")
        return self.role
