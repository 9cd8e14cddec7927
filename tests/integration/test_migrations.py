"""The packaged migrations: their naming convention, the cheap "already current" check before them, and the schema
they build being the one `farebox.ledger.schema` declares."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

import farebox.ledger.engine
from farebox.ledger.engine import Engines, head_revision, migrate, schema_is_current
from farebox.ledger.schema import metadata

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


def test_the_migrated_schema_is_the_declared_one(ledger_url: str) -> None:
    engines = Engines(ledger_url)
    try:
        migrate(engines)
        with engines.writer.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engines.dispose()
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
