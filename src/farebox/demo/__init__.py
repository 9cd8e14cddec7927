"""`farebox demo`: a realistic, seeded month of usage, written through the metering path into a ledger.

`cast` is who the month is about (accounts, members, keys, agents and plain VMs, models), `rhythm` when
their usage happens, `traffic` the events, built by `metering.UsageEvents` as the proxy and the ingestion
endpoint build theirs, and `fill` what creates the cast in the directory and records the events.
"""

from __future__ import annotations

from farebox.demo.cast import CAST, AccountSpec, KeySpec, MemberSpec, WorkloadSpec
from farebox.demo.fill import Made, MadeAccount, MadeKey, MadeMember, MadeWorkload, fill, plan, unpriced

__all__ = [
    "CAST",
    "AccountSpec",
    "KeySpec",
    "Made",
    "MadeAccount",
    "MadeKey",
    "MadeMember",
    "MadeWorkload",
    "MemberSpec",
    "WorkloadSpec",
    "fill",
    "plan",
    "unpriced",
]
