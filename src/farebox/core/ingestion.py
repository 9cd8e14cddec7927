"""What this process has ingested: events committed per second and source over the last hour, the last one of each
source, and the events refused and why. The ledger's writer thread adds commits; the events API adds refusals; the
admin API reads a snapshot. Thread-safe; nothing is kept past an hour but the last event and the refusal counts.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

__all__ = ["IngestionSnapshot", "IngestionStats", "SourceRate"]

_HOUR_S = 3_600
_MINUTE_S = 60


@dataclass(frozen=True, slots=True)
class SourceRate:
    """One source's events committed in the last minute and hour, and its latest event's times."""

    source: str
    last_minute: int
    last_hour: int
    last_event_at: datetime | None
    """The latest committed event's own timestamp."""
    last_recorded_at: datetime | None
    """When the latest commit holding one of its events happened."""


@dataclass(frozen=True, slots=True)
class IngestionSnapshot:
    since: datetime
    sources: tuple[SourceRate, ...]
    rejected: Mapping[str, int]


class IngestionStats:
    """Per-second commit counts of the last hour by source, and refusals by reason, since `since`."""

    def __init__(self, since: datetime) -> None:
        self.since = since
        self._lock = threading.Lock()
        self._seconds: deque[tuple[int, Counter[str]]] = deque()
        self._last: dict[str, tuple[datetime, datetime]] = {}
        self._rejected: Counter[str] = Counter()

    def committed(self, at: datetime, counts: Mapping[str, int], latest: Mapping[str, datetime]) -> None:
        """A commit at `at` held `counts` events per source, the latest of each source at `latest`."""
        second = int(at.timestamp())
        with self._lock:
            if self._seconds and self._seconds[-1][0] == second:
                self._seconds[-1][1].update(counts)
            else:
                self._seconds.append((second, Counter(counts)))
                while self._seconds[0][0] <= second - _HOUR_S:
                    self._seconds.popleft()
            for source, event_at in latest.items():
                known = self._last.get(source)
                self._last[source] = (max(event_at, known[0]) if known else event_at, at)

    def rejected(self, reasons: Mapping[str, int]) -> None:
        """Events refused, counted per reason."""
        with self._lock:
            self._rejected.update(reasons)

    def snapshot(self, now: datetime) -> IngestionSnapshot:
        second = int(now.timestamp())
        minute: Counter[str] = Counter()
        hour: Counter[str] = Counter()
        with self._lock:
            for at, counts in self._seconds:
                if at > second - _HOUR_S:
                    hour.update(counts)
                    if at > second - _MINUTE_S:
                        minute.update(counts)
            last = dict(self._last)
            rejected = dict(self._rejected)
        sources = sorted(set(last) | set(hour))
        return IngestionSnapshot(
            since=self.since,
            sources=tuple(
                SourceRate(
                    source,
                    minute[source],
                    hour[source],
                    last[source][0] if source in last else None,
                    last[source][1] if source in last else None,
                )
                for source in sources
            ),
            rejected=rejected,
        )
