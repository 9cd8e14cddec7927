"""farebox settings: read once at start-up from flags, environment, `farebox.toml` and defaults.

Precedence, highest first: explicit arguments (CLI flags), `FAREBOX_*` environment variables, the
TOML file (`farebox.toml` in the working directory, or the file named by `FAREBOX_CONFIG`), defaults.
Every setting is declared here with its type, default and help; `docs/configuration.md` lists them
all and a test keeps the two in step.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from farebox.core.alerts import DESTINATION_URL_PATTERN
from farebox.core.credits import DEFAULT_CREDITS_PER_USD
from farebox.core.pagerduty import EVENTS_URL as PAGERDUTY_EVENTS_URL
from farebox.core.server_secret import MIN_SERVER_SECRET_CHARS, generate_server_secret
from farebox.gateway.model_routes import ModelRoute, Provider
from farebox.ledger.engine import normalise_url, sqlite_path

__all__ = [
    "Settings",
    "SettingsError",
    "load_settings",
    "master_key_file",
    "provider_credentials",
    "resolve_master_key",
    "resolve_secret_key",
    "secret_key_file",
]

_PLACEHOLDER_KEYS = {"changeme", "change-me", "secret", "master", "password", "sk-1234", "test"}


class SettingsError(ValueError):
    """A missing or bad setting; the message is one line naming the setting."""


class Settings(BaseSettings):
    """All of farebox's settings. Frozen: passed down, never changed after start-up."""

    model_config = SettingsConfigDict(env_prefix="FAREBOX_", extra="forbid", frozen=True)

    database_url: str = Field("sqlite:///farebox.db", description="Ledger database: sqlite:///PATH or postgresql://...")
    redis_url: SecretStr | None = Field(
        None,
        description="Redis that several gateway processes of one PostgreSQL ledger share their spend counters "
        "through (redis://, rediss:// or unix://). Unset: the counters live in this process.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token `GET /metrics` requires (a Prometheus scrape's `authorization`). Unset: /metrics "
        "answers anyone who reaches it.",
    )
    master_key: SecretStr | None = Field(
        None, description="Admin master key. Generated once and kept beside the SQLite ledger when unset."
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Server secret that the keys of secrets at rest (webhook signing secrets) are derived from. "
        "Generated once and kept beside the SQLite ledger when unset; required with PostgreSQL.",
    )
    host: str = Field("127.0.0.1", description="Address `farebox serve` binds to.")
    port: int = Field(4000, ge=1, le=65535, description="Port `farebox serve` listens on.")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Gateway processes `farebox serve` runs on its port; more than one needs a PostgreSQL ledger "
        "and redis_url.",
    )
    price_overrides: Path | None = Field(
        None, description="TOML file of negotiated rates, custom models and non-LLM meters."
    )
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest request body accepted; larger bodies get 413."
    )
    embeddings_max_inputs: int = Field(
        2048, ge=1, le=1_000_000, description="Most inputs one embeddings request may embed; more: 400."
    )
    embeddings_max_input_tokens: int = Field(
        8192, ge=1, le=10_000_000, description="Most tokens one input of an embeddings request may have; more: 400."
    )
    embeddings_max_request_tokens: int = Field(
        300_000, ge=1, le=100_000_000, description="Most tokens one embeddings request may have in all; more: 400."
    )
    environment: Literal["dev", "prod"] = Field("dev", description="`prod` refuses placeholder secrets.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Server log level.")
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Server log lines: text, or one JSON object a line (time, level, logger, message, request_id).",
    )
    models: tuple[ModelRoute, ...] = Field(
        (), description="The routing table, one `[[models]]` entry per model; empty: the default mock models."
    )
    upstream_timeout_seconds: float = Field(
        600.0, gt=0, le=3600, description="Longest wait for an upstream's connection, or for its next bytes; then 504."
    )
    shutdown_grace_seconds: int = Field(
        30,
        ge=1,
        le=86_400,
        description="On shutdown, how long requests in flight may run on; then they are cancelled (and recorded).",
    )
    budget_default_output_tokens: int = Field(
        4096,
        ge=1,
        le=10_000_000,
        description="Output tokens a spend-cap reservation assumes for a request that sets no max_tokens.",
    )
    credits_per_usd: int = Field(
        DEFAULT_CREDITS_PER_USD,
        ge=1,
        le=1_000_000_000,
        description="Credits one USD buys: how prepaid balances, top-ups and x-credits-remaining are shown.",
    )
    allow_private_webhook_urls: bool = Field(
        False, description="Let webhook and Slack URLs reach private, loopback and link-local addresses (dev, tests)."
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="Longest wait for a webhook, Slack or SMTP delivery attempt."
    )
    webhook_max_attempts: int = Field(12, ge=1, le=50, description="Attempts before a delivery is failed for good.")
    webhook_retry_base_seconds: float = Field(
        5.0, gt=0, le=3600, description="Wait after a delivery's first failed attempt; doubled after each further one."
    )
    webhook_retry_max_seconds: float = Field(
        21_600.0, gt=0, le=86_400, description="Longest wait between two attempts of one delivery."
    )
    ingest_max_age_days: int = Field(
        3650, ge=1, le=36_500, description="Oldest event timestamp `POST /api/events` takes, in days before now."
    )
    ingest_max_future_seconds: int = Field(
        300, ge=0, le=86_400, description="Furthest an ingested event's timestamp may lie ahead of the server clock."
    )
    ingest_max_tokens: int = Field(
        10_000_000, ge=1, le=10**12, description="Most tokens (or characters) an ingested event may count in one field."
    )
    ingest_max_cost_usd: Decimal = Field(
        Decimal(10_000), gt=0, le=10**6, description="Most one ingested event may cost, given or priced, in USD."
    )
    webhook_log_retention_days: int = Field(
        30, ge=1, le=3650, description="Days a finished delivery (and its attempts) stays in the delivery log."
    )
    audit_retention_days: int = Field(
        365, ge=1, le=3650, description="Days a row of the audit log is kept (`GET /api/admin/audit`)."
    )
    raw_events_retention_days: int | None = Field(
        None,
        ge=1,
        le=36_500,
        description="Days raw events are kept, counted back to the start of that UTC month; their rollups stay. "
        "Unset: kept for good.",
    )
    anomaly_scan_interval_seconds: float = Field(
        60.0, ge=0.05, le=86_400, description="How often the anomaly detectors run over the rollups."
    )
    scheduled_reports_interval_seconds: float = Field(
        30.0, ge=0.05, le=3_600, description="How often the scheduled reports' runner looks for a due slot."
    )
    smtp_host: str | None = Field(None, description="SMTP server for e-mail alerts; unset: e-mail actions fail.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP server port.")
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        "starttls", description="`starttls` (upgrade), `tls` (implicit TLS, port 465) or `none`."
    )
    smtp_username: str | None = Field(None, description="SMTP login; unset: no authentication.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_from: str | None = Field(None, description="From address of e-mail alerts (required with smtp_host).")
    pagerduty_url: str = Field(
        PAGERDUTY_EVENTS_URL,
        pattern=DESTINATION_URL_PATTERN,
        description="Where `pagerduty` alert actions POST their Events API v2 events.",
    )
    dashboard_session_lifetime_seconds: int = Field(
        43_200, ge=60, le=2_592_000, description="How long a dashboard session lasts from its sign-in, however busy."
    )
    dashboard_session_idle_seconds: int = Field(
        7_200, ge=60, le=2_592_000, description="How long a dashboard session lasts without a request."
    )
    dashboard_sign_in_max_failures: int = Field(
        5, ge=1, le=1000, description="Failed dashboard sign-ins per e-mail address (or the master key) in the window."
    )
    dashboard_sign_in_max_failures_per_address: int = Field(
        20, ge=1, le=100_000, description="Failed dashboard sign-ins per client address in the window."
    )
    dashboard_sign_in_window_seconds: int = Field(
        900, ge=1, le=86_400, description="How long a failed dashboard sign-in counts toward its limits."
    )
    trust_proxy_headers: bool = Field(
        False,
        description="Take the scheme and client address from X-Forwarded-Proto and X-Forwarded-For "
        "(only behind a proxy that sets them).",
    )
    mock_latency_ms: float = Field(
        0.0, ge=0, le=600_000, description="Delay before the first byte of every answer of the built-in mock provider."
    )

    @model_validator(mode="after")
    def _smtp_sender(self) -> Settings:
        if self.smtp_host is not None and not self.smtp_from:
            raise ValueError("smtp_from: set the From address of e-mail alerts when smtp_host is set")
        return self

    @model_validator(mode="after")
    def _one_job_per_secret(self) -> Settings:
        if self.secret_key is not None and self.master_key is not None and self.secret_key == self.master_key:
            raise ValueError("secret_key: must not be the master key (rotating one must not change the other)")
        token = self.metrics_token
        if token is not None and token in (self.master_key, self.secret_key):
            raise ValueError("metrics_token: must be a token of its own, neither the master key nor the secret key")
        return self

    @field_validator("secret_key")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_server_secret(value.get_secret_value())
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        normalise_url(value)
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("use at least 16 characters")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("use a redis://, rediss:// or unix:// URL")
        return value

    @model_validator(mode="after")
    def _redis_with_postgresql(self) -> Settings:
        if self.redis_url is not None and normalise_url(self.database_url).get_backend_name() != "postgresql":
            raise ValueError(
                "redis_url: shared counters need a PostgreSQL ledger (database_url), which every process uses"
            )
        return self

    @model_validator(mode="after")
    def _workers_share_counters(self) -> Settings:
        if self.workers > 1 and self.redis_url is None:
            raise ValueError("workers: more than one process needs redis_url, through which they share spend counters")
        return self

    @field_validator("price_overrides")
    @classmethod
    def _overrides_exist(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file not found: {value}")
        return value

    @field_validator("models")
    @classmethod
    def _unique_models(cls, value: tuple[ModelRoute, ...]) -> tuple[ModelRoute, ...]:
        seen: set[str] = set()
        for route in value:
            if route.name in seen:
                raise ValueError(f"model {route.name!r} is declared twice")
            seen.add(route.name)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("FAREBOX_CONFIG", "farebox.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))


def load_settings(**overrides: Any) -> Settings:
    """Settings from every source, with `overrides` (CLI flags) on top; None overrides are ignored.

    Raises:
        SettingsError: one line naming the first bad or missing setting.
    """
    config = os.environ.get("FAREBOX_CONFIG")
    if config and not Path(config).is_file():
        raise SettingsError(f"FAREBOX_CONFIG: file not found: {config}")
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{config or 'farebox.toml'}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        raise SettingsError(_describe(exc.errors()[0])) from None
    key = settings.master_key.get_secret_value() if settings.master_key is not None else None
    if settings.environment == "prod" and key is not None and (key.lower() in _PLACEHOLDER_KEYS or len(key) < 16):
        raise SettingsError("setting master_key (FAREBOX_MASTER_KEY): a placeholder or short key is refused in prod")
    return settings


_OPTIONAL_CREDENTIALS = frozenset({Provider.MOCK, Provider.OPENAI_COMPATIBLE})


def provider_credentials(routes: tuple[ModelRoute, ...]) -> dict[str, str]:
    """The provider credential of each route that has one, read from the variable its `api_key_env` names.

    Read once, at start-up; the values are never logged nor sent to a client.

    Raises:
        SettingsError: a route's variable is unset or empty (optional for mock and openai_compatible).
    """
    credentials: dict[str, str] = {}
    for route in routes:
        if route.api_key_env is None:
            continue
        value = os.environ.get(route.api_key_env, "")
        if value:
            credentials[route.name] = value
        elif route.provider not in _OPTIONAL_CREDENTIALS:
            raise SettingsError(f"model {route.name!r}: environment variable {route.api_key_env} is not set")
    return credentials


def _describe(error: ErrorDetails) -> str:
    loc = [str(part) for part in error["loc"]]
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"unknown setting {'.'.join(loc)!r} (in farebox.toml or the file named by FAREBOX_CONFIG)"
    if not loc:
        return f"setting {message}"
    name = loc[0]
    where = f"env FAREBOX_{name.upper()} or farebox.toml `{name}`"
    return f"setting {'.'.join(loc) or name} ({where}): {message}"


def master_key_file(settings: Settings) -> Path:
    """Where a generated master key is kept: beside the SQLite ledger, else in the working directory."""
    path = sqlite_path(normalise_url(settings.database_url))
    return path.with_name(path.name + ".master-key") if path else Path("farebox.master-key")


def resolve_master_key(settings: Settings) -> tuple[str, bool]:
    """The master key in force and whether it was generated just now.

    From `FAREBOX_MASTER_KEY` when set; otherwise read from, or generated once into, the key file
    (mode 0600) so that restarts keep the same key.
    """
    if settings.master_key is not None:
        return settings.master_key.get_secret_value(), False
    return _kept_in_file(master_key_file(settings), lambda: "fbx_master_" + secrets.token_urlsafe(32))


def secret_key_file(settings: Settings) -> Path | None:
    """Where a generated server secret is kept: beside the SQLite ledger. None for PostgreSQL, where it is set."""
    path = sqlite_path(normalise_url(settings.database_url))
    return path.with_name(path.name + ".secret-key") if path else None


def resolve_secret_key(settings: Settings) -> tuple[str, bool]:
    """The server secret in force and whether it was generated just now.

    From `FAREBOX_SECRET_KEY` when set; otherwise, for a SQLite ledger, read from, or generated once into,
    the file beside it (mode 0600). A PostgreSQL ledger needs it set: every replica must hold the same one,
    and a secret generated into one machine's working directory would be lost with that machine.

    Raises:
        SettingsError: no server secret for a PostgreSQL ledger, or a kept one too short.
    """
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value(), False
    path = secret_key_file(settings)
    if path is None:
        raise SettingsError(
            "setting secret_key (FAREBOX_SECRET_KEY): required with a PostgreSQL ledger, the same on every "
            "replica; make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    secret, generated = _kept_in_file(path, generate_server_secret)
    try:
        _check_server_secret(secret)
    except ValueError as exc:
        raise SettingsError(f"{path}: {exc}") from None
    return secret, generated


def _check_server_secret(secret: str) -> None:
    if len(secret) < MIN_SERVER_SECRET_CHARS:
        raise ValueError(
            f"a server secret needs at least {MIN_SERVER_SECRET_CHARS} characters; make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


def _kept_in_file(path: Path, generate: Callable[[], str]) -> tuple[str, bool]:
    """The value kept in `path`, or a new one from `generate` written there (mode 0600); and whether it is new."""
    if path.is_file():
        return path.read_text().strip(), False
    value = generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process (a CLI command beside the server) generated it first: use theirs
        return path.read_text().strip(), False
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value, True
