"""Keys capped on their own all-time spend, for the tests of the shared spend counters."""

from __future__ import annotations

import uuid

from farebox.core.owners import VirtualKey
from farebox.core.periods import Period
from farebox.core.spend import CounterId, Scope
from farebox.ledger.directory import Directory

__all__ = ["capped_key", "total_counter"]


async def capped_key(directory: Directory, cap_nano: int) -> VirtualKey:
    """A key of a new account, capped at `cap_nano` for all time."""
    account = await directory.create_account(name=f"acme-{uuid.uuid4().hex[:6]}", timezone="UTC")
    key, _secret = await directory.create_key(account.id, name="prod", spend_cap_nano=cap_nano, cap_period=Period.TOTAL)
    return key


def total_counter(key: VirtualKey) -> CounterId:
    """The counter of the key's all-time spend."""
    return CounterId(Scope.KEY, key.id, Period.TOTAL, 0)
