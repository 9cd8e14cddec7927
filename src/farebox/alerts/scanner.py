"""Anomaly detection on the hourly rollups, every `interval` seconds, for every account that has it on.

Each round reads each account's hourly spend per key and in total over the detectors' look-back, runs the
detectors (`farebox.core.anomalies`: leaked key, cost spike, runaway script) on every series, checks every
capped key, member and account for a projected cap crossing, and fires `anomaly.detected` with the
evidence. A series anomaly fires once per kind, key and local day; a projected crossing once per cap period.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from farebox.alerts.actions import Alert, Alerter, Fired
from farebox.alerts.config import AlertConfig
from farebox.alerts.store import load_configs
from farebox.core.anomalies import Anomaly, detect_projected_crossing, detect_spend_anomalies
from farebox.core.clock import utcnow
from farebox.core.periods import Period, period_end, period_start
from farebox.core.spend import CounterId, Scope
from farebox.ledger.base import Ledger
from farebox.ledger.schema import accounts, members, usage_rollups_hourly, virtual_keys
from farebox.ledger.spend import read_counters

__all__ = ["AnomalyScanner"]

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
    ) -> None:
        self._ledger = ledger
        self._alerter = alerter
        self._interval = interval
        self._clock = clock

    async def run(self) -> None:
        while True:
            try:
                await self.scan()
            except Exception:
                log.exception("anomaly scan failed; trying again next interval")
            await asyncio.sleep(self._interval)

    async def scan(self) -> Fired:
        """One round over every account; what fired."""
        now = self._clock()
        found = await self._ledger.read(lambda c: _detect(c, now))
        return await self._alerter.fire_all(found, at=now)


def _detect(connection: Connection, now: datetime) -> list[tuple[Alert, AlertConfig]]:
    zones = {row.id: ZoneInfo(row.timezone) for row in connection.execute(select(accounts.c.id, accounts.c.timezone))}
    configs = load_configs(connection, zones)
    found: list[tuple[Alert, AlertConfig]] = []
    for account_id, config in configs.items():
        settings = config.anomalies
        if not settings.enabled:
            continue
        thresholds = settings.thresholds()
        tz = zones[account_id]
        anomalies: list[Anomaly] = []
        for (scope, scope_id), hourly in _hourly_series(connection, account_id, now, thresholds).items():
            anomalies.extend(
                detect_spend_anomalies(hourly, scope=scope, scope_id=scope_id, now=now, tz=tz, thresholds=thresholds)
            )
        for scope, owner_id, cap, period, spent in _capped(connection, account_id, now, tz):
            start = period_start(period, at=now, tz=tz)
            end = period_end(period, start=start, tz=tz)
            if end is None:
                continue
            anomaly = detect_projected_crossing(
                scope=scope,
                scope_id=owner_id,
                spent_nano=spent,
                cap_nano=cap,
                period_start=start,
                period_end=end,
                now=now,
                thresholds=thresholds,
            )
            if anomaly is not None:
                anomalies.append(anomaly)
        day = int(period_start(Period.DAILY, at=now, tz=tz).timestamp())
        for anomaly in anomalies:
            found.append((_alert(anomaly, account_id, settings.actions, day=day), config))
    return found


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


def _hourly_series(
    connection: Connection, account_id: str, now: datetime, thresholds: Any
) -> dict[tuple[str, str], dict[int, int]]:
    """Hourly spend of each key of the account and of the account itself, over the detectors' look-back."""
    hours = thresholds.baseline_hours + thresholds.window_seconds // 3600 + (thresholds.runaway_days + 2) * 24
    since = int((now - timedelta(hours=hours)).timestamp()) // 3600 * 3600
    rollups = usage_rollups_hourly.c
    query = (
        select(rollups.key_id, rollups.hour, func.sum(rollups.cost_nano).label("cost"))
        .where(rollups.account_id == account_id, rollups.hour >= since)
        .group_by(rollups.key_id, rollups.hour)
    )
    series: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for row in connection.execute(query):
        cost = int(row.cost)
        if row.key_id:
            series[("key", row.key_id)][int(row.hour)] = cost
        total = series[("account", account_id)]
        total[int(row.hour)] = total.get(int(row.hour), 0) + cost
    return series


def _capped(
    connection: Connection, account_id: str, now: datetime, tz: ZoneInfo
) -> list[tuple[str, str, int, Period, int]]:
    """(scope, id, cap, period, spent this period) of every capped, live key, member and the account."""
    owners: list[tuple[str, str, int, Period]] = []
    for scope, table, where in (
        ("account", accounts, accounts.c.id == account_id),
        ("member", members, members.c.account_id == account_id),
        ("key", virtual_keys, (virtual_keys.c.account_id == account_id) & virtual_keys.c.revoked_at.is_(None)),
    ):
        query = select(table.c.id, table.c.spend_cap_nano, table.c.cap_period).where(
            where, table.c.spend_cap_nano.is_not(None)
        )
        owners.extend(
            (scope, row.id, int(row.spend_cap_nano), Period(row.cap_period)) for row in connection.execute(query)
        )
    counters = [CounterId.of(Scope(scope), owner_id, period, at=now, tz=tz) for scope, owner_id, _, period in owners]
    spent = read_counters(connection, counters)
    result = [
        (scope, owner_id, cap, period, spent.get(counter, 0))
        for (scope, owner_id, cap, period), counter in zip(owners, counters, strict=True)
    ]
    return result
