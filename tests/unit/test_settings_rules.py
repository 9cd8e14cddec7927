"""settings: every setting's range, each bad value a one-line error naming the setting and where to set it,
values read from the environment as text, the source precedence, and master keys refused in prod."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from farebox.settings import Settings, SettingsError, load_settings, master_key_file, resolve_master_key


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("FAREBOX_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def where(name: str) -> str:
    return f"setting {name} (env FAREBOX_{name.upper()} or farebox.toml `{name}`): "


# --- ranges: the last good value on each side, and the first bad one -------------------------------------------

_RANGES: list[tuple[str, Any, Any, str]] = [
    ("port", 1, 0, "greater than or equal to 1"),
    ("port", 65535, 65536, "less than or equal to 65535"),
    ("max_body_bytes", 1024, 1023, "greater than or equal to 1024"),
    ("upstream_timeout_seconds", 3600, 3600.5, "less than or equal to 3600"),
    ("upstream_timeout_seconds", 0.001, 0, "greater than 0"),
    ("shutdown_grace_seconds", 1, 0, "greater than or equal to 1"),
    ("shutdown_grace_seconds", 86_400, 86_401, "less than or equal to 86400"),
    ("budget_default_output_tokens", 1, 0, "greater than or equal to 1"),
    ("budget_default_output_tokens", 10_000_000, 10_000_001, "less than or equal to 10000000"),
    ("webhook_timeout_seconds", 300, 301, "less than or equal to 300"),
    ("webhook_timeout_seconds", 0.1, 0, "greater than 0"),
    ("webhook_max_attempts", 1, 0, "greater than or equal to 1"),
    ("webhook_max_attempts", 50, 51, "less than or equal to 50"),
    ("webhook_retry_base_seconds", 3600, 3601, "less than or equal to 3600"),
    ("webhook_retry_base_seconds", 0.5, 0, "greater than 0"),
    ("webhook_retry_max_seconds", 86_400, 86_401, "less than or equal to 86400"),
    ("webhook_retry_max_seconds", 1, -1, "greater than 0"),
    ("webhook_log_retention_days", 1, 0, "greater than or equal to 1"),
    ("webhook_log_retention_days", 3650, 3651, "less than or equal to 3650"),
    ("anomaly_scan_interval_seconds", 0.05, 0.04, "greater than or equal to 0.05"),
    ("anomaly_scan_interval_seconds", 86_400, 86_401, "less than or equal to 86400"),
    ("smtp_port", 1, 0, "greater than or equal to 1"),
    ("smtp_port", 65535, 65536, "less than or equal to 65535"),
    ("embeddings_max_inputs", 1, 0, "greater than or equal to 1"),
    ("embeddings_max_inputs", 1_000_000, 1_000_001, "less than or equal to 1000000"),
    ("embeddings_max_input_tokens", 1, 0, "greater than or equal to 1"),
    ("embeddings_max_input_tokens", 10_000_000, 10_000_001, "less than or equal to 10000000"),
    ("embeddings_max_request_tokens", 1, 0, "greater than or equal to 1"),
    ("embeddings_max_request_tokens", 100_000_000, 100_000_001, "less than or equal to 100000000"),
    ("mock_latency_ms", 0, -1, "greater than or equal to 0"),
    ("mock_latency_ms", 600_000, 600_001, "less than or equal to 600000"),
]


@pytest.mark.parametrize(("name", "good", "bad", "message"), _RANGES, ids=[f"{r[0]}={r[2]}" for r in _RANGES])
def test_each_bound_is_inclusive_where_documented_and_named_when_broken(
    monkeypatch: pytest.MonkeyPatch, name: str, good: Any, bad: Any, message: str
) -> None:
    assert getattr(load_settings(**{name: good}), name) == good
    monkeypatch.setenv(f"FAREBOX_{name.upper()}", str(bad))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    text = str(caught.value)
    assert text.startswith(where(name)), text
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("environment", "staging", "Input should be 'dev' or 'prod'"),
        ("log_level", "trace", "Input should be 'debug', 'info', 'warning' or 'error'"),
        ("smtp_security", "ssl", "Input should be 'none', 'starttls' or 'tls'"),
        ("allow_private_webhook_urls", "maybe", "Input should be a valid boolean"),
        ("webhook_max_attempts", "3.5", "Input should be a valid integer"),
        ("upstream_timeout_seconds", "soon", "Input should be a valid number"),
        ("database_url", "mysql://u@h/db", "unsupported database 'mysql': use sqlite:/// or postgresql://"),
        ("database_url", "sqlite:///:memory:", "the SQLite ledger needs a file path"),
    ],
)
def test_choices_and_types_name_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, bad: str, message: str) -> None:
    monkeypatch.setenv(f"FAREBOX_{name.upper()}", bad)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    text = str(caught.value)
    assert text.startswith(where(name)), text
    assert message in text


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("allow_private_webhook_urls", "true", True),
        ("allow_private_webhook_urls", "1", True),
        ("allow_private_webhook_urls", "false", False),
        ("allow_private_webhook_urls", "0", False),
        ("port", " 4001 ", 4001),
        ("upstream_timeout_seconds", "0.5", 0.5),
        ("environment", "prod", "prod"),
        ("smtp_security", "tls", "tls"),
        ("database_url", "postgresql://u:p@db:5432/farebox", "postgresql://u:p@db:5432/farebox"),
        ("host", "0.0.0.0", "0.0.0.0"),
    ],
)
def test_environment_text_is_read_as_the_settings_type(
    monkeypatch: pytest.MonkeyPatch, name: str, text: str, value: Any
) -> None:
    monkeypatch.setenv(f"FAREBOX_{name.upper()}", text)
    assert getattr(load_settings(), name) == value


def test_defaults_of_the_operational_settings() -> None:
    settings = load_settings()
    assert settings.max_body_bytes == 8 * 1024 * 1024
    assert (settings.environment, settings.log_level) == ("dev", "info")
    assert settings.allow_private_webhook_urls is False
    assert (settings.webhook_max_attempts, settings.webhook_log_retention_days) == (12, 30)
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_security) == (None, 587, "starttls")
    assert settings.master_key is None and settings.price_overrides is None and settings.models == ()


# --- the SMTP sender --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("smtp_from", [None, ""])
def test_smtp_host_without_a_from_address_is_refused(smtp_from: str | None) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(smtp_host="mail.example.com", smtp_from=smtp_from)
    assert str(caught.value) == "setting smtp_from: set the From address of e-mail alerts when smtp_host is set"


def test_smtp_with_a_from_address_is_taken_and_its_password_kept_secret() -> None:
    settings = load_settings(
        smtp_host="mail.example.com", smtp_from="alerts@example.com", smtp_username="u", smtp_password="hunter2hunter2"
    )
    assert settings.smtp_from == "alerts@example.com"
    assert isinstance(settings.smtp_password, SecretStr)
    assert settings.smtp_password.get_secret_value() == "hunter2hunter2"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


def test_a_from_address_alone_needs_no_host() -> None:
    assert load_settings(smtp_from="alerts@example.com").smtp_host is None


# --- shared counters ---------------------------------------------------------------------------------------------


def test_redis_url_needs_a_postgresql_ledger_and_is_kept_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(redis_url="redis://127.0.0.1:6379/0")
    assert str(caught.value) == (
        "setting redis_url: shared counters need a PostgreSQL ledger (database_url), which every process uses"
    )
    monkeypatch.setenv("FAREBOX_REDIS_URL", "redis://:hunter2hunter2@cache.internal:6379/1")
    settings = load_settings(database_url="postgresql://farebox@db.internal/farebox")
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == "redis://:hunter2hunter2@cache.internal:6379/1"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


def test_more_than_one_worker_needs_redis() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(database_url="postgresql://farebox@db.internal/farebox", workers=2)
    assert str(caught.value) == (
        "setting workers: more than one process needs redis_url, through which they share spend counters"
    )
    shared = load_settings(
        database_url="postgresql://farebox@db.internal/farebox", redis_url="redis://cache.internal:6379/0", workers=4
    )
    assert shared.workers == 4


def test_metrics_token_is_a_long_token_of_its_own() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(metrics_token="short")
    assert str(caught.value) == where("metrics_token") + "use at least 16 characters"
    master = "fbx_master_metrics-rules-0123456789"
    with pytest.raises(SettingsError, match="metrics_token: must be a token of its own"):
        load_settings(master_key=master, metrics_token=master)
    settings = load_settings(metrics_token="a-metrics-token-0123456789")
    assert "a-metrics-token" not in repr(settings)


def test_redis_url_of_another_scheme_is_named() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(database_url="postgresql://farebox@db.internal/farebox", redis_url="http://cache.internal")
    assert str(caught.value) == where("redis_url") + "use a redis://, rediss:// or unix:// URL"


# --- unknown settings -------------------------------------------------------------------------------------------


def test_an_unknown_flag_is_named() -> None:
    with pytest.raises(SettingsError, match="^unknown setting 'bogus' "):
        load_settings(bogus=1)


def test_an_unknown_toml_table_key_is_named_with_its_path(tmp_path: Path) -> None:
    (tmp_path / "farebox.toml").write_text('[[models]]\nname = "x"\nprovider = "mock"\ncolour = "red"\n')
    with pytest.raises(SettingsError, match=r"^unknown setting 'models\.0\.colour'"):
        load_settings()


def test_an_unrelated_farebox_variable_in_the_environment_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the file is checked for unknown keys: the environment is shared with other programs."""
    monkeypatch.setenv("FAREBOX_TEST_SOMETHING_ELSE", "1")
    assert load_settings().port == 4000


