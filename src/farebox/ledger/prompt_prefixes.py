"""Repeated prompt prefixes (`prompt_prefixes`): how often each keyed hash of a long prompt's beginning was sent.

The writer adds the successful events of a commit that carry a prefix (`usage_events.prompt_prefix`, which the
proxy sets for long prompts) in the same transaction, summed per account, local day, key, provider, canonical
model and prefix (`prefix_rows`). The read side asks for the prefixes sent more than once on a day
(`repeated_prefixes`), so the cost advice never reads raw events. When an account's zone changes, its days move:
`rebuild_prefixes` sums its recent days again from its events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, func, insert, select

from farebox.core.events import MICRO, epoch_us
from farebox.ledger.daily import local_day
from farebox.ledger.schema import ROLLUP_BUCKET_SECONDS, prompt_prefixes, usage_events

__all__ = [
    "PREFIX_KEYS",
    "PREFIX_SUMS",
    "RETAINED_DAYS",
    "PrefixFilter",
    "PrefixRow",
    "prefix_rows",
    "rebuild_prefixes",
    "repeated_prefixes",
]

PREFIX_KEYS = ("account_id", "day", "key_id", "provider", "canonical_model", "prefix")
PREFIX_SUMS = ("requests", "input_tokens", "cached_input_tokens")
RETAINED_DAYS = 190
"""How many recent days a zone change sums again: more than the longest period the advice looks back (183 days)."""

_EVENT = ("ts_us", "account_id", "key_id", "provider", "canonical_model", "prompt_prefix", "status")
_COUNTED = ("input_tokens", "cached_input_tokens")
_QUARTER_HOUR_US = ROLLUP_BUCKET_SECONDS * MICRO


@dataclass(frozen=True, slots=True)
class PrefixFilter:
    """Which prefix counts to read: local days `since_day` (included) to `until_day` (not), of one account or
    (None) of every account, of some keys or (None) all."""

    since_day: int
    until_day: int
    account_id: str | None = None
    key_ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class PrefixRow:
    """One key's use of a prefix on one day, of a prefix that was sent more than once that day."""

    account_id: str
    day: int
    key_id: str
    provider: str
    canonical_model: str
    prefix: str
    requests: int
    input_tokens: int
    cached_input_tokens: int
    day_requests: int
    """The prefix's requests that day by every key read (of this provider and model): more than one."""


def prefix_rows(
    rows: Iterable[Sequence[Any]], columns: Sequence[str], day_of: Callable[[str, int], int]
) -> list[tuple[Any, ...]]:
    """The `prompt_prefixes` upserts (`PREFIX_KEYS`, then `PREFIX_SUMS`) of new `usage_events` rows whose columns
    are `columns`: their successful requests that carry a prefix, summed. `day_of(account_id, bucket)` is a
    quarter-hour bucket's local day in its account's zone."""
    ts, account, key, provider, model, prefix, status = (columns.index(name) for name in _EVENT)
    tokens, cached = (columns.index(name) for name in _COUNTED)
    sums: dict[tuple[Any, ...], list[int]] = {}
    for row in rows:
        if row[prefix] is None or row[status] != "ok":
            continue
        bucket = row[ts] // _QUARTER_HOUR_US * ROLLUP_BUCKET_SECONDS
        group = (row[account], day_of(row[account], bucket), row[key] or "", row[provider], row[model], row[prefix])
        total = sums.get(group)
        if total is None:
            sums[group] = [1, row[tokens], row[cached]]
        else:
            total[0] += 1
            total[1] += row[tokens]
            total[2] += row[cached]
    return [(*group, *total) for group, total in sums.items()]


def rebuild_prefixes(connection: Connection, account_id: str, *, tz: ZoneInfo, now: datetime) -> None:
    """Sum the account's prefix counts again, days bounded in `tz`, from its events of the last `RETAINED_DAYS`
    (older counts are dropped: no period the advice reads reaches them)."""
    events = usage_events.c
    connection.execute(delete(prompt_prefixes).where(prompt_prefixes.c.account_id == account_id))
    since = epoch_us(now.astimezone(UTC) - timedelta(days=RETAINED_DAYS))
    names = (*_EVENT, *_COUNTED)
    query = select(*(events[name] for name in names)).where(
        events.account_id == account_id, events.ts_us >= since, events.prompt_prefix.is_not(None)
    )
    days: dict[int, int] = {}

    def day_of(_account_id: str, bucket: int) -> int:
        day = days.get(bucket)
        if day is None:
            day = days[bucket] = local_day(bucket, tz)
        return day

    upserts = prefix_rows(connection.execute(query), names, day_of)
    rows = [dict(zip((*PREFIX_KEYS, *PREFIX_SUMS), row, strict=True)) for row in upserts]
    for start in range(0, len(rows), 500):
        connection.execute(insert(prompt_prefixes), rows[start : start + 500])


def repeated_prefixes(connection: Connection, wanted: PrefixFilter) -> list[PrefixRow]:
    """Each key's counts of the prefixes sent more than once on a day (by the keys read, to one provider and
    model), in `wanted`'s days."""
    table = prompt_prefixes.c
    where = [table.day >= wanted.since_day, table.day < wanted.until_day]
    if wanted.account_id is not None:
        where.append(table.account_id == wanted.account_id)
    if wanted.key_ids is not None:
        where.append(table.key_id.in_(wanted.key_ids))
    same_prefix = (table.account_id, table.day, table.provider, table.canonical_model, table.prefix)
    seen = func.sum(table.requests).over(partition_by=same_prefix).label("day_requests")
    inner = select(*(table[name] for name in (*PREFIX_KEYS, *PREFIX_SUMS)), seen).where(*where).subquery()
    query = select(inner).where(inner.c.day_requests > 1)
    return [
        PrefixRow(
            account_id=row.account_id,
            day=int(row.day),
            key_id=row.key_id,
            provider=row.provider,
            canonical_model=row.canonical_model,
            prefix=row.prefix,
            requests=int(row.requests),
            input_tokens=int(row.input_tokens),
            cached_input_tokens=int(row.cached_input_tokens),
            day_requests=int(row.day_requests),
        )
        for row in connection.execute(query)
    ]
