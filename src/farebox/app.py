"""The composition root: `create_app()` builds the ledger, price book, gateway and routes, and wires them."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import anyio
from fastapi import Depends, FastAPI, Request, Response
from pydantic import BaseModel
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from farebox import __version__, dashboard
from farebox.alerts.actions import Alerter
from farebox.alerts.scanner import AnomalyScanner
from farebox.alerts.store import AlertStore
from farebox.alerts.watcher import CapWatcher
from farebox.analytics import (
    Engine,
    admin_billing,
    admin_budgets,
    admin_export,
    admin_forecast,
    admin_health,
    admin_keys,
    admin_live,
    admin_metrics,
    admin_patterns,
    admin_performance,
    admin_providers,
    admin_reports,
    admin_reprices,
    admin_savings,
    admin_usage,
    key_usage,
    month_usage,
    scheduled_reports,
)
from farebox.analytics import routes as analytics_routes
from farebox.analytics.query_times import QueryTimes
from farebox.analytics.report_runner import ReportRunner
from farebox.api import (
    admin,
    alerts,
    analytics_webhooks,
    audit,
    budget_alerts,
    events,
    privacy,
    requests,
    sessions,
    voids,
    webhooks,
    workloads,
)
from farebox.api import credits as credit_routes
from farebox.api.audit import AuditMiddleware, AuditRetention
from farebox.api.body_limit import BodySizeLimit
from farebox.api.errors import install_error_handlers, unexpected_error
from farebox.api.openapi import describe_errors
from farebox.api.query import single_values
from farebox.core.clock import utcnow
from farebox.core.credits import CreditRate
from farebox.core.money import to_nano
from farebox.core.passwords import PasswordHashes
from farebox.core.sealing import SecretBox
from farebox.core.server_secret import (
    DASHBOARD_SESSIONS,
    MOCK_KEY,
    PROMPT_PREFIXES,
    SIGN_IN_FAILURES,
    WEBHOOK_SECRETS,
    derive_key,
)
from farebox.errors import AuthenticationFailed
from farebox.gateway.bounds import EmbeddingBounds
from farebox.gateway.endpoints import proxy_routes
from farebox.gateway.model_routes import routing_table
from farebox.gateway.native_errors import native_error_shape
from farebox.gateway.prompt_prefix import PromptPrefixes
from farebox.gateway.providers.mock import create_mock_app
from farebox.gateway.tokens import Tokenizer
from farebox.gateway.upstream import Upstream, default_mock_base_url
from farebox.gateway.wiring import Gateway
from farebox.ledger.adjustments import Adjustments
from farebox.ledger.audit import AuditLog
from farebox.ledger.base import Ledger
from farebox.ledger.credits import Credits
from farebox.ledger.directory import Directory
from farebox.ledger.health import LedgerHealth
from farebox.ledger.leases import Leases
from farebox.ledger.member_passwords import MemberPasswords
from farebox.ledger.member_tokens import MemberTokens
from farebox.ledger.outbox import backoff_delays
from farebox.ledger.reader import LedgerReader
from farebox.ledger.reprices import Reprices
from farebox.ledger.retention import EventRetention
from farebox.ledger.scheduled_reports import ScheduledReports
from farebox.ledger.sessions import DashboardSessions
from farebox.ledger.sign_in_failures import SignInFailures
from farebox.ledger.webhooks import WebhookEndpoints
from farebox.ledger.workloads import Workloads
from farebox.metering import Budgets, CounterStore, KeyCache, LocalCounters, Meter, UsageEvents, VoidWatch
from farebox.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from farebox.metrics import Metrics
from farebox.prices import PriceBook
from farebox.prices.alternatives import Alternatives
from farebox.services import DashboardAuth, IngestLimits, Services
from farebox.settings import Settings, provider_credentials, resolve_master_key, resolve_secret_key
from farebox.webhooks.feed import UsageFeed
from farebox.webhooks.sender import Sender, SmtpConfig

if TYPE_CHECKING:
    from farebox.metering.fallback import FallbackCounters

__all__ = ["Health", "Readiness", "create_app"]

_DRAIN_SECONDS = 10.0

Worker = Callable[[], Coroutine[Any, Any, None]]


def create_app(
    settings: Settings,
    *,
    ledger: Ledger | None = None,
    prices: PriceBook | None = None,
    master_key: str | None = None,
    secret_key: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    password_hashes: PasswordHashes | None = None,
) -> FastAPI:
    """Build the farebox ASGI app. Tests pass their own ledger, price book, master key, server secret, clock
    (the directory's and the voids') or password hashing (cheaper argon2 parameters).

    On start-up the app seals the webhook signing secrets still stored in plain text, and refuses to start
    when the stored ones are sealed under another server secret (`core.sealing.WrongServerSecret`).

    Raises:
        SettingsError: a model's provider credential variable is not set, or a PostgreSQL ledger has no
            server secret.
    """
    ledger = ledger or Ledger(settings.database_url)
    prices = prices or PriceBook.load(settings.price_overrides)
    master_key = master_key or resolve_master_key(settings)[0]
    server_secret = secret_key or resolve_secret_key(settings)[0]
    box = SecretBox.derived(server_secret, purpose=WEBHOOK_SECRETS)
    endpoints = WebhookEndpoints(ledger, box)
    routes = routing_table(settings.models)
    # The mock is served only when a route uses it, and only to this process's own upstream requests.
    mock_key = (
        derive_key(server_secret, purpose=MOCK_KEY).hex()
        if any(route.on_builtin_mock for route in routes.values())
        else None
    )
    directory = Directory(ledger, clock=clock)
    keys = KeyCache(directory)
    directory.on_change.append(keys.clear)
    shared = _shared_counters(settings, ledger)
    counters: CounterStore = shared or LocalCounters(ledger)
    rate = CreditRate(settings.credits_per_usd)
    credits = Credits(directory)
    budgets = Budgets(directory, counters, credits=credits, rate=rate)
    adjustments = Adjustments(ledger, clock=clock)
    adjustments.on_void.append(budgets.reload)
    reprices = Reprices(ledger, prices, clock=clock, retention_days=settings.raw_events_retention_days)
    reprices.on_reprice.append(budgets.reload)
    meter = Meter(ledger, UsageEvents(prices), keys=keys, budgets=budgets)
    upstream = Upstream(timeout=settings.upstream_timeout_seconds)
    gateway = Gateway(
        routes=routes,
        credentials=provider_credentials(tuple(routes.values())),
        upstream=upstream,
        meter=meter,
        tokenizer=Tokenizer(),
        mock_base_url=default_mock_base_url(settings.port),
        mock_key=mock_key,
        default_output_tokens=settings.budget_default_output_tokens,
        embeddings=EmbeddingBounds(
            max_inputs=settings.embeddings_max_inputs,
            max_input_tokens=settings.embeddings_max_input_tokens,
            max_request_tokens=settings.embeddings_max_request_tokens,
        ),
        credit_rate=rate,
        prompt_prefixes=PromptPrefixes(derive_key(server_secret, purpose=PROMPT_PREFIXES)),
    )

    metrics = Metrics()
    ledger.on_committed(metrics.committed)
    budgets.on_refused.append(metrics.refused)
    if shared is not None:
        shared.redis.on_call.append(metrics.redis_call)
    health = LedgerHealth(ledger)
    audit_log = AuditLog(ledger)
    workers = [
        *_notifications(settings, ledger, directory, budgets, box, clock),
        VoidWatch(adjustments, counters, budgets=budgets).run,
        *([shared.run] if shared is not None else []),
        AuditRetention(audit_log, days=settings.audit_retention_days, clock=clock).run,
        EventRetention(ledger, days=settings.raw_events_retention_days, leases=Leases(ledger), clock=clock).run,
    ]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await ledger.start()
        await upstream.start()
        try:
            await endpoints.seal_stored_secrets()
            async with anyio.create_task_group() as tasks:
                for run in workers:
                    tasks.start_soon(run)
                try:
                    yield
                finally:
                    tasks.cancel_scope.cancel()
        finally:
            # A shutdown past its grace period cancelled the requests still running: let them record first.
            await meter.in_flight.drained(timeout=_DRAIN_SECONDS)
            await upstream.aclose()
            if shared is not None:
                await shared.aclose()
            await ledger.close()
            metrics.close()

    proxied = proxy_routes(gateway)
    app = _Farebox(
        title="farebox",
        version=__version__,
        lifespan=lifespan,
        shortcuts=_shortcuts(proxied, max_body_bytes=settings.max_body_bytes),
    )
    app.state.query_times = QueryTimes()
    app.state.services = Services(
        ledger=ledger,
        reader=LedgerReader(ledger),
        prices=prices,
        alternatives=Alternatives.load(prices),
        directory=directory,
        tokens=MemberTokens(directory),
        passwords=MemberPasswords(directory, hashes=password_hashes),
        workloads=Workloads(directory),
        adjustments=adjustments,
        reprices=reprices,
        credits=credits,
        credit_rate=rate,
        meter=meter,
        budgets=budgets,
        webhooks=endpoints,
        alerts=AlertStore(ledger, box),
        master_key=master_key,
        audit=audit_log,
        health=health,
        allow_private_webhook_urls=settings.allow_private_webhook_urls,
        smtp_configured=settings.smtp_host is not None,
        ingest_limits=IngestLimits(
            max_age=timedelta(days=min(settings.ingest_max_age_days, settings.raw_events_retention_days or 36_500)),
            max_future=timedelta(seconds=settings.ingest_max_future_seconds),
            max_tokens=settings.ingest_max_tokens,
            max_cost_nano=to_nano(settings.ingest_max_cost_usd),
        ),
        dashboard=_dashboard_auth(settings, ledger, server_secret, clock),
    )
    install_error_handlers(app)
    app.add_exception_handler(sessions.SignInRequired, sessions.sign_in_required)
    # The proxy routes come first: they are matched on every proxied request.
    app.router.routes[0:0] = proxied
    routers = (
        admin,
        events,
        admin_budgets,
        budget_alerts,
        credit_routes,
        alerts,
        webhooks,
        requests,
        voids,
        analytics_routes,
        key_usage,
        month_usage,
        admin_usage,
        admin_providers,
        admin_keys,
        admin_patterns,
        admin_forecast,
        admin_live,
        admin_savings,
        admin_performance,
        admin_export,
        admin_billing,
        admin_reports,
        admin_reprices,
        scheduled_reports,
        admin_metrics,
        admin_health,
        workloads,
        sessions,
        audit,
        privacy,
        analytics_webhooks,
    )
    for api in routers:
        app.include_router(api.router, dependencies=[Depends(single_values)])
    app.include_router(dashboard.router)
    app.mount(dashboard.STATIC_PATH, dashboard.static_files(), name="dashboard-static")
    if mock_key is not None:
        app.mount("/mock", create_mock_app(prefix="", latency_ms=settings.mock_latency_ms, key=mock_key))

    @app.get("/healthz", summary="Health check", tags=["operations"])
    async def healthz() -> Health:
        """No credential. For load balancers and probes."""
        return Health(status="ok", version=__version__)

    async def backlog() -> tuple[int, int]:
        waiting = await health.backlog()
        return waiting.pending, waiting.retrying

    metrics_token = None if settings.metrics_token is None else settings.metrics_token.get_secret_value()

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        """Prometheus's text format (docs/deploy.md). With `metrics_token` set, only for `Bearer <token>`."""
        if metrics_token is not None and not hmac.compare_digest(
            request.headers.get("authorization", "").encode(), f"Bearer {metrics_token}".encode()
        ):
            raise AuthenticationFailed("GET /metrics needs the metrics token (metrics_token)", code="invalid_api_key")
        text = await metrics.exposition(backlog=backlog, shared=shared)
        return Response(text, media_type=METRICS_CONTENT_TYPE)

    @app.get(
        "/readyz",
        summary="Readiness check",
        tags=["operations"],
        responses={503: {"model": Readiness, "description": "The ledger cannot be reached: nothing can be recorded."}},
    )
    async def readyz(response: Response) -> Readiness:
        """No credential. Whether this process can serve: its ledger answers and its writer runs (else `503`,
        `unready`), and where its shared spend counters hold reservations: `redis`, or (`200`, `degraded`) the
        `ledger` while Redis cannot be reached, or `switching` between the two for a second (when requests under a
        cap or balance are refused with `503 counters_unavailable`)."""
        ledger_ok = ledger.writer_running and await ledger.ping()
        counters: Literal["in_process", "redis", "ledger", "switching"] = "in_process"
        if shared is not None:
            counters = "ledger" if shared.on_ledger else "redis" if shared.ready else "switching"
        status: Literal["ready", "degraded", "unready"] = "ready"
        if not ledger_ok:
            status = "unready"
            response.status_code = 503
        elif counters in ("ledger", "switching"):
            status = "degraded"
        return Readiness(status=status, ledger="ok" if ledger_ok else "unreachable", counters=counters)

    app.add_middleware(AuditMiddleware, audit=audit_log, clock=clock, trust_proxy_headers=settings.trust_proxy_headers)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, shape=native_error_shape)
    return app


