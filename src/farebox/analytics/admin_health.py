"""`GET /api/admin/analytics/ingestion-status` and `GET /api/admin/analytics/pipeline-health` (seed 004): where usage
data stands on its way in, and whether what carries it is well. The operator's: the master key only, since both
speak of every account.

Ingestion is this process's (`farebox.core.ingestion`): events committed per second over the last minute and hour,
per source, the latest of each source, the writer's queue, the events refused and why. Pipeline health is the
ledger's (`farebox.ledger.health`): the writer, the outbox's backlog, the deliveries failing, and a check that the
rollups equal the events for the last hour.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from farebox.analytics.admin_common import Caller, envelope, master_only
from farebox.analytics.query_times import TimedRoute
from farebox.core.events import epoch_us, from_epoch_us
from farebox.ledger.aggregates import ROLLUP_BUCKET_SECONDS
from farebox.ledger.health import Sums
from farebox.services import services

__all__ = ["CHECKED_SECONDS", "STALE_BACKLOG", "router"]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"], route_class=TimedRoute)

CHECKED_SECONDS = 3_600
"""The consistency check's window: the last hour of quarter hours, the current one included."""
STALE_BACKLOG = timedelta(minutes=5)
"""A delivery pending longer than this makes the pipeline degraded."""
_FAILING_SINCE = timedelta(days=1)
_RATE = Decimal("0.001")
_MASTER_ONLY: dict[int | str, dict[str, Any]] = {
    403: {"description": "Anything but the master key (`master_key_required`)."}
}


def _at(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _rate(events: int, seconds: float) -> Decimal:
    return (Decimal(events) / Decimal(max(seconds, 1.0))).quantize(_RATE, rounding=ROUND_HALF_EVEN)


@router.get(
    "/ingestion-status",
    summary="Events committed per second over the last minute and hour, per source; the writer's queue; refusals",
    responses=_MASTER_ONLY,
)
async def ingestion_status(request: Request, viewer: Caller) -> Response:
    """This process's ingestion since it started: per source (`proxy`, `ingest`...) the events committed in the last
    minute and hour and their rate per second, the latest event; the writer's queue depth and commits; the events
    refused by reason."""
    master_only(viewer, "every account's ingestion")
    ledger = services(request).ledger
    now = datetime.now(UTC)
    snapshot = ledger.ingestion.snapshot(now)
    uptime = (now - snapshot.since).total_seconds()
    minute_s, hour_s = min(60.0, uptime), min(3_600.0, uptime)
    sources = [
        {
            "source": source.source,
            "eventsLastMinute": source.last_minute,
            "eventsLastHour": source.last_hour,
            "eventsPerSecondLastMinute": _rate(source.last_minute, minute_s),
            "eventsPerSecondLastHour": _rate(source.last_hour, hour_s),
            "lastEventAt": _at(source.last_event_at),
            "lastRecordedAt": _at(source.last_recorded_at),
        }
        for source in snapshot.sources
    ]
    minute = sum(source.last_minute for source in snapshot.sources)
    hour = sum(source.last_hour for source in snapshot.sources)
    return envelope(
        {
            "since": _at(snapshot.since),
            "eventsPerSecond": {"lastMinute": _rate(minute, minute_s), "lastHour": _rate(hour, hour_s)},
            "sources": sources,
            "writer": {
                "running": ledger.writer_running,
                "queueDepth": ledger.writer_queue_depth,
                "commits": ledger.commits,
            },
            "rejected": dict(sorted(snapshot.rejected.items())),
        }
    )


def _sums(sums: Sums) -> dict[str, Any]:
    return {
        "requests": sums.requests,
        "costNano": sums.cost_nano,
        "inputTokens": sums.input_tokens,
        "outputTokens": sums.output_tokens,
    }


@router.get(
    "/pipeline-health",
    summary="The ledger writer, the outbox's backlog, failing deliveries, and the rollups checked against the events",
    responses=_MASTER_ONLY,
)
async def pipeline_health(request: Request, viewer: Caller) -> Response:
    """`healthy`, or `degraded` with the `problems` found: the writer stopped, a delivery pending over five minutes,
    deliveries failing, or the rollups not equal to the events of the last hour."""
    master_only(viewer, "every account's pipeline")
    found = services(request)
    now = found.directory.now()
    ledger, health = found.ledger, found.health
    until_s = int(now.timestamp()) // ROLLUP_BUCKET_SECONDS * ROLLUP_BUCKET_SECONDS + ROLLUP_BUCKET_SECONDS
    tally = await health.tally(since_s=until_s - CHECKED_SECONDS, until_s=until_s)
    backlog = await health.backlog()
    failing = await health.failing(since_us=epoch_us(now - _FAILING_SINCE))
    oldest = None if backlog.oldest_pending_us is None else from_epoch_us(backlog.oldest_pending_us)
    problems = []
    if not ledger.writer_running:
        problems.append("the ledger writer is not running")
    if oldest is not None and now - oldest > STALE_BACKLOG:
        problems.append(f"a delivery has been pending since {_at(oldest)}")
    if failing:
        problems.append(f"deliveries are failing to {len(failing)} destinations")
    if not tally.consistent:
        problems.append("the rollups do not equal the events of the last hour")
    return envelope(
        {
            "status": "degraded" if problems else "healthy",
            "problems": problems,
            "checkedAt": _at(now),
            "writer": {
                "running": ledger.writer_running,
                "queueDepth": ledger.writer_queue_depth,
                "commits": ledger.commits,
            },
            "outbox": {
                "pending": backlog.pending,
                "retrying": backlog.retrying,
                "oldestPendingAt": _at(oldest),
            },
            "failingDeliveries": [
                {
                    "accountId": target.account_id,
                    "channel": target.channel,
                    "endpointId": target.endpoint_id,
                    "failed": target.failed,
                    "retrying": target.retrying,
                    "lastAttemptAt": _at(from_epoch_us(target.last_attempt_us)) if target.last_attempt_us else None,
                    "lastStatusCode": target.last_status_code,
                    "lastError": target.last_error,
                }
                for target in failing
            ],
            "consistency": {
                "windowStart": _at(datetime.fromtimestamp(tally.since_s, UTC)),
                "windowEnd": _at(datetime.fromtimestamp(tally.until_s, UTC)),
                "consistent": tally.consistent,
                "events": _sums(tally.events),
                "rollups": _sums(tally.rollups),
                "keyRollups": _sums(tally.key_rollups),
            },
        }
    )
