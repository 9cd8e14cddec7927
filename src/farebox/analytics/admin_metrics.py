"""`GET /api/admin/analytics/performance-metrics` (seed 004): how long each analytics endpoint has taken to answer, as
this process has seen (`farebox.analytics.query_times`). The operator's: the master key only, since the times are of
every account's requests.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from farebox.analytics.admin_common import Caller, envelope, master_only
from farebox.analytics.query_times import KEPT, QueryTimes

__all__ = ["router"]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"])


@router.get(
    "/performance-metrics",
    summary="How long each analytics endpoint has taken to answer in this process: p50, p95 and the longest",
    responses={403: {"description": "Anything but the master key (`master_key_required`)."}},
)
async def performance_metrics(request: Request, viewer: Caller) -> Response:
    """Per analytics endpoint (method and path), since this process started: its requests, its error answers, and
    the 50th and 95th percentiles and the longest of its latest successful answers' times, in ms. The slowest first."""
    master_only(viewer, "the server's query times")
    times: QueryTimes = request.app.state.query_times
    return envelope(
        {
            "since": times.since.isoformat().replace("+00:00", "Z"),
            "keptPerEndpoint": KEPT,
            "endpoints": [
                {
                    "method": endpoint.method,
                    "path": endpoint.path,
                    "requests": endpoint.requests,
                    "errors": endpoint.errors,
                    "p50Ms": endpoint.p50_ms,
                    "p95Ms": endpoint.p95_ms,
                    "maxMs": endpoint.max_ms,
                }
                for endpoint in times.summary()
            ],
        }
    )
