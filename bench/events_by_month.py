"""What migration 0027 (the events partitioned by month, PostgreSQL) costs on a ledger of N events: prints figures,
asserts nothing.

    .venv/bin/python bench/events_by_month.py --pg-url postgresql://... [--events 1000000]

A new schema in that database is migrated to 0026 and filled with N events spread over the last year (by
`generate_series`, in one statement), then the migration to 0027 is timed: the time commits to the ledger wait.
Then a retention round that drops every month but the last three is timed. The schema is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime

import psycopg

from farebox.ledger.base import Ledger
from farebox.ledger.engine import Engines, migrate
from farebox.ledger.retention import EventRetention

_FILL = """
INSERT INTO usage_events
SELECT 'evt-' || n, %(start)s + n::bigint * %(step)s, 'acct-' || (n %% 20), 'key-' || (n %% 500),
       NULL, NULL, NULL, '[]',
       'llm', 'openai', 'gpt-4o', 'gpt-4o', 'chat.completions', 1000, 200, 0, 0, 0, 0, 0, 0, 4500000, '{}', true,
       'ok', 200, NULL, 850, NULL, false, false, 'proxy', '{}', %(start)s + n::bigint * %(step)s, NULL
FROM generate_series(1, %(events)s) AS n
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-url", required=True)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    url = f"{args.pg_url}?options=-csearch_path%3D{schema}"
    with psycopg.connect(args.pg_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        engines = Engines(url)
        migrate(engines, revision="0026")
        now_us = int(datetime.now(UTC).timestamp()) * 1_000_000
        year_us = 365 * 86_400 * 1_000_000
        with psycopg.connect(url, autocommit=True) as connection:
            started = time.perf_counter()
            params = {"start": now_us - year_us, "step": year_us // args.events, "events": args.events}
            connection.execute(_FILL, params)  # type: ignore[arg-type]
            connection.execute("ANALYZE usage_events")
            print(f"filled {args.events:,} events in {time.perf_counter() - started:.1f} s (revision 0026)")
        started = time.perf_counter()
        migrate(engines)
        print(f"migration 0027: {time.perf_counter() - started:.2f} s for {args.events:,} events")
        engines.dispose()
        started = time.perf_counter()
        done = asyncio.run(_retention(url))
        print(
            f"retention of 90 days: {time.perf_counter() - started:.2f} s, {done.events_deleted:,} events in "
            f"{len(done.partitions_dropped)} partition(s) and the default one"
        )
    finally:
        with psycopg.connect(args.pg_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


async def _retention(url: str) -> object:
    async with Ledger(url) as ledger:
        return await EventRetention(ledger, days=90).maintain()


if __name__ == "__main__":
    main()
