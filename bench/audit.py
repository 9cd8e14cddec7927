"""What the audit log costs an admin or analytics request: prints figures, asserts nothing.

    .venv/bin/python bench/audit.py [--rounds 6] [--requests 300]

Serves the app in-process (httpx's ASGI transport) on a new SQLite ledger and, in interleaved rounds (the order
reversed every other round), times `--requests` sequential `GET /api/admin/accounts` as the master key with the
audit log as it is (`audited`: one row committed before each answer starts) and with its write made a no-op
(`unaudited`). Prints each variant's median time per request over the rounds, and the difference: what one
request pays for its row, a commit of the ledger's group-commit writer (requests at once share one).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from farebox.app import create_app
from farebox.ledger.audit import AuditLog
from farebox.ledger.base import Ledger
from farebox.settings import Settings

__all__ = ["main"]

_MASTER = "fbx_master_bench-audit-0123456789abcdef"
_RECORD = AuditLog.record


async def _noop(_self: AuditLog, _entry: Any) -> None:
    return None


async def _round(client: httpx.AsyncClient, requests: int, *, audited: bool) -> float:
    """Milliseconds per request over `requests` sequential ones."""
    AuditLog.record = _RECORD if audited else _noop  # type: ignore[method-assign, assignment]
    headers = {"authorization": f"Bearer {_MASTER}"}
    started = time.perf_counter()
    for _ in range(requests):
        response = await client.get("/api/admin/accounts", headers=headers)
        assert response.status_code == 200
    return (time.perf_counter() - started) * 1000 / requests


async def _run(rounds: int, requests: int) -> dict[str, list[float]]:
    directory = Path(tempfile.mkdtemp(prefix="farebox-bench-audit-"))
    settings = Settings(database_url=f"sqlite:///{directory / 'ledger.db'}")
    ledger = Ledger(settings.database_url)
    app = create_app(settings, ledger=ledger, master_key=_MASTER, secret_key="bench-audit-server-secret-" + "s" * 16)
    await ledger.start()
    times: dict[str, list[float]] = {"audited": [], "unaudited": []}
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://farebox.bench") as client:
            await _round(client, 50, audited=True)
            for n in range(rounds):
                order = ("audited", "unaudited") if n % 2 == 0 else ("unaudited", "audited")
                for variant in order:
                    times[variant].append(await _round(client, requests, audited=variant == "audited"))
    finally:
        AuditLog.record = _RECORD  # type: ignore[method-assign]
        await ledger.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    times = asyncio.run(_run(args.rounds, args.requests))
    medians = {variant: statistics.median(values) for variant, values in times.items()}
    for variant, median in medians.items():
        print(f"{variant:>10}: {median:.3f} ms per request (median of {args.rounds} rounds of {args.requests})")
    print(f"{'row':>10}: {medians['audited'] - medians['unaudited']:+.3f} ms per request")
    print(f"{'ratio':>10}: {medians['audited'] / medians['unaudited']:.2f}x the time of an unaudited request")


if __name__ == "__main__":
    main()
