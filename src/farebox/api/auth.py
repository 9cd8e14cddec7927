"""Who is calling the admin and ingestion API: the master key, or an owner/admin member of one account.

A member authenticates with one of its own virtual keys; its role decides what it may do, and it acts
only inside its own account.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum

from fastapi import Request

from farebox.core.keys import secret_from_headers
from farebox.core.owners import Role
from farebox.errors import PermissionDenied
from farebox.services import services

__all__ = ["Principal", "PrincipalKind", "require_admin"]


class PrincipalKind(StrEnum):
    """Who holds the credential: the operator's master key, or a member acting through one of its keys."""

    MASTER = "master"
    MEMBER = "member"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller. `account_id` is None for the master key (every account)."""

    kind: PrincipalKind
    account_id: str | None = None
    member_id: str | None = None
    role: Role | None = None

    @property
    def is_master(self) -> bool:
        return self.kind is PrincipalKind.MASTER

    def require_account(self, account_id: str) -> None:
        """Refuse (403) a member acting on an account other than its own."""
        if not self.is_master and self.account_id != account_id:
            raise PermissionDenied("this key may act only in its own account", code="wrong_account")


async def require_admin(request: Request) -> Principal:
    """FastAPI dependency: the master key, or a virtual key whose member is an owner or admin.

    Raises:
        AuthenticationFailed: no key, a wrong master key, or an unknown, revoked or expired key (401).
        PermissionDenied: a valid key whose member is not an owner or admin (403).
    """
    token = secret_from_headers(request.headers)
    found = services(request)
    master_key = found.master_key
    if hmac.compare_digest(token.encode(), master_key.encode()):
        return Principal(kind=PrincipalKind.MASTER)
    directory = found.directory
    key = await directory.authenticate(token)
    member = await directory.get_member(key.member_id) if key.member_id else None
    if member is None or member.role not in ("owner", "admin"):
        raise PermissionDenied("this key's member is not an owner or admin of its account", code="not_admin")
    return Principal(kind=PrincipalKind.MEMBER, account_id=key.account_id, member_id=member.id, role=member.role)
