"""The wall clock farebox reads: aware UTC. Classes take a `clock` defaulting to `utcnow`; tests pass their own."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utcnow"]


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)
