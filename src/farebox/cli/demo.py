"""`farebox demo`: fill the configured ledger with a realistic, seeded month of usage (`farebox.demo`).

It prints what it made: the accounts, their members and roles, keys with their caps and spend, the agents and
plain VMs, the events by axis and the two incidents; and, once, the secrets it created (an API token for each
owner, each key's secret). It never shows a secret that existed before.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from farebox.cli.output import Json
from farebox.cli.runtime import console, fail, load_or_exit, print_json, with_ledger
from farebox.core.money import format_usd
from farebox.core.owners import percent_used
from farebox.demo import Made, fill, plan, unpriced
from farebox.demo.traffic import Incident
from farebox.errors import InvalidRequest
from farebox.ledger.base import Ledger
from farebox.prices import DEFAULT_OVERRIDES_PATH, PriceBook, PriceOverridesError

__all__ = ["demo"]

_CENT = Decimal("0.01")


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"not a date like 2026-03-31: {value!r}") from None


def _prices(overrides: Path | None) -> PriceBook:
    """The overrides file asked for, else the `price_overrides` setting, else the shipped example file."""
    path = overrides or load_or_exit().price_overrides or DEFAULT_OVERRIDES_PATH
    try:
        book = PriceBook.load(path)
    except PriceOverridesError as exc:
        fail(str(exc), code="invalid_price_overrides", exit_code=2)
    missing = unpriced(book, at=datetime.now(UTC))
    if missing:
        fail(
            f"{path} does not price {', '.join(missing)}: the demo's events must be priced "
            f"(the shipped example {DEFAULT_OVERRIDES_PATH.name} prices them all)",
            code="unpriced_models",
            exit_code=2,
        )
    return book


def demo(
    events: Annotated[int, typer.Option("--events", min=1_000, max=50_000_000, help="Events to record.")] = 100_000,
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="Days of usage, ending with --end.")] = 30,
    seed: Annotated[int, typer.Option("--seed", help="The same seed makes the same month.")] = 1,
    end: Annotated[
        date | None,
        typer.Option("--end", parser=_day, metavar="YYYY-MM-DD", help="The last day (UTC), default today."),
    ] = None,
    overrides: Annotated[
        Path | None,
        typer.Option(
            "--overrides",
            dir_okay=False,
            help="Price overrides TOML (default: the price_overrides setting, else the shipped example).",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Add the demo to a ledger that already has accounts.")] = False,
    as_json: Json = False,
) -> None:
    """Fill the ledger with a realistic month: accounts, members, keys, agents, VMs and their usage."""
    last_day = end or datetime.now(UTC).date()
    try:
        plan(events=events, days=days, end=last_day, now=datetime.now(UTC))
    except InvalidRequest as exc:
        fail(exc.message, code="usage_error", exit_code=2)
    prices = _prices(overrides)
    errors = Console(stderr=True)

    async def run(ledger: Ledger) -> Made:
        with Progress(console=errors, transient=True, disable=as_json or not errors.is_terminal) as bar:
            task = bar.add_task("recording", total=events)
            return await fill(
                ledger,
                prices=prices,
                events=events,
                days=days,
                seed=seed,
                end=last_day,
                force=force,
                progress=lambda done: bar.advance(task, done),
            )

    made = with_ledger(run)
    summary = _summary(made)
    if as_json:
        print_json(summary)
    else:
        _print(summary)


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)


def _cents(usd: str) -> str:
    """An exact USD amount shown to the cent (the JSON output keeps it exact)."""
    return str(Decimal(usd).quantize(_CENT))


def _incident(incident: Incident) -> dict[str, Any]:
    return {
        "account_id": incident.account_id,
        "key_id": incident.key_id,
        "from": incident.start.isoformat(),
        "to": incident.end.isoformat(),
        "events": incident.events,
        "cost": format_usd(incident.cost_nano),
    }


def _summary(made: Made) -> dict[str, Any]:
    tally = made.tally
    total_events, total_cost = sum(tally.events.values()), sum(tally.cost_nano.values())
    accounts = []
    for entry in made.accounts:
        account = entry.account
        names = {w.id: w.spec.name for w in entry.workloads}
        members = [
            {"id": m.member.id, "name": m.member.name, "email": m.member.email, "role": m.member.role.value}
            | ({"token": m.token} if m.token else {})
            for m in entry.members
        ]
        keys = [
            {
                "id": k.key.id,
                "name": k.key.name,
                "member_id": k.owner.id,
                "member": k.owner.name,
                "app": k.key.app,
                "agent_id": k.key.agent_id,
                "agent": names.get(k.key.agent_id or ""),
                "spend_cap": None if k.key.spend_cap_nano is None else format_usd(k.key.spend_cap_nano),
                "last_month_spend": format_usd(k.last_month_nano),
                "percent_used": _text(percent_used(k.last_month_nano, k.key.spend_cap_nano)),
                "secret": k.secret,
            }
            for k in entry.keys
        ]
        workloads = [
            {"id": w.id, "name": w.spec.name, "kind": w.spec.kind.value, "vm": w.spec.size} for w in entry.workloads
        ]
        accounts.append(
            {"id": account.id, "name": account.name, "plan": account.plan.value, "timezone": account.timezone}
            | {"members": members, "keys": keys, "workloads": workloads}
        )
    return {
        "from": made.window.start.isoformat(),
        "to": made.window.end.isoformat(),
        "seed": made.seed,
        "events": total_events,
        "cost": format_usd(total_cost),
        "by_axis": {
            axis.value: {"events": tally.events[axis], "cost": format_usd(tally.cost_nano[axis])}
            for axis in tally.events
        },
        "leaked_key": _incident(made.leak),
        "runaway_day": _incident(made.runaway),
        "seconds": round(made.seconds, 2),
        "events_per_second": round(total_events / made.seconds) if made.seconds else None,
        "accounts": accounts,
    }


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("-" if value is None else str(value) for value in row))
    console.print(table)


def _print(summary: dict[str, Any]) -> None:
    accounts = summary["accounts"]
    _table(
        "Accounts",
        ["account", "plan", "timezone", "id"],
        [[a["name"], a["plan"], a["timezone"], a["id"]] for a in accounts],
    )
    _table(
        "Members",
        ["account", "member", "e-mail", "role"],
        [[a["name"], m["name"], m["email"], m["role"]] for a in accounts for m in a["members"]],
    )
    _table(
        "Keys (spend and cap in USD, in the window's last month)",
        ["account", "key", "member", "app", "agent", "cap", "spend", "% of cap"],
        [
            [a["name"], k["name"], k["member"], k["app"], k["agent"], k["spend_cap"], _cents(k["last_month_spend"])]
            + [k["percent_used"]]
            for a in accounts
            for k in a["keys"]
        ],
    )
    _table(
        "Agents and plain VMs",
        ["account", "name", "kind", "vm", "id"],
        [[a["name"], w["name"], w["kind"], w["vm"], w["id"]] for a in accounts for w in a["workloads"]],
    )
    rows = [[axis, f"{v['events']:,}", _cents(v["cost"])] for axis, v in summary["by_axis"].items()]
    rows.append(["total", f"{summary['events']:,}", _cents(summary["cost"])])
    _table(
        f"Usage {summary['from']} to {summary['to']} (seed {summary['seed']})", ["axis", "events", "cost (USD)"], rows
    )
    for label, name in (("leaked key", "leaked_key"), ("runaway day", "runaway_day")):
        incident = summary[name]
        console.print(
            f"{label}: key {incident['key_id']}, {incident['from']} to {incident['to']}, "
            f"{incident['events']:,} events, {_cents(incident['cost'])} USD",
            highlight=False,
        )
    console.print(f"recorded in {summary['seconds']} s ({summary['events_per_second']:,} events/s)", highlight=False)
    console.print("\nsecrets (shown once; store them now):", style="bold")
    for account in accounts:
        for member in account["members"]:
            if "token" in member:
                console.print(
                    f"  {account['name']}, owner {member['email']} API token: {member['token']}",
                    highlight=False,
                    soft_wrap=True,
                )
        for key in account["keys"]:
            console.print(f"  {account['name']}, key {key['name']}: {key['secret']}", highlight=False, soft_wrap=True)
