"""An export's rows as PostgreSQL writes them: `COPY (SELECT …) TO STDOUT` of one account's events, as CSV or JSON.

On PostgreSQL the server formats every field (times, exact decimals, quoting, JSON escapes) in its own process and
streams the rows, so the reader thread only passes bytes on: the export then runs on the database's CPU and ours at
once, at about twice the rate of formatting each row in Python (`bench/RESULTS.md`). The bytes are the ones
`farebox.analytics.export` and `farebox.analytics.export_rows` write row by row on SQLite — the same fields in the
order asked, the same decimals, the same quoting or escapes, LF line ends — and `tests/integration/test_export_sql.py`
holds the two to each other:

- a time is ISO-8601 in UTC with `Z`, with microseconds only when it has some, as `datetime.isoformat` writes it;
- USD has at least two places and no trailing zeros beyond them (`format_usd`); credits, seconds and quantities
  have no trailing zeros (`CreditRate.format`, `format_micro`). Multiplying by a power of ten keeps every digit
  (a numeric division would round past 16 significant digits);
- CSV: an empty string is written as nothing, as a missing value is (COPY would quote it); booleans are `true` and
  `false`;
- JSON: one object per row, keys in the fields' order, compact, strings escaped by `to_json` as orjson escapes
  them. COPY writes each object as a line in CSV format with a quote and a delimiter no JSON text holds raw
  (control characters are escaped), so it goes out as it is: NDJSON's lines. A JSON array's members are the
  objects each led by a comma, the line ends taken out (no JSON text holds one raw) and the first comma dropped.

A cost is the event's as repriced (its reprices summed per event and hash-joined). A whole export is one statement
in one read transaction: PostgreSQL reads it from one snapshot, and the reader thread holds at most a couple of
chunks the client has not taken yet (`Ledger._read_stream`).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import ColumnElement, Connection, Select, func, literal_column, select

from farebox.core.events import epoch_us
from farebox.ledger.exports import matching
from farebox.ledger.schema import REPRICE, usage_adjustments, usage_events, virtual_keys, voided

if TYPE_CHECKING:
    import psycopg

    from farebox.ledger.reader import EventFilter

__all__ = ["EXPORTED_FIELDS", "TextFormat", "copy_rows", "export_query"]

TextFormat = Literal["csv", "json", "ndjson"]
"""CSV rows, the members of one JSON array, or one JSON object a line."""

_events = usage_events.c
_adjustments = usage_adjustments.c
_CHUNK_BYTES = 256 * 1024
"""About how much of the export one chunk holds: few enough hand-offs to the event loop, little memory."""

_TEXT = (
    *("id", "account_id", "key_id", "member_id", "agent_id", "app", "axis", "provider", "model", "canonical_model"),
    *("operation", "status"),
)
_INTEGER = (
    *("http_status", "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens"),
    *("reasoning_tokens", "characters", "latency_ms", "ttft_ms"),
)
_SECOND = "timestamp 'epoch' + (usage_events.ts_us / 1000000) * interval '1 second'"
_TIME = (
    f'CASE WHEN mod(usage_events.ts_us, 1000000) = 0 THEN to_char({_SECOND}, \'YYYY-MM-DD"T"HH24:MI:SS"Z"\') '
    f"ELSE to_char({_SECOND} + mod(usage_events.ts_us, 1000000) * interval '1 microsecond', "
    '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\') END'
)
_COST = "(usage_events.cost_nano + coalesce(reprices.repriced_nano, 0))"
"""An event's cost with its reprices (joined by `export_query`), as every view counts it."""
_USD = (
    f"CASE WHEN mod({_COST}, 10000000) = 0 THEN round({_COST}::numeric * 0.000000001, 2)::text "
    f"ELSE trim_scale({_COST}::numeric * 0.000000001)::text END"
)
_TOKENS = "(usage_events.input_tokens + usage_events.output_tokens)"
_ERRORS = "CASE WHEN usage_events.status = 'error' THEN 1 ELSE 0 END"


def _micro(name: str) -> str:
    return (
        f"CASE WHEN usage_events.{name} = 0 THEN '0' ELSE trim_scale(usage_events.{name}::numeric * 0.000001)::text END"
    )


