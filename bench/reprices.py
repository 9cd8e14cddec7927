"""How fast a cost recalculation reads and reprices recorded usage: prints figures, asserts nothing.

    .venv/bin/python bench/reprices.py [--events 100000] [--database-url postgresql://...]

Records `--events` gpt-4o events of one account over a day (a new SQLite ledger unless `--database-url` names an
empty database), priced at the catalog's price, then times `Reprices.recalculate` over the day: a dry run with a
book that doubles gpt-4o's price (every event read and priced, nothing written), the recalculation itself (every
event repriced: an adjustment each, rollups and counters moved, 500 events per writer transaction), and a second
run with the same book (every event read, priced, and found unchanged). Prints events per second for each.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from farebox.core.events import Axis, UsageEvent, epoch_us
from farebox.ledger.actors import Actor
from farebox.ledger.base import Ledger
from farebox.ledger.reprices import RepriceRange, Reprices
from farebox.prices import PriceBook
from farebox.prices.overrides import PriceOverrides

__all__ = ["main"]

_DAY = datetime(2026, 11, 10, tzinfo=UTC)
_DOUBLED = '[[prices]]\nmodel = "gpt-4o"\ninput_mtok = "5"\noutput_mtok = "20"\n'


def _events(count: int) -> list[UsageEvent]:
    step = timedelta(days=1) / count
    return [
        UsageEvent(
            id=f"bench-{n}",
            timestamp=_DAY + step * n,
            account_id="acct-bench",
            key_id=f"key-{n % 20}",
            axis=Axis.LLM,
            provider="openai",
            model="gpt-4o",
            canonical_model="gpt-4o",
            operation="chat.completions",
            input_tokens=1_000,
            output_tokens=200,
            cost_nano=4_500_000,
            unit_prices={"input_mtok": "2.5", "output_mtok": "10"},
        )
        for n in range(count)
    ]


async def _timed(label: str, reprices: Reprices, events: int, *, dry_run: bool = False) -> None:
    whole = RepriceRange("acct-bench", epoch_us(_DAY), epoch_us(_DAY + timedelta(days=1)))
    started = time.perf_counter()
    done = await reprices.recalculate([whole], reason="bench", by=Actor("cli"), dry_run=dry_run)
    seconds = time.perf_counter() - started
    print(f"{label:<28} {done.examined:>8,} read {done.repriced:>8,} repriced {events / seconds:>10,.0f} events/s")


async def _run(events: int, url: str | None) -> None:
    database_url = url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='farebox-bench-reprices-')) / 'ledger.db'}"
    async with Ledger(database_url) as ledger:
        batch = _events(events)
        for start in range(0, events, 5_000):
            await ledger.record_many(batch[start : start + 5_000])
        doubled = PriceBook(overrides=PriceOverrides.parse(_DOUBLED, source="bench"))
        reprices = Reprices(ledger, doubled, clock=lambda: datetime.now(UTC))
        print(f"{ledger.dialect}, {events:,} events of one account over a day")
        await _timed("dry run (a doubled price)", reprices, events, dry_run=True)
        await _timed("recalculation", reprices, events)
        await _timed("second run (nothing to do)", reprices, events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="an empty database; a new SQLite file by default")
    arguments = parser.parse_args()
    asyncio.run(_run(arguments.events, arguments.database_url))


if __name__ == "__main__":
    main()
