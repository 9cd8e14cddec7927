"""Workloads: an account's agents and plain VMs as named things, kept in the ledger database beside the directory.

A workload's id is the string usage events carry in `agent_id`; registering it gives that usage a name and says
whether it is an agent or a plain VM (`GET /api/usage` shows a plain VM's compute apart from agents'). Setting an
id that is already registered renames it (and may change its kind); its usage, past and future, follows.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from farebox.core.owners import choice, clean_name, invalid
from farebox.errors import NotFound
from farebox.ledger.directory import Directory
from farebox.ledger.rows import epoch_seconds, fetch_row
from farebox.ledger.schema import accounts, workloads

__all__ = ["MAX_WORKLOAD_ID", "Workload", "WorkloadKind", "Workloads", "clean_workload_id"]

MAX_WORKLOAD_ID = 128
"""The longest workload id, in characters."""

_columns = workloads.c


class WorkloadKind(StrEnum):
    """What a workload is: an agent, or a plain VM (compute without an agent on it)."""

    AGENT = "agent"
    PLAIN_VM = "plain_vm"


@dataclass(frozen=True, slots=True)
class Workload:
    """A named agent or plain VM of an account."""

    account_id: str
    id: str
    """What its usage events carry in `agent_id`."""
    kind: WorkloadKind
    name: str
    created_at: datetime
    updated_at: datetime


def _workload(row: Any) -> Workload:
    return Workload(
        account_id=row["account_id"],
        id=row["id"],
        kind=WorkloadKind(row["kind"]),
        name=row["name"],
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        updated_at=datetime.fromtimestamp(row["updated_at"], UTC),
    )


def clean_workload_id(value: str) -> str:
    """A workload id as given: 1 to `MAX_WORKLOAD_ID` characters, not only blanks (kept exactly, since it must
    equal the `agent_id` events carry). Raises ValidationFailed."""
    if not value.strip():
        raise invalid("workload_id", "must not be empty")
    if len(value) > MAX_WORKLOAD_ID:
        raise invalid("workload_id", f"must be at most {MAX_WORKLOAD_ID} characters")
    return value


class Workloads:
    """Register, rename, list and remove an account's workloads.

    Args:
        directory: the directory of the same ledger (the clock, accounts).
    """

    def __init__(self, directory: Directory):
        self._directory = directory
        self._ledger = directory.ledger

    async def set(self, account_id: str, workload_id: str, *, name: str, kind: WorkloadKind | str) -> Workload:
        """Register the workload, or rename it (and set its kind) if the account has it already.

        Raises:
            NotFound: no account has this id (`account_not_found`).
            ValidationFailed: a bad id, name or kind.
        """
        values = {
            "id": clean_workload_id(workload_id),
            "name": clean_name(name),
            "kind": choice(WorkloadKind, kind, field="kind").value,
        }
        now = epoch_seconds(self._directory.now())

        def write(connection: Connection) -> Any:
            fetch_row(connection, accounts, account_id, what="account")
            mine = and_(_columns.account_id == account_id, _columns.id == values["id"])
            changed = connection.execute(update(workloads).where(mine).values(**values, updated_at=now))
            if not changed.rowcount:
                row = values | {"account_id": account_id, "created_at": now, "updated_at": now}
                connection.execute(insert(workloads).values(row))
            return connection.execute(select(workloads).where(mine)).mappings().one()

        return _workload(await self._ledger._write(write))

    async def list(self, account_id: str) -> list[Workload]:
        """The account's workloads by id. Raises NotFound for an unknown account."""

        def fetch(connection: Connection) -> Any:
            fetch_row(connection, accounts, account_id, what="account")
            query = select(workloads).where(_columns.account_id == account_id).order_by(_columns.id)
            return connection.execute(query).mappings().all()

        return [_workload(row) for row in await self._ledger._read(fetch)]

    async def find(self, account_ids: Collection[str] | None = None) -> dict[tuple[str, str], Workload]:
        """The workloads of these accounts (None: of every account), by (account id, workload id)."""
        query = select(workloads)
        if account_ids is not None:
            query = query.where(_columns.account_id.in_(list(account_ids)))
        rows = await self._ledger._read(lambda connection: connection.execute(query).mappings().all())
        return {(row["account_id"], row["id"]): _workload(row) for row in rows}

    async def delete(self, account_id: str, workload_id: str) -> Workload:
        """Forget the workload (its usage is shown again as an agent's, named by its id); the workload it was.

        Raises:
            NotFound: the account has no such workload (`workload_not_found`), or there is no such account.
        """

        def write(connection: Connection) -> Any:
            fetch_row(connection, accounts, account_id, what="account")
            mine = and_(_columns.account_id == account_id, _columns.id == workload_id)
            row = connection.execute(select(workloads).where(mine)).mappings().first()
            if row is None:
                raise NotFound(
                    f"no workload with id {workload_id!r} in account {account_id!r}", code="workload_not_found"
                )
            connection.execute(delete(workloads).where(mine))
            return row

        return _workload(await self._ledger._write(write))