# --- precedence -------------------------------------------------------------------------------------------------


def test_each_source_wins_over_the_ones_below_it_setting_by_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "farebox.toml").write_text('log_level = "debug"\nwebhook_max_attempts = 3\nhost = "10.0.0.1"\n')
    monkeypatch.setenv("FAREBOX_WEBHOOK_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("FAREBOX_HOST", "10.0.0.2")
    settings = load_settings(host="10.0.0.3")
    assert settings.log_level == "debug"  # file only
    assert settings.webhook_max_attempts == 4  # environment over file
    assert settings.host == "10.0.0.3"  # flag over environment
    assert settings.port == 4000  # nobody: default


def test_a_none_flag_leaves_the_lower_sources_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAREBOX_PORT", "4200")
    assert load_settings(port=None, host=None).port == 4200


def test_the_file_named_by_farebox_config_replaces_the_one_in_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "farebox.toml").write_text('port = 4100\nlog_level = "debug"\n')
    other = tmp_path / "conf" / "prod.toml"
    other.parent.mkdir()
    other.write_text("port = 4600\n")
    monkeypatch.setenv("FAREBOX_CONFIG", str(other))
    settings = load_settings()
    assert settings.port == 4600
    assert settings.log_level == "info", "the working directory's file is not read at all"


def test_invalid_toml_in_the_named_file_names_that_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("port = \n")
    monkeypatch.setenv("FAREBOX_CONFIG", str(config))
    with pytest.raises(SettingsError, match=f"^{config}: not valid TOML: "):
        load_settings()


