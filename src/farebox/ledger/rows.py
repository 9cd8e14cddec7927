"""Directory rows: accounts, members, keys and member tokens between their tables and their dataclasses.

`build` turns a row into its dataclass, `clean` validated fields into column values; `fetch_row` and
`update_row` read and change one row in the caller's transaction (NotFound for an unknown id), and
`disable_key_row` disables a key there, so an alert can disable it together with its firing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, RowMapping, Table, select, update

from farebox.core.credentials import MemberToken
from farebox.core.owners import Account, Member, Plan, Role, Rule, VirtualKey, clean_fields
from farebox.core.periods import Period
from farebox.errors import NotFound
from farebox.ledger.schema import accounts, virtual_keys

__all__ = [
    "KEY",
    "Row",
    "build",
    "clean",
    "disable_key_row",
    "epoch_seconds",
    "fetch_row",
    "row_values",
    "timezones",
    "update_row",
]

Row = dict[str, Any]
T = TypeVar("T", Account, Member, VirtualKey, MemberToken)
_CHUNK = 500


def epoch_seconds(at: datetime) -> int:
    """Whole epoch seconds (floored) of a datetime; a naive one is taken as UTC.

    Counted in whole timedeltas, not through `timestamp()`: its float rounds the last microseconds of year 9999 up
    to year 10000, which no datetime can hold when the row is read back.
    """
    return ((at if at.tzinfo else at.replace(tzinfo=UTC)) - _EPOCH) // _SECOND


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_ENUMS: dict[str, type[Plan | Role | Period]] = {"plan": Plan, "role": Role, "cap_period": Period}
_TIMES = frozenset(
    {
        "created_at",
        "updated_at",
        "expires_at",
        "revoked_at",
        "disabled_at",
        "last_used_at",
        "password_changed_at",
        "erased_at",
    }
)
_TUPLES = frozenset({"allowed_models", "tags"})


def build(cls: type[T], row: Mapping[str, Any] | RowMapping) -> T:
    """The dataclass of a row: epoch seconds become datetimes, strings enums, JSON lists tuples.

    A member's `has_password` says whether its row holds a password hash; the hash itself stays in the row.
    """
    values: Row = {}
    for field in fields(cls):
        if field.name == "has_password":
            values[field.name] = row["password_hash"] is not None
            continue
        value = row[field.name]
        if value is not None:
            if field.name in _TIMES:
                value = datetime.fromtimestamp(value, tz=UTC)
            elif field.name in _ENUMS:
                value = _ENUMS[field.name](value)
            elif field.name in _TUPLES:
                value = tuple(value)
        values[field.name] = value
    return cls(**values)


def row_values(values: Mapping[str, Any]) -> Row:
    """Column values of cleaned fields: datetimes become epoch seconds, tuples JSON lists."""
    return {
        name: epoch_seconds(value)
        if isinstance(value, datetime)
        else list(value)
        if isinstance(value, tuple)
        else value
        for name, value in values.items()
    }


def clean(rules: Mapping[str, Rule], values: Mapping[str, Any]) -> Row:
    return row_values(clean_fields(rules, values))


def fetch_row(connection: Connection, table: Table, row_id: str, *, what: str) -> Row:
    row = connection.execute(select(table).where(table.c.id == row_id)).mappings().first()
    if row is None:
        raise NotFound.of(what, row_id)
    return dict(row)


def update_row(connection: Connection, table: Table, row_id: str, changes: Row, *, what: str, now: int) -> Row:
    fetch_row(connection, table, row_id, what=what)
    if changes:
        connection.execute(update(table).where(table.c.id == row_id).values(**changes, updated_at=now))
    return fetch_row(connection, table, row_id, what=what)


KEY = "virtual key"


def disable_key_row(connection: Connection, key_id: str, *, reason: str, now: int) -> Row:
    """Disable a key inside the caller's transaction (an alert disables it atomically with its firing)."""
    current = fetch_row(connection, virtual_keys, key_id, what=KEY)
    if current["disabled_at"] is not None:
        return current
    return update_row(
        connection, virtual_keys, key_id, {"disabled_at": now, "disabled_reason": reason}, what=KEY, now=now
    )


def timezones(connection: Connection, account_ids: set[str]) -> dict[str, ZoneInfo]:
    """The timezones of accounts (UTC for an unknown one)."""
    ids = list(account_ids)
    names: dict[str, str] = {}
    for start in range(0, len(ids), _CHUNK):
        query = select(accounts.c.id, accounts.c.timezone).where(accounts.c.id.in_(ids[start : start + _CHUNK]))
        names.update((row.id, row.timezone) for row in connection.execute(query))
    return {account_id: ZoneInfo(names.get(account_id, "UTC")) for account_id in ids}
