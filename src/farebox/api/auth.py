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

from fastapi import Request

from farebox.core.credentials import Principal, PrincipalKind
from farebox.core.keys import TOKEN_PREFIX, secret_from_headers
from farebox.ledger.actors import Actor
from farebox.services import services

__all__ = ["Principal", "PrincipalKind", "actor_of", "authenticate"]


async def authenticate(request: Request) -> Principal:
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


def actor_of(principal: Principal) -> Actor:
    """Who an audited change (a void, a top-up) is recorded as made by: the master key, or the calling member."""
    return Actor("master") if principal.is_master else Actor("member", principal.member_id)
