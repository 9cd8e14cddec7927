"""`POST /api/events` bounds what one event may say: its timestamp, its counts and its cost (the `ingest_*` settings).

An absurd event refuses its whole batch with 422 naming the field, before anything is written: one event with
10^12 tokens used to record $12,500,000 against a key capped at $50, and a timestamp in year 9999 answered 503.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from farebox.app import create_app
from farebox.core.owners import VirtualKey
from farebox.ledger.base import Ledger
from farebox.ledger.reader import LedgerReader
from farebox.settings import Settings

pytestmark = pytest.mark.anyio

MASTER = "fbx_master_ingest-limits-test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Ingest:
    client: httpx.AsyncClient
    ledger: Ledger
    key: VirtualKey

    async def post(self, *events: dict[str, Any]) -> httpx.Response:
        headers = {"authorization": f"Bearer {MASTER}"}
        return await self.client.post("/api/events", json={"events": list(events)}, headers=headers)

    async def recorded(self, event_id: str) -> bool:
        return await LedgerReader(self.ledger).event(event_id) is not None

    def event(self, event_id: str, **fields: Any) -> dict[str, Any]:
        event = {"id": event_id, "axis": "llm", "key_id": self.key.id, "provider": "openai", "model": "gpt-4o"}
        return event | {"input_tokens": 1000, "output_tokens": 100} | fields


@pytest.fixture
async def ingest(tmp_path: Path) -> AsyncIterator[Ingest]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        ingest_max_age_days=30,
        ingest_max_future_seconds=60,
        ingest_max_tokens=1_000_000,
        ingest_max_cost_usd=Decimal("5"),
    )
    ledger = Ledger(settings.database_url)
    app = create_app(settings, ledger=ledger, master_key=MASTER)
    await ledger.start()
    try:
        directory = app.state.services.directory
        account = await directory.create_account(name="Acme")
        key, _ = await directory.create_key(account.id, name="ci-bot", spend_cap_nano=50 * 10**9)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://farebox.test") as client:
            yield Ingest(client, ledger, key)
    finally:
        await ledger.close()


def refused_field(response: httpx.Response) -> tuple[int, str, str]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed" and "Traceback" not in response.text
    (detail,) = error["details"]
    return detail["index"], detail["loc"], detail["message"]


@pytest.mark.parametrize(
    "timestamp", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59Z"]
)
async def test_a_timestamp_off_the_calendar_is_422_not_a_ledger_error(
    ingest: Ingest, timestamp: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    response = await ingest.post(ingest.event("ok"), ingest.event("far", timestamp=timestamp))
    index, loc, message = refused_field(response)
    assert (index, loc) == (1, "timestamp") and "30 days before now and 60 seconds after it" in message
    assert not await ingest.recorded("ok")  # the batch is all or nothing
    assert "OverflowError" not in caplog.text


async def test_the_timestamp_window_is_the_settings(ingest: Ingest) -> None:
    now = datetime.now(UTC)
    inside = [
        ingest.event("old-enough", timestamp=(now - timedelta(days=29)).isoformat()),
        ingest.event("skewed", timestamp=(now + timedelta(seconds=30)).isoformat()),
    ]
    assert (await ingest.post(*inside)).status_code == 200
    too_old = ingest.event("too-old", timestamp=(now - timedelta(days=31)).isoformat())
    assert refused_field(await ingest.post(too_old))[1] == "timestamp"
    ahead = ingest.event("ahead", timestamp=(now + timedelta(minutes=5)).isoformat())
    assert refused_field(await ingest.post(ahead))[1] == "timestamp"


@pytest.mark.parametrize(
    "field", ["input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens", "characters"]
)
async def test_a_count_over_the_maximum_is_422_naming_it(ingest: Ingest, field: str) -> None:
    counts = {"input_tokens": 2_000_000, "output_tokens": 2_000_000, field: 1_000_001}
    response = await ingest.post(ingest.event("huge", model="no-such-model", **counts))
    details = response.json()["error"]["details"]
    assert response.status_code == 422 and field in {detail["loc"] for detail in details}
    assert all("at most 1,000,000 (setting ingest_max_tokens)" in detail["message"] for detail in details)
    assert not await ingest.recorded("huge")


async def test_the_old_absurd_event_no_longer_records_millions(ingest: Ingest) -> None:
    response = await ingest.post(ingest.event("absurd", input_tokens=10**12, output_tokens=0))
    assert refused_field(response)[1] == "input_tokens"
    assert not await ingest.recorded("absurd")


async def test_a_cost_over_the_maximum_is_422_given_or_priced(ingest: Ingest) -> None:
    given = ingest.event("given", cost_usd="5.000000001")
    _, loc, message = refused_field(await ingest.post(given))
    assert loc == "cost_usd" and message.startswith("given at 5.000000001 USD, over the 5.00 USD")
    priced = ingest.event("priced", output_tokens=600_000)  # 600,000 x $10/M = $6 of gpt-4o output
    _, loc, message = refused_field(await ingest.post(priced))
    assert loc == "cost_usd" and message.startswith("priced at 6.0025 USD")
    at_the_limit = ingest.event("at-limit", cost_usd="5")
    assert (await ingest.post(at_the_limit)).json()["results"][0]["cost_usd"] == "5.00"


async def test_a_shorter_raw_event_retention_bounds_how_far_back_an_event_may_lie(tmp_path: Path) -> None:
    """An event older than `raw_events_retention_days` could land in a month already removed, or be counted again
    after its id went with it: it is refused like one older than `ingest_max_age_days`."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}", raw_events_retention_days=10)
    ledger = Ledger(settings.database_url)
    app = create_app(settings, ledger=ledger, master_key=MASTER)
    await ledger.start()
    try:
        account = await app.state.services.directory.create_account(name="Acme")
        key, _ = await app.state.services.directory.create_key(account.id, name="ci-bot")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://farebox.test") as client:
            ingest = Ingest(client, ledger, key)
            now = datetime.now(UTC)
            assert (await ingest.post(ingest.event("9d", timestamp=(now - timedelta(days=9)).isoformat()))).is_success
            _, loc, message = refused_field(
                await ingest.post(ingest.event("11d", timestamp=(now - timedelta(days=11)).isoformat()))
            )
            assert loc == "timestamp"
            assert "10 days before now" in message and "raw_events_retention_days" in message
    finally:
        await ledger.close()
