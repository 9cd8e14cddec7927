"""Every usage view of one month gives the same totals, equal to the sum of the events, whatever the events.

Hypothesis makes the events: LLM, voice and compute usage of two members' keys and of the account itself, at
any minute from a week before the month to its last minute (now: the month is the current one, which
`/v1/usage` reports), at any cost down to the nano-USD, in an account whose zone is UTC, +05:30, +05:45 or New
York's (whose month holds a daylight-saving change). They are posted through `POST /api/events`; then
`GET /api/usage`, `GET /v1/usage`, the members list, cost by model, cost by model over time and the CSV and JSON
exports are asked about the account's current month, over HTTP as the master key.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
from admin_client import MASTER, Api, open_api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIRST, LAST = date(2026, 11, 1), date(2026, 11, 30)
"""November: New York leaves daylight saving on the 1st."""
SPAN_MINUTES = 37 * 24 * 60
ZONES = ("UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York")
OWNERS = ("ada", "bob", "account")
AXES = {
    "llm": ("openai", ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4")),
    "voice": ("openai", ("tts-1",)),
    "compute": ("mycloud", ("vm-small",)),
}
NANO = Decimal("1e-9")


@dataclass(frozen=True)
class Event:
    owner: str
    axis: str
    model: int
    minute: int
    """Minutes before now."""
    cost_nano: int

    def at(self, now: datetime) -> datetime:
        return now - timedelta(minutes=self.minute)

    def body(self, index: int, ids: dict[str, str], now: datetime) -> dict[str, Any]:
        provider, models = AXES[self.axis]
        owner = {"account_id": ids["account"]} if self.owner == "account" else {"key_id": ids[f"{self.owner}_key"]}
        return owner | {
            "id": f"evt-{index}",
            "timestamp": self.at(now).isoformat(),
            "axis": self.axis,
            "provider": provider,
            "model": models[self.model % len(models)],
            "input_tokens": 1,
            "cost_usd": f"{Decimal(self.cost_nano).scaleb(-9):f}",
        }


events = st.lists(
    st.builds(
        Event,
        owner=st.sampled_from(OWNERS),
        axis=st.sampled_from(tuple(AXES)),
        model=st.integers(0, 2),
        minute=st.integers(0, SPAN_MINUTES),
        cost_nano=st.integers(0, 10**10) | st.integers(0, 9),
    ),
    max_size=40,
)


async def _get(api: Api, path: str, **params: str) -> Any:
    response = await api.client.get(path, params=params, headers={"authorization": f"Bearer {MASTER}"})
    assert response.status_code == 200, response.text
    return json.loads(response.content, parse_float=Decimal)


async def _views(tmp_path: Path, zone: str, batch: list[Event]) -> tuple[int, int, dict[str, Decimal]]:
    """(the month's events' cost, of those with a member, in nano-USD) and each view's total in USD."""
    now = datetime(2026, 11, 30, 23, 59, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    async with open_api(tmp_path) as api:
        api.clock.at = now
        account = await api.account("Acme", timezone=zone, plan="enterprise")
        ids = {"account": account["id"]}
        for name in ("ada", "bob"):
            member = await api.member(account["id"], f"{name}@acme.test", "admin")
            ids[f"{name}_key"] = (await api.key(account["id"], member_id=member["id"]))["id"]
        if batch:
            bodies = [event.body(index, ids, now) for index, event in enumerate(batch)]
            posted = await api.client.post(
                "/api/events", json={"events": bodies}, headers={"authorization": f"Bearer {MASTER}"}
            )
            assert posted.status_code == 200, posted.text
        in_month = [e for e in batch if FIRST <= e.at(now).astimezone(ZoneInfo(zone)).date() <= LAST]
        expected = sum(e.cost_nano for e in in_month)
        of_members = sum(e.cost_nano for e in in_month if e.owner != "account")

        scope = {"account_id": account["id"], "from": FIRST.isoformat(), "to": LAST.isoformat()}
        month = await _get(api, "/api/usage", accountId=account["id"])
        key_usage = await _get(api, "/v1/usage", account_id=account["id"])
        credits_per_usd = Decimal(api.services.credit_rate.per_usd)
        members = await _get(api, "/api/analytics/members", **scope)
        models = await _get(api, "/api/analytics/models", **scope)
        over_time = await _get(api, "/api/analytics/models/over-time", grain="day", **scope)
        csv_export = await api.client.get(
            "/v1/usage/export", params=scope | {"format": "csv"}, headers={"authorization": f"Bearer {MASTER}"}
        )
        assert csv_export.status_code == 200, csv_export.text
        json_export = await _get(api, "/v1/usage/export", format="json", **scope)
        axes = [month[axis] for axis in ("compute", "llm", "voice")]
        totals = {
            "/api/usage": sum(axis["totalCents"] for axis in axes) / 100,
            "/api/usage daily": sum(day["totalCents"] for axis in axes for day in axis["daily"]) / 100,
            "/v1/usage": Decimal(key_usage["total_credits_used"]) / credits_per_usd,
            "/v1/usage daily": sum(Decimal(d["credits"]) for d in key_usage["daily_breakdown"]) / credits_per_usd,
            "models": sum(Decimal(row["cost"]) for row in models["data"]),
            "over time": sum(Decimal(c) for line in over_time["series"] for c in line["cost"]),
            "export csv": sum(Decimal(row["cost_usd"]) for row in csv.DictReader(io.StringIO(csv_export.text))),
            "export json": sum(Decimal(row["cost_usd"]) for row in json_export),
            "members": sum(Decimal(row["cost"]) for row in members["data"]),
        }
        return expected, of_members, totals


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(zone=st.sampled_from(ZONES), batch=events)
def test_every_view_of_a_month_has_the_events_total(tmp_path_factory: Any, zone: str, batch: list[Event]) -> None:
    tmp_path = tmp_path_factory.mktemp("views")
    expected, of_members, totals = anyio.run(_views, tmp_path, zone, batch)
    usd = Decimal(expected) * NANO
    assert totals.pop("members") == Decimal(of_members) * NANO, "spend lands on the members who own the keys"
    assert totals == dict.fromkeys(totals, usd)
