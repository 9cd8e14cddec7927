"""`GET /api/admin/analytics/ingestion-status` and `GET /api/admin/analytics/pipeline-health` over HTTP on both
backends: events per source and their rates, refusals by reason, the writer's queue; the outbox's backlog, failing
deliveries and the rollups checked against the events, healthy until a rollup is made wrong; master key only."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from admin_client import MASTER, Api, assert_error
from sqlalchemy import insert, update

from farebox.core.events import Axis, UsageEvent, epoch_us
from farebox.ledger.schema import outbox, outbox_attempts, usage_rollups

pytestmark = pytest.mark.anyio


@pytest.fixture
def api(api_each_backend: Api) -> Api:
    return api_each_backend


async def _get(api: Api, path: str, token: str = MASTER) -> Any:
    response = await api.client.get(f"/api/admin/analytics/{path}", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return json.loads(response.content, parse_float=Decimal)["data"]


async def _world(api: Api) -> dict[str, str]:
    """Acme with a key: two proxied requests and three ingested events in the last hour."""
    now = datetime.now(UTC).replace(microsecond=0)
    api.clock.at = now
    account = await api.account("Acme", plan="enterprise")
    key = await api.key(account["id"])
    await api.ledger.record_many(
        [
            UsageEvent(
                id=f"proxied-{n}",
                timestamp=now - timedelta(minutes=n),
                account_id=account["id"],
                key_id=key["id"],
                axis=Axis.LLM,
                provider="openai",
                model="gpt-4o",
                canonical_model="gpt-4o",
                operation="chat.completions",
                input_tokens=10,
                output_tokens=2,
                cost_nano=1_000,
            )
            for n in (1, 2)
        ]
    )
    events = [
        {"id": f"ingested-{n}", "key_id": key["id"], "axis": "llm", "model": "gpt-4o", "cost_usd": "0.01"}
        for n in range(3)
    ]
    posted = await api.client.post(
        "/api/events", json={"events": events}, headers={"authorization": f"Bearer {MASTER}"}
    )
    assert posted.status_code == 200, posted.text
    return {"account": account["id"], "key": key["id"]}


async def test_ingestion_counts_each_source_and_the_refusals(api: Api) -> None:
    ids = await _world(api)
    headers = {"authorization": f"Bearer {MASTER}"}
    again = {"id": "ingested-0", "key_id": ids["key"], "axis": "llm", "model": "gpt-4o", "cost_usd": "0.01"}
    assert (await api.client.post("/api/events", json={"events": [again]}, headers=headers)).status_code == 200
    future = again | {"id": "future", "timestamp": "2099-01-01T00:00:00Z"}
    for batch in ([future, again | {"id": "good"}], [again | {"id": "unknown-key", "key_id": "nope"}]):
        assert (await api.client.post("/api/events", json={"events": batch}, headers=headers)).status_code == 422
    assert (await api.client.post("/api/events", content=b"not json", headers=headers)).status_code in (400, 422)
    data = await _get(api, "ingestion-status")
    sources = {source["source"]: source for source in data["sources"]}
    assert (sources["proxy"]["eventsLastHour"], sources["ingest"]["eventsLastHour"]) == (2, 3)
    assert sources["ingest"]["eventsLastMinute"] == 3 and sources["ingest"]["eventsPerSecondLastMinute"] > 0
    assert sources["proxy"]["lastEventAt"] == (api.clock.at - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    assert data["eventsPerSecond"]["lastMinute"] >= sources["ingest"]["eventsPerSecondLastMinute"]
    assert data["rejected"] == {"batch:body": 1, "duplicate": 1, "invalid:key_id": 1, "invalid:timestamp": 1}
    assert data["writer"]["running"] is True and data["writer"]["queueDepth"] == 0 and data["writer"]["commits"] > 0


async def test_the_pipeline_is_healthy_and_its_rollups_equal_its_events(api: Api) -> None:
    await _world(api)
    data = await _get(api, "pipeline-health")
    assert (data["status"], data["problems"]) == ("healthy", [])
    check = data["consistency"]
    assert check["consistent"] is True
    assert check["events"] == check["rollups"] == check["keyRollups"]
    assert check["events"] == {"requests": 5, "costNano": 30_002_000, "inputTokens": 20, "outputTokens": 4}
    start = datetime.fromisoformat(check["windowStart"])
    assert datetime.fromisoformat(check["windowEnd"]) - start == timedelta(hours=1)
    assert data["outbox"] == {"pending": 0, "retrying": 0, "oldestPendingAt": None}
    assert data["writer"]["running"] is True and data["failingDeliveries"] == []


async def test_a_wrong_rollup_and_failing_deliveries_make_it_degraded(api: Api) -> None:
    ids = await _world(api)
    now_us = epoch_us(api.clock.at)
    with api.ledger.engines.writer.begin() as connection:
        connection.execute(update(usage_rollups).values(cost_nano=usage_rollups.c.cost_nano + 1))
        row = {
            "account_id": ids["account"],
            "channel": "webhook",
            "endpoint_id": "ep-1",
            "target": "https://hooks.example.test/x",
            "event_type": "usage.threshold",
            "body": "{}",
            "attempts": 1,
            "lease_until_us": None,
            "last_status_code": 503,
            "last_error": None,
            "delivered_at_us": None,
        }
        old = now_us - 10 * 60 * 1_000_000
        connection.execute(
            insert(outbox),
            [
                row | {"id": "msg-1", "created_at_us": old, "status": "pending", "next_attempt_us": now_us},
                row | {"id": "msg-2", "created_at_us": old, "status": "failed", "next_attempt_us": old},
            ],
        )
        connection.execute(
            insert(outbox_attempts),
            [{"outbox_id": "msg-2", "attempt": 1, "at_us": old, "status_code": 503, "error": None, "duration_ms": 5}],
        )
    data = await _get(api, "pipeline-health")
    assert data["status"] == "degraded"
    assert len(data["problems"]) == 3, data["problems"]
    assert data["consistency"]["consistent"] is False
    assert data["consistency"]["rollups"]["costNano"] > data["consistency"]["events"]["costNano"]
    assert data["outbox"]["pending"] == 1 and data["outbox"]["retrying"] == 1
    (failing,) = data["failingDeliveries"]
    assert (failing["endpointId"], failing["failed"], failing["retrying"], failing["lastStatusCode"]) == (
        "ep-1",
        1,
        1,
        503,
    )


async def test_only_the_master_key_reads_them(api: Api) -> None:
    ids = await _world(api)
    owner = await api.member(ids["account"], "o@acme.test", "owner")
    token = await api.token(ids["account"], owner["id"])
    for path in ("ingestion-status", "pipeline-health"):
        response = await api.client.get(f"/api/admin/analytics/{path}", headers={"authorization": f"Bearer {token}"})
        assert_error(response, 403, "master_key_required")
