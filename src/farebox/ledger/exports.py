"""Usage events for an export: every event of an account in a range, a large page at a time, voided ones left out.

An export reads millions of rows, so it skips what makes `LedgerReader.events` pleasant and slow: the statement
is compiled once and each page runs on the driver's own cursor, which answers plain tuples of the columns in
`EXPORT_COLUMNS` (no `Row` objects, no dataclasses). Pages follow the (timestamp, id) order of
`ix_usage_events_account_ts_id`, each one its own keyset query after the last row of the page before, so no read
transaction stays open for the whole export and memory holds one page. Voided events (those with a `void` in
`usage_adjustments`) are dropped, as the rollups drop them, and a repriced event's cost has its reprices added, as
the rollups add them, so an export adds up to the usage views' totals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import BindParameter, ColumnElement, Compiled, Connection, Select, and_, bindparam, or_, select

from farebox.core.events import epoch_us
from farebox.ledger.schema import REPRICE, VOID, usage_adjustments, usage_events

if TYPE_CHECKING:
    from farebox.ledger.reader import EventFilter

__all__ = ["EXPORT_COLUMNS", "ExportPage", "ExportQuery", "ExportRow", "matching"]

T = TypeVar("T")

EXPORT_COLUMNS = (
    "id",
    "ts_us",
    "account_id",
    "key_id",
    "member_id",
    "agent_id",
    "app",
    "axis",
    "provider",
    "model",
    "canonical_model",
    "operation",
    "status",
    "http_status",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "characters",
    "seconds_micro",
    "quantity_micro",
    "cost_nano",
    "latency_ms",
    "ttft_ms",
    "streamed",
    "estimated",
)
"""The `usage_events` columns of an `ExportRow`, in its order."""

ExportRow = tuple[Any, ...]
"""One event as the driver answers it, in `EXPORT_COLUMNS` order (booleans may come as 0 and 1)."""

_events = usage_events.c
_adjustments = usage_adjustments.c
_TS, _ID, _COST = (EXPORT_COLUMNS.index(name) for name in ("ts_us", "id", "cost_nano"))


@dataclass(frozen=True, slots=True)
class ExportPage(Generic[T]):
    """What one page read gave: how many events it read, and what the caller made of those it keeps."""

    read: int
    """Events read, voided ones included: fewer than the page size on the last page."""
    result: T
    after: tuple[int, str] | None
    """The (ts_us, id) of the page's last event, where the next page starts; None when it read none."""


def matching(wanted: EventFilter) -> list[ColumnElement[bool]]:
    """The conditions an exported event meets, but for the start of the range: its account, the filters, `until`."""
    where = [_events.account_id == wanted.account_id]
    for column, values in (
        (_events.key_id, wanted.key_ids),
        (_events.member_id, wanted.member_ids),
        (_events.agent_id, wanted.agent_ids),
        (_events.provider, wanted.providers),
    ):
        if values is not None:
            where.append(column.in_(values))
    if wanted.models is not None:
        where.append(or_(_events.model.in_(wanted.models), _events.canonical_model.in_(wanted.models)))
    if wanted.until is not None:
        where.append(_events.ts_us < epoch_us(wanted.until))
    return where


class ExportQuery:
    """One export's statements, compiled once for the connection's dialect and run page after page."""

    def __init__(self, wanted: EventFilter, *, page_size: int) -> None:
        """
        Raises:
            ValueError: no account in `wanted` (an export reads one account, in its index's order), or a page
                size below 1.
        """
        if wanted.account_id is None:
            raise ValueError("an export reads one account")
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.wanted = wanted
        self.page_size = page_size
        where = matching(wanted)
        # `ts_us >= t AND (ts_us > t OR id > i)` rather than the plain OR: the first term bounds the index range,
        # so a page starts where the last one ended instead of at the start of the account's events.
        after_ts: BindParameter[int] = bindparam("after_ts")
        after_id: BindParameter[str] = bindparam("after_id")
        keyset = and_(_events.ts_us >= after_ts, or_(_events.ts_us > after_ts, _events.id > after_id))
        columns = [_events[name] for name in EXPORT_COLUMNS]
        order = (_events.ts_us, _events.id)
        self._first = select(*columns).where(*where, *self._since()).order_by(*order).limit(page_size)
        self._next = select(*columns).where(*where, keyset).order_by(*order).limit(page_size)
        self._adjusted = select(_adjustments.event_id, _adjustments.kind, _adjustments.cost_nano).where(
            _adjustments.account_id == wanted.account_id,
            _adjustments.event_ts_us >= bindparam("first_ts"),
            _adjustments.event_ts_us <= bindparam("last_ts"),
        )
        self._compiled: dict[tuple[str, int], Compiled] = {}

    def _since(self) -> list[Any]:
        since = self.wanted.since
        return [] if since is None else [_events.ts_us >= epoch_us(since)]

    def page(
        self, connection: Connection, *, after: tuple[int, str] | None, keep: Callable[[list[ExportRow]], T]
    ) -> ExportPage[T]:
        """Read the page after `after` (None: the first) and hand its events that are not voided, their costs with
        their reprices, to `keep`."""
        statement = self._first if after is None else self._next
        params = {} if after is None else {"after_ts": after[0], "after_id": after[1]}
        rows = self._fetch(connection, statement, params)
        if not rows:
            return ExportPage(0, keep([]), None)
        last = rows[-1]
        bounds = {"first_ts": rows[0][_TS], "last_ts": last[_TS]}
        adjustments = self._fetch(connection, self._adjusted, bounds)
        kept = _adjusted(rows, adjustments) if adjustments else rows
        return ExportPage(len(rows), keep(kept), (last[_TS], last[_ID]))

    def _fetch(self, connection: Connection, statement: Select[Any], params: dict[str, Any]) -> list[ExportRow]:
        """Run a Core statement on the driver's cursor: plain tuples, none of SQLAlchemy's per-row work."""
        cache_key = (connection.dialect.name, id(statement))
        compiled = self._compiled.get(cache_key)
        if compiled is None:
            compiled = statement.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
            self._compiled[cache_key] = compiled
        values = compiled.construct_params(params) or {}
        positions = getattr(compiled, "positiontup", None)
        bound: Any = tuple(values[name] for name in positions) if positions is not None else values
        raw = connection.connection.dbapi_connection
        assert raw is not None, "a checked-out connection has its driver connection"
        cursor = raw.cursor()
        try:
            cursor.execute(compiled.string, bound)
            rows: list[ExportRow] = list(cursor.fetchall())
        finally:
            cursor.close()
        return rows


def _adjusted(rows: list[ExportRow], adjustments: list[tuple[Any, ...]]) -> list[ExportRow]:
    """The rows but the voided ones, each repriced one's cost with its reprices added."""
    voided = {event_id for event_id, kind, _cost in adjustments if kind == VOID}
    repriced: dict[str, int] = {}
    for event_id, kind, cost in adjustments:
        if kind == REPRICE:
            repriced[event_id] = repriced.get(event_id, 0) + int(cost)
    kept = []
    for row in rows:
        if row[_ID] in voided:
            continue
        delta = repriced.get(row[_ID])
        kept.append(row if delta is None else (*row[:_COST], row[_COST] + delta, *row[_COST + 1 :]))
    return kept
