"""A `farebox serve` the tests start as a real process: a free port to give it, and waiting until it answers."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Any

import httpx

__all__ = ["free_port", "wait_healthy"]


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[Any], *, seconds: float = 30) -> None:
    """Wait until the server at `url` answers `GET /healthz`.

    Raises:
        AssertionError: the process exited, or did not answer within `seconds`.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "farebox serve exited early"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("farebox serve did not become healthy")
