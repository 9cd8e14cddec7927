"""The README's five-minute tour, run as written: its shell and Python blocks, against `farebox serve`.

farebox is started as the tour says (`FAREBOX_ALLOW_PRIVATE_WEBHOOK_URLS=true make run`, i.e. `farebox
serve` in a fresh directory); the only edits to the tour's text are the two ports, 4000 and 8765, which
become free ones so the test can run beside anything else.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from farebox.settings import Settings

README = Path(__file__).parents[2] / "README.md"
VENV = Path(sys.executable).parent.parent


def _tour() -> str:
    """The tour's shell blocks, then its Python block run by the venv's python in the same shell."""
    text = README.read_text()
    section = text[text.index("## A five-minute tour") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```(sh|python)\n(.*?)```", section, flags=re.S)
    script = [code for kind, code in blocks if kind == "sh"]
    script += [f".venv/bin/python - <<'PYTHON'\n{code}PYTHON\n" for kind, code in blocks if kind == "python"]
    return "\n".join(script)


@pytest.fixture
def served(tmp_path: Path, port_factory: Callable[[], int]) -> Iterator[tuple[Path, int, int]]:
    """`farebox serve` in a fresh directory holding `.venv`, as `make run` starts it: (dir, port, receiver port)."""
    port, receiver = port_factory(), port_factory()
    (tmp_path / ".venv").symlink_to(VENV)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    env |= {"FAREBOX_PORT": str(port), "FAREBOX_ALLOW_PRIVATE_WEBHOOK_URLS": "true"}
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(tmp_path / ".venv/bin/farebox"), "serve"], cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "farebox serve did not start"
            time.sleep(0.1)
        yield tmp_path, port, receiver
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_the_readme_tour_runs_as_written(served: tuple[Path, int, int]) -> None:
    directory, port, receiver = served
    script = _tour().replace("127.0.0.1:4000", f"127.0.0.1:{port}").replace("8765", str(receiver))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAREBOX_")}
    output = directory / "tour.out"
    with output.open("wb") as sink:
        shell = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=directory,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the tour's receiver runs in the background: stopped with the group
        )
        try:
            assert shell.wait(timeout=120) == 0, output.read_text()
            deadline = time.monotonic() + 10
            while "webhook.test" not in output.read_text():
                assert time.monotonic() < deadline, "the receiver got no webhook:\n" + output.read_text()
                time.sleep(0.05)
        finally:
            os.killpg(shell.pid, signal.SIGTERM)
    printed = output.read_text()
    key = next(orjson.loads(line) for line in printed.splitlines() if line.startswith('{"id"') and "ci-bot" in line)
    assert (key["spend"], key["spend_cap"]) == ("0.0035", "50.00")
    (received,) = [line for line in printed.splitlines() if line.startswith("received v1,")]
    assert orjson.loads(received.split(" ", 2)[2])["type"] == "webhook.test"
    cost, request_id = printed.strip().splitlines()[-1].split()
    assert cost.startswith("0.0000") and len(request_id) > 10
    assert "Traceback" not in printed
    assert Settings.model_fields["port"].default == 4000, "the tour's port is the default one"
