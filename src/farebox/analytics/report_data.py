"""What a custom report (seed 004's `POST /api/admin/analytics/reports`) holds: its sections, each computed by the
analytics engine and laid out as a table (title, columns, rows) that every format renders the same way
(`farebox.analytics.report_files`).

Sections: `summary` (the period's totals: cost, requests, tokens, distinct members and keys, error rate, average
latency), `breakdown` (the metrics per provider, model, key, member or operation, by descending cost), `trends`
(per hour, day or week), `top_items` (the first keys, models, members or providers by a metric), `alerts` (the
alerts the account fired in the period) and `forecasts` (the budget forecast's months ahead). Money is exact
decimal USD; averages are to a tenth of a millisecond, rates to four places, both half to even.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from farebox.analytics.admin_common import RATE, ratio, usd
from farebox.analytics.admin_forecast import Horizon, forecast_answer, forecast_inputs
from farebox.analytics.calendar import Grain, Window, instant
from farebox.analytics.engine import Dimension, Engine, Filters, Measure, Query, Row
from farebox.analytics.views import Scope, Views
from farebox.core.credentials import Principal
from farebox.ledger.alert_state import AlertState
from farebox.ledger.directory import Directory

__all__ = [
    "Category",
    "GroupBy",
    "Metric",
    "Report",
    "Section",
    "SectionKind",
    "SummaryMetric",
    "Table",
    "TrendGrain",
    "build_report",
]

_MEASURES = (
    Measure.REQUESTS,
    Measure.INPUT_TOKENS,
    Measure.OUTPUT_TOKENS,
    Measure.COST_NANO,
    Measure.LATENCY_MS_SUM,
    Measure.FAILED_REQUESTS,
)
_TENTH = Decimal("0.1")
FORECAST_HORIZON = "30d"
"""How far ahead a report's forecast looks: the rest of this month, and the next."""


class SectionKind(StrEnum):
    SUMMARY = "summary"
    BREAKDOWN = "breakdown"
    TRENDS = "trends"
    TOP_ITEMS = "top_items"
    ALERTS = "alerts"
    FORECASTS = "forecasts"


class SummaryMetric(StrEnum):
    TOTAL_COST = "total_cost"
    TOTAL_REQUESTS = "total_requests"
    TOTAL_TOKENS = "total_tokens"
    UNIQUE_USERS = "unique_users"
    UNIQUE_KEYS = "unique_keys"
    ERROR_RATE = "error_rate"
    AVERAGE_LATENCY = "average_latency"


class Metric(StrEnum):
    COST = "cost"
    REQUESTS = "requests"
    TOKENS = "tokens"
    INPUT_TOKENS = "input_tokens"
    OUTPUT_TOKENS = "output_tokens"
    LATENCY = "latency"
    ERRORS = "errors"

    @property
    def heading(self) -> str:
        return {Metric.COST: "cost (USD)", Metric.LATENCY: "latency (ms)"}.get(self, self.value.replace("_", " "))


class GroupBy(StrEnum):
    PROVIDER = "provider"
    MODEL = "model"
    VIRTUAL_KEY = "virtual_key"
    MEMBER = "member"
    OPERATION = "operation"

    @property
    def dimension(self) -> Dimension:
        return {
            GroupBy.PROVIDER: Dimension.PROVIDER,
            GroupBy.MODEL: Dimension.CANONICAL_MODEL,
            GroupBy.VIRTUAL_KEY: Dimension.KEY,
            GroupBy.MEMBER: Dimension.MEMBER,
            GroupBy.OPERATION: Dimension.OPERATION,
        }[self]


class Category(StrEnum):
    VIRTUAL_KEYS = "virtual_keys"
    MODELS = "models"
    MEMBERS = "members"
    PROVIDERS = "providers"

    @property
    def group(self) -> GroupBy:
        return {
            Category.VIRTUAL_KEYS: GroupBy.VIRTUAL_KEY,
            Category.MODELS: GroupBy.MODEL,
            Category.MEMBERS: GroupBy.MEMBER,
            Category.PROVIDERS: GroupBy.PROVIDER,
        }[self]


class TrendGrain(StrEnum):
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"

    @property
    def grain(self) -> Grain:
        return {TrendGrain.HOURLY: Grain.HOUR, TrendGrain.DAILY: Grain.DAY, TrendGrain.WEEKLY: Grain.WEEK}[self]


@dataclass(frozen=True, slots=True)
class Section:
    """A section asked for: its kind and its settings (the ones its kind does not use are ignored)."""

    kind: SectionKind
    summary: tuple[SummaryMetric, ...] = (
        SummaryMetric.TOTAL_COST,
        SummaryMetric.TOTAL_REQUESTS,
        SummaryMetric.TOTAL_TOKENS,
        SummaryMetric.UNIQUE_USERS,
    )
    metrics: tuple[Metric, ...] = (Metric.COST, Metric.REQUESTS, Metric.TOKENS)
    group_by: GroupBy = GroupBy.PROVIDER
    granularity: TrendGrain = TrendGrain.DAILY
    category: Category = Category.VIRTUAL_KEYS
    sort_by: Metric = Metric.COST
    limit: int = 10


