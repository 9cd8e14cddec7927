"""A shutdown whose grace period runs out cancels the requests still in flight; each is still recorded.

The gateway runs with a 1 s grace period in front of a slow mock upstream: one non-streaming request still
waits for its first byte, one stream is still running. When the grace period is over, uvicorn cancels both;
each must leave one event, estimated, `error_type` `cancelled`, before the ledger closes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from farebox.app import create_app
from farebox.gateway.providers.mock import create_mock_app
from farebox.settings import Settings

if TYPE_CHECKING:
    from tests.e2e.conftest import ServerThread

MASTER = "fbx_master_shutdown-e2e-0123456789"


def test_requests_cancelled_by_a_shutdown_are_recorded(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    port_factory: Callable[[], int],
    server_thread: type[ServerThread],
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in Settings.model_fields:
        monkeypatch.delenv(f"FAREBOX_{name.upper()}", raising=False)
    mock_port, port = port_factory(), port_factory()
    model = {
        "name": "slow-gpt",
        "provider": "openai_compatible",
        "upstream_model": "gpt-4o-mini",
        "base_url": f"http://127.0.0.1:{mock_port}/mock/openai/v1",
        "price_as": "openai/gpt-4o-mini",
    }
    database = tmp_path / "ledger.db"
    settings = Settings(database_url=f"sqlite:///{database}", port=port, models=[model])  # type: ignore[list-item]
    url = f"http://127.0.0.1:{port}"
    outcomes: dict[str, Any] = {}

    def ask(name: str, secret: str, *, stream: bool, headers: dict[str, str]) -> None:
        body = {
            "model": "slow-gpt",
            "messages": [{"role": "user", "content": "tell me a long story"}],
            "stream": stream,
        }
        try:
            with httpx.stream(
                "POST",
                f"{url}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {secret}", **headers},
                timeout=30,
            ) as response:
                outcomes[name] = response.headers.get("x-farebox-request-id")
                for _ in response.iter_bytes():
                    pass
        except httpx.HTTPError as exc:
            outcomes.setdefault(name, exc)

    with server_thread(create_mock_app(prefix="/mock", chunk_delay_ms=50), mock_port):
        gateway = server_thread(create_app(settings, master_key=MASTER), port, grace=1)
        with gateway:
            admin = {"Authorization": f"Bearer {MASTER}"}
            account = httpx.post(f"{url}/api/admin/accounts", json={"name": "acme"}, headers=admin).json()
            key = httpx.post(
                f"{url}/api/admin/virtual-keys", json={"account_id": account["id"], "name": "k"}, headers=admin
            ).json()
            waiting = threading.Thread(
                target=ask,
                args=("waiting", key["key"]),
                kwargs={"stream": False, "headers": {"x-mock-latency-ms": "6000"}},
            )
            streaming = threading.Thread(
                target=ask,
                args=("streaming", key["key"]),
                kwargs={"stream": True, "headers": {"x-mock-output-tokens": "2000"}},
            )
            waiting.start()
            streaming.start()
            time.sleep(1.0)  # the stream is under way, the other request still waits for its first byte
        waiting.join(timeout=10)
        streaming.join(timeout=10)

    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        rows = [dict(row) for row in connection.execute("SELECT * FROM usage_events WHERE key_id = ?", (key["id"],))]
    assert len(rows) == 2, rows
    by_stream = {bool(row["streamed"]): row for row in rows}
    for row in rows:
        assert (row["status"], row["error_type"], row["estimated"]) == ("error", "cancelled", 1)
        assert row["input_tokens"] > 0 and row["cost_nano"] > 0
    assert by_stream[True]["id"] == outcomes["streaming"]
    assert by_stream[True]["output_tokens"] > 0, "the text streamed before the shutdown was not counted"
    assert by_stream[False]["output_tokens"] == 0
