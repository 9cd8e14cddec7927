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
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from farebox.alerts.store import AlertStore
from farebox.core.credentials import Principal, PrincipalKind
from farebox.core.credits import CreditRate
from farebox.core.keys import TOKEN_PREFIX, secret_from_headers
from farebox.core.throttle import Throttle
from farebox.ledger.actors import Actor
from farebox.ledger.adjustments import Adjustments
from farebox.ledger.base import Ledger
from farebox.ledger.credits import Credits
from farebox.ledger.directory import Directory
from farebox.ledger.member_passwords import MemberPasswords
from farebox.ledger.member_tokens import MemberTokens
from farebox.ledger.reader import LedgerReader
from farebox.ledger.sessions import DashboardSessions
from farebox.ledger.webhooks import WebhookEndpoints
from farebox.ledger.workloads import Workloads
from farebox.metering import Budgets, Meter
from farebox.prices import PriceBook

__all__ = ["DashboardAuth", "IngestLimits", "Services", "actor_of", "authenticate", "services"]


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
    by_email: Throttle
    """Failed sign-ins per e-mail address (and the master key's)."""
    by_address: Throttle
    """Failed sign-ins per client address."""
    key: bytes
    """Derived from the server secret (`core.server_secret.DASHBOARD_SESSIONS`): CSRF tokens are HMACs under it."""
    lifetime: timedelta
    """A session's absolute lifetime: the cookie's `Max-Age`."""
    trust_proxy_headers: bool
    """Whether `X-Forwarded-Proto` and `X-Forwarded-For` say the scheme and the client's address."""
    clock: Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a handler may need, each built once per app."""

    ledger: Ledger
    reader: LedgerReader
    """Typed, read-only rows of the ledger's usage events and rollups."""
    prices: PriceBook
    directory: Directory
    tokens: MemberTokens
    """Members' personal API tokens (the admin API's credential besides the master key)."""
    passwords: MemberPasswords
    """Members' passwords (argon2id hashes), for the dashboard's sign-in."""
    workloads: Workloads
    """Accounts' agents and plain VMs, named (`GET /api/usage` shows their usage by name)."""
    adjustments: Adjustments
    """Voids of ingested usage events."""
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
