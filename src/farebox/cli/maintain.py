"""`farebox maintain`: one round of the raw events' upkeep now (`farebox.ledger.retention`), which every server
also does once an hour."""

from __future__ import annotations

import typer

from farebox.cli.output import Json
from farebox.cli.runtime import load_or_exit, print_json, with_ledger
from farebox.ledger.retention import EventRetention

__all__ = ["maintain"]


def maintain(as_json: Json = False) -> None:
    """Remove the raw events older than raw_events_retention_days (their rollups stay) and, on PostgreSQL, make
    the month partitions of the events ahead. Safe beside running servers: one round runs at a time."""
    days = load_or_exit().raw_events_retention_days
    done = with_ledger(lambda ledger: EventRetention(ledger, days=days).maintain())
    before = None if done.before is None else done.before.isoformat().replace("+00:00", "Z")
    if as_json:
        print_json(
            {
                "before": before,
                "eventsDeleted": done.events_deleted,
                "adjustmentsDeleted": done.adjustments_deleted,
                "partitionsMade": done.partitions_made,
                "partitionsDropped": done.partitions_dropped,
            }
        )
        return
    if before is None:
        typer.echo("raw events kept for good (raw_events_retention_days unset)")
    else:
        typer.echo(
            f"raw events before {before} removed: {done.events_deleted:,} events, "
            f"{done.adjustments_deleted:,} voids and recalculations"
        )
    for name in done.partitions_made:
        typer.echo(f"partition made: {name}")
    for name in done.partitions_dropped:
        typer.echo(f"partition dropped: {name}")
