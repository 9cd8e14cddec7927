"""The ledger's tables, shared by SQLite and PostgreSQL. Alembic migrations create them.

Times are integers (epoch microseconds for events, epoch seconds for buckets and key times) so
range scans and bucketing are plain integer arithmetic on both databases. Money is integer nano-USD.
Rollup dimensions use '' rather than NULL for "none" so they can be part of a primary key.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    cast,
    exists,
    func,
    select,
    text,
)

__all__ = [
    "ADJUSTED_MEASURES",
    "REPRICE",
    "VOID",
    "adjusted_cost",
    "adjusted_events",
    "ROLLUP_DIMENSIONS",
    "ROLLUP_MEASURES",
    "accounts",
    "alert_firings",
    "alert_settings",
    "credit_balances",
    "credit_top_ups",
    "leases",
    "dashboard_sessions",
    "key_secrets",
    "latency_sketches",
    "latency_sketches_daily",
    "member_tokens",
    "members",
    "metadata",
    "outbox",
    "outbox_attempts",
    "prompt_prefixes",
    "scheduled_reports",
    "spend_counters",
    "usage_adjustments",
    "usage_events",
    "DAILY_DIMENSIONS",
    "DAILY_ERROR_DIMENSIONS",
    "KEY_ROLLUP_DIMENSIONS",
    "KEY_ROLLUP_INCLUDED",
    "ROLLUP_BUCKET_SECONDS",
    "usage_daily",
    "usage_daily_errors",
    "usage_key_rollups",
    "voided",
    "usage_rollups",
    "virtual_keys",
    "webhook_endpoints",
    "workloads",
]

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", Text, nullable=False),
    Column("plan", String(32), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("spend_cap_nano", BigInteger),
    Column("cap_period", String(16), nullable=False),
    # Parts per million (`farebox.core.tax`): the billing export's tax rate.
    Column("tax_rate_ppm", BigInteger, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

members = Table(
    "members",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("email", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("spend_cap_nano", BigInteger),
    Column("cap_period", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # The argon2id hash of the member's password (`core.passwords`), NULL for none; it never leaves the ledger.
    Column("password_hash", Text),
    # When a password was last set or removed, so that sign-ins begun before a change can be ended.
    Column("password_changed_at", BigInteger),
    Index("uq_members_account_email", "account_id", "email", unique=True),
    # When its identity was pseudonymised (`Directory.erase_member`); NULL for a member never erased.
    Column("erased_at", BigInteger),
)

virtual_keys = Table(
    "virtual_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("member_id", String(36), ForeignKey("members.id"), index=True),
    Column("name", Text, nullable=False),
    Column("display_prefix", String(32), nullable=False),
    Column("allowed_models", JSON),
    Column("agent_id", Text),
    Column("app", Text),
    Column("tags", JSON, nullable=False),
    Column("spend_cap_nano", BigInteger),
    Column("cap_period", String(16), nullable=False),
    Column("expires_at", BigInteger),
    Column("revoked_at", BigInteger),
    Column("disabled_at", BigInteger),
    Column("disabled_reason", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

key_secrets = Table(
    "key_secrets",
    metadata,
    Column("secret_hash", String(64), primary_key=True),
    Column("key_id", String(36), ForeignKey("virtual_keys.id"), nullable=False, index=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),
)

member_tokens = Table(
    "member_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("member_id", String(36), ForeignKey("members.id"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("display_prefix", String(32), nullable=False),
    Column("expires_at", BigInteger),
    Column("revoked_at", BigInteger),
    Column("last_used_at", BigInteger),
    Column("created_at", BigInteger, nullable=False),
)

dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    # The SHA-256 of the session's secret (the cookie's value); the secret itself is never stored.
    Column("secret_hash", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("account_id", String(36), ForeignKey("accounts.id")),
    Column("member_id", String(36), ForeignKey("members.id"), index=True),
    # For the operator's session: a keyed digest of the master key it signed in with, so a new master key ends it.
    Column("master_check", String(64)),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
"""Signed-in dashboard sessions: a member's (its role read at each request) or the operator's."""

usage_events = Table(
    "usage_events",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("ts_us", BigInteger, nullable=False),
    Column("account_id", String(36), nullable=False),
    Column("key_id", String(36)),
    Column("member_id", String(36)),
    Column("agent_id", Text),
    Column("app", Text),
    Column("tags", JSON, nullable=False),
    Column("axis", String(16), nullable=False),
    Column("provider", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("canonical_model", Text, nullable=False),
    Column("operation", Text, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cached_input_tokens", BigInteger, nullable=False),
    Column("cache_write_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("characters", BigInteger, nullable=False),
    Column("seconds_micro", BigInteger, nullable=False),
    Column("quantity_micro", BigInteger, nullable=False),
    Column("cost_nano", BigInteger, nullable=False),
    Column("unit_prices", JSON, nullable=False),
    Column("priced", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("http_status", Integer),
    Column("error_type", Text),
    Column("latency_ms", Integer),
    Column("ttft_ms", Integer),
    Column("streamed", Boolean, nullable=False),
    Column("estimated", Boolean, nullable=False),
    Column("source", String(16), nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("recorded_at_us", BigInteger, nullable=False),
    # A keyed hash of a long prompt's beginning (`UsageEvent.prompt_prefix`); the prompt is never stored.
    Column("prompt_prefix", String(16)),
    Index("ix_usage_events_account_ts_id", "account_id", "ts_us", "id"),
    Index("ix_usage_events_key_ts", "key_id", "ts_us"),
    Index("ix_usage_events_account_recorded", "account_id", "recorded_at_us", "id"),
)

ADJUSTED_MEASURES = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "characters",
    "seconds_micro",
    "quantity_micro",
    "cost_nano",
)
"""The amounts an adjustment carries, negated, in `usage_events` column order."""

usage_adjustments = Table(
    "usage_adjustments",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("event_id", String(128), ForeignKey("usage_events.id"), nullable=False),
    Column("account_id", String(36), nullable=False),
    Column("key_id", String(36)),
    Column("member_id", String(36)),
    Column("event_ts_us", BigInteger, nullable=False),
    *(Column(name, BigInteger, nullable=False) for name in ADJUSTED_MEASURES),
    Column("reason", Text, nullable=False),
    Column("actor_kind", String(16), nullable=False),
    Column("actor_member_id", String(36)),
    Column("created_at_us", BigInteger, nullable=False),
    Column("unit_prices", JSON),
    Index("ix_usage_adjustments_event_kind", "event_id", "kind"),
    Index(
        "uq_usage_adjustments_void",
        "event_id",
        unique=True,
        sqlite_where=text("kind = 'void'"),
        postgresql_where=text("kind = 'void'"),
    ),
    Index("ix_usage_adjustments_account_event_ts", "account_id", "event_ts_us"),
)
"""Audited corrections of recorded usage events, appended, never changed. A row carries its event's attribution and
time and says why and who (`actor_kind` `master`, `member` with `actor_member_id`, or `cli`). Two kinds:

