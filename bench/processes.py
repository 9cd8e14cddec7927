"""The processes a benchmark starts: each in a process group of its own, waited for, and stopped with its children."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Service", "Services", "free_port", "signal_group", "wait_ready"]


@dataclass
class Service:
    """A process this script started, in a process group (session) of its own."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    pid_file: Path | None = None
    base: str = ""
    """The OpenAI base URL of a gateway."""

    @property
    def pid(self) -> int:
        """The process the runner samples: the one in the pid file when there is one (LiteLLM), else ours."""
        if self.pid_file is not None and self.pid_file.exists():
            return int(self.pid_file.read_text().strip())
        return self.proc.pid

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Services:
    started: list[Service] = field(default_factory=list)

    def start(
        self, name: str, cmd: list[str], *, cwd: Path, env: dict[str, str], pid_file: Path | None = None
    ) -> Service:
        log = cwd / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        service = Service(name, proc, log, pid_file)
        self.started.append(service)
        return service

    def stop_all(self) -> None:
        """SIGTERM every group we started (newest first), then SIGKILL what is left after 10 s."""
        for service in reversed(self.started):
            signal_group(service.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for service in reversed(self.started):
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            # The group outlives its leader when the leader is a launcher script (LiteLLM's start.sh).
            while _group_alive(service.proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            signal_group(service.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.proc.wait(timeout=5)
        self.started.clear()


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send `sig` to a process group, if it is still there."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(service: Service, url: str | None, port: int, *, timeout: float = 120.0) -> float:
    """Wait until `url` answers 200 (or, without a URL, until the port accepts connections); seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if service.proc.poll() is not None:
            raise RuntimeError(f"{service.name} exited during start-up ({service.proc.returncode}):\n{service.tail()}")
        try:
            if url is None:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return time.monotonic() - started
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{service.name} did not become ready in {timeout:.0f} s:\n{service.tail()}")
