"""What the usage views show, computed from the engine: breakdowns, series, summaries. Typed, unformatted.

Each view runs `Engine.run` once or twice under the same viewer and window, so every view of one range adds
up to the same totals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from farebox.analytics.calendar import Grain, Window
from farebox.analytics.engine import Dimension, Engine, Filters, Measure, Query, Row
from farebox.core.credentials import Principal

__all__ = ["ModelView", "Scope", "Series", "Timeline", "Totals", "Views"]

_MEASURES = (
    Measure.COST_NANO,
    Measure.REQUESTS,
    Measure.INPUT_TOKENS,
    Measure.OUTPUT_TOKENS,
    Measure.LATENCY_MS_SUM,
)
_ERROR = "error"


class ModelView(StrEnum):
    """How models are named: as mapped (the name a request used) or canonical (variants collapsed)."""

    MAPPINGS = "mappings"
    CANONICAL = "canonical"

    @property
    def dimension(self) -> Dimension:
        return Dimension.MODEL if self is ModelView.MAPPINGS else Dimension.CANONICAL_MODEL


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose usage, when and which: the part every view of one request shares."""

    viewer: Principal
    window: Window
    account_id: str | None = None
    filters: Filters = Filters()
    local_days: bool = False
    """The window's zone is the account's own (`Query.local_days`)."""


@dataclass(slots=True)
class Totals:
    """Cost (nano-USD), requests, tokens, errors and latency of some usage."""

    cost_nano: int = 0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors: int = 0
    latency_ms: int = 0
    """The requests' latencies summed (a request that reported none adds 0)."""

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def sum(cls, parts: Iterable[Totals]) -> Totals:
        """The parts added up."""
        total = cls()
        for part in parts:
            total.include(part)
        return total

    def include(self, other: Totals) -> None:
        """Add `other`'s figures to these."""
        self.cost_nano += other.cost_nano
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.errors += other.errors
        self.latency_ms += other.latency_ms

    def add(self, row: Row, *, error: bool = False) -> None:
        cost, requests, input_tokens, output_tokens, latency_ms = row.measures[:5]
        self.cost_nano += cost
        self.requests += requests
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.latency_ms += latency_ms
        if error:
            self.errors += requests


@dataclass(frozen=True, slots=True)
class Series:
    """A stacked series: one slot per `buckets` entry, one line per name, in descending total cost."""

    buckets: list[datetime | date]
    lines: dict[str, list[Totals]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Timeline:
    """Usage slot by slot: every slot of the window, its totals (errors counted) and how many keys it used."""

    buckets: list[datetime | date]
    totals: list[Totals]
    active_keys: list[int]


class Views:
    """The views of the usage pages, on one engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def _run(
        self, scope: Scope, *, group_by: tuple[Dimension, ...] = (), grain: Grain | None = None
    ) -> list[Row]:
        query = Query(
            scope.window,
            _MEASURES,
            group_by=group_by,
            grain=grain,
            filters=scope.filters,
            account_id=scope.account_id,
            local_days=scope.local_days,
        )
        return await self._engine.run(query, viewer=scope.viewer)

    async def totals(self, scope: Scope) -> Totals:
        """Everything in scope, summed, errors counted."""
        totals = Totals()
        for row in await self._run(scope, group_by=(Dimension.STATUS,)):
            totals.add(row, error=row.dimensions[0] == _ERROR)
        return totals

    async def breakdown(self, scope: Scope, dimension: Dimension) -> list[tuple[str, Totals]]:
        """Totals per value of `dimension`, by descending cost (then name); errors counted."""
        found: dict[str, Totals] = defaultdict(Totals)
        for row in await self._run(scope, group_by=(dimension, Dimension.STATUS)):
            found[row.dimensions[0]].add(row, error=row.dimensions[1] == _ERROR)
        return sorted(found.items(), key=lambda item: (-item[1].cost_nano, item[0]))

    async def series(self, scope: Scope, dimension: Dimension, grain: Grain, *, errors: bool = False) -> Series:
        """Totals per slot of `grain` and value of `dimension`, every slot of the window present; with `errors`,
        failed requests counted too (a query grouped by status as well)."""
        buckets = _buckets(scope.window, grain)
        index = {bucket: position for position, bucket in enumerate(buckets)}
        lines: dict[str, list[Totals]] = {}
        group_by = (dimension, Dimension.STATUS) if errors else (dimension,)
        for row in await self._run(scope, group_by=group_by, grain=grain):
            assert row.at is not None
            line = lines.setdefault(row.dimensions[0], [Totals() for _ in buckets])
            line[index[row.at]].add(row, error=errors and row.dimensions[1] == _ERROR)
        order = sorted(lines, key=lambda name: (-sum(t.cost_nano for t in lines[name]), name))
        return Series(buckets, {name: lines[name] for name in order})

    async def timeline(self, scope: Scope, grain: Grain) -> Timeline:
        """Totals per slot of `grain`, errors counted, and the number of keys with usage in each slot."""
        buckets = _buckets(scope.window, grain)
        index = {bucket: position for position, bucket in enumerate(buckets)}
        totals = [Totals() for _ in buckets]
        keys: list[set[str]] = [set() for _ in buckets]
        for row in await self._run(scope, group_by=(Dimension.KEY, Dimension.STATUS), grain=grain):
            assert row.at is not None
            slot = index[row.at]
            totals[slot].add(row, error=row.dimensions[1] == _ERROR)
            if row.dimensions[0] and row.measures[1] > 0:  # requests, second of _MEASURES; voids leave zeros
                keys[slot].add(row.dimensions[0])
        return Timeline(buckets, totals, [len(used) for used in keys])


def _buckets(window: Window, grain: Grain) -> list[datetime | date]:
    """Every slot label of `grain` in the window, in order (what `Window.label` answers)."""
    if grain is Grain.DAY:
        return list(window.days())
    if grain is Grain.WEEK:
        monday = window.first - timedelta(days=window.first.weekday())
        return [monday + timedelta(weeks=n) for n in range((window.last - monday).days // 7 + 1)]
    if grain is Grain.MONTH:
        months: list[datetime | date] = []
        month = window.first.replace(day=1)
        while month <= window.last:
            months.append(month)
            month = (month + timedelta(days=32)).replace(day=1)
        return months
    start, end = int(window.since.timestamp()), int(window.until.timestamp())
    return [window.label(Grain.HOUR, slot) for slot in range(*_hour_slots(window, start, end))]


def _hour_slots(window: Window, start: int, end: int) -> tuple[int, int]:
    slots = window.slots(Grain.HOUR)
    shift = slots.shifts[0][1]
    last_shift = slots.shifts[-1][1]
    return (start + shift) // 3600, (end + last_shift) // 3600
