"""The packaged migrations: their naming convention, the cheap "already current" check before them, and the schema
they build being the one `farebox.ledger.schema` declares."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, Table, inspect, select
from sqlalchemy.exc import IntegrityError

import farebox.ledger.engine
from farebox.core.events import RecordResult
from farebox.ledger.base import Ledger
from farebox.ledger.engine import Engines, head_revision, migrate, schema_is_current
from farebox.ledger.partitions import DEFAULT, IDS, partitions
from farebox.ledger.schema import metadata, usage_events

if TYPE_CHECKING:
    from tests.conftest import EventFactory

_MIGRATIONS = Path(farebox.ledger.engine.__file__).parent / "migrations"


def test_the_head_found_from_file_names_is_alembics_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)

    assert scripts.get_heads() == [head_revision()]
    for script in scripts.walk_revisions():
        assert Path(script.path).name.startswith(f"{script.revision}_"), script.path
    assert [script.revision for script in scripts.walk_revisions()] == sorted(
        (path.name.split("_", 1)[0] for path in (_MIGRATIONS / "versions").glob("[0-9]*_*.py")), reverse=True
    )


def test_a_schema_is_current_only_after_migrating(ledger_url: str) -> None:
    engines = Engines(ledger_url)
    try:
        assert not schema_is_current(engines)
        migrate(engines)
        assert schema_is_current(engines)
        with engines.writer.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
        assert not schema_is_current(engines)
    finally:
        engines.dispose()


def test_migrating_a_current_schema_does_not_load_alembic(ledger_url: str) -> None:
    engines = Engines(ledger_url)
    try:
        migrate(engines)
    finally:
        engines.dispose()
    script = (
        "import sys\n"
        "from farebox.ledger.engine import Engines, migrate\n"
        "migrate(Engines(sys.argv[1]))\n"
        "print('alembic' in sys.modules)"
    )
    loaded = subprocess.run([sys.executable, "-c", script, ledger_url], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"


def _not_a_partition(name: str | None, type_: str, _parents: object) -> bool:
    return not (type_ == "table" and name is not None and (name.startswith("usage_events_") or name == IDS))


def _named(difference: tuple[Any, ...]) -> tuple[str, str]:
    kind, item = difference[0], difference[1]
    return kind, item.table.name if kind == "add_fk" else item.name


def test_the_migrated_schema_is_the_declared_one(ledger_url: str) -> None:
    engines = Engines(ledger_url)
    try:
        migrate(engines)
        with engines.writer.connect() as connection:
            context = MigrationContext.configure(connection, opts={"include_name": _not_a_partition})
            differences = [_named(difference) for difference in compare_metadata(context, metadata)]
    finally:
        engines.dispose()
    if engines.dialect == "postgresql":
        # The events are partitioned by month there (`farebox.ledger.partitions`): an event id is unique in
        # `usage_event_ids`, so the adjustments lose their foreign key and the events gain an index on their id.
        assert sorted(differences) == [("add_fk", "usage_adjustments"), ("remove_index", "ix_usage_events_id")]
    else:
        assert differences == []


def test_the_usage_adjustments_migration_goes_up_from_0003_and_back_down(ledger_url: str) -> None:
    engines = Engines(ledger_url)
    try:
        migrate(engines, revision="0003")
        with engines.writer.begin() as connection:
            assert not inspect(connection).has_table("usage_adjustments")
        migrate(engines)
        with engines.writer.begin() as connection:
            assert inspect(connection).has_table("usage_adjustments")
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = connection
            command.downgrade(config, "0003")
            assert not inspect(connection).has_table("usage_adjustments")
    finally:
        engines.dispose()


def test_the_member_passwords_migration_goes_up_from_0006_and_back_down_keeping_members(ledger_url: str) -> None:
    """0007 adds the nullable password columns; its downgrade drops them though keys and tokens refer to members."""
    account = {"id": "acct", "name": "Acme", "plan": "free", "timezone": "UTC", "cap_period": "monthly"}
    member = {"id": "mem", "account_id": "acct", "email": "ada@acme.test", "name": "Ada", "role": "owner"}
    key = {"id": "key", "account_id": "acct", "member_id": "mem", "name": "k", "display_prefix": "fbx_sk_x"}
    token = {"id": "tok", "account_id": "acct", "member_id": "mem", "name": "t", "display_prefix": "fbx_mt_x"}
    times = {"created_at": 1_750_000_000, "updated_at": 1_750_000_000}
    engines = Engines(ledger_url)
    try:
        migrate(engines, revision="0006")
        with engines.writer.begin() as connection:
            connection.execute(sa_table("accounts", connection).insert(), [account | times])
            connection.execute(sa_table("members", connection).insert(), [member | times | {"cap_period": "monthly"}])
            key_row = key | times | {"tags": [], "cap_period": "monthly"}
            connection.execute(sa_table("virtual_keys", connection).insert(), [key_row])
            token_row = token | {"created_at": 1_750_000_000, "secret_hash": "0" * 64}
            connection.execute(sa_table("member_tokens", connection).insert(), [token_row])
        migrate(engines)
        with engines.writer.begin() as connection:
            row = connection.exec_driver_sql("SELECT email, password_hash, password_changed_at FROM members").one()
            assert tuple(row) == ("ada@acme.test", None, None)
            connection.exec_driver_sql("UPDATE members SET password_hash = '$argon2id$x', password_changed_at = 1")
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = connection
            command.downgrade(config, "0006")
            columns = {column["name"] for column in inspect(connection).get_columns("members")}
            assert not {"password_hash", "password_changed_at"} & columns
            assert connection.exec_driver_sql("SELECT id, email FROM members").all() == [("mem", "ada@acme.test")]
            assert connection.exec_driver_sql("SELECT member_id FROM virtual_keys").all() == [("mem",)]
            assert connection.exec_driver_sql("SELECT member_id FROM member_tokens").all() == [("mem",)]
    finally:
        engines.dispose()


def test_the_prepaid_credits_migration_goes_up_from_the_one_before_it_and_back_down(ledger_url: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    credits = ScriptDirectory.from_config(config).get_revision("0008")
    assert credits is not None and isinstance(credits.down_revision, str)
    engines = Engines(ledger_url)
    try:
        migrate(engines, revision=credits.down_revision)
        with engines.writer.begin() as connection:
            assert not inspect(connection).has_table("credit_top_ups")
        migrate(engines, revision="0008")
        with engines.writer.begin() as connection:
            assert {"credit_top_ups", "credit_balances"} <= set(inspect(connection).get_table_names())
            config.attributes["connection"] = connection
            command.downgrade(config, credits.down_revision)
            tables = set(inspect(connection).get_table_names())
            assert not tables & {"credit_top_ups", "credit_balances"} and "accounts" in tables
    finally:
        engines.dispose()


def _event(event_id: str, ts_us: int, **fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": event_id,
        "ts_us": ts_us,
        "account_id": "acct",
        "key_id": "key",
        "member_id": None,
        "agent_id": None,
        "app": "helpdesk",
        "tags": "[]",
        "axis": "llm",
        "provider": "openai",
        "model": "gpt-4o",
        "canonical_model": "gpt-4o",
        "operation": "chat.completions",
        "input_tokens": 10,
        "output_tokens": 5,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "characters": 0,
        "seconds_micro": 0,
        "quantity_micro": 0,
        "cost_nano": 1_000,
        "unit_prices": "{}",
        "priced": True,
        "status": "ok",
        "http_status": 200,
        "error_type": None,
        "latency_ms": 40,
        "ttft_ms": None,
        "streamed": False,
        "estimated": False,
        "source": "proxy",
        "metadata": "{}",
        "recorded_at_us": ts_us,
    }
    return row | fields


def test_the_quarter_hour_rollups_are_filled_from_the_events_without_the_voided(ledger_url: str) -> None:
    """Migration 0005 sums every event that was not voided into quarter hours, the app kept; 0004 gets hours back."""
    noon_us = 1_750_000_500 * 1_000_000 // 3_600_000_000 * 3_600_000_000  # an hour's start
    minute = 60_000_000
    events = [
        _event("a", noon_us + 1 * minute),
        _event("b", noon_us + 14 * minute, latency_ms=None, priced=False, cost_nano=0),
        _event("c", noon_us + 15 * minute, app=None, status="error"),
        _event("voided", noon_us + 16 * minute, cost_nano=999_999),
    ]
    engines = Engines(ledger_url)
    try:
        migrate(engines, revision="0004")
        with engines.writer.begin() as connection:
            connection.execute(sa_table("usage_events", connection).insert(), events)
            adjustment = {
                "id": "adj-1",
                "kind": "void",
                "event_id": "voided",
                "account_id": "acct",
                "key_id": "key",
                "member_id": None,
                "event_ts_us": noon_us + 16 * minute,
                **{name: 0 for name in ("input_tokens", "output_tokens", "cached_input_tokens")},
                **{name: 0 for name in ("cache_write_tokens", "reasoning_tokens", "characters", "seconds_micro")},
                "quantity_micro": 0,
                "cost_nano": -999_999,
                "reason": "wrong",
                "actor_kind": "cli",
                "actor_member_id": None,
                "created_at_us": noon_us + 20 * minute,
            }
            connection.execute(sa_table("usage_adjustments", connection).insert(), [adjustment])
        migrate(engines)
        noon = noon_us // 1_000_000
        with engines.writer.begin() as connection:
            query = "SELECT bucket, app, status, requests, cost_nano, unpriced_requests, latency_ms_sum, input_tokens "
            rows = connection.exec_driver_sql(query + "FROM usage_rollups ORDER BY bucket").all()
            assert [tuple(row) for row in rows] == [
                (noon, "helpdesk", "ok", 2, 1_000, 1, 40, 20),
                (noon + 900, "", "error", 1, 1_000, 0, 40, 10),
            ]
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = connection
            command.downgrade(config, "0004")
            hourly = connection.exec_driver_sql("SELECT hour, requests, cost_nano FROM usage_rollups_hourly").all()
            assert sorted(tuple(row) for row in hourly) == [(noon, 1, 1_000), (noon, 2, 1_000)]
    finally:
        engines.dispose()


def _adjustment(adjustment_id: str, kind: str, cost_nano: int) -> dict[str, object]:
    return {
        "id": adjustment_id,
        "kind": kind,
        "event_id": "a",
        "account_id": "acct",
        "key_id": "key",
        "member_id": None,
        "event_ts_us": 1,
        **dict.fromkeys(("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens"), 0),
        **dict.fromkeys(("reasoning_tokens", "characters", "seconds_micro", "quantity_micro"), 0),
        "cost_nano": cost_nano,
        "reason": "price change",
        "actor_kind": "cli",
        "actor_member_id": None,
        "created_at_us": 2,
    }


def test_reprices_repeat_where_voids_stay_one_per_event_and_going_down_refuses_repeated_reprices(
    ledger_url: str,
) -> None:
    """0024: an event takes any number of reprices but one void; down to 0023 only when no event has two reprices."""
    engines = Engines(ledger_url)
    try:
        migrate(engines, revision="0023")
        with engines.writer.begin() as connection:
            connection.execute(sa_table("usage_events", connection).insert(), [_event("a", 1)])
        migrate(engines)
        with engines.writer.begin() as connection:
            adjustments = sa_table("usage_adjustments", connection)
            connection.execute(adjustments.insert(), [_adjustment("r1", "reprice", 5), _adjustment("r2", "reprice", 7)])
            connection.execute(adjustments.insert(), [_adjustment("v1", "void", -1_012)])
        with pytest.raises(IntegrityError), engines.writer.begin() as connection:
            connection.execute(adjustments.insert(), [_adjustment("v2", "void", -1_012)])
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with pytest.raises(RuntimeError, match="1 events hold more than one adjustment"):
            with engines.writer.begin() as connection:
                config.attributes["connection"] = connection
                command.downgrade(config, "0023")
        with engines.writer.begin() as connection:
            connection.exec_driver_sql("DELETE FROM usage_adjustments WHERE id = 'r2'")
            config.attributes["connection"] = connection
            command.downgrade(config, "0023")
            columns = {column["name"] for column in inspect(connection).get_columns("usage_adjustments")}
            assert "unit_prices" not in columns
            kept = connection.exec_driver_sql("SELECT id FROM usage_adjustments ORDER BY id").scalars().all()
            assert kept == ["r1", "v1"]
    finally:
        engines.dispose()


def test_one_daily_cube_replaces_the_two_filled_from_the_rollups_and_back(ledger_url: str) -> None:
    """Migration 0009 sums the quarter hours per local day with every dimension; its downgrade refills the two."""
    day_us = 20_000 * 86_400 * 1_000_000  # midnight UTC, day 20,000 since 1970
    hour = 3_600_000_000
    events = [
        _event("a", day_us + 1 * hour, agent_id="bot"),
        _event("b", day_us + 5 * hour, agent_id="bot", model="gpt-4o-mini", canonical_model="gpt-4o-mini"),
        _event("c", day_us + 30 * hour, agent_id="vm-7", app=None),
    ]
    engines = Engines(ledger_url)
    try:
        migrate(engines, revision="0004")
        with engines.writer.begin() as connection:
            connection.execute(sa_table("usage_events", connection).insert(), events)
        migrate(engines)
        with engines.writer.begin() as connection:
            query = "SELECT day, agent_id, app, model, requests, cost_nano FROM usage_daily ORDER BY day, model"
            assert [tuple(row) for row in connection.exec_driver_sql(query)] == [
                (20_000, "bot", "helpdesk", "gpt-4o", 1, 1_000),
                (20_000, "bot", "helpdesk", "gpt-4o-mini", 1, 1_000),
                (20_001, "vm-7", "", "gpt-4o", 1, 1_000),
            ]
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = connection
            command.downgrade(config, "0008")
            people = "SELECT day, agent_id, requests FROM usage_daily_people ORDER BY day"
            assert [tuple(row) for row in connection.exec_driver_sql(people)] == [
                (20_000, "bot", 2),
                (20_001, "vm-7", 1),
            ]
            models = "SELECT day, model, requests FROM usage_daily ORDER BY day, model"
            assert [tuple(row) for row in connection.exec_driver_sql(models)] == [
                (20_000, "gpt-4o", 1),
                (20_000, "gpt-4o-mini", 1),
                (20_001, "gpt-4o", 1),
            ]
    finally:
        engines.dispose()


def sa_table(name: str, connection: Connection) -> Table:
    """A table as the database has it now (at an older revision than the declared schema)."""
    return Table(name, MetaData(), autoload_with=connection)


def test_error_classes_are_summed_again_from_the_events_and_summed_away_on_the_way_down(ledger_url: str) -> None:
    """Migration 0013 keeps the rows that did not fail, classes each error event that was not voided, and fills
    the daily cube with the classes; its downgrade sums the classes away."""
    day_us = 20_000 * 86_400 * 1_000_000
    minute = 60_000_000
    events = [
        _event("ok", day_us + minute),
        _event("busy", day_us + 2 * minute, status="error", http_status=429, error_type="rate_limit_error"),
        _event("down", day_us + 3 * minute, status="error", http_status=503, error_type="http_503"),
        _event("slow", day_us + 4 * minute, status="error", http_status=504, error_type="upstream_timeout"),
        _event("gone", day_us + 5 * minute, status="error", http_status=502, error_type="upstream_unreachable"),
        _event("left", day_us + 6 * minute, status="error", http_status=200, error_type="client_disconnected"),
        _event("bad", day_us + 7 * minute, status="error", http_status=400, error_type="invalid_request_error"),
        _event("mystery", day_us + 8 * minute, status="error", http_status=None, error_type=None),
        _event("overload", day_us + 9 * minute, status="error", http_status=200, error_type="overloaded_error"),
        _event("down-again", day_us + 10 * minute, status="error", http_status=500, error_type="api_error"),
        _event("voided", day_us + 11 * minute, status="error", http_status=500, error_type="api_error"),
    ]
    void = {
        "id": "adj-1",
        "kind": "void",
        "event_id": "voided",
        "account_id": "acct",
        "key_id": "key",
        "member_id": None,
        "event_ts_us": day_us + 11 * minute,
        **{name: -value for name, value in (("input_tokens", 10), ("output_tokens", 5), ("cost_nano", 1_000))},
        **{name: 0 for name in ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens", "characters")},
        "seconds_micro": 0,
        "quantity_micro": 0,
        "reason": "test traffic",
        "actor_kind": "cli",
        "actor_member_id": None,
        "created_at_us": day_us + 20 * minute,
    }
    expected = [
        ("", "ok", 1),
        ("cancelled", "error", 1),
        ("client_error", "error", 1),
        ("connection", "error", 1),
        ("other", "error", 1),
        ("rate_limited", "error", 1),
        ("timeout", "error", 1),
        ("upstream_error", "error", 3),
    ]
    engines = Engines(ledger_url)
    try:
        migrate(engines, revision="0004")
        with engines.writer.begin() as connection:
            connection.execute(sa_table("usage_events", connection).insert(), events)
            connection.execute(sa_table("usage_adjustments", connection).insert(), [void])
        migrate(engines, revision="0017")
        with engines.writer.begin() as connection:
            for table in ("usage_rollups", "usage_daily"):
                query = f"SELECT error_class, status, SUM(requests) FROM {table} GROUP BY error_class, status"
                assert sorted(tuple(row) for row in connection.exec_driver_sql(query)) == expected, table
        migrate(engines)  # 0018: the daily cube's failures by class move to usage_daily_errors
        with engines.writer.begin() as connection:
            daily = "SELECT status, SUM(requests) FROM usage_daily GROUP BY status"
            assert sorted(tuple(row) for row in connection.exec_driver_sql(daily)) == [("error", 9), ("ok", 1)]
            classes = "SELECT error_class, status, SUM(requests) FROM usage_daily_errors GROUP BY error_class, status"
            assert sorted(tuple(row) for row in connection.exec_driver_sql(classes)) == expected[1:]
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = connection
            command.downgrade(config, "0012")
            for table in ("usage_rollups", "usage_daily"):
                query = f"SELECT status, requests, cost_nano FROM {table} ORDER BY status"
                assert [tuple(row) for row in connection.exec_driver_sql(query)] == [
                    ("error", 9, 9_000),
                    ("ok", 1, 1_000),
                ], table
    finally:
        engines.dispose()


def test_the_prompt_prefixes_migration_adds_an_empty_column_and_table_and_drops_them_on_the_way_down(
    ledger_url: str,
) -> None:
    """Migration 0014: events recorded before it keep every field and have no prefix (their prompts were never
    kept); its downgrade drops the column and the table, the events intact."""
    engines = Engines(ledger_url)
    try:
        migrate(engines, revision="0013")
        with engines.writer.begin() as connection:
            connection.execute(sa_table("usage_events", connection).insert(), [_event("before", 1_750_000_000_000_000)])
        migrate(engines)
        with engines.writer.begin() as connection:
            query = "SELECT id, cost_nano, prompt_prefix FROM usage_events"
            assert [tuple(row) for row in connection.exec_driver_sql(query)] == [("before", 1_000, None)]
            assert connection.exec_driver_sql("SELECT COUNT(*) FROM prompt_prefixes").scalar() == 0
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = connection
            command.downgrade(config, "0013")
            assert not inspect(connection).has_table("prompt_prefixes")
            columns = {column["name"] for column in inspect(connection).get_columns("usage_events")}
            assert "prompt_prefix" not in columns and "recorded_at_us" in columns
            assert connection.exec_driver_sql("SELECT id, cost_nano FROM usage_events").all() == [("before", 1_000)]
    finally:
        engines.dispose()


def _key_rollups_key(connection: Connection) -> tuple[list[str], str]:
    """The key rollups' primary-key columns, and what its index includes besides (PostgreSQL; '' on SQLite)."""
    columns = inspect(connection).get_pk_constraint("usage_key_rollups")["constrained_columns"]
    if connection.dialect.name != "postgresql":
        return columns, ""
    definition = connection.exec_driver_sql(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'pk_usage_key_rollups'"
    ).scalar_one()
    return columns, definition.partition(" INCLUDE ")[2]


