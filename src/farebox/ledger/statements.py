"""The writer's SQL statements: multi-row INSERTs and upserts, built once as plain driver SQL for both databases."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import chain
from typing import Any

__all__ = ["SQLITE_MAX_PARAMETERS", "Insert", "upsert"]

# SQLite's default limit on a statement's parameters: 32,766 since 3.32, 999 before.
SQLITE_MAX_PARAMETERS = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999
# The sizes of multi-row statements (1,000 rows take 10).
# 12 is a lone event's spend counters (3 owners x 4 periods): one statement, not three of 4 rows.
_ROWS_PER_STATEMENT = (256, 64, 16, 12, 4, 1)


def _cut(rows: Sequence[Any], sizes: Sequence[int]) -> list[Sequence[Any]]:
    """`rows` cut into chunks of the given sizes (descending, ending in 1), each chunk as large as fits."""
    chunks, start = [], 0
    for size in sizes:
        while len(rows) - start >= size:
            chunks.append(rows[start : start + size])
            start += size
    return chunks


class Insert:
    """An `INSERT INTO table (columns) VALUES ...` statement for one row or, on SQLite, for many at once.

    sqlite3 releases the GIL around every step, and executemany() steps once per row. Each time the writer
    thread wanted the GIL back it waited for the event loop's thread to let go of it (up to the switch
    interval), so with requests being parsed there a transaction crawled. One multi-row statement binds
    under the GIL once and then runs all its rows without it. Only a few sizes are used
    (`_ROWS_PER_STATEMENT`): a prepared 250-row statement holds about 0.7 MB, and sqlite3 keeps 128 of them.
    """

    def __init__(self, table: str, columns: Sequence[str], *, marker: str, tail: str = ""):
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        row = f"({', '.join(marker for _ in columns)})"
        self._sizes = tuple(size for size in _ROWS_PER_STATEMENT if size * len(columns) <= SQLITE_MAX_PARAMETERS)
        self._sized = {size: head + ", ".join([row] * size) + tail for size in self._sizes}
        self.one_row = self._sized[1]
        """The statement for one row (what PostgreSQL's pipelined executemany() takes)."""

    def run_sqlite(self, driver_connection: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert `rows` on a sqlite3 connection in a few multi-row statements."""
        for chunk in _cut(rows, self._sizes):
            driver_connection.execute(self._sized[len(chunk)], list(chain.from_iterable(chunk)))


def upsert(table: str, *, keys: Sequence[str], sums: Sequence[str], marker: str, replace: bool = False) -> Insert:
    """An INSERT that adds its `sums` columns to an existing row with the same `keys` (both databases), or with
    `replace` overwrites them."""
    tail = f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET " + ", ".join(
        f"{name} = excluded.{name}" if replace else f"{name} = {table}.{name} + excluded.{name}" for name in sums
    )
    return Insert(table, [*keys, *sums], marker=marker, tail=tail)