- `void` (at most one per event): the event's amounts negated; every view leaves the event out.
- `reprice` (one per price change): the difference between the event's cost so far and its cost in the price book
  of the day, in `cost_nano`, every other amount 0, with the unit prices it was charged at (`unit_prices`, JSON).
  An event's cost in every view is its recorded cost plus its reprices (`adjusted_cost`).

The event row itself is never changed; the rollups and spend counters net an adjustment in the event's own bucket
and periods."""

VOID = "void"
"""The kind of an adjustment that voids its event."""
REPRICE = "reprice"
"""The kind of an adjustment that moves its event's cost to the price book of the day."""


def voided() -> ColumnElement[bool]:
    """Whether a `usage_events` row (in the enclosing query) has been voided: every view leaves such events out."""
    adjustments = usage_adjustments.c
    return exists().where(adjustments.event_id == usage_events.c.id, adjustments.kind == VOID)


def adjusted_cost() -> ColumnElement[int]:
    """A `usage_events` row's cost (in the enclosing query) with its reprices added: what every view counts."""
    adjustments = usage_adjustments.c
    repriced = (
        select(func.sum(adjustments.cost_nano))
        .where(adjustments.event_id == usage_events.c.id, adjustments.kind == REPRICE)
        .scalar_subquery()
    )
    return cast(usage_events.c.cost_nano + func.coalesce(repriced, 0), BigInteger)


