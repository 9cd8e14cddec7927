"""Leases: background work that one process of a ledger does at a time, and that another takes over when the
holder stops.

A lease is a row (`leases`): its name, the process holding it and until when. `Leases.hold` takes the lease
when it is free or has ended, or renews it when this process holds it, in one conditional upsert, so two processes
asking at once cannot both get it. A holder that dies stops renewing, and the lease passes to the next process
that asks once it has ended.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, or_
from sqlalchemy.dialects import postgresql, sqlite

from farebox.core.clock import utcnow
from farebox.core.events import epoch_us
from farebox.ledger.base import Ledger
from farebox.ledger.schema import leases

__all__ = ["Leases"]


class Leases:
    """This process's leases on one ledger.

    Args:
        ledger: the ledger the leases are kept in.
        holder: this process's name in them (default: host, pid and a random part).
        clock: the time leases are measured on (tests inject one).
    """

    def __init__(self, ledger: Ledger, *, holder: str | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        self._ledger = ledger
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        self._clock = clock

    async def hold(self, name: str, *, seconds: float) -> bool:
        """Take the lease `name` for `seconds` from now, or renew it: whether this process holds it now."""
        now_us = epoch_us(self._clock())
        until_us = now_us + int(seconds * 1_000_000)
        holder = self.holder

        def take(connection: Connection) -> bool:
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            statement = (
                dialect.insert(leases)
                .values(name=name, holder=holder, until_us=until_us)
                .on_conflict_do_update(
                    index_elements=[leases.c.name],
                    set_={"holder": holder, "until_us": until_us},
                    where=or_(leases.c.until_us <= now_us, leases.c.holder == holder),
                )
                .returning(leases.c.holder)
            )
            # RETURNING, not rowcount: the PostgreSQL writer pipelines its statements, and a pipeline has no rowcount.
            return connection.execute(statement).first() is not None

        return await self._ledger._write(take)
