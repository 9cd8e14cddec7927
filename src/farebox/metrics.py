"""Prometheus metrics (`GET /metrics`, `prometheus-client`): of one farebox process, or of every process of
`farebox serve --workers N` together.

What each process counts as it works: the usage events its ledger writer recorded (requests, tokens and cost by
provider and model), how long each commit took and how many events it held, the writes waiting for the writer, the
requests a spend cap refused, and the round trips to the shared counters' Redis. What every process shares is read
when scraped: the webhook deliveries waiting in the outbox, and whether the shared counters' Redis answers.

Costs are counted in nano-USD, as the ledger keeps them: a Prometheus sample is a float, exact for integers up
to 2^53 nano-USD (about 9 million USD) per series.

With `farebox serve --workers N` the processes share one port, so a scrape reaches any one of them: each
process writes its values to files in `PROMETHEUS_MULTIPROC_DIR` (set by `serve` for its processes), and the
scraped one sums them all (prometheus-client's multiprocess mode). Processes on several hosts are scraped one
by one, each on its own port.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from farebox.core.spend import Cap
from farebox.ledger.writer import Committed

__all__ = ["CONTENT_TYPE", "MULTIPROCESS_DIR", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""The variable naming the directory where the processes of `farebox serve --workers N` write their values."""
_COMMIT_SECONDS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_COMMIT_EVENTS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 5_000, 20_000)
_REDIS_SECONDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5)


class Metrics:
    """One process's metrics, in a registry of its own (an app per test may run in one process)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_DIR))
        if not self.multiprocess:
            ProcessCollector(registry=registry)
        labels = ("provider", "model")
        self.requests = Counter(
            "farebox_requests",
            "Usage events recorded (proxied requests and ingested events), by status.",
            [*labels, "status"],
            registry=registry,
        )
        self.tokens = Counter(
            "farebox_tokens", "Tokens of recorded usage events, input or output.", [*labels, "kind"], registry=registry
        )
        self.cost = Counter(
            "farebox_cost_nano_usd", "Cost of recorded usage events, in nano-USD.", labels, registry=registry
        )
        self.commit_seconds = Histogram(
            "farebox_ledger_commit_seconds",
            "How long a ledger writer transaction took, from its first statement to its commit.",
            buckets=_COMMIT_SECONDS,
            registry=registry,
        )
        self.commit_events = Histogram(
            "farebox_ledger_commit_events",
            "Usage events recorded by one ledger commit (concurrent requests share one).",
            buckets=_COMMIT_EVENTS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "farebox_ledger_queue_depth",
            "Writes waiting for the ledger writer's next transaction (summed over live processes).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.refusals = Counter(
            "farebox_reservations_refused",
            "Requests a spend cap refused before forwarding them, by the cap's scope.",
            ["scope"],
            registry=registry,
        )

        self.redis_seconds = Histogram(
            "farebox_redis_call_seconds",
            "Round trip of one call to the shared counters' Redis that it answered, by script (reserve, release, "
            "standing); reservations asked at once share a call.",
            ["script"],
            buckets=_REDIS_SECONDS,
            registry=registry,
        )

    def close(self) -> None:
        """When the process stops: its live gauges (the queue depth) leave the sums of the processes left."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    def committed(self, commit: Committed) -> None:
        """Count one ledger commit (on the writer thread): one update per provider and model, not per event."""
        self.commit_seconds.observe(commit.seconds)
        self.commit_events.observe(len(commit.events))
        self.queue_depth.set(commit.queue_depth)
        requests: Tally[tuple[str, str, str]] = Tally()
        sums: dict[tuple[str, str], list[int]] = {}
        for event in commit.events:
            requests[(event.provider, event.model, event.status)] += 1
            totals = sums.setdefault((event.provider, event.model), [0, 0, 0])
            totals[0] += event.input_tokens
            totals[1] += event.output_tokens
            totals[2] += event.cost_nano
        for labels, count in requests.items():
            self.requests.labels(*labels).inc(count)
        for (provider, model), (input_tokens, output_tokens, cost) in sums.items():
            if input_tokens:
                self.tokens.labels(provider, model, "input").inc(input_tokens)
            if output_tokens:
                self.tokens.labels(provider, model, "output").inc(output_tokens)
            if cost > 0:  # a counter only grows: a negative cost (none is recorded so) is left out
                self.cost.labels(provider, model).inc(cost)

    def redis_call(self, script: str, seconds: float) -> None:
        """Time one call to the shared counters' Redis."""
        self.redis_seconds.labels(script).observe(seconds)

    def refused(self, cap: Cap) -> None:
        """Count a request a cap refused."""
        self.refusals.labels(cap.scope.value).inc()

    async def exposition(self, *, backlog: Callable[[], Awaitable[tuple[int, int]]], shared: Shared | None) -> bytes:
        """The scrape's text: every process's counts, then the shared state read now (the outbox's pending and
        retrying deliveries; when the counters are shared, whether Redis answers and whether reservations are held
        in the ledger)."""
        if self.multiprocess:
            counted = CollectorRegistry()
            multiprocess.MultiProcessCollector(counted)  # type: ignore[no-untyped-call]
        else:
            counted = self.registry
        pending, retrying = await backlog()
        now_shared: list[Metric] = [
            GaugeMetricFamily("farebox_webhook_backlog", "Webhook and notification deliveries waiting.", pending),
            GaugeMetricFamily("farebox_webhook_retrying", "Of those, deliveries that failed at least once.", retrying),
        ]
        if shared is not None:
            up = 1 if await shared.ping() else 0
            now_shared.append(GaugeMetricFamily("farebox_redis_up", "Whether the shared counters' Redis answers.", up))
            on_ledger = 1 if shared.on_ledger else 0
            help_text = "Whether reservations are held in the ledger, Redis not answering."
            now_shared.append(GaugeMetricFamily("farebox_counters_on_ledger", help_text, on_ledger))
        now = CollectorRegistry(auto_describe=False)
        now.register(_Snapshot(now_shared))
        return generate_latest(counted) + generate_latest(now)


class Shared(Protocol):
    """What the scrape reads of the shared counters (`metering.fallback.FallbackCounters`)."""

    @property
    def on_ledger(self) -> bool: ...

    async def ping(self) -> bool: ...


class _Snapshot(Collector):
    """Metric families read at scrape time."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families