@dataclass(frozen=True, slots=True)
class Table:
    """A section as laid out: a title, its columns, its rows (the first column names the row), and which column a
    chart of it draws (`bar` or `line`; None for no chart)."""

    kind: SectionKind
    title: str
    columns: tuple[str, ...]
    rows: list[list[Any]]
    chart: str | None = None
    charted: int = 1


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    window: Window
    account_id: str
    generated_at: datetime
    tables: list[Table] = field(default_factory=list)


@dataclass(slots=True)
class _Sums:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nano: int = 0
    latency_ms: int = 0
    failed: int = 0

    def add(self, measures: Sequence[int]) -> None:
        self.requests += measures[0]
        self.input_tokens += measures[1]
        self.output_tokens += measures[2]
        self.cost_nano += measures[3]
        self.latency_ms += measures[4]
        self.failed += measures[5]

    def value(self, metric: Metric) -> Any:
        if metric is Metric.COST:
            return usd(self.cost_nano)
        if metric is Metric.LATENCY:
            return ratio(self.latency_ms, self.requests, _TENTH)
        return {
            Metric.REQUESTS: self.requests,
            Metric.TOKENS: self.input_tokens + self.output_tokens,
            Metric.INPUT_TOKENS: self.input_tokens,
            Metric.OUTPUT_TOKENS: self.output_tokens,
            Metric.ERRORS: self.failed,
        }[metric]

    def sort_key(self, metric: Metric) -> Decimal:
        value = self.cost_nano if metric is Metric.COST else self.value(metric)
        return Decimal(0) if value is None else Decimal(value)


def _summed(rows: Sequence[Row], key: Callable[[Row], Any]) -> dict[Any, _Sums]:
    sums: dict[Any, _Sums] = {}
    for row in rows:
        sums.setdefault(key(row), _Sums()).add(row.measures)
    return sums


