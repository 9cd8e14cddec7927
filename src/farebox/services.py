"""The services the HTTP routes use, built once by `create_app` and reached through `services()`; and
`authenticate`, the dependency that says who is calling.

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

What each may do is `farebox.core.credentials.Principal`'s `require_*` methods: a credential of another
account finds nothing there (404, as an unknown id: its records' existence is not told); a virtual key on any
other admin route is refused with 403 `proxy_key`;
a role short of the route's need with 403 `not_admin` or `not_yours`.

The dashboard's pages call the same API as the signed-in member or operator: a request that carries no key
header (`Authorization`, `x-api-key`) but the dashboard's session cookie (`farebox.api.sessions`) acts with the
session's credential, and an unsafe one (POST, PUT, PATCH, DELETE) only with the session's CSRF token in the
`X-CSRF-Token` header. A key header always wins over the cookie.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from farebox.alerts.store import AlertStore
from farebox.core.credentials import Principal, PrincipalKind
from farebox.core.credits import CreditRate
from farebox.core.keys import TOKEN_PREFIX, secret_from_headers
from farebox.errors import AuthenticationFailed, PermissionDenied
from farebox.ledger.actors import Actor
from farebox.ledger.adjustments import Adjustments
from farebox.ledger.audit import AuditLog
from farebox.ledger.base import Ledger
from farebox.ledger.credits import Credits
from farebox.ledger.directory import Directory
from farebox.ledger.health import LedgerHealth
from farebox.ledger.member_passwords import MemberPasswords
from farebox.ledger.member_tokens import MemberTokens
from farebox.ledger.reader import LedgerReader
from farebox.ledger.reprices import Reprices
from farebox.ledger.sessions import DashboardSessions
from farebox.ledger.sign_in_failures import SignInFailures
from farebox.ledger.webhooks import WebhookEndpoints
from farebox.ledger.workloads import Workloads
from farebox.metering import Budgets, Meter
from farebox.prices import PriceBook
from farebox.prices.alternatives import Alternatives

__all__ = [
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "UNSAFE_METHODS",
    "DashboardAuth",
    "IngestLimits",
    "Services",
    "actor_of",
    "authenticate",
    "same",
    "services",
]

SESSION_COOKIE = "farebox_session"
"""The dashboard's session cookie: a random secret naming a session of `ledger.sessions`."""
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def same(given: str, expected: str) -> bool:
    """Constant-time equality of two strings (any characters)."""
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """What one event posted to `POST /api/events` may say (the `ingest_*` settings); beyond it: 422."""

    max_age: timedelta
    max_future: timedelta
    max_tokens: int
    """In any one count: input, output, cached, cache-write and reasoning tokens, characters."""
    max_cost_nano: int
    """Per event, the cost given (`cost_usd`) or priced."""