class Health(BaseModel):
    """`GET /healthz`: the server answers, and which version it runs."""

    status: Literal["ok"]
    version: str


class Readiness(BaseModel):
    """`GET /readyz`: whether this process can serve, and what it can reach."""

    status: Literal["ready", "degraded", "unready"]
    ledger: Literal["ok", "unreachable"]
    counters: Literal["in_process", "redis", "ledger", "switching"]
    """Where reservations on the spend counters are held: this process, Redis, the ledger (while Redis cannot be
    reached), or a switch between the two under way."""


class _Farebox(FastAPI):
    """The app, with a short way in for proxied requests.

    A request to a proxy route with a fixed path goes straight to its endpoint, behind only what the
    framework would have run for it: the 500 handler and the body-size limit. FastAPI's middleware stack
    (exception, telemetry, exit-stack and body-limit layers) and the router cost about 8% of the gateway's
    CPU per request (`bench/proxy.py`). Everything else, Gemini's `{model}` paths included, goes through
    the framework as before.
    """

    def __init__(self, *, shortcuts: Mapping[str, ASGIApp], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shortcuts = shortcuts

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document, with every error each route can answer (`farebox.api.openapi`)."""
        if not self.openapi_schema:
            self.openapi_schema = describe_errors(super().openapi())
        return self.openapi_schema

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._shortcuts.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _shortcuts(routes: Sequence[BaseRoute], *, max_body_bytes: int) -> dict[str, ASGIApp]:
    """The endpoints of the POST routes without path parameters, by path, wrapped as the app wraps them."""
    return {
        route.path: ServerErrorMiddleware(
            BodySizeLimit(route.app, max_bytes=max_body_bytes, shape=native_error_shape), handler=unexpected_error
        )
        for route in routes
        if isinstance(route, Route) and route.methods == {"POST"} and not route.param_convertors
    }


def _dashboard_auth(
    settings: Settings, ledger: Ledger, server_secret: str, clock: Callable[[], datetime]
) -> DashboardAuth:
    """The dashboard's sessions and sign-in throttles, as the `dashboard_*` settings say."""
    key = derive_key(server_secret, purpose=DASHBOARD_SESSIONS)
    failures_key = derive_key(server_secret, purpose=SIGN_IN_FAILURES)
    lifetime = timedelta(seconds=settings.dashboard_session_lifetime_seconds)
    window = timedelta(seconds=settings.dashboard_sign_in_window_seconds)
    return DashboardAuth(
        sessions=DashboardSessions(
            ledger, lifetime=lifetime, idle=timedelta(seconds=settings.dashboard_session_idle_seconds), clock=clock
        ),
        by_email=SignInFailures(
            ledger, throttle="email", limit=settings.dashboard_sign_in_max_failures, window=window, key=failures_key
        ),
        by_address=SignInFailures(
            ledger,
            throttle="address",
            limit=settings.dashboard_sign_in_max_failures_per_address,
            window=window,
            key=failures_key,
        ),
        key=key,
        lifetime=lifetime,
        trust_proxy_headers=settings.trust_proxy_headers,
        clock=clock,
    )


def _shared_counters(settings: Settings, ledger: Ledger) -> FallbackCounters | None:
    """The spend counters every process of the ledger shares through Redis (and the ledger while Redis cannot be
    reached), when `redis_url` is set."""
    if settings.redis_url is None:
        return None
    # Imported here: a server on its own keeps the Redis client out of its memory.
    from farebox.ledger.counter_holds import CounterHolds
    from farebox.metering.fallback import FallbackCounters
    from farebox.metering.redis_counters import RedisCounters

    return FallbackCounters(RedisCounters(ledger, settings.redis_url.get_secret_value()), CounterHolds(ledger))


def _notifications(
    settings: Settings,
    ledger: Ledger,
    directory: Directory,
    budgets: Budgets,
    box: SecretBox,
    clock: Callable[[], datetime],
) -> list[Worker]:
    """The background workers of alerts, webhooks and scheduled reports: cap watcher, anomaly scanner, usage feed,
    report runner, sender."""
    smtp = None
    if settings.smtp_host is not None and settings.smtp_from is not None:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        smtp = SmtpConfig(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            username=settings.smtp_username,
            password=password,
            security=settings.smtp_security,
        )
    sender = Sender(
        ledger,
        box,
        timeout=settings.webhook_timeout_seconds,
        delays_us=backoff_delays(
            attempts=settings.webhook_max_attempts,
            base_seconds=settings.webhook_retry_base_seconds,
            max_seconds=settings.webhook_retry_max_seconds,
        ),
        allow_private=settings.allow_private_webhook_urls,
        smtp=smtp,
        pagerduty_url=settings.pagerduty_url,
        retention_days=settings.webhook_log_retention_days,
    )
    alerter = Alerter(ledger, directory)
    alerter.on_fired.append(sender.poke)
    watcher = CapWatcher(ledger, alerter, rate=budgets.rate)
    budgets.on_refused.append(watcher.refused)
    feed = UsageFeed(ledger)
    feed.on_enqueued.append(sender.poke)
    scanner = AnomalyScanner(ledger, alerter, interval=settings.anomaly_scan_interval_seconds, leases=Leases(ledger))
    reports = ReportRunner(
        ScheduledReports(ledger),
        directory,
        Engine(LedgerReader(ledger)),
        WebhookEndpoints(ledger, box),
        interval=settings.scheduled_reports_interval_seconds,
        clock=clock,
    )
    reports.on_enqueued.append(sender.poke)
    return [watcher.run, scanner.run, feed.run, reports.run, sender.run]
