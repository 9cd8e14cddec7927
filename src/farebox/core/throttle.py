"""Failed attempts, counted per name in a sliding window: after `limit` failures within `window`, wait.

The dashboard's sign-in keeps two of these, one by e-mail address and one by client address, so that guessing
one member's password and trying many members' passwords from one place are both slowed down. Only the last
`limit` failures of each name are kept, and at most `max_names` names (the least recently failed go first), so
the memory a flood of names can take is bounded. The counts live in one process's memory.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from datetime import datetime, timedelta

__all__ = ["DEFAULT_MAX_NAMES", "Throttle"]

DEFAULT_MAX_NAMES = 100_000


class Throttle:
    """Failures per name; a name with `limit` of them within `window` waits until the oldest leaves the window.

    Args:
        limit: failures within `window` after which a name must wait.
        window: how long a failure counts.
        max_names: names remembered at most.
    """

    def __init__(self, *, limit: int, window: timedelta, max_names: int = DEFAULT_MAX_NAMES):
        if limit < 1 or window <= timedelta(0) or max_names < 1:
            raise ValueError("a throttle needs a limit, a window and room for at least one name")
        self._limit = limit
        self._window = window
        self._max_names = max_names
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()

    def wait(self, name: str, *, now: datetime) -> timedelta | None:
        """How long `name` must wait before its next attempt, or None when it may try now."""
        failures = self._failures.get(name)
        if failures is None or len(failures) < self._limit:
            return None
        left = failures[0] + self._window - now
        return left if left > timedelta(0) else None

    def failed(self, name: str, *, now: datetime) -> None:
        """Count a failure of `name` at `now`."""
        failures = self._failures.pop(name, None) or deque(maxlen=self._limit)
        failures.append(now)
        self._failures[name] = failures
        while len(self._failures) > self._max_names:
            self._failures.popitem(last=False)

    def forget(self, name: str) -> None:
        """Clear the failures of `name` (it succeeded)."""
        self._failures.pop(name, None)
