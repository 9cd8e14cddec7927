"""How long the analytics endpoints take to answer, as this process has seen them: the figures of
`GET /api/admin/analytics/performance-metrics`.

`TimedRoute` is the route class of the analytics routers (the usage views, the admin analytics, the exports): it
times each request from the start of its handler until its response is built (a streamed export: until it is ready
to stream), and hands the time to the app's `QueryTimes` (`app.state.query_times`), which keeps the last `KEPT`
times of each endpoint (method and path template) in memory, with its counts since the process started. The proxy's
routes are not timed, so the gateway pays nothing for it. Several processes each keep their own.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["KEPT", "EndpointTimes", "QueryTimes", "TimedRoute"]

KEPT = 1_000
"""The times kept per endpoint: its latest answers."""
_TENTH = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class EndpointTimes:
    """One endpoint's answers: how many since the process started, how many failed (an error answer), and the
    50th and 95th percentiles and the longest of its latest successful ones, in ms to a tenth."""

    method: str
    path: str
    requests: int
    errors: int
    p50_ms: Decimal | None
    p95_ms: Decimal | None
    max_ms: Decimal | None


@dataclass(slots=True)
class _Endpoint:
    times: deque[float] = field(default_factory=lambda: deque(maxlen=KEPT))
    requests: int = 0
    errors: int = 0


class QueryTimes:
    """Each timed endpoint's latest answer times and counts (one app's; all on its event loop)."""

    def __init__(self) -> None:
        self.since = datetime.now(UTC)
        self._endpoints: dict[tuple[str, str], _Endpoint] = {}

    def record(self, method: str, path: str, milliseconds: float | None) -> None:
        """One answer of the endpoint; None for an error answer, whose time is not kept."""
        endpoint = self._endpoints.setdefault((method, path), _Endpoint())
        endpoint.requests += 1
        if milliseconds is None:
            endpoint.errors += 1
        else:
            endpoint.times.append(milliseconds)

    def summary(self) -> list[EndpointTimes]:
        """Every endpoint answered so far, the slowest (by p95) first."""
        found = []
        for (method, path), endpoint in self._endpoints.items():
            kept = sorted(endpoint.times)
            found.append(
                EndpointTimes(
                    method,
                    path,
                    endpoint.requests,
                    endpoint.errors,
                    _at_rank(kept, 0.50),
                    _at_rank(kept, 0.95),
                    _ms(kept[-1]) if kept else None,
                )
            )
        return sorted(found, key=lambda times: (-(times.p95_ms or 0), times.path, times.method))


def _at_rank(kept: list[float], quantile: float) -> Decimal | None:
    """The nearest-rank percentile of sorted times: the smallest time at or above `quantile` of them."""
    if not kept:
        return None
    rank = max(1, -(-len(kept) * int(quantile * 100) // 100))
    return _ms(kept[rank - 1])


def _ms(value: float) -> Decimal:
    return Decimal(str(value)).quantize(_TENTH)


class TimedRoute(APIRoute):
    """A route whose answers are timed into the app's `QueryTimes`, when it has one."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        path = self.path

        async def timed(request: Request) -> Response:
            started = time.perf_counter()
            elapsed: float | None = None
            try:
                response = await handler(request)
                if response.status_code < 400:
                    elapsed = (time.perf_counter() - started) * 1000
                return response
            finally:
                times: QueryTimes | None = getattr(request.app.state, "query_times", None)
                if times is not None:
                    times.record(request.method, path, elapsed)

        return timed
