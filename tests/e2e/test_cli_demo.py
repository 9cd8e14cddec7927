"""`farebox demo`: a seeded month of usage in a new ledger, which every view then reads the same."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tests.e2e.conftest import Cli

NOVEMBER = ("--events", "3000", "--days", "30", "--end", "2026-11-30")


def _without_ids(made: dict[str, Any]) -> dict[str, Any]:
    """What a demo made, without what differs from run to run: ids, secrets, timings."""
    volatile = {"id", "member_id", "agent_id", "account_id", "key_id", "secret", "token", "seconds"}

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in volatile and k != "events_per_second"}
        if isinstance(value, list):
            return [strip(item) for item in value]
        return value

    return strip(made)


def _account(made: dict[str, Any], name: str) -> dict[str, Any]:
    return next(account for account in made["accounts"] if account["name"] == name)


def _key(account: dict[str, Any], name: str) -> dict[str, Any]:
    return next(key for key in account["keys"] if key["name"] == name)


def _day_index(instant: str, tz: str) -> int:
    """The day of November (0-based) an instant falls on in `tz`."""
    return (datetime.fromisoformat(instant).astimezone(ZoneInfo(tz)).date() - date(2026, 11, 1)).days


def _stands_out(daily: Sequence[str], day: int) -> bool:
    """Whether one day's cost is over ten times any other day's."""
    costs = [Decimal(cost) for cost in daily]
    others = costs[:day] + costs[day + 1 :]
    return costs[day] > 10 * max(others)


def test_the_ledger_holds_what_the_demo_says_it_made(cli: Cli) -> None:
    made = cli.json("demo", *NOVEMBER, "--seed", "5")
    assert (made["from"], made["to"], made["events"]) == (
        "2026-11-01T00:00:00+00:00",
        "2026-12-01T00:00:00+00:00",
        3000,
    )
    assert all(Decimal(axis["cost"]) > 0 for axis in made["by_axis"].values()), "every axis is priced"
    assert sum(axis["events"] for axis in made["by_axis"].values()) == 3000
    assert sum(Decimal(axis["cost"]) for axis in made["by_axis"].values()) == Decimal(made["cost"])

    total = cli.json("usage", "--month", "2026-11", "--tz", "UTC")["total"]
    assert (total["cost"], total["requests"]) == (made["cost"], made["events"])

    plans = {account["name"]: (account["plan"], account["timezone"]) for account in cli.json("accounts", "list")}
    assert plans["Northwind Analytics"] == ("enterprise", "America/New_York")
    assert plans["Chai & Code Studio"] == ("pro", "Asia/Kolkata")
    enterprise = _account(made, "Northwind Analytics")
    roles = [member["role"] for member in cli.json("members", "list", "--account", enterprise["id"])]
    assert {"owner", "admin", "billing", "member"} <= set(roles)

    keys = cli.json("keys", "list", "--account", enterprise["id"])
    assert all(key["member_id"] for key in keys), "every key has an owning member"
    assert {key["agent_id"] for key in keys} >= {w["id"] for w in enterprise["workloads"] if w["kind"] == "agent"}
    capped = [key for key in enterprise["keys"] if key["spend_cap"] is not None]
    assert any(Decimal(key["percent_used"]) >= 85 for key in capped), "a key is near its cap"
    support = _key(enterprise, "support-chat")
    assert cli.authenticate(support["secret"]) == support["id"], "the printed secret opens its key"
    assert {w["kind"] for w in enterprise["workloads"]} == {"agent", "plain_vm"}
    registered = cli.json("workloads", "list", "--account", enterprise["id"])
    assert {(w["id"], w["kind"]) for w in registered} == {(w["id"], w["kind"]) for w in enterprise["workloads"]}

    for account in made["accounts"]:  # a key's spend in its account's November is what its cap was set against
        rows = cli.json("usage", "--account", account["id"], "--month", "2026-11", "--by", "key")["rows"]
        spent = {row["name"]: row["cost"] for row in rows}
        assert all(spent.get(key["id"], "0.00") == key["last_month_spend"] for key in account["keys"]), account["name"]


def test_the_leaked_key_and_the_runaway_day_stand_out_in_the_daily_series(cli: Cli) -> None:
    made = cli.json("demo", *NOVEMBER, "--seed", "11")
    for incident, account_name in (
        (made["leaked_key"], "Northwind Analytics"),
        (made["runaway_day"], "Chai & Code Studio"),
    ):
        account = _account(made, account_name)
        rows = cli.json("usage", "--account", account["id"], "--month", "2026-11", "--by", "key")["rows"]
        daily = next(row["daily_cost"] for row in rows if row["name"] == incident["key_id"])
        day = _day_index(incident["from"], account["timezone"])
        assert _stands_out(daily, day), (account_name, day, daily)
    leak = made["leaked_key"]
    assert datetime.fromisoformat(leak["to"]) - datetime.fromisoformat(leak["from"]) == (
        datetime.fromisoformat("2026-01-01T01:00:00") - datetime.fromisoformat("2026-01-01T00:00:00")
    )


def test_the_same_seed_makes_the_same_month(cli: Cli, tmp_path: Path) -> None:
    first = cli.json("demo", *NOVEMBER, "--seed", "7")
    ledger = type(cli)  # the same command on two more ledgers
    twin, other = ledger(f"sqlite:///{tmp_path / 'twin.db'}"), ledger(f"sqlite:///{tmp_path / 'other.db'}")
    second = twin.json("demo", *NOVEMBER, "--seed", "7")
    assert _without_ids(first) == _without_ids(second)
    month = ("usage", "--month", "2026-11", "--tz", "UTC")
    assert cli.json(*month) == twin.json(*month), "the same totals by model, day by day"
    assert other.json("demo", *NOVEMBER, "--seed", "8")["cost"] != first["cost"]


def test_a_ledger_with_accounts_is_refused_unless_forced(cli: Cli) -> None:
    cli.json("accounts", "create", "--name", "Already here")
    error = cli.json_error("demo", *NOVEMBER)
    assert error["code"] == "ledger_not_empty" and "--force" in error["message"]
    assert len(cli.json("accounts", "list")) == 1, "nothing was written"
    assert cli.json("demo", *NOVEMBER, "--force")["events"] == 3000
    assert len(cli.json("accounts", "list")) == 5


def test_bad_requests_are_refused_before_anything_is_written(cli: Cli, tmp_path: Path) -> None:
    assert "too few" in cli.fails("demo", "--events", "1000", "--days", "366", code=2)
    overrides = tmp_path / "prices.toml"
    overrides.write_text('[[prices]]\nmodel = "gpt-4o"\ndiscount = "0.1"\n')
    message = cli.fails("demo", *NOVEMBER, "--overrides", str(overrides), code=2)
    assert "vm-small" in message and "eleven-turbo" in message
    assert cli.fails("demo", "--events", "10", code=2)
    assert cli.json("accounts", "list") == []