def adjusted_events() -> list[ColumnElement[Any]]:
    """Every `usage_events` column in order, the cost as adjusted (`adjusted_cost`, labelled `cost_nano`)."""
    return [
        adjusted_cost().label(column.name) if column.name == "cost_nano" else column for column in usage_events.columns
    ]


ROLLUP_BUCKET_SECONDS = 900
"""The rollups' grain: quarter hours of UTC. Every timezone offset in use today is a whole number of quarter
hours, and clocks change on quarter hours, so every local day, week and month is a whole number of buckets
in any zone (+05:30, +05:45, and the 23- and 25-hour days of daylight saving included)."""

ROLLUP_DIMENSIONS = (
    "account_id",
    "key_id",
    "member_id",
    "agent_id",
    "app",
    "axis",
    "provider",
    "model",
    "canonical_model",
    "operation",
    "status",
    "error_class",
)
"""What usage is grouped by: the events' attribution and kind, and `error_class`, the class of an error event
(`farebox.core.error_classes`; '' for one that did not fail), derived from its status, HTTP status and type."""
ROLLUP_MEASURES = ("requests", *ADJUSTED_MEASURES, "unpriced_requests", "estimated_requests", "latency_ms_sum")

usage_rollups = Table(
    "usage_rollups",
    metadata,
    Column("bucket", BigInteger, nullable=False),
    *(Column(name, Text, nullable=False) for name in ROLLUP_DIMENSIONS),
    *(Column(name, BigInteger, nullable=False) for name in ROLLUP_MEASURES),
    PrimaryKeyConstraint("bucket", *ROLLUP_DIMENSIONS, name="pk_usage_rollups"),
    Index("ix_usage_rollups_account_bucket", "account_id", "bucket"),
)
"""Usage summed per `ROLLUP_BUCKET_SECONDS` bucket (`bucket`: epoch seconds of its start) and combination of
dimensions; a dimension with no value is ''."""


DAILY_DIMENSIONS = ROLLUP_DIMENSIONS[1:-1]
"""The daily cube's dimensions after (account_id, day): every rollup dimension but the error class."""
DAILY_ERROR_DIMENSIONS = ROLLUP_DIMENSIONS[1:]
"""The daily errors' dimensions after (account_id, day): every rollup dimension."""

usage_daily = Table(
    "usage_daily",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("day", Integer, nullable=False),
    *(Column(dimension, Text, nullable=False) for dimension in DAILY_DIMENSIONS),
    *(Column(measure, BigInteger, nullable=False) for measure in ROLLUP_MEASURES),
    PrimaryKeyConstraint("account_id", "day", *DAILY_DIMENSIONS, name="pk_usage_daily"),
    sqlite_with_rowid=False,
)
"""The daily cube: the quarter-hour rollups summed per day of their account's time zone (`day`: local days since
1970-01-01), every dimension kept but the error class (`usage_daily_errors` keeps it). A request's key gives its
member, agent and app, so a day holds about as many rows as there were (key, model, operation, status)
combinations used, where the quarter-hour rollups hold up to 96 times as many; the analytics engine reads it when
a query's days are the account's own. SQLite keeps it in primary-key order (`WITHOUT ROWID`): an account's range of
days is one pass, not a row look-up per index entry. Changing an account's zone rebuilds its rows from the
rollups."""

usage_daily_errors = Table(
    "usage_daily_errors",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("day", Integer, nullable=False),
    *(Column(dimension, Text, nullable=False) for dimension in DAILY_ERROR_DIMENSIONS),
    *(Column(measure, BigInteger, nullable=False) for measure in ROLLUP_MEASURES),
    PrimaryKeyConstraint("account_id", "day", *DAILY_ERROR_DIMENSIONS, name="pk_usage_daily_errors"),
    sqlite_with_rowid=False,
)
"""The failed requests of the daily cube again, by error class too: what a daily read by error class sums with the
cube's successful requests (whose class is ''). Kept apart because a day's failures of one key and model spread
over several classes: in the cube they made most of its rows, and every daily read paid for them."""

KEY_ROLLUP_DIMENSIONS = ("key_id", "status")
"""The key rollups' dimensions after (account_id, bucket): the key, and whether the request failed."""
KEY_ROLLUP_INCLUDED = ("cost_nano", "requests", "input_tokens", "output_tokens", "latency_ms_sum")
"""The measures PostgreSQL keeps in the key rollups' primary key too: what the read side sums from them (the views'
measures), so an account's range of quarter hours is an index-only scan, not a row look-up per row."""

