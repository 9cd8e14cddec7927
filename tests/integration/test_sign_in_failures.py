"""`ledger.sign_in_failures.SignInFailures`: failed sign-ins per name in a sliding window, kept in the ledger, on
both backends; two ledgers on one database count the same failures, as two processes do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from farebox.ledger.base import Ledger
from farebox.ledger.schema import sign_in_failures
from farebox.ledger.sign_in_failures import SignInFailures

pytestmark = pytest.mark.anyio

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
KEY = b"k" * 32


def throttle(ledger: Ledger, *, limit: int, window: timedelta = 15 * MINUTE, name: str = "email") -> SignInFailures:
    return SignInFailures(ledger, throttle=name, limit=limit, window=window, key=KEY)


async def test_a_name_waits_after_its_limit_until_its_oldest_failure_leaves_the_window(ledger: Ledger) -> None:
    failures = throttle(ledger, limit=3)
    for minute in (0, 5, 6):
        assert await failures.wait("mo", now=T0 + minute * MINUTE) is None
        await failures.failed("mo", now=T0 + minute * MINUTE)
    assert await failures.wait("mo", now=T0 + 6 * MINUTE) == 9 * MINUTE
    assert await failures.wait("mia", now=T0 + 6 * MINUTE) is None
    assert await failures.wait("mo", now=T0 + 15 * MINUTE) is None
    await failures.failed("mo", now=T0 + 15 * MINUTE)  # the window slides: failures at 5, 6 and 15 count
    assert await failures.wait("mo", now=T0 + 16 * MINUTE) == 4 * MINUTE


async def test_forgetting_a_name_clears_its_failures_and_the_two_throttles_count_apart(ledger: Ledger) -> None:
    by_email, by_address = throttle(ledger, limit=1), throttle(ledger, limit=1, name="address")
    await by_email.failed("mo", now=T0)
    assert await by_email.wait("mo", now=T0) == 15 * MINUTE
    assert await by_address.wait("mo", now=T0) is None
    await by_email.forget("mo")
    assert await by_email.wait("mo", now=T0) is None


async def test_failures_past_the_window_are_deleted_and_no_name_is_stored(ledger: Ledger) -> None:
    failures = throttle(ledger, limit=5, window=MINUTE)
    await failures.failed("mo@acme.test", now=T0)
    await failures.failed("192.0.2.7", now=T0 + 2 * MINUTE)  # the first has left the window: deleted
    rows = await ledger._read(lambda connection: connection.execute(select(sign_in_failures)).mappings().all())
    assert len(rows) == 1 and "192.0.2.7" not in str(rows[0]) and len(rows[0]["name_mac"]) == 64


async def test_two_processes_count_the_same_failures(ledger_url: str) -> None:
    async with Ledger(ledger_url) as first, Ledger(ledger_url) as second:
        await throttle(first, limit=2).failed("mo", now=T0)
        await throttle(second, limit=2).failed("mo", now=T0 + MINUTE)
        assert await throttle(first, limit=2).wait("mo", now=T0 + MINUTE) == 14 * MINUTE
        count = await second._read(lambda c: c.execute(select(func.count()).select_from(sign_in_failures)).scalar())
        assert count == 2


def test_a_throttle_needs_a_limit_and_a_window() -> None:
    with pytest.raises(ValueError, match="a limit and a window"):
        SignInFailures(None, throttle="email", limit=0, window=MINUTE, key=KEY)  # type: ignore[arg-type]
