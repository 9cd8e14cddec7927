"""The ledger's own error for "the database could not be used", so that callers need no driver exceptions.

Reads, writes, migrations and the schema check raise `DatabaseUnusable` where the driver raised (an
unreachable server, a refused login, a statement the database rejected); the driver's exception is its
`__cause__`. A write the group-commit writer could not commit is still `LedgerUnavailable`, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError

__all__ = ["DatabaseUnusable", "database_errors"]


class DatabaseUnusable(Exception):
    """The ledger database could not be used.

    Not a `FareboxError`: the reason may name the server or the schema, which an API client must not see
    (the API answers its generic 500); the CLI prints it on one line.

    Attributes:
        reason: the first line of the driver's explanation; never the URL, so never its password.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextmanager
def database_errors() -> Iterator[None]:
    """Turn a driver error raised inside the block into `DatabaseUnusable` (the driver's error as its cause)."""
    try:
        yield
    except DBAPIError as exc:
        raise DatabaseUnusable(_reason(exc)) from exc


def _reason(exc: DBAPIError) -> str:
    if exc.orig is None:
        return exc.__class__.__name__
    lines = str(exc.orig).strip().splitlines()
    return lines[0] if lines else exc.orig.__class__.__name__