usage_key_rollups = Table(
    "usage_key_rollups",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("bucket", BigInteger, nullable=False),
    *(Column(dimension, Text, nullable=False) for dimension in KEY_ROLLUP_DIMENSIONS),
    *(Column(measure, BigInteger, nullable=False) for measure in ROLLUP_MEASURES),
    PrimaryKeyConstraint(
        "account_id",
        "bucket",
        *KEY_ROLLUP_DIMENSIONS,
        name="pk_usage_key_rollups",
        postgresql_include=KEY_ROLLUP_INCLUDED,
    ),
    Index("ix_usage_key_rollups_bucket", "bucket"),
    sqlite_with_rowid=False,
)
"""The quarter-hour rollups summed by account, key and status only (`bucket` as theirs): a busy account's quarter
hour holds about one row per key used, where the rollups hold one per key, model, operation, status and error
class. The analytics engine reads it for any span of local time, in any zone, when a query groups and filters by
no other dimension (the trends' timeline, the patterns' hourly profile, today across every account). Written with
the rollups, in the writer's transaction. An account's range of quarter hours is one pass: SQLite keeps the table
in primary-key order (`WITHOUT ROWID`), and PostgreSQL's primary key carries the measures read
(`KEY_ROLLUP_INCLUDED`), which costs its upserts their in-place (HOT) updates. Every account's range is read
through `ix_usage_key_rollups_bucket`."""