def _fields(credits_per_usd: int) -> dict[str, tuple[str, str]]:
    """Each field an export may hold, as SQL: (its CSV field, its JSON value). A CSV field is text or a number, NULL
    for an empty cell; a JSON value is never NULL."""
    credits = f"trim_scale({_COST}::numeric * {int(credits_per_usd)} * 0.000000001)::text"
    fields: dict[str, tuple[str, str]] = {}
    for name in _TEXT:
        fields[name] = (f"nullif(usage_events.{name}, '')", f"coalesce(to_json(usage_events.{name})::text, 'null')")
    for name in _INTEGER:
        fields[name] = (f"usage_events.{name}", f"coalesce(usage_events.{name}::text, 'null')")
    for name in ("streamed", "estimated"):
        fields[name] = (f"usage_events.{name}::text", f"usage_events.{name}::text")
    texts = {"timestamp": _TIME, "seconds": _micro("seconds_micro"), "quantity": _micro("quantity_micro")}
    texts |= {"cost_usd": _USD, "credits_used": credits, "cost": _USD}
    for name, text in texts.items():
        fields[name] = (text, f"'\"' || {text} || '\"'")
    fields["virtual_key_id"] = fields["key_id"]
    fields["virtual_key_name"] = ("nullif(virtual_keys.name, '')", "coalesce(to_json(virtual_keys.name)::text, 'null')")
    fields["requests"] = ("1", "'1'")
    fields["tokens"] = (_TOKENS, f"{_TOKENS}::text")
    fields["latency"] = fields["latency_ms"]
    fields["errors"] = (_ERRORS, f"({_ERRORS})::text")
    return fields


EXPORTED_FIELDS = frozenset(_fields(1))
"""Every field PostgreSQL can write: an event's (`farebox.analytics.export.EXPORT_FIELDS`) and the seed's names."""


def export_query(
    wanted: EventFilter,
    *,
    fields: Sequence[str],
    text_format: TextFormat,
    credits_per_usd: int,
    min_nano: int = 0,
) -> Select[Any]:
    """The query whose rows, copied out (`copy_rows`), are an export's rows without its header: a CSV field per
    field, or one JSON object (led by a comma for an array's members).

    Raises:
        ValueError: no account in `wanted` (an export reads one account), or a field not in `EXPORTED_FIELDS`.
    """
    if wanted.account_id is None:
        raise ValueError("an export reads one account")
    known = _fields(credits_per_usd)
    unknown = [name for name in fields if name not in known]
    if unknown:
        raise ValueError(f"not an exported field: {', '.join(unknown)}")
    where = matching(wanted)
    if wanted.since is not None:
        where.append(_events.ts_us >= epoch_us(wanted.since))
    if min_nano:
        where.append(literal_column(_COST) >= int(min_nano))
    reprices = (
        select(_adjustments.event_id, func.sum(_adjustments.cost_nano).label("repriced_nano"))
        .where(_adjustments.account_id == wanted.account_id, _adjustments.kind == REPRICE)
        .group_by(_adjustments.event_id)
        .subquery("reprices")
    )
    joined = usage_events.outerjoin(reprices, reprices.c.event_id == _events.id)
    if "virtual_key_name" in fields:
        joined = joined.outerjoin(virtual_keys, virtual_keys.c.id == _events.key_id)
    columns: list[ColumnElement[Any]]
    if text_format == "csv":
        columns = [literal_column(known[name][0]) for name in fields]
    else:
        members = " || ',' || ".join(f"'{_json_key(name)}:' || {known[name][1]}" for name in fields)
        lead = "'," if text_format == "json" else "'"
        columns = [literal_column(f"{lead}{{' || {members} || '}}'")]
    return select(*columns).select_from(joined).where(*where, ~voided()).order_by(_events.ts_us, _events.id)


def _json_key(name: str) -> str:
    assert name.isidentifier(), "field names are plain words, written as JSON keys and SQL literals unescaped"
    return f'"{name}"'


def copy_rows(
    connection: Connection, query: Select[Any], *, text_format: TextFormat
) -> Generator[tuple[int, bytes], None, None]:
    """`COPY (query) TO STDOUT` on psycopg's cursor: (rows, bytes) chunks of about `_CHUNK_BYTES`, each row ended
    by LF. CSV rows as PostgreSQL quotes them; a JSON object's line as it is; a JSON array's members joined by commas,
    with no line ends.

    PostgreSQL sends each row in its own message, so the rows are counted exactly, whatever line breaks a quoted
    field holds. Closing the generator early cancels the statement.
    """
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    raw = connection.connection.dbapi_connection
    assert raw is not None, "a checked-out connection has its driver connection"
    cursor = cast("psycopg.Cursor[Any]", raw.cursor())
    # A JSON line holds no raw control character (JSON escapes them): quoted and delimited by two, it goes out as is.
    options = "FORMAT csv" if text_format == "csv" else "FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02'"
    members = text_format == "json"
    first = True

    def chunk(rows: list[bytes]) -> tuple[int, bytes]:
        nonlocal first
        data = b"".join(rows)
        if members:
            data = data.replace(b"\n", b"")
            if first:
                data = data[1:]  # the first member's comma
        first = False
        return len(rows), data

    with cursor, cursor.copy(f"COPY ({compiled.string}) TO STDOUT ({options})", compiled.construct_params()) as copy:
        rows: list[bytes] = []
        size = 0
        for row in copy:
            rows.append(bytes(row))
            size += len(row)
            if size >= _CHUNK_BYTES:
                yield chunk(rows)
                rows, size = [], 0
        if rows:
            yield chunk(rows)
