"""What the usage views show, computed from the engine: breakdowns, series, summaries. Typed, unformatted.

Each view runs `Engine.run` once or twice under the same viewer and window, so every view of one range adds
up to the same totals.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from farebox.analytics.calendar import Grain, Window
from farebox.analytics.engine import Dimension, Engine, Filters, Measure, Query, Row
from farebox.core.credentials import Principal

__all__ = ["Costs", "Group", "ModelView", "Scope", "Series", "Timeline", "Totals", "Views"]

_MEASURES = (
    Measure.COST_NANO,
    Measure.REQUESTS,
    Measure.INPUT_TOKENS,
    Measure.OUTPUT_TOKENS,
    Measure.LATENCY_MS_SUM,
)
"""What every view sums."""
_COUNTED = (*_MEASURES, Measure.FAILED_REQUESTS)
"""What the views that count errors sum: failed requests are a measure, so no view groups by status to count them
(grouped by status as well, a read sorted its rows first: twice the time over a month of key rollups)."""
_MINUTE = timedelta(minutes=1)


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
    within: tuple[datetime, datetime] | None = None
    """Only this part of the window, such as the current hour or minute (`Query.within`)."""

    def of_status(self, status: str) -> Scope:
        """The scope's usage of one status (`ok` or `error`) only: none if its filters leave that status out."""
        filters = self.filters
        allowed = filters.values.get(Dimension.STATUS)
        only = (status,) if allowed is None or status in allowed else ()
        return replace(self, filters=Filters({**filters.values, Dimension.STATUS: only}, models=filters.models))


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

    def add(self, row: Row) -> None:
        """Add a row of `_MEASURES`, or of `_COUNTED`: then its failed requests too."""
        cost, requests, input_tokens, output_tokens, latency_ms, *failed = row.measures
        self.cost_nano += cost
        self.requests += requests
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.latency_ms += latency_ms
        if failed:
            self.errors += failed[0]


