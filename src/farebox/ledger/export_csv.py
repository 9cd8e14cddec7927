"""An export's CSV as PostgreSQL writes it: `COPY (SELECT …) TO STDOUT (FORMAT csv)` of one account's events.

On PostgreSQL the server formats every field (times, exact decimals, quoting) in its own process and streams the
rows, so the reader thread only passes bytes on: the export then runs on the database's CPU and ours at once, at
about twice the rate of formatting each row in Python (`bench/RESULTS.md`). The bytes are the ones
`farebox.analytics.export` writes row by row on SQLite — the same fields in the same order, the same decimals,
the same quoting, LF line ends — and `tests/integration/test_export_csv.py` holds the two to each other:

- a time is ISO-8601 in UTC with `Z`, with microseconds only when it has some, as `datetime.isoformat` writes it;
- USD has at least two places and no trailing zeros beyond them (`format_usd`); credits, seconds and quantities
  have no trailing zeros (`CreditRate.format`, `format_micro`). Multiplying by a power of ten keeps every digit
  (a numeric division would round past 16 significant digits);
- an empty string is written as nothing, as a missing value is (COPY would quote it);
- booleans are `true` and `false`.

A whole export is one statement in one read transaction: PostgreSQL reads it from one snapshot, and the reader
thread holds at most a couple of chunks the client has not taken yet (`Ledger._read_stream`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, Connection, Select, func, literal_column, select

from farebox.core.events import epoch_us
from farebox.ledger.exports import EXPORT_COLUMNS, matching
from farebox.ledger.schema import REPRICE, usage_adjustments, usage_events, voided

if TYPE_CHECKING:
    import psycopg

    from farebox.ledger.reader import EventFilter

__all__ = ["copy_csv", "csv_copy_query"]

_events = usage_events.c
_adjustments = usage_adjustments.c
_CHUNK_BYTES = 256 * 1024
"""About how much of the CSV one chunk holds: few enough hand-offs to the event loop, little memory."""

_TEXT = frozenset(
    ("id", "account_id", "key_id", "member_id", "agent_id", "app", "axis", "provider", "model", "canonical_model")
    + ("operation", "status")
)
_MICRO = frozenset(("seconds_micro", "quantity_micro"))
_BOOLEAN = frozenset(("streamed", "estimated"))
_SECOND = "timestamp 'epoch' + (ts_us / 1000000) * interval '1 second'"
_TIME = (
    f'CASE WHEN mod(ts_us, 1000000) = 0 THEN to_char({_SECOND}, \'YYYY-MM-DD"T"HH24:MI:SS"Z"\') '
    f"ELSE to_char({_SECOND} + mod(ts_us, 1000000) * interval '1 microsecond', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') END"
)
_COST = "(cost_nano + coalesce(repriced_nano, 0))"
"""An event's cost with its reprices (`repriced_nano`, joined by `csv_copy_query`), as every view counts it."""
_USD = (
    f"CASE WHEN mod({_COST}, 10000000) = 0 THEN round({_COST}::numeric * 0.000000001, 2)::text "
    f"ELSE trim_scale({_COST}::numeric * 0.000000001)::text END"
)


def _fields(credits_per_usd: int) -> list[ColumnElement[Any]]:
    """The select list: one formatted field per exported field, in `EXPORT_COLUMNS` order, the cost twice (USD,
    then credits)."""
    fields: list[ColumnElement[Any]] = []
    for name in EXPORT_COLUMNS:
        if name in _TEXT:
            fields.append(literal_column(f"nullif({name}, '')"))
        elif name == "ts_us":
            fields.append(literal_column(_TIME))
        elif name in _MICRO:
            fields.append(
                literal_column(f"CASE WHEN {name} = 0 THEN '0' ELSE trim_scale({name}::numeric * 0.000001)::text END")
            )
        elif name == "cost_nano":
            fields.append(literal_column(_USD))
            credits = f"trim_scale({_COST}::numeric * {int(credits_per_usd)} * 0.000000001)::text"
            fields.append(literal_column(credits))
        elif name in _BOOLEAN:
            fields.append(literal_column(f"{name}::text"))
        else:
            fields.append(_events[name])
    return fields


def csv_copy_query(wanted: EventFilter, *, credits_per_usd: int) -> Select[Any]:
    """The query whose rows, copied out as CSV (`copy_csv`), are an export's rows without its header.

    Raises:
        ValueError: no account in `wanted`: an export reads one account.
    """
    if wanted.account_id is None:
        raise ValueError("an export reads one account")
    where = matching(wanted)
    if wanted.since is not None:
        where.append(_events.ts_us >= epoch_us(wanted.since))
    # The account's reprices summed per event and hash-joined: a probe per exported row would halve the rate.
    reprices = (
        select(_adjustments.event_id, func.sum(_adjustments.cost_nano).label("repriced_nano"))
        .where(_adjustments.account_id == wanted.account_id, _adjustments.kind == REPRICE)
        .group_by(_adjustments.event_id)
        .subquery("reprices")
    )
    joined = usage_events.outerjoin(reprices, reprices.c.event_id == _events.id)
    return (
        select(*_fields(credits_per_usd))
        .select_from(joined)
        .where(*where, ~voided())
        .order_by(_events.ts_us, _events.id)
    )


def copy_csv(connection: Connection, query: Select[Any]) -> Generator[tuple[int, bytes], None, None]:
    """`COPY (query) TO STDOUT (FORMAT csv)` on psycopg's cursor: (rows, bytes) chunks of about `_CHUNK_BYTES`.

    PostgreSQL sends each row in its own message, so the rows are counted exactly, whatever line breaks a quoted
    field holds. Closing the generator early cancels the statement.
    """
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    raw = connection.connection.dbapi_connection
    assert raw is not None, "a checked-out connection has its driver connection"
    cursor = cast("psycopg.Cursor[Any]", raw.cursor())
    with cursor, cursor.copy(f"COPY ({compiled.string}) TO STDOUT (FORMAT csv)", compiled.construct_params()) as copy:
        rows: list[bytes] = []
        size = 0
        for row in copy:
            rows.append(bytes(row))
            size += len(row)
            if size >= _CHUNK_BYTES:
                yield len(rows), b"".join(rows)
                rows, size = [], 0
        if rows:
            yield len(rows), b"".join(rows)
