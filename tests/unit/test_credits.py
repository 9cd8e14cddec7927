"""Credits as money's other face: exact conversion both ways at any whole rate, and the balance as a limit that
refuses in credits when it is empty or too small."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.credits import Balance, CreditRate, CreditsExhausted, Prepaid, balance_counter
from farebox.core.money import NANO_PER_USD, MoneyError
from farebox.core.periods import Period
from farebox.core.spend import Scope

SEED = CreditRate()  # 20,000 credits per USD
NOW = datetime(2026, 6, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("nano", "shown"),
    [
        (0, "0"),
        (NANO_PER_USD, "20000"),
        (50_000, "1"),  # one credit is 0.00005 USD
        (1, "0.00002"),  # the finest amount there is
        (3_900_000_000, "78000"),  # the seed's gpt-4o row: 520k prompt + 260k completion tokens
        (12_345, "0.2469"),
        (-62_500_000, "-1250"),
        (10**18, "20000000000000"),
    ],
)
def test_credits_are_shown_exactly_without_trailing_zeros(nano: int, shown: str) -> None:
    assert SEED.format(nano) == shown
    assert SEED.credits(nano) == Decimal(shown)


@pytest.mark.parametrize(
    ("typed", "nano"),
    [("500000", 25 * NANO_PER_USD), (1, 50_000), ("0.00002", 1), (Decimal("12.5"), 625_000), (" 3 ", 150_000)],
)
def test_typed_credits_become_exact_nano_usd(typed: str | int | Decimal, nano: int) -> None:
    assert SEED.parse(typed) == nano


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("0.00001", "not a whole number of nano-USD"),
        ("twelve", "not a decimal amount"),
        ("Infinity", "not a finite amount"),
        (0.5, "never floats"),
        (True, "never floats"),
    ],
)
def test_credits_that_are_not_an_exact_amount_are_refused(typed: object, why: str) -> None:
    with pytest.raises(MoneyError, match=why):
        SEED.parse(typed)  # type: ignore[arg-type]


@given(st.integers(min_value=-(10**18), max_value=10**18), st.integers(min_value=1, max_value=10**9))
def test_any_amount_survives_the_round_trip_at_any_rate(nano: int, per_usd: int) -> None:
    rate = CreditRate(per_usd)
    assert rate.parse(rate.format(nano)) == nano


def test_a_rate_below_one_credit_per_usd_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CreditRate(0)


def test_the_balance_is_what_was_given_past_the_spend_at_the_first_top_up() -> None:
    prepaid = Prepaid("acct-1", granted_nano=10 * NANO_PER_USD, opening_nano=4 * NANO_PER_USD, topped_up_at=NOW)
    assert prepaid.limit_nano == 14 * NANO_PER_USD
    assert prepaid.balance_nano(6 * NANO_PER_USD) == 8 * NANO_PER_USD
    assert prepaid.drawn_nano(6 * NANO_PER_USD) == 2 * NANO_PER_USD
    assert prepaid.balance_nano(15 * NANO_PER_USD) == -NANO_PER_USD  # overdrawn by ingested usage


def test_a_balance_is_a_limit_on_the_account_s_all_time_spend() -> None:
    balance = Balance("acct-1", "Acme", 1_000_000, SEED)
    assert (balance.scope, balance.owner_id, balance.period) == (Scope.ACCOUNT, "acct-1", Period.TOTAL)
    assert balance_counter("acct-1") == (Scope.ACCOUNT, "acct-1", Period.TOTAL, 0)
    assert balance.allows(400_000, 600_000)
    assert not balance.allows(400_000, 600_001)
    assert not balance.allows(1_000_000, 0)  # an empty balance refuses even a request that may cost nothing


def test_a_refusal_speaks_of_credits_and_usd() -> None:
    balance = Balance("acct-1", "Acme", 1_000_000, SEED)
    short = balance.refused(used_nano=400_000, amount_nano=700_000)
    assert isinstance(short, CreditsExhausted) and short.balance is balance
    assert (short.status, short.code, short.openai_type) == (402, "credits_exhausted", "insufficient_quota")
    assert short.message == (
        "credits exhausted: this request may cost up to 14 credits (0.0007 USD), and account 'Acme' has "
        "12 credits (0.0006 USD) remaining"
    )
    empty = balance.refused(used_nano=1_200_000, amount_nano=0)
    assert empty.message == "credits exhausted: account 'Acme' has no prepaid credits left; top up to continue"