prompt_prefixes = Table(
    "prompt_prefixes",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("day", Integer, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("canonical_model", Text, nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("cached_input_tokens", BigInteger, nullable=False),
    PrimaryKeyConstraint(
        "account_id", "day", "key_id", "provider", "canonical_model", "prefix", name="pk_prompt_prefixes"
    ),
    sqlite_with_rowid=False,
)
"""How often each prompt prefix (`usage_events.prompt_prefix`) was sent: successful requests, and their input and
cached input tokens, per account, local day of its zone (as `usage_daily.day`), key ('' for none), provider,
canonical model and prefix. Written with the events in the same transaction; the cost advice reads it, never the
events."""
latency_sketches = Table(
    "latency_sketches",
    metadata,
    Column("bucket", BigInteger, nullable=False),
    *(Column(name, Text, nullable=False) for name in ("account_id", "key_id", "provider", "model")),
    Column("writer", String(32), nullable=False),
    Column("latency", LargeBinary, nullable=True),
    Column("ttft", LargeBinary, nullable=True),
    PrimaryKeyConstraint("account_id", "bucket", "key_id", "provider", "model", "writer", name="pk_latency_sketches"),
    Index("ix_latency_sketches_bucket", "bucket"),
    sqlite_with_rowid=False,
)
"""Latency sketches (`farebox.core.latency`) per rollup bucket, account, key ('' for none), provider and model, and
writer: the request latencies (`latency`) and streamed requests' times to first token (`ttft`) recorded in it,
each NULL when there were none. `writer` is the recording process's id: each process overwrites only its own rows,
in the transaction of the events they count, and readers merge every writer's. Keyed by account first and, on
SQLite, stored in that order (`WITHOUT ROWID`): an account's range of quarter hours is one pass, and an overwrite
changes one page; `bucket` alone is indexed for every account at once."""

latency_sketches_daily = Table(
    "latency_sketches_daily",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("day", Integer, nullable=False),
    *(Column(name, Text, nullable=False) for name in ("key_id", "provider", "model")),
    Column("writer", String(32), nullable=False),
    Column("latency", LargeBinary, nullable=True),
    Column("ttft", LargeBinary, nullable=True),
    PrimaryKeyConstraint(
        "account_id", "day", "key_id", "provider", "model", "writer", name="pk_latency_sketches_daily"
    ),
    sqlite_with_rowid=False,
)
"""`latency_sketches` per day of the account's time zone (`day` as in `usage_daily`), written with them; changing
an account's zone rebuilds its rows from the quarter-hour ones."""

spend_counters = Table(
    "spend_counters",
    metadata,
    Column("scope", String(16), nullable=False),
    Column("scope_id", String(36), nullable=False),
    Column("period", String(16), nullable=False),
    Column("period_start", BigInteger, nullable=False),
    Column("spent_nano", BigInteger, nullable=False),
    PrimaryKeyConstraint("scope", "scope_id", "period", "period_start", name="pk_spend_counters"),
)

credit_top_ups = Table(
    "credit_top_ups",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("amount_nano", BigInteger, nullable=False),
    Column("note", Text),
    Column("actor_kind", String(16), nullable=False),
    Column("actor_member_id", String(36)),
    Column("created_at_us", BigInteger, nullable=False),
    Index("ix_credit_top_ups_account_created", "account_id", "created_at_us"),
)
"""Prepaid credits given to accounts, appended, never changed: one row per top-up, with its amount (nano-USD),
an optional note, who made it (`actor_kind` `master`, `member` with `actor_member_id`, or `cli`) and when."""

credit_balances = Table(
    "credit_balances",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("granted_nano", BigInteger, nullable=False),
    Column("opening_nano", BigInteger, nullable=False),
    Column("opened_at_us", BigInteger, nullable=False),
    Column("topped_up_at_us", BigInteger, nullable=False),
)
"""One row per account that holds credits, written with each top-up in its transaction: `granted_nano` sums the
top-ups; `opening_nano` is the account's all-time spend counter when the first one was made (less voids of usage
recorded before it), so the balance is `opening + granted - all-time spend`. `opened_at_us` is when that first
top-up committed, on the clock the writer stamps events' `recorded_at_us` with, which tells a void whether its
event was spent before the credits; `topped_up_at_us` is the latest top-up's time."""

workloads = Table(
    "workloads",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("id", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("name", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("account_id", "id", name="pk_workloads"),
)
"""Agents and plain VMs as named things: `id` is what usage events carry in `agent_id`, unique within its
account; `kind` is `agent` or `plain_vm`. Usage of an id with no row here is an agent's, named by its id."""

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("events", JSON, nullable=False),
    Column("secret", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("flush_interval_ms", Integer, nullable=False),
    Column("feed_cursor_us", BigInteger, nullable=False),
    Column("feed_cursor_id", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # Sent as `Authorization: Bearer ...` besides the signature, sealed like `secret`; NULL for none.
    Column("bearer_token", Text),
    # The endpoint's own retry policy (NULL: the server's schedule), and who manages it (`analytics`, or NULL).
    Column("max_retries", Integer),
    Column("retry_delay_ms", Integer),
    Column("managed_by", String(16)),
)
"""Where an account's webhooks go. `secret` signs them (Standard Webhooks): shown once, and kept sealed under
the server secret (`ledger.signing_secrets`; a ledger from before that holds plain ones until start-up).
The feed cursor is the last usage event (recorded_at_us, id) handed to the endpoint's usage feed."""

outbox = Table(
    "outbox",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(36), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("endpoint_id", String(36), index=True),
    Column("target", Text, nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_us", BigInteger, nullable=False),
    Column("lease_until_us", BigInteger),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("delivered_at_us", BigInteger),
    Index("ix_outbox_due", "status", "next_attempt_us"),
)
"""Deliveries waiting to go out (and their outcome): one row per message and destination. The row id is the
message's `webhook-id`, the same on every retry, so a receiver can drop a repeat."""

outbox_attempts = Table(
    "outbox_attempts",
    metadata,
    Column("outbox_id", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
    PrimaryKeyConstraint("outbox_id", "attempt", name="pk_outbox_attempts"),
)

alert_settings = Table(
    "alert_settings",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("config", JSON, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

alert_firings = Table(
    "alert_firings",
    metadata,
    Column("rule", String(64), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("scope_id", String(36), nullable=False),
    Column("period_start", BigInteger, nullable=False),
    Column("account_id", String(36), nullable=False),
    Column("fired_at_us", BigInteger, nullable=False),
    Column("evidence", JSON, nullable=False),
    PrimaryKeyConstraint("rule", "scope", "scope_id", "period_start", name="pk_alert_firings"),
    Index("ix_alert_firings_account_fired", "account_id", "fired_at_us"),
)
"""Alerts that fired: the primary key makes each rule fire once per scope and period."""

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("at_us", BigInteger, nullable=False),
    Column("method", String(8), nullable=False),
    Column("route", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("principal_kind", String(16)),
    Column("principal_account_id", String(36)),
    Column("principal_member_id", String(36)),
    Column("principal_key_id", String(36)),
    Column("principal_role", String(16)),
    Column("account_id", String(36)),
    Column("key_id", String(36)),
    Column("member_id", String(36)),
    Column("filters", JSON, nullable=False),
    Column("client_address", Text, nullable=False),
    Column("correlation_id", String(128), nullable=False),
    Index("ix_audit_log_at", "at_us"),
    Index("ix_audit_log_account_at", "account_id", "at_us"),
)
"""Every read of analytics, exports and admin data and every change through the admin API, appended before its
answer is sent: when, the route (its template, and the path as asked), the answer's status, who (the principal's
kind, account, member, key and role; none when no credential was accepted), the account, key and member concerned,
the filters (query parameters, and the body of the analytics endpoints whose bodies are filters), the client's
address and the correlation id. Rows older than the retention setting are deleted."""

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("until_us", BigInteger, nullable=False),
)
"""Background work one process of the ledger does at a time (the anomaly scan, pruning): which process holds
it, until when (epoch µs). A holder renews it before it ends; another process takes it once it has ended."""

scheduled_reports = Table(
    "scheduled_reports",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("frequency", String(16), nullable=False),
    Column("at_time", String(5), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("day", Integer, nullable=False),
    Column("request", JSON, nullable=False),
    Column("recipients", JSON, nullable=False),
    Column("webhook_url", Text),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    Column("last_slot_us", BigInteger, nullable=False),
    Index("uq_scheduled_reports_account_name", "account_id", "name", unique=True),
)
"""An account's scheduled reports (`PUT /api/admin/analytics/scheduled-reports`), one per name: when (`frequency`,
`at_time` HH:MM in `timezone`, `day` the weekday 0-6 or the day of the month 1-31, else 0), what (`request`: the
report's format, period, sections and filters, camelCase as the API takes them) and where (e-mail `recipients`, a
`webhook_url`). `last_slot_us` is the latest slot taken: advancing it and enqueueing the delivery commit together,
so each slot runs once (`farebox.ledger.scheduled_reports`)."""

counters_mode = Table(
    "counters_mode",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("mode", String(8), nullable=False),
    Column("generation", BigInteger, nullable=False),
)
"""Where the processes of a ledger sharing their counters hold their reservations now: `redis`, or `database`
while Redis cannot be reached. One row (`id` 1); each change of mode is a new `generation`
(`farebox.ledger.counter_holds`)."""

counters_processes = Table(
    "counters_processes",
    metadata,
    Column("process", String(128), primary_key=True),
    Column("alive_until_us", BigInteger, nullable=False),
    Column("acked", BigInteger, nullable=False),
)
"""The processes sharing the counters: until when each counts as alive (the database's clock, epoch µs) and the
latest generation of `counters_mode` it has switched to, its reservations in flight carried over."""

counter_holds = Table(
    "counter_holds",
    metadata,
    Column("hold_id", String(36), nullable=False),
    Column("process", String(128), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("scope_id", String(36), nullable=False),
    Column("period", String(16), nullable=False),
    Column("period_start", BigInteger, nullable=False),
    Column("amount_nano", BigInteger, nullable=False),
    PrimaryKeyConstraint("hold_id", "scope", "scope_id", "period", "period_start", name="pk_counter_holds"),
    Index("ix_counter_holds_counter", "scope", "scope_id", "period", "period_start"),
)
"""Reservations held in the database while the counters' mode is `database`: one row per counter a reservation
holds, deleted when it is released. Only the holds of processes alive in `counters_processes` count."""

sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("throttle", String(16), nullable=False),
    Column("name_mac", String(64), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Index("ix_sign_in_failures_name", "throttle", "name_mac", "at_us"),
    Index("ix_sign_in_failures_at", "at_us"),
)
"""The dashboard's failed sign-ins, per throttle (`email`, `address`) and name (an HMAC of the e-mail address or
client address under a key derived from the server secret: neither is stored), kept for the sign-in window, so
that every process of a ledger counts the same failures (`farebox.ledger.sign_in_failures`)."""
