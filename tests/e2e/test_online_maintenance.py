"""Schema work while gateway processes serve: `farebox maintain` drops a month of raw events (a lock on the events
table) and `farebox migrate` runs, while two `farebox serve` processes on the same PostgreSQL ledger take a stream
of SDK requests. No request fails and every one is recorded; the month's totals stay in the rollups.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from scale_out_servers import MASTER, Servers, admin, hammer, key_costs

from farebox.core.events import RecordResult
from farebox.ledger.base import Ledger
from farebox.ledger.engine import Engines
from farebox.ledger.partitions import add_months

if TYPE_CHECKING:
    from tests.conftest import EventFactory

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

OLD_EVENTS = 40


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _old_month(pg_ledger_url: str, at: datetime) -> str:
    """Make the partition of `at`'s month, as the ledger would have in that month."""
    engines = Engines(pg_ledger_url)
    try:
        with engines.writer.begin() as connection:
            (made,) = add_months(connection, now=at, months=1)
            return made
    finally:
        engines.dispose()


def _rollup_cost(pg_ledger_url: str, before: datetime) -> int:
    """The cost the quarter-hour rollups hold before `before`."""
    with psycopg.connect(pg_ledger_url) as connection:
        row = connection.execute(
            "SELECT coalesce(sum(cost_nano), 0) FROM usage_rollups WHERE bucket < %s", (int(before.timestamp()),)
        ).fetchone()
        assert row is not None
        return int(row[0])


async def _command(env: dict[str, str], *args: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "farebox", *args, "--json", env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out
    return json.loads(out) if out.strip().startswith(b"{") else {}


async def test_a_month_is_dropped_and_a_migration_runs_while_two_processes_serve(
    pg_ledger_url: str, redis_url: str, tmp_path: Path, make_event: EventFactory
) -> None:
    servers = Servers(pg_ledger_url, redis_url, tmp_path)
    try:
        first, _ = servers.start()
        second, _ = servers.start()
        old = datetime.now(UTC) - timedelta(days=150)
        partition = _old_month(pg_ledger_url, old)
        async with Ledger(pg_ledger_url) as ledger:
            results = await ledger.record_many([make_event(timestamp=old) for _ in range(OLD_EVENTS)])
        assert results == [RecordResult.RECORDED] * OLD_EVENTS
        month_after = old + timedelta(days=40)
        kept_cost = _rollup_cost(pg_ledger_url, month_after)
        assert kept_cost > 0
        account = admin(first, "POST", "/api/admin/accounts", json={"name": "online"}).json()["id"]
        created = admin(first, "POST", "/api/admin/virtual-keys", json={"account_id": account, "name": "k"}).json()
        env = {**os.environ, **servers.env, "FAREBOX_RAW_EVENTS_RETENTION_DAYS": "60", "FAREBOX_MASTER_KEY": MASTER}

        served = 0
        maintenance = asyncio.ensure_future(
            asyncio.gather(_command(env, "maintain"), _command(env, "migrate"), _command(env, "maintain"))
        )
        while not maintenance.done() or served == 0:
            successes, refusals = await hammer([first, second], created["key"])
            assert refusals == []
            served += successes
        maintained, _, again = await maintenance

        # The two rounds ran at once: one dropped the month, the other found nothing left to do.
        rounds = (maintained, again)
        assert sorted(name for done in rounds for name in done["partitionsDropped"]) == [partition]
        assert sum(done["eventsDeleted"] for done in rounds) == OLD_EVENTS
        assert len(key_costs(pg_ledger_url, created["id"])) == served
        assert _rollup_cost(pg_ledger_url, month_after) == kept_cost, "the rollups of the dropped month changed"
    finally:
        servers.stop()