class _Builder:
    def __init__(
        self,
        engine: Engine,
        directory: Directory,
        window: Window,
        filters: Filters,
        account_id: str,
        viewer: Principal,
        names: Callable[[GroupBy, str], str],
    ) -> None:
        self._engine = engine
        self._directory = directory
        self._window = window
        self._filters = filters
        self._account_id = account_id
        self._viewer = viewer
        self._names = names

    async def _run(self, group_by: tuple[Dimension, ...] = (), grain: Grain | None = None) -> list[Row]:
        query = Query(
            self._window,
            _MEASURES,
            group_by=group_by,
            grain=grain,
            filters=self._filters,
            account_id=self._account_id,
            local_days=True,
        )
        return await self._engine.run(query, viewer=self._viewer)

    async def summary(self, section: Section) -> Table:
        total = _Sums()
        for row in await self._run():
            total.add(row.measures)
        values: dict[SummaryMetric, Any] = {
            SummaryMetric.TOTAL_COST: usd(total.cost_nano),
            SummaryMetric.TOTAL_REQUESTS: total.requests,
            SummaryMetric.TOTAL_TOKENS: total.input_tokens + total.output_tokens,
            SummaryMetric.ERROR_RATE: ratio(total.failed, total.requests, RATE) or Decimal(0),
            SummaryMetric.AVERAGE_LATENCY: ratio(total.latency_ms, total.requests, _TENTH),
        }
        for metric, dimension in (
            (SummaryMetric.UNIQUE_USERS, Dimension.MEMBER),
            (SummaryMetric.UNIQUE_KEYS, Dimension.KEY),
        ):
            if metric in section.summary:
                groups = await self._run((dimension,))
                values[metric] = sum(1 for row in groups if row.dimensions[0] and row.measures[0])
        table = [[metric.value, values[metric]] for metric in section.summary]
        return Table(SectionKind.SUMMARY, "Summary", ("metric", "value"), table)

    async def grouped(self, group_by: GroupBy, min_nano: int) -> list[tuple[str, _Sums]]:
        """Each item's sums, the items costing less than `min_nano` (or without a request) left out, by cost."""
        sums = _summed(await self._run((group_by.dimension,)), lambda row: row.dimensions[0])
        kept = [(item, total) for item, total in sums.items() if total.requests and total.cost_nano >= min_nano]
        return sorted(kept, key=lambda pair: (-pair[1].cost_nano, pair[0]))

    async def breakdown(self, section: Section, min_nano: int) -> Table:
        grouped = await self.grouped(section.group_by, min_nano)
        rows = [
            [self._names(section.group_by, item), *(total.value(metric) for metric in section.metrics)]
            for item, total in grouped
        ]
        title = f"Breakdown by {section.group_by.value.replace('_', ' ')}"
        columns = (section.group_by.value, *(metric.heading for metric in section.metrics))
        return Table(SectionKind.BREAKDOWN, title, columns, rows, chart="bar")

    async def trends(self, section: Section) -> Table:
        grain = section.granularity.grain
        sums = _summed(await self._run(grain=grain), lambda row: row.at)
        if grain is Grain.DAY:
            for day in self._window.days():
                sums.setdefault(day, _Sums())
        ordered = sorted(sums.items(), key=lambda pair: _instant_of(pair[0], self._window))
        rows = [
            [_slot(at, self._window), *(total.value(metric) for metric in section.metrics)] for at, total in ordered
        ]
        title = f"Trends, {section.granularity.value}"
        return Table(SectionKind.TRENDS, title, ("period", *(m.heading for m in section.metrics)), rows, chart="line")

    async def alerts(self, section: Section) -> Table:
        """The alerts the account fired in the window, newest first (at most `section.limit`)."""
        fired = await AlertState(self._directory.ledger).history(
            self._account_id, limit=section.limit, since=self._window.since, until=self._window.until
        )
        rows = [
            [
                alert.fired_at.astimezone(self._window.tz).isoformat(timespec="seconds"),
                alert.rule,
                f"{alert.scope} {alert.scope_id}",
                str(alert.evidence.get("text", "")),
            ]
            for alert in fired
        ]
        return Table(SectionKind.ALERTS, "Alerts", ("fired at", "alert", "about", "text"), rows)

    async def forecasts(self, generated_at: datetime) -> Table:
        """Spend projected from the report's day over `FORECAST_HORIZON`, month by month, with its 80% interval
        (the budget forecast's, `farebox.analytics.admin_forecast`)."""
        today = generated_at.astimezone(self._window.tz).date()
        scope = Scope(
            self._viewer, Window(today, today, self._window.tz), self._account_id, self._filters, local_days=True
        )
        horizon = Horizon.parse(FORECAST_HORIZON)
        answer = await forecast_answer(await forecast_inputs(Views(self._engine), self._directory, scope, horizon))
        rows = [
            [
                month["month"],
                month["spentToDate"],
                month["projectedSpend"],
                month["lower"],
                month["upper"],
                month["confidence"],
            ]
            for month in answer["monthlyForecasts"]
        ]
        columns = ("month", "spent to date (USD)", "projected (USD)", "lower (USD)", "upper (USD)", "confidence")
        title = f"Forecast, {FORECAST_HORIZON} from {today.isoformat()}"
        return Table(SectionKind.FORECASTS, title, columns, rows, chart="bar", charted=2)

    async def top_items(self, section: Section, min_nano: int) -> Table:
        group = section.category.group
        grouped = await self.grouped(group, min_nano)
        grouped.sort(key=lambda pair: (-pair[1].sort_key(section.sort_by), pair[0]))
        metrics = tuple(dict.fromkeys((section.sort_by, Metric.COST, Metric.REQUESTS)))
        rows = [
            [self._names(group, item), *(total.value(metric) for metric in metrics)]
            for item, total in grouped[: section.limit]
        ]
        title = f"Top {section.limit} {section.category.value.replace('_', ' ')} by {section.sort_by.value}"
        return Table(SectionKind.TOP_ITEMS, title, ("item", *(m.heading for m in metrics)), rows, chart="bar")


def _instant_of(at: date | datetime | None, window: Window) -> str:
    return "" if at is None else instant(at, window)


def _slot(at: date | datetime | None, window: Window) -> str:
    """A trend's slot as text: the date of a day or week, the local start of an hour."""
    if at is None:
        return ""
    return at.isoformat() if not isinstance(at, datetime) else at.astimezone(window.tz).isoformat(timespec="minutes")


async def build_report(
    engine: Engine,
    directory: Directory,
    *,
    name: str,
    window: Window,
    account_id: str,
    sections: Sequence[Section],
    filters: Filters,
    min_nano: int,
    viewer: Principal,
    names: Callable[[GroupBy, str], str],
    generated_at: datetime,
) -> Report:
    """The report of the account's `window`, its sections in the order asked; `names` names a group's item (a key's
    or a member's name; '' is usage without one)."""
    builder = _Builder(engine, directory, window, filters, account_id, viewer, names)
    report = Report(name, window, account_id, generated_at)
    for section in sections:
        if section.kind is SectionKind.SUMMARY:
            report.tables.append(await builder.summary(section))
        elif section.kind is SectionKind.BREAKDOWN:
            report.tables.append(await builder.breakdown(section, min_nano))
        elif section.kind is SectionKind.TRENDS:
            report.tables.append(await builder.trends(section))
        elif section.kind is SectionKind.ALERTS:
            report.tables.append(await builder.alerts(section))
        elif section.kind is SectionKind.FORECASTS:
            report.tables.append(await builder.forecasts(generated_at))
        else:
            report.tables.append(await builder.top_items(section, min_nano))
    return report
