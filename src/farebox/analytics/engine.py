"""The analytics engine: one typed query over the ledger's rollups, under the caller's access.

Every usage view is a presenter over `Engine.run(query, viewer=...)`, so one period's totals are the same in
every view by construction. The engine narrows each query to what the viewer may see (the access table of
`farebox.core.credentials.Principal`), groups by local time in the query's zone exactly (`Window`), and
answers typed rows; nothing here formats money or JSON.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TypeVar
from zoneinfo import ZoneInfo

from farebox.analytics.calendar import Grain, Window
from farebox.core.credentials import Principal, PrincipalKind
from farebox.core.events import epoch_us
from farebox.core.owners import Role
from farebox.errors import NotFound
from farebox.ledger.aggregates import (
    ACTIVE_KEYS,
    FAILED_REQUESTS,
    KEY_ROLLUP_FIELDS,
    MAX_SLOTTED_EVENT_SPAN_US,
    ROLLUP_BUCKET_SECONDS,
    Aggregate,
    Slots,
    Source,
)
from farebox.ledger.export_sql import TextFormat
from farebox.ledger.exports import ExportRow
from farebox.ledger.latency import LatencyGroup, LatencyQuery
from farebox.ledger.prompt_prefixes import PrefixFilter, PrefixRow
from farebox.ledger.reader import EventCursor, EventFilter, EventRow, LedgerReader

__all__ = ["Dimension", "Engine", "Filters", "Measure", "Query", "Row"]

T = TypeVar("T")


class Dimension(StrEnum):
    """What usage can be grouped and filtered by (the rollups' dimensions)."""

    ACCOUNT = "account_id"
    KEY = "key_id"
    MEMBER = "member_id"
    AGENT = "agent_id"
    APP = "app"
    AXIS = "axis"
    PROVIDER = "provider"
    MODEL = "model"
    CANONICAL_MODEL = "canonical_model"
    OPERATION = "operation"
    STATUS = "status"
    ERROR_CLASS = "error_class"


class Measure(StrEnum):
    """What usage sums (the rollups' measures, and the failed requests among them); money is nano-USD."""

    REQUESTS = "requests"
    INPUT_TOKENS = "input_tokens"
    OUTPUT_TOKENS = "output_tokens"
    CACHED_INPUT_TOKENS = "cached_input_tokens"
    CACHE_WRITE_TOKENS = "cache_write_tokens"
    REASONING_TOKENS = "reasoning_tokens"
    CHARACTERS = "characters"
    SECONDS_MICRO = "seconds_micro"
    QUANTITY_MICRO = "quantity_micro"
    COST_NANO = "cost_nano"
    UNPRICED_REQUESTS = "unpriced_requests"
    ESTIMATED_REQUESTS = "estimated_requests"
    LATENCY_MS_SUM = "latency_ms_sum"
    FAILED_REQUESTS = FAILED_REQUESTS
    """The requests that failed (status `error`), summed without grouping by status."""


@dataclass(frozen=True, slots=True)
class Filters:
    """Which usage to count: each dimension given may take only the values listed ('' for none)."""

    values: dict[Dimension, tuple[str, ...]] = field(default_factory=dict)
    models: tuple[str, ...] | None = None
    """Models as called or canonical (a filter by model matches either)."""

    @classmethod
    def given(
        cls,
        *,
        provider: str | None = None,
        key: str | None = None,
        model: str | None = None,
        agent: str | None = None,
        member: str | None = None,
    ) -> Filters:
        """The filters a user typed: each one value or several separated by commas (blanks dropped), or None."""
        named = (
            (Dimension.PROVIDER, provider),
            (Dimension.KEY, key),
            (Dimension.AGENT, agent),
            (Dimension.MEMBER, member),
        )
        values = {dimension: _split(given) for dimension, given in named if _split(given)}
        return cls(values, models=_split(model) or None)


def _split(given: str | None) -> tuple[str, ...]:
    return tuple(value.strip() for value in (given or "").split(",") if value.strip())


@dataclass(frozen=True, slots=True)
class Query:
    """Measures, grouped by dimensions and optionally by a grain of local time, over a window, filtered."""

    window: Window
    measures: tuple[Measure, ...]
    group_by: tuple[Dimension, ...] = ()
    grain: Grain | None = None
    filters: Filters = Filters()
    account_id: str | None = None
    """The account asked about; None: every account the viewer may see (only the master key sees several)."""
    local_days: bool = False
    """Whether the window's zone is the account's own: then days, weeks and months may be read from the daily
    cube, which is far smaller than the quarter-hour rollups (only for one account, and no hours)."""
    averaging_under: dict[Measure, int] = field(default_factory=dict)
    """Only the groups whose each measure named averages under its bound per request (grouped queries, not of a
    part of a quarter hour, not by error class)."""
    within: tuple[datetime, datetime] | None = None
    """Only the usage from the first instant (included) to the second (not), inside the window: a part of a
    day, such as the current hour. On the rollups' quarter-hour grid the rollups answer it; off the grid it may
    span at most a minute, without a grain, and the raw events answer it (`farebox.ledger.aggregates`)."""
    by_minute: bool = False
    """Group `within` minute by minute, from the raw events: six hours at most, on whole minutes, without a grain
    or the error class (each `Row.at` the minute's start, aware, in the window's zone)."""

    def __post_init__(self) -> None:
        if self.within is not None and not self.window.since <= self.within[0] < self.within[1] <= self.window.until:
            raise ValueError("a query's `within` lies inside its window, and ends after it starts")
        if self.by_minute and (
            self.within is None
            or self.grain is not None
            or any(epoch_us(instant) % 60_000_000 for instant in self.within)
            or epoch_us(self.within[1]) - epoch_us(self.within[0]) > MAX_SLOTTED_EVENT_SPAN_US
        ):
            raise ValueError("minute by minute: whole minutes `within`, six hours at most, without a grain")


@dataclass(frozen=True, slots=True)
class Row:
    """One group: its time (a local hour's start, or the date of a day, week or month) when the query has a
    grain, its dimension values in `group_by` order, its measures' sums in `measures` order."""

    at: datetime | date | None
    dimensions: tuple[str, ...]
    measures: tuple[int, ...]

    def get(self, query: Query, measure: Measure) -> int:
        return self.measures[query.measures.index(measure)]


class Engine:
    """Runs analytics queries on a ledger's reader."""

    def __init__(self, reader: LedgerReader) -> None:
        self._reader = reader

    async def run(self, query: Query, *, viewer: Principal) -> list[Row]:
        """The query's rows, as far as `viewer` may see.

        Raises:
            NotFound: the query names an account the viewer is not in (404, never its existence).
            PermissionDenied: a member's token or a virtual key asking for usage that is not its own.
        """
        return await self._aggregate(query, viewer, tuple(measure.value for measure in query.measures))

    async def active_keys(self, query: Query, *, viewer: Principal) -> list[Row]:
        """How many distinct virtual keys had requests in each of the query's groups, as far as `viewer` may see: each
        row's one measure (the query's measures are not used). Counted, not summed: a key busy in two hours is one
        key of their day, so the rows of a finer grain do not add up to a coarser one's.

        Raises:
            NotFound, PermissionDenied: as `run`.
            ValueError: grouped or filtered by the error class.
        """
        return await self._aggregate(query, viewer, (ACTIVE_KEYS,))

    async def _aggregate(self, query: Query, viewer: Principal, measures: tuple[str, ...]) -> list[Row]:
        """The query's rows of `measures`, from the table that answers it (`_source`), each slot labelled."""
        where = _where(query, viewer)
        window, grain = query.window, query.grain
        source = _source(query, where)
        slots = None
        if source is Source.DAILY:
            since, until = window.day_range()
            slots = None if grain is None else window.day_slots(grain)
        elif source is Source.EVENTS:
            assert query.within is not None
            since, until = (epoch_us(instant) for instant in query.within)
            slots = _MINUTES if query.by_minute else None
        else:
            since, until = (int(instant.timestamp()) for instant in query.within or (window.since, window.until))
            slots = None if grain is None else window.slots(grain)
        wanted = Aggregate(
            since=since,
            until=until,
            measures=measures,
            group_by=tuple(dimension.value for dimension in query.group_by),
            where=where,
            models=query.filters.models,
            slots=slots,
            source=source,
            averaging_under={measure.value: bound for measure, bound in query.averaging_under.items()},
        )
        rows = await self._reader.aggregate(wanted)
        if query.by_minute:
            tz = query.window.tz
            return [Row(_minute(row.slot, tz), row.dimensions, row.measures) for row in rows]
        if grain is None:
            return [Row(None, row.dimensions, row.measures) for row in rows]
        # Many groups share a slot, and labelling one walks the zone's offsets: each slot is labelled once.
        labels = {slot: query.window.label(grain, slot) for slot in {row.slot for row in rows} if slot is not None}
        return [Row(None if row.slot is None else labels[row.slot], row.dimensions, row.measures) for row in rows]

    async def latencies(
        self, query: Query, *, viewer: Principal, between: tuple[datetime, datetime] | None = None
    ) -> list[LatencyGroup]:
        """The latency sketches of the query's window (or of the instants `between`, on the quarter-hour grid, when
        given), summed per value of its one grouping dimension (key, provider or model; '' without one), as far as
        `viewer` may see. The query's measures and grain are not used. Read from the daily sketches when the window's
        days are one account's own (`Query.local_days`) and no `between` is given, else from the quarter-hour ones.

        Raises:
            NotFound, PermissionDenied: as `run`.
            ValueError: a filter or grouping by another dimension than account, key, provider or model, by models as
                canonical, or more than one grouping.
        """
        where = _where(query, viewer)
        if len(query.group_by) > 1 or query.filters.models is not None:
            raise ValueError("latency sketches group by one dimension, and filter models only as called")
        daily = between is None and _source(query, where) is Source.DAILY
        if daily:
            since, until = query.window.day_range()
        else:
            start, end = between or (query.window.since, query.window.until)
            since, until = int(start.timestamp()), int(end.timestamp())
        group_by = query.group_by[0].value if query.group_by else None
        return await self._reader.latencies(LatencyQuery(since, until, daily=daily, where=where, group_by=group_by))

    async def repeated_prefixes(self, query: Query, *, viewer: Principal) -> list[PrefixRow]:
        """The prompt prefixes sent more than once on a day, each key's share of them, in the query's window read as
        local days of each account (`farebox.ledger.prompt_prefixes`), as far as `viewer` may see. Filters by key
        only.

        Raises:
            NotFound, PermissionDenied: as `run`.
            ValueError: a filter on another dimension or by model, or a viewer held to a member's own usage (the
                counts are kept per key, not per member).
        """
        where = _where(query, viewer)
        unsupported = set(where) - {Dimension.ACCOUNT.value, Dimension.KEY.value}
        if unsupported or query.filters.models is not None:
            raise ValueError(f"prompt prefixes cannot be filtered by {', '.join(sorted(unsupported)) or 'model'}")
        if any(values == () for values in where.values()):
            return []
        accounts = where.get(Dimension.ACCOUNT.value)
        if accounts is not None and len(accounts) != 1:
            raise ValueError("prompt prefixes are read for one account or every account")
        since, until = query.window.day_range()
        wanted = PrefixFilter(
            since, until, account_id=None if accounts is None else accounts[0], key_ids=where.get(Dimension.KEY.value)
        )
        return await self._reader.repeated_prefixes(wanted)

    def source(self, query: Query, *, viewer: Principal) -> Source:
        """Which table answers the query: `usage_daily` (the daily cube), `usage_key_rollups` (the key rollups),
        `usage_rollups` (the quarter hours) or `usage_events` (a part of a quarter hour)."""
        return _source(query, _where(query, viewer))

    async def requests(
        self, query: Query, *, viewer: Principal, after: EventCursor | None = None, limit: int = 50
    ) -> list[EventRow]:
        """The events behind a query's window and filters (the drill-down), in time order, `limit` at a time
        after the `after` cursor, voided ones left out as every view leaves them out. Filters by key, member,
        agent, provider and model only.

        Raises:
            NotFound, PermissionDenied: as `run`.
            ValueError: a filter on another dimension.
        """
        wanted = self.event_filter(query, viewer=viewer)
        return [] if wanted is None else await self._reader.events(wanted, limit=limit, after=after)

    def export(
        self, query: Query, *, viewer: Principal, keep: Callable[[list[ExportRow]], T], page_size: int = 5_000
    ) -> AsyncIterator[T]:
        """The events behind a query's window and filters for an export: one account's, voided ones left out, in
        time order, a page at a time (`LedgerReader.export_pages`: `keep` turns each page into what is yielded,
        on the reader thread). Access is checked now, before the first page is read.

        Raises:
            NotFound, PermissionDenied: as `run`.
            ValueError: a filter on a dimension the drill-down cannot filter by, or no account named.
        """
        return self._reader.export_pages(self._exported(query, viewer), keep=keep, page_size=page_size)

    def export_text(
        self,
        query: Query,
        *,
        viewer: Principal,
        fields: Sequence[str],
        text_format: TextFormat,
        credits_per_usd: int,
        min_nano: int = 0,
    ) -> AsyncIterator[tuple[int, bytes]] | None:
        """The same events as `export` (those costing at least `min_nano`), their `fields` as CSV rows, JSON array
        members or NDJSON lines the database writes itself, in (rows, bytes) chunks; None when it cannot (SQLite:
        `export` then). Access is checked now.

        Raises:
            NotFound, PermissionDenied, ValueError: as `export`.
        """
        return self._reader.export_text(
            self._exported(query, viewer),
            fields=fields,
            text_format=text_format,
            credits_per_usd=credits_per_usd,
            min_nano=min_nano,
        )

    def _exported(self, query: Query, viewer: Principal) -> EventFilter:
        """The events an export of `query` holds for `viewer`: none at all (an empty key list) when it may see
        none."""
        nothing = EventFilter(account_id=query.account_id or viewer.account_id, key_ids=())
        return self.event_filter(query, viewer=viewer) or nothing

    def event_filter(self, query: Query, *, viewer: Principal) -> EventFilter | None:
        """The raw events' filter of a query under `viewer`'s access; None when the viewer may see none of them.

        Raises:
            NotFound, PermissionDenied: as `run`.
            ValueError: a filter on another dimension than key, member, agent, provider and model, or several
                accounts.
        """
        where = _where(query, viewer)
        unsupported = set(where) - _EVENT_FILTERS.keys()
        if unsupported:
            raise ValueError(f"the drill-down cannot filter by {', '.join(sorted(unsupported))}")
        if any(values == () for values in where.values()):
            return None
        accounts = where.pop(Dimension.ACCOUNT.value, None)
        if accounts is not None and len(accounts) != 1:
            raise ValueError("the drill-down reads one account at a time")
        return EventFilter(
            voided=False,
            account_id=None if accounts is None else accounts[0],
            models=query.filters.models,
            since=query.window.since,
            until=query.window.until,
            **{_EVENT_FILTERS[name]: values for name, values in where.items()},
        )


_EVENT_FILTERS = {
    Dimension.ACCOUNT.value: "account_id",
    Dimension.KEY.value: "key_ids",
    Dimension.MEMBER.value: "member_ids",
    Dimension.AGENT.value: "agent_ids",
    Dimension.PROVIDER.value: "providers",
}


_MINUTES = Slots(size=60, shifts=((0, 0),))
"""Minutes of UTC, which are every zone's: every offset in use is a whole number of minutes."""


def _minute(slot: int | None, tz: ZoneInfo) -> datetime:
    assert slot is not None
    return datetime.fromtimestamp(slot * 60, UTC).astimezone(tz)


def _source(query: Query, where: dict[str, tuple[str, ...]]) -> Source:
    """The table that answers the query exactly and reads least: the raw events for a part of a quarter hour, the
    daily cube for local days of one account in its own zone, the key rollups when the query needs no other
    dimension than account, key and status, the quarter-hour rollups otherwise."""
    if query.by_minute or (
        query.within is not None
        and any(epoch_us(instant) % (ROLLUP_BUCKET_SECONDS * 1_000_000) for instant in query.within)
    ):
        return Source.EVENTS
    accounts = where.get(Dimension.ACCOUNT.value)
    one_account = accounts is not None and len(accounts) == 1
    if query.within is None and query.local_days and query.grain is not Grain.HOUR and one_account:
        return Source.DAILY
    named = (*where, *(dimension.value for dimension in query.group_by))
    return (
        Source.KEY_ROLLUPS if query.filters.models is None and KEY_ROLLUP_FIELDS.issuperset(named) else Source.ROLLUPS
    )


def _where(query: Query, viewer: Principal) -> dict[str, tuple[str, ...]]:
    """The query's filters, narrowed to what `viewer` may see (a filter never widens the scope)."""
    where = {dimension.value: values for dimension, values in query.filters.values.items()}
    for name, allowed in _scope(viewer, query.account_id).items():
        asked = where.get(name)
        where[name] = allowed if asked is None else tuple(value for value in asked if value in allowed)
    return where


def _scope(viewer: Principal, account_id: str | None) -> dict[str, tuple[str, ...]]:
    """The dimension values `viewer` is limited to, for a query about `account_id` (None: the viewer's own)."""
    if viewer.kind is PrincipalKind.MASTER:
        return {} if account_id is None else {Dimension.ACCOUNT.value: (account_id,)}
    own = viewer.account_id
    if account_id is not None and account_id != own:
        raise NotFound(f"no account with id {account_id!r}", code="account_not_found")
    assert own is not None, "a member token or a key belongs to an account"
    scope: dict[str, tuple[str, ...]] = {Dimension.ACCOUNT.value: (own,)}
    if viewer.kind is PrincipalKind.KEY:
        scope[Dimension.KEY.value] = (viewer.key_id or "",)
    elif viewer.role is Role.MEMBER:
        scope[Dimension.MEMBER.value] = (viewer.member_id or "",)
    return scope
