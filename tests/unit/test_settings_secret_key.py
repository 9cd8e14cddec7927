"""settings: the server secret (`secret_key`): validated, never shown, generated once beside a SQLite ledger
(mode 0600), required for PostgreSQL, and never the master key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from farebox.settings import SettingsError, load_settings, resolve_secret_key, secret_key_file

LONG_ENOUGH = "s" * 32


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("FAREBOX_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_a_server_secret_from_the_environment_wins_and_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAREBOX_SECRET_KEY", LONG_ENOUGH)
    settings = load_settings(database_url="postgresql://u:p@db/farebox")
    assert resolve_secret_key(settings) == (LONG_ENOUGH, False)
    assert LONG_ENOUGH not in repr(settings) and LONG_ENOUGH not in str(settings.model_dump())


@pytest.mark.parametrize("value", ["", "changeme", "s" * 31])
def test_a_short_server_secret_is_refused_in_every_environment(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("FAREBOX_SECRET_KEY", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("setting secret_key (env FAREBOX_SECRET_KEY or farebox.toml `secret_key`): ")
    assert "at least 32 characters" in message and "\n" not in message
    if value:
        assert value not in message.split(": ", 1)[1], "the refused value is echoed"


def test_the_server_secret_must_not_be_the_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAREBOX_SECRET_KEY", LONG_ENOUGH)
    monkeypatch.setenv("FAREBOX_MASTER_KEY", LONG_ENOUGH)
    with pytest.raises(SettingsError, match="^setting secret_key: must not be the master key"):
        load_settings()
    monkeypatch.setenv("FAREBOX_MASTER_KEY", LONG_ENOUGH + "-master")
    assert load_settings().secret_key is not None


def test_generated_once_beside_the_sqlite_ledger_readable_by_its_owner_only(tmp_path: Path) -> None:
    settings = load_settings(database_url=f"sqlite:///{tmp_path}/data/l.db")
    secret, generated = resolve_secret_key(settings)
    path = tmp_path / "data" / "l.db.secret-key"
    assert generated and len(secret) == 43
    assert secret_key_file(settings) == path
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text() == secret + "\n"
    assert resolve_secret_key(settings) == (secret, False)
    other = resolve_secret_key(load_settings(database_url=f"sqlite:///{tmp_path}/other.db"))[0]
    assert other != secret


def test_a_kept_server_secret_too_short_is_refused_naming_its_file(tmp_path: Path) -> None:
    settings = load_settings(database_url=f"sqlite:///{tmp_path}/l.db")
    (tmp_path / "l.db.secret-key").write_text("short\n")
    with pytest.raises(SettingsError, match=r"l\.db\.secret-key: a server secret needs at least 32 characters"):
        resolve_secret_key(settings)


def test_postgresql_needs_the_server_secret_set(tmp_path: Path) -> None:
    settings = load_settings(database_url="postgresql://u:p@db/farebox")
    assert secret_key_file(settings) is None
    with pytest.raises(SettingsError, match="^setting secret_key \\(FAREBOX_SECRET_KEY\\): required with a PostgreSQL"):
        resolve_secret_key(settings)
    assert list(tmp_path.iterdir()) == [], "nothing generated in the working directory"