def test_a_bad_value_in_the_file_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "farebox.toml").write_text('webhook_max_attempts = "many"\n')
    with pytest.raises(SettingsError, match="^setting webhook_max_attempts .*valid integer"):
        load_settings()


def test_price_overrides_must_name_an_existing_file(tmp_path: Path) -> None:
    overrides = tmp_path / "prices.toml"
    overrides.write_text('[[prices]]\nmodel = "x"\nper_unit = "1"\n')
    assert load_settings(price_overrides=str(overrides)).price_overrides == overrides
    with pytest.raises(SettingsError, match="price_overrides.*file not found"):
        load_settings(price_overrides=str(tmp_path))  # a directory is not a file


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.port = 5000  # type: ignore[misc]  # the point: it cannot be assigned
    assert isinstance(settings, Settings)


# --- master keys ------------------------------------------------------------------------------------------------

_PROD_REFUSAL = "setting master_key (FAREBOX_MASTER_KEY): a placeholder or short key is refused in prod"


@pytest.mark.parametrize(
    "key",
    ["changeme", "change-me", "secret", "master", "password", "sk-1234", "test", "CHANGEME", "Password", "x" * 15],
)
def test_placeholder_or_short_master_keys_are_refused_in_prod_only(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("FAREBOX_MASTER_KEY", key)
    monkeypatch.setenv("FAREBOX_ENVIRONMENT", "prod")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == _PROD_REFUSAL  # exactly this: the key itself is never echoed
    monkeypatch.setenv("FAREBOX_ENVIRONMENT", "dev")
    assert load_settings().master_key == SecretStr(key)


def test_a_sixteen_character_key_is_long_enough_in_prod() -> None:
    settings = load_settings(environment="prod", master_key="k" * 16)
    assert resolve_master_key(settings) == ("k" * 16, False)


def test_a_placeholder_key_given_as_a_flag_is_refused_in_prod_from_the_file(tmp_path: Path) -> None:
    (tmp_path / "farebox.toml").write_text('environment = "prod"\n')
    with pytest.raises(SettingsError, match="refused in prod"):
        load_settings(master_key="secret")


def test_prod_without_a_master_key_is_allowed_and_generates_one(tmp_path: Path) -> None:
    settings = load_settings(environment="prod", database_url=f"sqlite:///{tmp_path}/l.db")
    key, generated = resolve_master_key(settings)
    assert generated and len(key) > 40


def test_an_empty_master_key_is_refused_in_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAREBOX_ENVIRONMENT", "prod")
    monkeypatch.setenv("FAREBOX_MASTER_KEY", "")
    with pytest.raises(SettingsError, match="refused in prod"):
        load_settings()


def test_master_key_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAREBOX_MASTER_KEY", "a-very-long-operator-key")
    settings = load_settings()
    assert "a-very-long-operator-key" not in repr(settings)
    assert "a-very-long-operator-key" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///farebox.db", Path("farebox.db.master-key")),
        ("sqlite:///data/ledger.sqlite", Path("data/ledger.sqlite.master-key")),
        ("sqlite:////var/lib/farebox/l.db", Path("/var/lib/farebox/l.db.master-key")),
        ("postgresql://u:p@db/farebox", Path("farebox.master-key")),
    ],
)
def test_where_a_generated_master_key_is_kept(url: str, path: Path) -> None:
    assert master_key_file(load_settings(database_url=url)) == path


def test_an_existing_key_file_is_read_not_replaced(tmp_path: Path) -> None:
    settings = load_settings(database_url=f"sqlite:///{tmp_path}/l.db")
    master_key_file(settings).write_text("fbx_master_kept\n")
    assert resolve_master_key(settings) == ("fbx_master_kept", False)
    assert master_key_file(settings).read_text() == "fbx_master_kept\n"


def test_generated_keys_differ_between_ledgers(tmp_path: Path) -> None:
    first, _ = resolve_master_key(load_settings(database_url=f"sqlite:///{tmp_path}/a.db"))
    second, _ = resolve_master_key(load_settings(database_url=f"sqlite:///{tmp_path}/b.db"))
    assert first != second and first.startswith("fbx_master_") and second.startswith("fbx_master_")
