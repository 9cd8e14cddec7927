"""The audit log: one row per audited request, appended in the writer's next transaction, read newest first, and
deleted past the retention.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select

from farebox.ledger.base import Ledger
from farebox.ledger.schema import audit_log

__all__ = ["AuditEntry", "AuditLog", "AuditQuery"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited request (`farebox.ledger.schema.audit_log` says what each field holds)."""

    id: str
    at_us: int
    method: str
    route: str
    path: str
    status: int
    principal_kind: str | None
    principal_account_id: str | None
    principal_member_id: str | None
    principal_key_id: str | None
    principal_role: str | None
    account_id: str | None
    key_id: str | None
    member_id: str | None
    filters: Mapping[str, Any]
    client_address: str
    correlation_id: str


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which rows to read: each field given keeps only the rows matching it; newest first, `limit` at a time after
    the `after` row (at_us, id)."""

    account_id: str | None = None
    principal_id: str | None = None
    """A member or a virtual key that made the requests."""
    principal_kind: str | None = None
    route: str | None = None
    """A route template (`/api/admin/analytics/usage/trends`), or its start."""
    correlation_id: str | None = None
    since_us: int | None = None
    until_us: int | None = None
    limit: int = 100
    after: tuple[int, str] | None = None


_log = audit_log.c
_COLUMNS = [getattr(_log, name) for name in AuditEntry.__dataclass_fields__]


class AuditLog:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def record(self, entry: AuditEntry) -> None:
        """Append one row; returns once it is committed."""
        row = asdict(entry)
        row["filters"] = dict(entry.filters)
        await self._ledger._write(lambda connection: connection.execute(insert(audit_log).values(row)))

    async def search(self, wanted: AuditQuery) -> list[AuditEntry]:
        """The rows `wanted` asks for, newest first."""
        where = []
        if wanted.account_id is not None:
            where.append(_log.account_id == wanted.account_id)
        if wanted.principal_id is not None:
            where.append(
                or_(_log.principal_member_id == wanted.principal_id, _log.principal_key_id == wanted.principal_id)
            )
        if wanted.principal_kind is not None:
            where.append(_log.principal_kind == wanted.principal_kind)
        if wanted.route is not None:
            where.append(_log.route.startswith(wanted.route, autoescape=True))
        if wanted.correlation_id is not None:
            where.append(_log.correlation_id == wanted.correlation_id)
        if wanted.since_us is not None:
            where.append(_log.at_us >= wanted.since_us)
        if wanted.until_us is not None:
            where.append(_log.at_us < wanted.until_us)
        if wanted.after is not None:
            at_us, last_id = wanted.after
            where.append(or_(_log.at_us < at_us, and_(_log.at_us == at_us, _log.id < last_id)))
        query = select(*_COLUMNS).where(*where).order_by(_log.at_us.desc(), _log.id.desc()).limit(wanted.limit)
        rows = await self._ledger._read(lambda connection: connection.execute(query).mappings().all())
        return [AuditEntry(**row) for row in rows]

    async def prune(self, *, before_us: int, limit: int) -> int:
        """Delete up to `limit` of the oldest rows written before `before_us`; how many were deleted."""
        return await self._ledger._write(lambda connection: _prune(connection, before_us=before_us, limit=limit))


def _prune(connection: Connection, *, before_us: int, limit: int) -> int:
    old: Sequence[str] = connection.scalars(
        select(_log.id).where(_log.at_us < before_us).order_by(_log.at_us).limit(limit)
    ).all()
    if old:
        connection.execute(delete(audit_log).where(_log.id.in_(old)))
    return len(old)
