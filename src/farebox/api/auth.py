"""Who is calling the admin and ingestion API, and what that credential may do.

Three credentials, one job each:

| credential               | may                                                                       |
| ------------------------ | ------------------------------------------------------------------------- |
| master key               | everything, in every account (the operator)                               |
| member token `fbx_mt_…`  | its member's role, in its member's account:                               |
|   `owner`                | read and change everything in the account                                 |
|   `admin`                | the same, except owners and owners' keys and tokens                       |
|   `billing`              | read everything in the account, change nothing (but its own keys/tokens)  |
|   `member`               | read its own member, keys and their usage; rotate or revoke its own keys; |
|                          | manage its own tokens                                                     |
| virtual key `fbx_sk_…`   | call models (the proxy) and read its own usage: its budget, its requests  |

A credential of another account is refused with 403 `wrong_account`; a virtual key on any other admin
route with 403 `proxy_key`; a role short of the route's need with 403 `not_admin` or `not_yours`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from farebox.core.keys import TOKEN_PREFIX, secret_from_headers
from farebox.core.owners import Role
from farebox.errors import PermissionDenied
from farebox.services import services

__all__ = ["Principal", "PrincipalKind", "authenticate"]

# Declared so that the OpenAPI document names the two ways to send a credential; the secret itself is read by
# `secret_from_headers`, the one reading the proxy shares.
_BEARER = HTTPBearer(
    scheme_name="bearer",
    description="The master key, a member's API token (`fbx_mt_...`), or a virtual key (`fbx_sk_...`) for its own "
    "usage.",
    auto_error=False,
)
_API_KEY = APIKeyHeader(
    name="x-api-key",
    scheme_name="apiKey",
    description="The same credential, as the Anthropic SDK sends it.",
    auto_error=False,
)
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

    def require_read(self, account_id: str, *, member_id: str | None = None) -> None:
        """Refuse (403) a caller who may not read this account's records, or, given `member_id`, that member's.

        Owners, admins and billing read the whole account; a `member` only what `member_id` says is its own.
        """
        if self._in_account(account_id) in _READS_ACCOUNT:
            return
        if member_id is None or member_id != self.member_id:
            raise PermissionDenied("a member's token sees only its own member, keys and usage", code="not_yours")

    def require_manage(self, account_id: str, *, holder: str | None = None) -> None:
        """Refuse (403) a caller who may not change things in this account.

        Owners and admins may; given `holder` (the member a key or token belongs to), that member may too.
        """
        role = self._in_account(account_id)
        if role in _MANAGES_ACCOUNT or (holder is not None and holder == self.member_id):
            return
        raise PermissionDenied(f"a {role} token may not change this; ask an owner or admin", code="not_admin")

    def require_usage(self, account_id: str, *, key_id: str | None, member_id: str | None) -> None:
        """Refuse (403) a caller who may not read the usage of this key (or a request made with it)."""
        if self.kind is PrincipalKind.KEY and key_id is not None and key_id == self.key_id:
            return
        self.require_read(account_id, member_id=member_id)

    def _in_account(self, account_id: str) -> Role | None:
        """The caller's role in the account (None for the master key), or 403 for anyone not in it."""
        if self.is_master:
            return Role.OWNER
        if self.kind is PrincipalKind.KEY:
            message = "a virtual key calls models and reads its own usage; use a member token for admin work"
            raise PermissionDenied(message, code="proxy_key")
        if self.account_id != account_id:
            raise PermissionDenied("this token may act only in its own account", code="wrong_account")
        return self.role


async def authenticate(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    _api_key: Annotated[str | None, Security(_API_KEY)],
) -> Principal:
    """FastAPI dependency: the caller, by the master key, a member token or a virtual key.

    Raises:
        AuthenticationFailed: no credential, or an unknown, revoked or expired one (401).
    """
    secret = secret_from_headers(request.headers)
    found = services(request)
    if hmac.compare_digest(secret.encode(), found.master_key.encode()):
        return Principal(kind=PrincipalKind.MASTER)
    if secret.startswith(TOKEN_PREFIX):
        _token, member = await found.tokens.authenticate(secret)
        return Principal(kind=PrincipalKind.MEMBER, account_id=member.account_id, member_id=member.id, role=member.role)
    key = await found.directory.authenticate(secret)
    return Principal(kind=PrincipalKind.KEY, account_id=key.account_id, member_id=key.member_id, key_id=key.id)
