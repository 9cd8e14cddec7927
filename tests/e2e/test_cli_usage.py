"""`farebox usage`: a month's usage by model, key, member or day, from the terminal."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from farebox.core.events import Axis, UsageEvent
from farebox.ledger.base import Ledger

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli


def _record(cli: Cli, account_id: str, key_id: str) -> None:
    def event(event_id: str, at: datetime, model: str, cost_nano: int, **fields: Any) -> UsageEvent:
        return UsageEvent(
            id=event_id,
            timestamp=at,
            account_id=account_id,
            key_id=key_id,
            axis=Axis.LLM,
            provider="openai",
            model=model,
            canonical_model=model,
            operation="chat.completions",
            input_tokens=100,
            cost_nano=cost_nano,
            **fields,
        )

    events = [
        event("a", datetime(2026, 3, 1, 0, 10, tzinfo=UTC), "gpt-4o", 3_000_000_000),
        event("b", datetime(2026, 3, 2, 12, tzinfo=UTC), "gpt-4o-mini", 250_000_000),
        event("c", datetime(2026, 2, 28, 23, 50, tzinfo=UTC), "gpt-4o", 1_000_000_000),  # 1 March in Paris
        event("d", datetime(2026, 4, 1, 0, 10, tzinfo=UTC), "gpt-4o", 7_000_000_000),  # April
    ]

    async def record() -> None:
        async with Ledger(cli.database_url) as ledger:
            await ledger.record_many(events)

    asyncio.run(record())


def test_usage_by_model_key_and_day_in_the_account_s_zone(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "Acme", "--timezone", "Europe/Paris")
    key = cli.json("keys", "create", "--account", account["id"], "--name", "ci-bot")
    _record(cli, account["id"], key["id"])
    month = ("--account", account["id"], "--month", "2026-03")

    by_model = cli.json("usage", *month)
    assert (by_model["from"], by_model["to"], by_model["tz"]) == ("2026-03-01", "2026-03-31", "Europe/Paris")
    assert by_model["total"] == {"name": "total", "cost": "4.25", "requests": 3, "tokens": 300}
    assert [(row["name"], row["cost"], row["requests"]) for row in by_model["rows"]] == [
        ("gpt-4o", "4.00", 2),
        ("gpt-4o-mini", "0.25", 1),
    ]
    assert by_model["rows"][0]["daily_cost"][:2] == ["4.00", "0.00"] and len(by_model["rows"][0]["daily_cost"]) == 31

    assert [row["name"] for row in cli.json("usage", *month, "--by", "key")["rows"]] == [key["id"]]
    days = cli.json("usage", *month, "--by", "day")["rows"]
    assert [(row["name"], row["cost"]) for row in days[:3]] == [
        ("2026-03-01", "4.00"),
        ("2026-03-02", "0.25"),
        ("2026-03-03", "0.00"),
    ]
    assert cli.json("usage", *month, "--tz", "UTC")["total"]["cost"] == "3.25", "in UTC, c is February's"

    table = cli.run("usage", *month)
    assert table.exit_code == 0 and "4.25 USD" in table.stdout and "█" in table.stdout


def test_usage_refuses_a_bad_month_or_zone(cli: Cli) -> None:
    assert "2026-13" in cli.fails("usage", "--month", "2026-13", code=2)
    assert "Mars/Base" in cli.fails("usage", "--tz", "Mars/Base", code=2)
    assert "account" in cli.fails("usage", "--account", "no-such-account")
