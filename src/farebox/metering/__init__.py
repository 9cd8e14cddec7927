"""Metering, the use-case layer: authorize a key, reserve the worst case against every cap, price what a request
used, record it durably, settle and release (`Meter`); and record batches of external events (`record_many`).
`VoidWatch` keeps the in-memory caps in step with voids another process made.

The gateway does only wire work around it; `POST /api/events` builds its events with the same factory.
"""

from __future__ import annotations

from farebox.metering.budgets import Budgets, Caps
from farebox.metering.counters import CounterStore, Holds, LocalCounters, Reservation
from farebox.metering.keys import KeyCache
from farebox.metering.meter import Call, InFlight, Meter, Recorded, Ticket
from farebox.metering.usage_events import Attribution, Outcome, PriceTarget, UsageEvents
from farebox.metering.void_watch import VoidWatch

__all__ = [
    "Attribution",
    "Budgets",
    "Call",
    "Caps",
    "CounterStore",
    "Holds",
    "InFlight",
    "KeyCache",
    "LocalCounters",
    "Meter",
    "Outcome",
    "PriceTarget",
    "Recorded",
    "Reservation",
    "Ticket",
    "UsageEvents",
    "VoidWatch",
]
