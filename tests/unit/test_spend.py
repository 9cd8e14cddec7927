"""Spend as a domain: scopes of owners, counter identities in any time zone, the cap rule, budget status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.owners import Account, KeyStatus, Member, Plan, Role, VirtualKey
from farebox.core.periods import Period
from farebox.core.spend import (
    Cap,
    CapRefused,
    CounterId,
    Scope,
    account_of,
    budget_status,
    caps_of,
    owner_label,
    refusal,
    scope_of,
)

T0 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
USD = 1_000_000_000

ACCOUNT = Account("a1", "Acme", Plan.ENTERPRISE, "Asia/Kathmandu", 50 * USD, Period.MONTHLY, 0, T0, T0)
MEMBER = Member("m1", "a1", "lea@acme.test", "Lea", Role.MEMBER, None, Period.DAILY, T0, T0)
KEY = VirtualKey(
    "k1", "a1", "m1", "ci-bot", "fbx_sk_abc…", None, None, None, (), 5 * USD, Period.WEEKLY,
    None, None, None, None, T0, T0,
)  # fmt: skip


@pytest.mark.parametrize(
    ("owner", "scope", "label", "account"),
    [
        (ACCOUNT, Scope.ACCOUNT, "Acme", "a1"),
        (MEMBER, Scope.MEMBER, "lea@acme.test", "a1"),
        (KEY, Scope.KEY, "ci-bot", "a1"),
    ],
)
def test_each_owner_maps_to_its_scope_label_and_account(
    owner: Account | Member | VirtualKey, scope: Scope, label: str, account: str
) -> None:
    assert scope_of(owner) is scope
    assert owner_label(owner) == label
    assert account_of(owner) == account


def test_caps_of_keeps_the_owners_order_and_skips_owners_without_a_cap() -> None:
    caps = caps_of([KEY, MEMBER, ACCOUNT])
    assert caps == (
        Cap(Scope.KEY, "k1", "ci-bot", 5 * USD, Period.WEEKLY),
        Cap(Scope.ACCOUNT, "a1", "Acme", 50 * USD, Period.MONTHLY),
    )
    assert caps[0].describe() == "the weekly spend cap of key 'ci-bot' (5.00 USD)"


def test_a_counter_is_a_plain_tuple_equal_to_its_stored_form() -> None:
    counter = CounterId.of(Scope.KEY, "k1", Period.DAILY, at=T0, tz=ZoneInfo("UTC"))
    assert counter == ("key", "k1", "daily", int(datetime(2026, 6, 10, tzinfo=UTC).timestamp()))
    assert hash(counter) == hash(("key", "k1", "daily", counter.start))
    assert {counter: 1}[("key", "k1", "daily", counter.start)] == 1  # type: ignore[index]  # rows read back


@pytest.mark.parametrize(
    ("zone", "local_midnight_utc"),
    [
        ("Asia/Kolkata", datetime(2026, 6, 9, 18, 30, tzinfo=UTC)),  # +05:30
        ("Asia/Kathmandu", datetime(2026, 6, 9, 18, 15, tzinfo=UTC)),  # +05:45
        ("America/St_Johns", datetime(2026, 6, 10, 2, 30, tzinfo=UTC)),  # -02:30 in summer
        ("Pacific/Chatham", datetime(2026, 6, 10, 11, 15, tzinfo=UTC)),  # +12:45: already 11 June there
    ],
)
def test_a_daily_counter_starts_at_local_midnight_in_any_offset(zone: str, local_midnight_utc: datetime) -> None:
    counter = CounterId.of(Scope.ACCOUNT, "a1", Period.DAILY, at=T0, tz=ZoneInfo(zone))
    assert counter.start == int(local_midnight_utc.timestamp())


CAP = Cap(Scope.KEY, "k1", "ci-bot", 100, Period.MONTHLY)


@pytest.mark.parametrize(
    ("used", "amount", "allowed"),
    [
        (0, 100, True),  # exactly the cap
        (0, 101, False),  # one nano over
        (99, 1, True),
        (99, 2, False),
        (100, 0, False),  # a spent cap refuses even a request that may cost nothing
        (150, 0, False),  # spend committed past the cap (settled above the worst case)
        (0, 0, True),
    ],
)
def test_the_cap_rule(used: int, amount: int, allowed: bool) -> None:
    assert CAP.allows(used, amount) is allowed
    if not allowed:
        assert refusal(CAP, used_nano=used, amount_nano=amount).startswith("budget exceeded: ")


def test_a_refusal_names_the_cap_and_what_remains() -> None:
    assert refusal(CAP, used_nano=40, amount_nano=70) == (
        "budget exceeded: this request may cost up to 0.00000007 USD, and the monthly spend cap of "
        "key 'ci-bot' (0.0000001 USD) has 0.00000006 USD remaining"
    )
    error = CapRefused("no", cap=CAP)
    assert (error.status, error.code, error.openai_type, error.cap) == (
        402,
        "budget_exceeded",
        "insufficient_quota",
        CAP,
    )


@given(used=st.integers(0, 10**12), amount=st.integers(0, 10**12), cap_nano=st.integers(0, 10**12))
def test_what_the_rule_allows_always_fits(used: int, amount: int, cap_nano: int) -> None:
    cap = Cap(Scope.ACCOUNT, "a1", "Acme", cap_nano, Period.TOTAL)
    assert cap.allows(used, amount) is (used + amount <= cap_nano and used < cap_nano)


PARIS = ZoneInfo("Europe/Paris")
JUNE_START = datetime(2025, 5, 31, 22, 0, tzinfo=UTC)  # 1 June 00:00 in Paris


def test_status_projects_linearly_and_counts_the_days_left() -> None:
    cap = Cap(Scope.KEY, "k1", "ci-bot", 100 * USD, Period.MONTHLY)
    now = JUNE_START + timedelta(days=10)
    status = budget_status(cap, period=Period.MONTHLY, tz=PARIS, now=now, spent_nano=30 * USD, reserved_nano=USD)
    assert status.period_start == JUNE_START and status.period_end == datetime(2025, 6, 30, 22, tzinfo=UTC)
    assert status.projected_nano == 90 * USD and status.on_track is True
    assert status.average_daily_nano == 3 * USD
    assert status.days_remaining == 20
    assert status.remaining_nano == 69 * USD
    assert status.utilization == Decimal("0.3100")


def test_the_first_hour_projects_from_a_full_hour() -> None:
    now = JUNE_START + timedelta(seconds=60)
    status = budget_status(None, period=Period.MONTHLY, tz=PARIS, now=now, spent_nano=USD, reserved_nano=0)
    assert status.projected_nano == 30 * 24 * USD  # not 30 x 24 x 60 dollars from one minute
    assert status.cap is None and status.remaining_nano is None and status.utilization is None
    assert status.on_track is None


def test_the_total_period_has_no_end_and_no_projection() -> None:
    cap = Cap(Scope.ACCOUNT, "a1", "Acme", 10 * USD, Period.TOTAL)
    status = budget_status(cap, period=Period.TOTAL, tz=PARIS, now=T0, spent_nano=12 * USD, reserved_nano=0)
    assert status.period_end is None and status.projected_nano is None and status.days_remaining is None
    assert status.on_track is None and status.remaining_nano == 0  # never below zero


@pytest.mark.parametrize(("used", "expected"), [(0, Decimal("0.0000")), (1, Decimal("1.0000"))])
def test_a_zero_cap_is_fully_used_by_anything(used: int, expected: Decimal) -> None:
    cap = Cap(Scope.KEY, "k1", "ci-bot", 0, Period.DAILY)
    status = budget_status(cap, period=Period.DAILY, tz=PARIS, now=T0, spent_nano=used, reserved_nano=0)
    assert status.utilization == expected


def test_key_status_is_unchanged_by_spend() -> None:
    assert KEY.status(T0) is KeyStatus.ACTIVE