def test_the_key_rollups_key_carries_the_measures_read_on_postgresql_and_goes_back_down(ledger_url: str) -> None:
    """0019: PostgreSQL answers a range of an account's key rollups from the primary key alone (SQLite keeps the
    rows in its order already); the downgrade puts the plain key back."""
    key = ["account_id", "bucket", "key_id", "status"]
    included = "(cost_nano, requests, input_tokens, output_tokens, latency_ms_sum)"
    engines = Engines(ledger_url)
    try:
        migrate(engines)
        with engines.writer.begin() as connection:
            postgresql = connection.dialect.name == "postgresql"
            assert _key_rollups_key(connection) == (key, included if postgresql else "")
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = connection
            command.downgrade(config, "0018")
            assert _key_rollups_key(connection) == (key, "")
            command.upgrade(config, "0019")
            assert _key_rollups_key(connection) == (key, included if postgresql else "")
    finally:
        engines.dispose()


def test_the_tax_rate_migration_gives_every_account_no_tax_and_drops_the_rate_on_the_way_down(ledger_url: str) -> None:
    """0020: accounts made before it have a tax rate of 0; the downgrade drops the column, the accounts intact."""
    engines = Engines(ledger_url)
    try:
        migrate(engines, revision="0019")
        with engines.writer.begin() as connection:
            connection.execute(
                sa_table("accounts", connection).insert(),
                [
                    {
                        "id": "acct",
                        "name": "Acme",
                        "plan": "free",
                        "timezone": "UTC",
                        "cap_period": "monthly",
                        "created_at": 1,
                        "updated_at": 1,
                    }
                ],
            )
        migrate(engines)
        with engines.writer.begin() as connection:
            assert connection.exec_driver_sql("SELECT id, tax_rate_ppm FROM accounts").all() == [("acct", 0)]
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = connection
            command.downgrade(config, "0019")
            assert "tax_rate_ppm" not in {column["name"] for column in inspect(connection).get_columns("accounts")}
            assert connection.exec_driver_sql("SELECT id, name FROM accounts").all() == [("acct", "Acme")]
    finally:
        engines.dispose()


