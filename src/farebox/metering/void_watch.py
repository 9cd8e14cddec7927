"""Voids made by another process reach this one's caps: `VoidWatch` drops the in-memory counters when they happen.

Reprices are adjustments too, and are heard of the same way. A void made through this process (its admin API)
moves its counters at once, on commit (`Ledger.on_commit`).
One made by another process — `farebox events void`, which writes to the database directly — is not heard of
that way. The watch reads how many adjustments the ledger holds every `poll_seconds` (the number only grows);
when it moved, the counters are dropped and each is read again when next needed, the void included; so are the
keys' caps and balances, since a void of usage from before an account's first top-up moves its balance's opening.
"""

from __future__ import annotations

import asyncio
import logging

from farebox.ledger.adjustments import Adjustments
from farebox.metering.budgets import Budgets
from farebox.metering.counters import CounterStore

__all__ = ["VoidWatch"]

log = logging.getLogger(__name__)


class VoidWatch:
    """Keeps one process's counters in step with voids made anywhere. One per process and ledger."""

    def __init__(
        self,
        adjustments: Adjustments,
        counters: CounterStore,
        *,
        budgets: Budgets | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self._adjustments = adjustments
        self._counters = counters
        self._budgets = budgets
        self._poll = poll_seconds
        self._seen: int | None = None

    async def run(self) -> None:
        """Check every `poll_seconds` until cancelled; a failed check is logged and tried again."""
        while True:
            try:
                await self.check()
            except Exception:  # a worker is a process boundary: the next poll tries again
                log.exception("checking the ledger for voids failed; retrying")
            await asyncio.sleep(self._poll)

    async def check(self) -> bool:
        """Drop the counters when the adjustments changed since the last check (the first check always does, since
        counters may have been read before it); whether it dropped them."""
        count = await self._adjustments.count()
        changed = count != self._seen
        if changed:
            self._counters.forget()
            if self._budgets is not None:
                self._budgets.reload()
        self._seen = count
        return changed
