"""`farebox serve` as a user runs it: a real process, a real port, the master key on its first lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from served_process import free_port, wait_healthy  # tests/served_process.py

FAREBOX = [sys.executable, "-m", "farebox"]


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    return env | extra


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [*FAREBOX, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_serve_prints_the_generated_master_key_and_it_works(
    served: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    url, process = served
    assert process.stdout is not None
    first_line = process.stdout.readline()
    match = re.match(r"master key: (fbx_master_\S+)\s+\(generated, saved to farebox\.db\.master-key\)", first_line)
    assert match, first_line
    key = match.group(1)
    assert (tmp_path / "farebox.db.master-key").read_text().strip() == key
    assert (tmp_path / "farebox.db").is_file()
    created = httpx.post(f"{url}/api/admin/accounts", json={"name": "Acme"}, headers={"Authorization": f"Bearer {key}"})
    assert created.status_code == 201, created.text
    refused = httpx.get(f"{url}/api/admin/accounts", headers={"Authorization": "Bearer fbx_master_wrong"})
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"


def test_bad_setting_stops_start_up_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [*FAREBOX, "serve"],
        cwd=tmp_path,
        env=_environment(FAREBOX_PORT="abc"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "FAREBOX_PORT" in lines[0]


def test_bad_price_overrides_file_stops_start_up(tmp_path: Path) -> None:
    overrides = tmp_path / "prices.toml"
    overrides.write_text('[[prices]]\nmodel = "x"\ninput_mtok = 2.5\n')
    result = subprocess.run(
        [*FAREBOX, "serve"],
        cwd=tmp_path,
        env=_environment(FAREBOX_PRICE_OVERRIDES=str(overrides)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "prices.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://farebox:s3cret@127.0.0.1:{free_port()}/ledger"
    for command, code in ((["serve"], 2), (["accounts", "list"], 1)):
        result = subprocess.run(
            [*FAREBOX, *command],
            cwd=tmp_path,
            env=_environment(FAREBOX_DATABASE_URL=url),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == code
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: cannot use the ledger database"), result.stderr
        assert "s3cret" not in result.stderr + result.stdout


def test_a_restart_shows_only_the_start_of_the_key_and_the_files_are_private(
    served: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    _, process = served
    assert process.stdout is not None
    key = process.stdout.readline().split()[2]
    process.terminate()
    process.wait(timeout=10)
    port = free_port()
    again = subprocess.Popen(
        [*FAREBOX, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", again)
        assert again.stdout is not None
        first_line = again.stdout.readline()
    finally:
        again.terminate()
        again.wait(timeout=10)
        if again.stdout is not None:
            again.stdout.close()
    assert first_line.startswith(f"master key: {key[:14]}…  (from ") and key not in first_line
    for name in ("farebox.db", "farebox.db.master-key"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