@dataclass(frozen=True, slots=True)
class DashboardAuth:
    """What the dashboard's sign-in and its sessions need (`farebox.api.sessions`)."""

    sessions: DashboardSessions
    by_email: SignInFailures
    """Failed sign-ins per e-mail address (and the master key's)."""
    by_address: SignInFailures
    """Failed sign-ins per client address."""
    key: bytes
    """Derived from the server secret (`core.server_secret.DASHBOARD_SESSIONS`): CSRF tokens are HMACs under it."""
    lifetime: timedelta
    """A session's absolute lifetime: the cookie's `Max-Age`."""
    trust_proxy_headers: bool
    """Whether `X-Forwarded-Proto` and `X-Forwarded-For` say the scheme and the client's address."""
    clock: Callable[[], datetime]

    def mac(self, purpose: str, value: str) -> str:
        """An HMAC of `value` for one purpose (`csrf`, `sign-in`, `master`) under the sessions' key."""
        return hmac.new(self.key, f"{purpose}:{value}".encode(), sha256).hexdigest()

    def csrf(self, secret: str) -> str:
        """The CSRF token of the session named by `secret`: derived, never stored."""
        return self.mac("csrf", secret)

    async def caller(self, secret: str, *, master_key: str) -> Principal | None:
        """Who the session named by `secret` signs in as; None for an unknown, signed-out, expired or idle session,
        or an operator's begun under another master key (which it ends)."""
        session = await self.sessions.find(secret) if secret else None
        if session is None:
            return None
        if session.is_master:
            if not same(session.master_check or "", self.mac("master", master_key)):
                await self.sessions.end(secret)
                return None
            return Principal(kind=PrincipalKind.MASTER)
        return Principal(
            kind=PrincipalKind.MEMBER, account_id=session.account_id, member_id=session.member_id, role=session.role
        )


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a handler may need, each built once per app."""

    ledger: Ledger
    reader: LedgerReader
    """Typed, read-only rows of the ledger's usage events and rollups."""
    prices: PriceBook
    alternatives: Alternatives
    """Cheaper ways to buy the same tokens (model families, other providers, batch APIs), priced by `prices`."""
    directory: Directory
    tokens: MemberTokens
    """Members' personal API tokens (the admin API's credential besides the master key)."""
    passwords: MemberPasswords
    """Members' passwords (argon2id hashes), for the dashboard's sign-in."""
    workloads: Workloads
    """Accounts' agents and plain VMs, named (`GET /api/usage` shows their usage by name)."""
    adjustments: Adjustments
    """Voids of ingested usage events."""
    reprices: Reprices
    """Recorded costs moved to today's price book, as adjustments."""
    credits: Credits
    """Accounts' prepaid credits: top-ups and balances."""
    credit_rate: CreditRate
    """Credits per USD (`credits_per_usd`): how balances and top-ups are shown."""
    meter: Meter
    budgets: Budgets
    webhooks: WebhookEndpoints
    alerts: AlertStore
    master_key: str
    allow_private_webhook_urls: bool
    """Whether webhook and Slack URLs may point at private, loopback or link-local addresses."""
    smtp_configured: bool
    """Whether e-mail alerts can go out (`smtp_host` is set)."""
    ingest_limits: IngestLimits
    dashboard: DashboardAuth
    """The dashboard's sign-in: sessions, failed-attempt throttles, the CSRF key."""
    audit: AuditLog
    """Who read or changed what (`farebox.api.audit` writes it)."""
    health: LedgerHealth
    """The outbox's backlog, failing deliveries, and the rollups checked against the events."""


def services(connection: HTTPConnection) -> Services:
    """The app's services, from a request (or any HTTP connection) the app is serving."""
    found: Services = connection.app.state.services
    return found


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


async def authenticate(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    _api_key: Annotated[str | None, Security(_API_KEY)],
) -> Principal:
    """FastAPI dependency: the caller, by the master key, a member token or a virtual key.

    Raises:
        AuthenticationFailed: no credential, or an unknown, revoked or expired one, or a dashboard session that has
            ended (401).
        PermissionDenied: an unsafe request in a dashboard session without its CSRF token (403 `csrf_failed`).
    """
    principal = await _caller(request, services(request))
    request.state.principal = principal  # for the audit log (`farebox.api.audit`)
    return principal


async def _caller(request: Request, found: Services) -> Principal:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is not None and "authorization" not in request.headers and "x-api-key" not in request.headers:
        return await _session_caller(request, found, cookie)
    secret = secret_from_headers(request.headers)
    if hmac.compare_digest(secret.encode(), found.master_key.encode()):
        return Principal(kind=PrincipalKind.MASTER)
    if secret.startswith(TOKEN_PREFIX):
        _token, member = await found.tokens.authenticate(secret)
        return Principal(kind=PrincipalKind.MEMBER, account_id=member.account_id, member_id=member.id, role=member.role)
    key = await found.directory.authenticate(secret)
    return Principal(kind=PrincipalKind.KEY, account_id=key.account_id, member_id=key.member_id, key_id=key.id)


async def _session_caller(request: Request, found: Services, secret: str) -> Principal:
    caller = await found.dashboard.caller(secret, master_key=found.master_key)
    if caller is None:
        raise AuthenticationFailed("the dashboard session has ended: sign in again", code="session_ended")
    if request.method in UNSAFE_METHODS and not same(
        request.headers.get(CSRF_HEADER, ""), found.dashboard.csrf(secret)
    ):
        raise PermissionDenied(
            "missing or wrong CSRF token: send the session's X-CSRF-Token header", code="csrf_failed"
        )
    return caller


def actor_of(principal: Principal) -> Actor:
    """Who an audited change (a void, a top-up) is recorded as made by: the master key, or the calling member."""
    return Actor("master") if principal.is_master else Actor("member", principal.member_id)