def test_the_scheduled_reports_migration_adds_an_empty_table_that_goes_away_on_the_way_down(ledger_url: str) -> None:
    """0025: the table starts empty, holds one report per account and name, and the downgrade drops it."""
    engines = Engines(ledger_url)
    try:
        migrate(engines, revision="0024")
        with engines.writer.begin() as connection:
            assert not inspect(connection).has_table("scheduled_reports")
        migrate(engines)
        with engines.writer.begin() as connection:
            assert connection.exec_driver_sql("SELECT COUNT(*) FROM scheduled_reports").scalar() == 0
            indexes = {index["name"]: index for index in inspect(connection).get_indexes("scheduled_reports")}
            assert indexes["uq_scheduled_reports_account_name"]["column_names"] == ["account_id", "name"]
            assert indexes["uq_scheduled_reports_account_name"]["unique"]
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = connection
            command.downgrade(config, "0024")
            assert not inspect(connection).has_table("scheduled_reports")
    finally:
        engines.dispose()


def test_the_leases_migration_adds_an_empty_table_that_goes_away_on_the_way_down(ledger_url: str) -> None:
    """0026: the table starts empty, one lease per name, and the downgrade drops it."""
    engines = Engines(ledger_url)
    try:
        migrate(engines, revision="0025")
        with engines.writer.begin() as connection:
            assert not inspect(connection).has_table("leases")
        migrate(engines)
        with engines.writer.begin() as connection:
            assert connection.exec_driver_sql("SELECT COUNT(*) FROM leases").scalar() == 0
            assert inspect(connection).get_pk_constraint("leases")["constrained_columns"] == ["name"]
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = connection
            command.downgrade(config, "0025")
            assert not inspect(connection).has_table("leases")
    finally:
        engines.dispose()


