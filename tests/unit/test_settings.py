"""Settings: flags over environment over farebox.toml over defaults; bad settings are one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from farebox.settings import SettingsError, load_settings, master_key_file, provider_credentials, resolve_master_key


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATABASE_URL", "MASTER_KEY", "HOST", "PORT", "PRICE_OVERRIDES", "CONFIG", "ENVIRONMENT"):
        monkeypatch.delenv(f"FAREBOX_{name}", raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///farebox.db"
    assert (settings.host, settings.port) == ("127.0.0.1", 4000)


def test_flags_beat_environment_beat_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "farebox.toml").write_text('port = 4100\nhost = "0.0.0.0"\ndatabase_url = "sqlite:///t.db"\n')
    assert load_settings().port == 4100
    monkeypatch.setenv("FAREBOX_PORT", "4200")
    settings = load_settings()
    assert (settings.port, settings.host, settings.database_url) == (4200, "0.0.0.0", "sqlite:///t.db")
    assert load_settings(port=4300, host=None).port == 4300


def test_config_file_named_by_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text("port = 4500\n")
    monkeypatch.setenv("FAREBOX_CONFIG", str(config))
    assert load_settings().port == 4500
    monkeypatch.setenv("FAREBOX_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(SettingsError, match="FAREBOX_CONFIG: file not found"):
        load_settings()


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        (
            "FAREBOX_PORT",
            "abc",
            "setting port (env FAREBOX_PORT or farebox.toml `port`): Input should be a valid integer",
        ),
        ("FAREBOX_PORT", "70000", "setting port (env FAREBOX_PORT"),
        ("FAREBOX_DATABASE_URL", "mysql://x/y", "unsupported database"),
        ("FAREBOX_DATABASE_URL", "sqlite://", "needs a file path"),
        (
            "FAREBOX_PRICE_OVERRIDES",
            "/nonexistent.toml",
            "setting price_overrides (env FAREBOX_PRICE_OVERRIDES or farebox.toml `price_overrides`): file not found",
        ),
    ],
)
def test_bad_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "farebox.toml").write_text("prot = 4000\n")
    with pytest.raises(SettingsError, match="unknown setting .prot."):
        load_settings()


def test_placeholder_master_key_refused_in_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAREBOX_ENVIRONMENT", "prod")
    monkeypatch.setenv("FAREBOX_MASTER_KEY", "changeme")
    with pytest.raises(SettingsError, match="placeholder"):
        load_settings()
    monkeypatch.setenv("FAREBOX_ENVIRONMENT", "dev")
    assert load_settings().master_key is not None


def test_master_key_generated_once_and_kept_beside_the_ledger(tmp_path: Path) -> None:
    settings = load_settings(database_url=f"sqlite:///{tmp_path}/data/l.db")
    key, generated = resolve_master_key(settings)
    assert generated and key.startswith("fbx_master_")
    assert master_key_file(settings) == tmp_path / "data" / "l.db.master-key"
    assert master_key_file(settings).stat().st_mode & 0o777 == 0o600
    assert resolve_master_key(settings) == (key, False)


def test_master_key_from_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAREBOX_MASTER_KEY", "a-very-long-operator-key")
    assert resolve_master_key(load_settings()) == ("a-very-long-operator-key", False)


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "farebox.toml").write_text("port = = 4\n")
    with pytest.raises(SettingsError, match="farebox.toml: not valid TOML") as caught:
        load_settings()
    assert "\n" not in str(caught.value)


def test_models_from_toml_and_their_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "farebox.toml").write_text(
        '[[models]]\nname = "gpt-4o"\nprovider = "openai"\napi_key_env = "FAREBOX_TEST_OPENAI_KEY"\n'
        '[[models]]\nname = "local"\nprovider = "openai_compatible"\nbase_url = "http://gpu:8000/v1"\n'
        'api_key_env = "FAREBOX_TEST_LOCAL_KEY"\n'
    )
    monkeypatch.delenv("FAREBOX_TEST_LOCAL_KEY", raising=False)
    settings = load_settings()
    assert [route.name for route in settings.models] == ["gpt-4o", "local"]
    monkeypatch.delenv("FAREBOX_TEST_OPENAI_KEY", raising=False)
    with pytest.raises(SettingsError, match="model 'gpt-4o': environment variable FAREBOX_TEST_OPENAI_KEY is not set"):
        provider_credentials(settings.models)
    monkeypatch.setenv("FAREBOX_TEST_OPENAI_KEY", "sk-real")
    assert provider_credentials(settings.models) == {"gpt-4o": "sk-real"}  # local's key is optional


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[[models]]\nname = "x"\nprovider = "azure"\n',
            "setting models.0 .*model 'x': provider azure needs a base_url",
        ),
        ('[[models]]\nname = "x"\nprovider = "nope"\n', "setting models.0.provider .*Input should be"),
        (
            '[[models]]\nname = "x"\nprovider = "mock"\n[[models]]\nname = "x"\nprovider = "mock"\n',
            "model 'x' is declared twice",
        ),
    ],
)
def test_a_bad_model_entry_is_one_line_naming_it(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "farebox.toml").write_text(toml)
    with pytest.raises(SettingsError, match=message) as caught:
        load_settings()
    assert "\n" not in str(caught.value)
