"""Anomaly detection on the hourly rollups, every `interval` seconds, for every account that has it on.

Each round reads each account's hourly spend per key and in total over the detectors' look-back, runs the
detectors (`farebox.core.anomalies`: leaked key, cost spike, runaway script) on every series, checks every
capped key, member and account for a projected cap crossing, and fires `anomaly.detected` with the
evidence. A series anomaly fires once per kind, key and local day; a projected crossing once per cap period.

Given `leases`, only the process holding the `anomaly-scan` lease scans (it renews the lease every round, for
three rounds): several processes of one ledger do the work once, and when the holder dies the next process takes
the lease over within three rounds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from farebox.alerts.actions import Alerter
from farebox.alerts.config import AlertConfig
from farebox.alerts.store import parse_configs
from farebox.core.alerts import Alert, Fired
from farebox.core.anomalies import Anomaly, AnomalyThresholds, detect_projected_crossing, detect_spend_anomalies
from farebox.core.clock import utcnow
from farebox.core.periods import Period, period_end, period_start
from farebox.ledger.alert_state import AlertState
from farebox.ledger.base import Ledger
from farebox.ledger.leases import Leases

__all__ = ["LEASE", "AnomalyScanner"]

LEASE = "anomaly-scan"

log = logging.getLogger(__name__)


class AnomalyScanner:
    """Runs the anomaly detectors over every account's rollups, firing `anomaly.detected`."""

    def __init__(
        self,
        ledger: Ledger,
        alerter: Alerter,
        *,
        interval: float,
        clock: Callable[[], datetime] = utcnow,
        leases: Leases | None = None,
    ) -> None:
        self._state = AlertState(ledger)
        self._alerter = alerter
        self._interval = interval
        self._clock = clock
        self._leases = leases
        self.rounds = 0
        """Rounds this process scanned."""

    async def run(self) -> None:
        while True:
            try:
                if self._leases is None or await self._leases.hold(LEASE, seconds=3 * self._interval):
                    await self.scan()
            except Exception:
                log.exception("anomaly scan failed; trying again next interval")
            await asyncio.sleep(self._interval)

    async def scan(self) -> Fired:
        """One round over every account; what fired."""
        self.rounds += 1
        now = self._clock()
        found = await self._detect(now)
        return await self._alerter.fire_all(found, at=now)

    async def _detect(self, now: datetime) -> list[tuple[Alert, AlertConfig]]:
        found: list[tuple[Alert, AlertConfig]] = []
        for account in await self._state.accounts():
            config = parse_configs({account.id: account.config})[account.id]
            settings = config.anomalies
            if not settings.enabled:
                continue
            thresholds = settings.thresholds()
            tz = account.timezone
            anomalies: list[Anomaly] = []
            for (scope, scope_id), hourly in (await self._hourly_series(account.id, now, thresholds)).items():
                anomalies.extend(
                    detect_spend_anomalies(
                        hourly, scope=scope, scope_id=scope_id, now=now, tz=tz, thresholds=thresholds
                    )
                )
            for owner in await self._state.account_caps(account.id, at=now, tz=tz):
                start = period_start(owner.period, at=now, tz=tz)
                end = period_end(owner.period, start=start, tz=tz)
                if end is None:
                    continue
                anomaly = detect_projected_crossing(
                    scope=owner.scope,
                    scope_id=owner.id,
                    spent_nano=owner.spent_nano,
                    cap_nano=owner.cap_nano,
                    period_start=start,
                    period_end=end,
                    now=now,
                    thresholds=thresholds,
                )
                if anomaly is not None:
                    anomalies.append(anomaly)
            day = int(period_start(Period.DAILY, at=now, tz=tz).timestamp())
            for anomaly in anomalies:
                found.append((_alert(anomaly, account.id, settings.actions, day=day), config))
        return found

    async def _hourly_series(
        self, account_id: str, now: datetime, thresholds: AnomalyThresholds
    ) -> dict[tuple[str, str], dict[int, int]]:
        """Hourly spend of each key of the account and of the account itself, over the detectors' look-back."""
        hours = thresholds.baseline_hours + thresholds.window_seconds // 3600 + (thresholds.runaway_days + 2) * 24
        by_key = await self._state.hourly_spend(account_id, since=now - timedelta(hours=hours))
        series: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
        for key_id, hourly in by_key.items():
            for hour, cost in hourly.items():
                if key_id:
                    series[("key", key_id)][hour] = cost
                total = series[("account", account_id)]
                total[hour] = total.get(hour, 0) + cost
        return series


def _alert(anomaly: Anomaly, account_id: str, actions: Any, *, day: int) -> Alert:
    evidence = anomaly.evidence()
    once_per = int(anomaly.window_start.timestamp()) if anomaly.kind == "projected_cap_crossing" else day
    data: dict[str, Any] = {"account_id": account_id, **evidence}
    if anomaly.scope == "key":
        data["key_id"] = anomaly.scope_id
    return Alert(
        f"anomaly:{anomaly.kind}",
        "anomaly.detected",
        account_id,
        anomaly.scope,
        anomaly.scope_id,
        once_per,
        anomaly.message,
        data,
        tuple(actions),
    )
