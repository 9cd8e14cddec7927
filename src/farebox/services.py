"""The services the admin and ingestion routes use, built once by `create_app` and reached through `services()`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import HTTPConnection

from farebox.alerts.store import AlertStore
from farebox.core.credits import CreditRate
from farebox.ledger.adjustments import Adjustments
from farebox.ledger.base import Ledger
from farebox.ledger.credits import Credits
from farebox.ledger.directory import Directory
from farebox.ledger.member_tokens import MemberTokens
from farebox.ledger.reader import LedgerReader
from farebox.ledger.webhooks import WebhookEndpoints
from farebox.metering import Budgets, Meter
from farebox.prices import PriceBook

__all__ = ["IngestLimits", "Services", "services"]


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
class Services:
    """Everything a handler may need, each built once per app."""

    ledger: Ledger
    reader: LedgerReader
    """Typed, read-only rows of the ledger's usage events and rollups."""
    prices: PriceBook
    directory: Directory
    tokens: MemberTokens
    """Members' personal API tokens (the admin API's credential besides the master key)."""
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


def services(connection: HTTPConnection) -> Services:
    """The app's services, from a request (or any HTTP connection) the app is serving."""
    found: Services = connection.app.state.services
    return found
