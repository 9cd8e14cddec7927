"""The scheduled reports' runner: every `interval` seconds, each report whose latest slot has not been taken yet
is made and handed to the outbox.

A report is made before its slot is claimed, and the claim (`ScheduledReports.claim`) advances the slot and
enqueues its deliveries in one transaction, conditioned on the slot the runner read: of two runners, or of runs
before and after a restart, one delivers the slot and the others write nothing. A report that cannot be made (its
account's data unreadable) takes no slot, and is tried again at the next round. Only the latest slot runs: a
farebox that was down for three slots makes one report when it is back, for the latest of them.

A delivery's body is `{"type": "report.scheduled", "timestamp", "data"}`: `data.text` titles it (the e-mail's
subject), `data.report` is the report as `POST /api/admin/analytics/reports` answers it in JSON, and for a CSV,
XLSX or PDF report `data.attachment` holds the file (`filename`, `contentType`, base64 `content`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from farebox.analytics.admin_reports import account_report, report_filename, report_json, report_section
from farebox.analytics.calendar import Window
from farebox.analytics.engine import Engine
from farebox.analytics.report_files import ReportFormat, render
from farebox.analytics.scheduled_reports import ReportRequest, report_days
from farebox.core.clock import utcnow
from farebox.core.credentials import Principal, PrincipalKind
from farebox.core.events import epoch_us
from farebox.core.json_numbers import dumps_exact
from farebox.errors import FareboxError
from farebox.ledger.directory import Directory
from farebox.ledger.outbox import Message
from farebox.ledger.scheduled_reports import ScheduledReport, ScheduledReports
from farebox.ledger.webhooks import WebhookEndpoints

__all__ = ["EVENT_TYPE", "ReportRunner"]

log = logging.getLogger(__name__)

EVENT_TYPE = "report.scheduled"
_OPERATOR = Principal(kind=PrincipalKind.MASTER)
"""Who a scheduled report reads as: its account's owner or admin set it up, and they read the whole account."""


class ReportRunner:
    """Runs the due slots of every account's scheduled reports until cancelled; `on_enqueued` listeners hear of
    each round that enqueued deliveries (the sender's `poke`)."""

    def __init__(
        self,
        schedules: ScheduledReports,
        directory: Directory,
        analytics: Engine,
        endpoints: WebhookEndpoints,
        *,
        interval: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._schedules = schedules
        self._directory = directory
        self._analytics = analytics
        self._endpoints = endpoints
        self._interval = interval
        self._clock = clock
        self.on_enqueued: list[Callable[[], None]] = []

    async def run(self) -> None:
        """Run the due slots now and every `interval` seconds; a failed round is logged and tried at the next."""
        while True:
            try:
                await self.run_due()
            except Exception:
                log.exception("running the scheduled reports failed; trying again at the next round")
            await asyncio.sleep(self._interval)

    async def run_due(self) -> int:
        """Make and enqueue every report whose latest slot at or before now is not taken yet; how many this runner
        took (a slot another runner took meanwhile is not counted)."""
        now = self._clock()
        taken = 0
        for report in await self._schedules.list():
            slot = report.spec.timing.latest(now)
            if epoch_us(slot) <= report.last_slot_us:
                continue
            try:
                messages = await self.messages(report, slot, now=now)
            except (FareboxError, ValidationError):
                log.exception("scheduled report %s (%s) could not be made; trying again", report.id, report.spec.name)
                continue
            if await self._schedules.claim(report, slot_us=epoch_us(slot), messages=messages, now_us=epoch_us(now)):
                taken += 1
        if taken:
            for listener in self.on_enqueued:
                listener()
        return taken

    async def messages(self, report: ScheduledReport, slot: datetime, *, now: datetime) -> list[Message]:
        """The deliveries of `report`'s run at `slot`: one e-mail to all its recipients, one POST to the account's
        webhook endpoint of its `webhookUrl` (signed with the endpoint's secret; none when no endpoint has that URL
        any more)."""
        spec = report.spec
        request = ReportRequest.model_validate(spec.request)
        first, last = spec.timing.covered(slot, days=report_days(request.period))
        built = await account_report(
            self._directory,
            self._analytics,
            account_id=report.account_id,
            name=spec.name,
            window=Window(first, last, spec.timing.zone),
            sections=[report_section(section, n) for n, section in enumerate(request.sections)],
            asked=request.filters,
            viewer=_OPERATOR,
        )
        data: dict[str, Any] = {
            "text": f"{spec.name}: {first.isoformat()} to {last.isoformat()}",
            "scheduledReportId": report.id,
            "slot": slot.isoformat().replace("+00:00", "Z"),
            "report": report_json(built),
        }
        if request.format is not ReportFormat.JSON:
            data["attachment"] = {
                "filename": report_filename(built, request.format),
                "contentType": request.format.media_type,
                "content": base64.b64encode(render(built, request.format)).decode(),
            }
        body = dumps_exact({"type": EVENT_TYPE, "timestamp": now.isoformat(), "data": data}).decode()
        messages = []
        if spec.recipients:
            messages.append(Message(report.account_id, "email", EVENT_TYPE, body, target=",".join(spec.recipients)))
        if spec.webhook_url is not None:
            endpoint = next(
                (
                    endpoint
                    for endpoint in await self._endpoints.list_endpoints(account_id=report.account_id)
                    if endpoint.url == spec.webhook_url
                ),
                None,
            )
            if endpoint is None:
                log.warning("scheduled report %s: no webhook endpoint has its URL any more", report.id)
            else:
                messages.append(Message(report.account_id, "webhook", EVENT_TYPE, body, endpoint_id=endpoint.id))
        return messages