def test_the_events_by_month_migration_keeps_every_event_and_its_id_and_goes_back_down(
    ledger_url: str, make_event: EventFactory
) -> None:
    """0027: on PostgreSQL the events table becomes the partition of every time before next month, its ids go
    into `usage_event_ids` (a recorded id stays a duplicate), and the downgrade puts one table back. SQLite keeps
    its table as it was."""
    engines = Engines(ledger_url)
    hour_us = 3_600 * 1_000_000
    rows = [_event(f"evt-{n}", 1_750_000_000_000_000 + n * hour_us) for n in range(3)]
    try:
        migrate(engines, revision="0026")
        with engines.writer.begin() as connection:
            connection.execute(usage_events.insert(), rows)
        migrate(engines)
        postgresql = engines.dialect == "postgresql"
        with engines.writer.begin() as connection:
            assert sorted(connection.scalars(select(usage_events.c.id))) == ["evt-0", "evt-1", "evt-2"]
            if postgresql:
                where = connection.exec_driver_sql("SELECT DISTINCT tableoid::regclass::text FROM usage_events")
                assert where.scalar_one().startswith("usage_events_until_")
                assert connection.exec_driver_sql(f"SELECT count(*) FROM {IDS}").scalar() == 3
                assert {partition.name for partition in partitions(connection)} >= {DEFAULT}
            else:
                assert not inspect(connection).has_table(IDS)
        ledger_url_again = engines.url.render_as_string(hide_password=False)
        assert asyncio.run(_record_again(ledger_url_again, make_event, rows[1])) == RecordResult.DUPLICATE
        with engines.writer.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = connection
            command.downgrade(config, "0026")
            assert sorted(connection.scalars(select(usage_events.c.id))) == ["evt-0", "evt-1", "evt-2"]
            assert inspect(connection).get_pk_constraint("usage_events")["constrained_columns"] == ["id"]
            assert not inspect(connection).has_table(IDS)
    finally:
        engines.dispose()


async def _record_again(url: str, make_event: EventFactory, row: dict[str, Any]) -> RecordResult:
    async with Ledger(url) as ledger:
        at = datetime.fromtimestamp(row["ts_us"] / 1_000_000, tz=UTC)
        return await ledger.record(make_event(id=row["id"], timestamp=at))


def test_processes_migrating_one_postgresql_database_at_once_take_turns(pg_ledger_url: str) -> None:
    """Four `farebox migrate` at once on a new database (several hosts starting together): each exits 0 and the
    schema is migrated once. Without the advisory lock, the later ones fail on tables the first has made."""
    env = {**os.environ, "FAREBOX_DATABASE_URL": pg_ledger_url}
    farebox = str(Path(sys.executable).parent / "farebox")
    runs = [
        subprocess.Popen([farebox, "migrate", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [run.communicate(timeout=120)[1] for run in runs]
    outcomes = list(zip([run.returncode for run in runs], errors, strict=True))
    assert outcomes == [(0, b"")] * 4
    engines = Engines(pg_ledger_url)
    try:
        assert schema_is_current(engines)
    finally:
        engines.dispose()
