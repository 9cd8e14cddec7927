"""`GET /readyz`: ready when the ledger answers and its writer runs, `503 unready` when they do not; where the
spend counters live. (Redis unreachable, `degraded`, is in `test_scale_out_failures.py`.)"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from farebox.app import create_app
from farebox.ledger.base import Ledger
from farebox.settings import Settings

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway


def test_a_serving_gateway_is_ready_with_its_counters_in_process(gateway: Gateway) -> None:
    answer = httpx.get(f"{gateway.url}/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "ledger": "ok", "counters": "in_process"}


@pytest.mark.anyio
async def test_a_process_whose_ledger_writer_does_not_run_is_unready(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")  # never started: its writer does not run
    app = create_app(Settings(), ledger=ledger, master_key="fbx_master_readyz-0123456789", secret_key="s" * 40)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://farebox") as client:
        answer = await client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "unready", "ledger": "unreachable", "counters": "in_process"}
