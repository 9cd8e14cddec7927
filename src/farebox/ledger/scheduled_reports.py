"""An account's scheduled reports, and the claim that runs each slot of one exactly once.

A schedule remembers the latest slot taken (`last_slot_us`). A new schedule, or one whose timing changes, starts
at the latest slot at or before the change: its first run is the next slot, never one in the past. Running a slot
is `claim`: in one transaction the slot is advanced only if the schedule still holds the value the runner read
(so of two runners, or of a runner and a PUT that changed the schedule meanwhile, one wins), and the deliveries
are enqueued in the outbox with it. Either both commit or neither does, so a slot is delivered once, survives a
restart (the outbox retries it), and a slot missed while farebox was down is taken by the first runner after it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, insert, select, update

from farebox.core.events import epoch_us
from farebox.core.report_schedule import Frequency, Timing
from farebox.ledger.base import Ledger
from farebox.ledger.outbox import Message, enqueue
from farebox.ledger.schema import scheduled_reports

__all__ = ["ReportSpec", "ScheduledReport", "ScheduledReports"]

_table = scheduled_reports.c


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """One scheduled report as an admin sets it."""

    name: str
    timing: Timing
    request: Mapping[str, Any]
    """The report's `format`, `period`, `sections` and `filters`, camelCase as the API takes them."""
    recipients: tuple[str, ...] = ()
    webhook_url: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduledReport:
    """A stored scheduled report: its spec, and the latest slot taken (epoch microseconds)."""

    id: str
    account_id: str
    spec: ReportSpec
    created_at_us: int
    updated_at_us: int
    last_slot_us: int


def _row(account_id: str, spec: ReportSpec) -> dict[str, Any]:
    timing = spec.timing
    return {
        "account_id": account_id,
        "name": spec.name,
        "frequency": timing.frequency.value,
        "at_time": timing.at.strftime("%H:%M"),
        "timezone": timing.zone.key,
        "day": timing.day,
        "request": dict(spec.request),
        "recipients": list(spec.recipients),
        "webhook_url": spec.webhook_url,
    }


def _report(row: Any) -> ScheduledReport:
    timing = Timing(Frequency(row.frequency), time.fromisoformat(row.at_time), ZoneInfo(row.timezone), row.day)
    spec = ReportSpec(row.name, timing, row.request, tuple(row.recipients), row.webhook_url)
    return ScheduledReport(row.id, row.account_id, spec, row.created_at_us, row.updated_at_us, row.last_slot_us)


def _when(timing: Timing) -> tuple[Frequency, time, str, int]:
    """A timing as it compares: zones by name (two `ZoneInfo` of one name need not be one object)."""
    return timing.frequency, timing.at, timing.zone.key, timing.day


def _select(connection: Connection, account_id: str | None) -> list[ScheduledReport]:
    query = select(scheduled_reports).order_by(_table.account_id, _table.name)
    if account_id is not None:
        query = query.where(_table.account_id == account_id)
    return [_report(row) for row in connection.execute(query)]


def _replace(
    connection: Connection, account_id: str, specs: Sequence[ReportSpec], *, now: datetime
) -> list[ScheduledReport]:
    now_us = epoch_us(now)
    existing = {report.spec.name: report for report in _select(connection, account_id)}
    for spec in specs:
        values = _row(account_id, spec) | {"updated_at_us": now_us}
        before = existing.pop(spec.name, None)
        if before is not None and _row(account_id, before.spec) == _row(account_id, spec):
            continue  # unchanged: its updated_at_us stays, so a runner making it now is not refused its slot
        if before is None:
            values |= {
                "id": str(uuid.uuid4()),
                "created_at_us": now_us,
                "last_slot_us": epoch_us(spec.timing.latest(now)),
            }
            connection.execute(insert(scheduled_reports).values(values))
            continue
        if _when(before.spec.timing) != _when(spec.timing):
            values["last_slot_us"] = epoch_us(spec.timing.latest(now))
        connection.execute(update(scheduled_reports).where(_table.id == before.id).values(values))
    if existing:
        connection.execute(delete(scheduled_reports).where(_table.id.in_([gone.id for gone in existing.values()])))
    order = {spec.name: position for position, spec in enumerate(specs)}
    return sorted(_select(connection, account_id), key=lambda report: order[report.spec.name])


def _claim(
    connection: Connection, report: ScheduledReport, *, slot_us: int, messages: Sequence[Message], now_us: int
) -> bool:
    advanced = connection.execute(
        update(scheduled_reports)
        .where(
            _table.id == report.id,
            _table.last_slot_us == report.last_slot_us,
            _table.updated_at_us == report.updated_at_us,
        )
        .values(last_slot_us=slot_us)
    )
    if advanced.rowcount != 1:
        return False
    enqueue(connection, messages, now_us=now_us)
    return True


class ScheduledReports:
    """The scheduled reports of one ledger. Each method is one transaction of its own."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def replace(self, account_id: str, specs: Sequence[ReportSpec], *, now: datetime) -> list[ScheduledReport]:
        """Make the account's scheduled reports these, matched by name: the ones named again are changed (a changed
        timing starts again from `now`), the new ones created, the others deleted. The reports, in `specs`' order."""
        return await self._ledger._write(lambda connection: _replace(connection, account_id, specs, now=now))

    async def list(self, *, account_id: str | None = None) -> list[ScheduledReport]:
        """The account's scheduled reports (every account's without one), by account and name."""
        return await self._ledger._read(lambda connection: _select(connection, account_id))

    async def claim(self, report: ScheduledReport, *, slot_us: int, messages: Sequence[Message], now_us: int) -> bool:
        """Take the slot at `slot_us` for `report` and enqueue its deliveries, together; False (nothing written)
        when the schedule no longer holds what `report` read: another runner took a slot, or it was changed."""
        return await self._ledger._write(
            lambda connection: _claim(connection, report, slot_us=slot_us, messages=messages, now_us=now_us)
        )