@dataclass(frozen=True, slots=True)
class Series:
    """A stacked series: one slot per `buckets` entry, one line per name, in descending total cost."""

    buckets: list[datetime | date]
    lines: dict[str, list[Totals]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Group:
    """The totals of one combination of dimension values (in the order asked), in one slot of time or in all."""

    at: datetime | date | None
    dimensions: tuple[str, ...]
    totals: Totals


@dataclass(frozen=True, slots=True)
class Costs:
    """Cost alone (nano-USD), one slot per `buckets` entry, one line per name, in descending total cost."""

    buckets: list[datetime | date]
    lines: dict[str, list[int]] = field(default_factory=dict)


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
        self,
        scope: Scope,
        *,
        group_by: tuple[Dimension, ...] = (),
        grain: Grain | None = None,
        by_minute: bool = False,
        errors: bool = False,
        active_keys: bool = False,
    ) -> list[Row]:
        """The scope's `_MEASURES` summed as asked (`_COUNTED` with `errors`), or its active keys counted."""
        query = Query(
            scope.window,
            _COUNTED if errors else _MEASURES,
            group_by=group_by,
            grain=grain,
            filters=scope.filters,
            account_id=scope.account_id,
            local_days=scope.local_days,
            within=scope.within,
            by_minute=by_minute,
        )
        if active_keys:
            return await self._engine.active_keys(query, viewer=scope.viewer)
        return await self._engine.run(query, viewer=scope.viewer)

    async def totals(self, scope: Scope) -> Totals:
        """Everything in scope, summed, errors counted."""
        totals = Totals()
        for row in await self._run(scope, errors=True):
            totals.add(row)
        return totals

    async def breakdown(self, scope: Scope, dimension: Dimension) -> list[tuple[str, Totals]]:
        """Totals per value of `dimension`, by descending cost (then name); errors counted."""
        found = await self.combinations(scope, (dimension,))
        return sorted(((values[0], totals) for values, totals in found.items()), key=lambda i: (-i[1].cost_nano, i[0]))

    async def combinations(self, scope: Scope, dimensions: tuple[Dimension, ...]) -> dict[tuple[str, ...], Totals]:
        """Totals per combination of the dimensions' values (in their order) that has usage; errors counted."""
        found: dict[tuple[str, ...], Totals] = defaultdict(Totals)
        for row in await self._run(scope, group_by=dimensions, errors=True):
            found[row.dimensions].add(row)
        return dict(found)

    async def series(self, scope: Scope, dimension: Dimension, grain: Grain, *, errors: bool = False) -> Series:
        """Totals per slot of `grain` and value of `dimension`, every slot of the window present; with `errors`,
        failed requests counted too."""
        buckets = _buckets(scope.window, grain)
        index = {bucket: position for position, bucket in enumerate(buckets)}
        lines: dict[str, list[Totals]] = {}
        for row in await self._run(scope, group_by=(dimension,), grain=grain, errors=errors):
            assert row.at is not None
            line = lines.setdefault(row.dimensions[0], [Totals() for _ in buckets])
            line[index[row.at]].add(row)
        order = sorted(lines, key=lambda name: (-sum(t.cost_nano for t in lines[name]), name))
        return Series(buckets, {name: lines[name] for name in order})

    async def slots(self, scope: Scope, grain: Grain) -> tuple[list[datetime | date], list[Totals]]:
        """Totals per slot of `grain`, every slot of the window present (errors not counted): the one query that
        groups by time alone."""
        buckets = _buckets(scope.window, grain)
        index = {bucket: position for position, bucket in enumerate(buckets)}
        totals = [Totals() for _ in buckets]
        for row in await self._run(scope, grain=grain):
            assert row.at is not None
            totals[index[row.at]].add(row)
        return buckets, totals

    async def grouped(
        self, scope: Scope, dimensions: tuple[Dimension, ...], *, grain: Grain | None = None
    ) -> list[Group]:
        """Totals per combination of `dimensions` (and slot of `grain`, when given) that has usage; errors not
        counted. Unordered."""
        found = []
        for row in await self._run(scope, group_by=dimensions, grain=grain):
            totals = Totals()
            totals.add(row)
            found.append(Group(row.at, row.dimensions, totals))
        return found

    async def costs(self, scope: Scope, grain: Grain, dimension: Dimension | None = None) -> Costs:
        """Cost per slot of `grain`, every slot of the window present: a line per value of `dimension`, or one
        line named '' for all of it. One measure summed and no other grouping: about twice as fast to read as
        `series`."""
        buckets = _buckets(scope.window, grain)
        index = {bucket: position for position, bucket in enumerate(buckets)}
        query = Query(
            scope.window,
            (Measure.COST_NANO,),
            group_by=() if dimension is None else (dimension,),
            grain=grain,
            filters=scope.filters,
            account_id=scope.account_id,
            local_days=scope.local_days,
        )
        lines: dict[str, list[int]] = {} if dimension is not None else {"": [0] * len(buckets)}
        for row in await self._engine.run(query, viewer=scope.viewer):
            assert row.at is not None
            line = lines.setdefault(row.dimensions[0] if row.dimensions else "", [0] * len(buckets))
            line[index[row.at]] += row.measures[0]
        order = sorted(lines, key=lambda name: (-sum(lines[name]), name))
        return Costs(buckets, {name: lines[name] for name in order})

    async def timeline(self, scope: Scope, grain: Grain) -> Timeline:
        """Totals per slot of `grain`, errors counted, and the number of keys with usage in each slot."""
        return _timeline(_buckets(scope.window, grain), *await self._slotted(scope, grain=grain))

    async def minutes(self, scope: Scope) -> Timeline:
        """The scope's `within` (whole minutes, six hours at most) minute by minute, as `timeline` cuts slots: from
        the raw events."""
        assert scope.within is not None
        start, end = scope.within
        buckets: list[datetime | date] = [
            (start + timedelta(minutes=n)).astimezone(scope.window.tz) for n in range((end - start) // _MINUTE)
        ]
        return _timeline(buckets, *await self._slotted(scope, by_minute=True))

    async def _slotted(
        self, scope: Scope, *, grain: Grain | None = None, by_minute: bool = False
    ) -> tuple[list[Row], list[Row]]:
        """The scope's sums per slot and its active keys per slot, read concurrently."""
        sums, keys = await asyncio.gather(
            self._run(scope, grain=grain, by_minute=by_minute, errors=True),
            self._run(scope, grain=grain, by_minute=by_minute, active_keys=True),
        )
        return sums, keys


def _timeline(buckets: list[datetime | date], sums: list[Row], keys: list[Row]) -> Timeline:
    """A timeline of sums per slot and of active keys per slot, in `buckets` (each row's `at` one of them)."""
    index = {bucket: position for position, bucket in enumerate(buckets)}
    totals = [Totals() for _ in buckets]
    for row in sums:
        assert row.at is not None
        totals[index[row.at]].add(row)
    active = [0] * len(buckets)
    for row in keys:
        assert row.at is not None
        active[index[row.at]] = row.measures[0]
    return Timeline(buckets, totals, active)


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
