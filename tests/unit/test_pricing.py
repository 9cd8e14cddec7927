"""core.pricing: exact cost of usage at unit prices (hand-computed tables and properties)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.money import NANO_PER_USD, to_nano
from farebox.core.pricing import NanoRates, TieredPrice, UnitPrices, Usage, cost

D = Decimal

GPT_4O = UnitPrices(input_mtok=D("2.5"), cached_input_mtok=D("1.25"), output_mtok=D("10"))
SONNET = UnitPrices(input_mtok=D("3"), cached_input_mtok=D("0.3"), cache_write_mtok=D("3.75"), output_mtok=D("15"))
SONNET_TIERED = UnitPrices(
    input_mtok=TieredPrice(base=D("3"), tiers=((200_000, D("6")),)),
    cached_input_mtok=TieredPrice(base=D("0.3"), tiers=((200_000, D("0.6")),)),
    cache_write_mtok=TieredPrice(base=D("3.75"), tiers=((200_000, D("7.5")),)),
    output_mtok=TieredPrice(base=D("15"), tiers=((200_000, D("22.5")),)),
)
INPUT_OUTPUT_ONLY = UnitPrices(input_mtok=D("2"), output_mtok=D("8"))


@pytest.mark.parametrize(
    ("usage", "prices", "expected"),
    [
        pytest.param(Usage(input_tokens=1000, output_tokens=100), GPT_4O, "0.0035", id="gpt-4o"),
        pytest.param(Usage(), GPT_4O, "0", id="nothing-used"),
        pytest.param(Usage(input_tokens=1000, cached_input_tokens=400), GPT_4O, "0.002", id="cached-read"),
        pytest.param(Usage(input_tokens=1000, cached_input_tokens=1000), GPT_4O, "0.00125", id="all-cached"),
        pytest.param(
            Usage(input_tokens=1000, cached_input_tokens=500), INPUT_OUTPUT_ONLY, "0.002", id="cached-falls-back"
        ),
        pytest.param(
            Usage(input_tokens=1000, cache_write_tokens=500), GPT_4O, "0.0025", id="cache-write-falls-back-to-input"
        ),
        pytest.param(
            Usage(input_tokens=10_000, cached_input_tokens=2000, cache_write_tokens=3000, output_tokens=500),
            SONNET,
            "0.03435",  # 5000*3 + 2000*0.3 + 3000*3.75 + 500*15, per million
            id="read-write-output",
        ),
        pytest.param(Usage(output_tokens=100, reasoning_tokens=80), GPT_4O, "0.001", id="reasoning-charged-as-output"),
        pytest.param(
            Usage(input_tokens=200_000, output_tokens=1000), SONNET_TIERED, "0.615", id="tier-boundary-is-base"
        ),
        pytest.param(
            Usage(input_tokens=200_001, output_tokens=1000),
            SONNET_TIERED,
            "1.222506",  # the tier price applies to all tokens, output too
            id="tier-above-boundary",
        ),
        pytest.param(
            Usage(input_tokens=300_000, cached_input_tokens=100_000, cache_write_tokens=50_000),
            SONNET_TIERED,
            "1.335",  # 150000*6 + 100000*0.6 + 50000*7.5, per million
            id="tier-on-cache-prices",
        ),
        pytest.param(Usage(characters=1000), UnitPrices(per_mchars=D("15")), "0.015", id="characters"),
        pytest.param(Usage(seconds=D(60)), UnitPrices(per_hour=D("0.36")), "0.006", id="seconds"),
        pytest.param(
            Usage(seconds=D("1.5")),
            UnitPrices(per_hour=D("0.05")),
            "0.00002083333333333333333333333333",
            id="odd-seconds",
        ),
        pytest.param(Usage(quantity=D(3)), UnitPrices(per_unit=D("0.04")), "0.12", id="quantity"),
        pytest.param(
            Usage(input_tokens=1000, output_tokens=100), replace(GPT_4O, discount=D("0.20")), "0.0028", id="discount"
        ),
        pytest.param(
            Usage(input_tokens=1000, output_tokens=100), replace(GPT_4O, discount=D(1)), "0", id="free-by-discount"
        ),
        pytest.param(Usage(input_tokens=1000, output_tokens=100), UnitPrices(), "0", id="nothing-priced"),
        pytest.param(
            Usage(input_tokens=1000, output_tokens=100, characters=10, seconds=D(10), quantity=D(1)),
            UnitPrices(output_mtok=D("8")),
            "0.0008",
            id="unpriced-units-are-free",
        ),
    ],
)
def test_cost_table(usage: Usage, prices: UnitPrices, expected: str) -> None:
    assert cost(usage, prices=prices) == D(expected)


def test_cost_is_exact_and_rounded_only_by_to_nano() -> None:
    exact = cost(Usage(input_tokens=1), prices=UnitPrices(input_mtok=D("0.15")))
    assert exact == D("0.00000015")
    assert to_nano(exact) == 150
    assert to_nano(cost(Usage(input_tokens=1), prices=UnitPrices(input_mtok=D("0.0005")))) == 0  # half to even


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_tokens": -1}, "negative"),
        ({"characters": -1}, "negative"),
        ({"seconds": D(-1)}, "not negative"),
        ({"quantity": D("NaN")}, "finite"),
        ({"input_tokens": 10, "cached_input_tokens": 6, "cache_write_tokens": 5}, "cannot exceed input_tokens"),
        ({"output_tokens": 1, "reasoning_tokens": 2}, "reasoning_tokens cannot exceed"),
    ],
)
def test_usage_refuses_impossible_counts(kwargs: dict[str, int | Decimal], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Usage(**kwargs)  # type: ignore[arg-type]  # the table mixes int and Decimal fields


def test_tiered_price_resolution() -> None:
    price = TieredPrice(base=D("1"), tiers=((10, D("2")), (20, D("3"))))
    assert [price.at(n) for n in (0, 10, 11, 20, 21)] == [D(1), D(1), D(2), D(2), D(3)]
    with pytest.raises(ValueError, match="ascending"):
        TieredPrice(base=D(1), tiers=((20, D(3)), (10, D(2))))
    with pytest.raises(ValueError, match="non-negative"):
        TieredPrice(base=D(1), tiers=((-1, D(3)),))


def test_unit_prices_refuse_discount_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="discount"):
        UnitPrices(discount=D("1.5"))
    with pytest.raises(ValueError, match="discount"):
        UnitPrices(discount=D("-0.1"))


def test_as_dict_lists_set_prices_as_plain_decimal_strings() -> None:
    prices = UnitPrices(input_mtok=D("1E+1"), output_mtok=D("0.0000001"), per_hour=D("0.05"), discount=D("0.20"))
    assert prices.as_dict() == {"input_mtok": "10", "output_mtok": "0.0000001", "per_hour": "0.05", "discount": "0.20"}
    assert UnitPrices().as_dict() == {}
    assert GPT_4O.as_dict() == {"input_mtok": "2.5", "cached_input_mtok": "1.25", "output_mtok": "10"}


def test_tiers_in_as_dict_and_resolved() -> None:
    assert SONNET_TIERED.tier_starts() == (200_000,)
    assert GPT_4O.tier_starts() == ()
    assert SONNET_TIERED.as_dict()["input_mtok"] == "3"
    assert SONNET_TIERED.as_dict()["input_mtok>200000"] == "6"
    assert SONNET_TIERED.at_input_tokens(200_000) == SONNET
    assert SONNET_TIERED.at_input_tokens(200_001).as_dict() == {
        "input_mtok": "6",
        "cached_input_mtok": "0.6",
        "cache_write_mtok": "7.5",
        "output_mtok": "22.5",
    }


# --- properties -------------------------------------------------------------------------------------------------

_money = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)


@st.composite
def _token_price(draw: st.DrawFn) -> Decimal | TieredPrice | None:
    base = draw(st.none() | _money)
    if base is None or not draw(st.booleans()):
        return base
    starts = sorted(draw(st.sets(st.integers(0, 500_000), min_size=1, max_size=3)))
    price, tiers = base, []
    for start in starts:  # real tiers only ever rise; a falling tier could lower the cost
        price += draw(_money)
        tiers.append((start, price))
    return TieredPrice(base=base, tiers=tuple(tiers))


@st.composite
def _prices(draw: st.DrawFn) -> UnitPrices:
    return UnitPrices(
        input_mtok=draw(_token_price()),
        cached_input_mtok=draw(_token_price()),
        cache_write_mtok=draw(_token_price()),
        output_mtok=draw(_token_price()),
        per_mchars=draw(st.none() | _money),
        per_hour=draw(st.none() | _money),
        per_unit=draw(st.none() | _money),
        discount=draw(st.decimals(min_value=0, max_value=1, places=2)),
    )


_count = st.integers(0, 1_000_000)


@st.composite
def _usage(draw: st.DrawFn) -> Usage:
    cached, written, uncached = draw(_count), draw(_count), draw(_count)
    reasoning, visible = draw(_count), draw(_count)
    return Usage(
        input_tokens=cached + written + uncached,
        cached_input_tokens=cached,
        cache_write_tokens=written,
        output_tokens=reasoning + visible,
        reasoning_tokens=reasoning,
        characters=draw(_count),
        seconds=draw(st.decimals(min_value=0, max_value=100_000, places=3)),
        quantity=draw(st.decimals(min_value=0, max_value=1000, places=2)),
    )


def _more(usage: Usage, kind: str, n: int) -> Usage:
    """`usage` plus `n` more units of one kind, keeping the totals consistent (cache is part of input)."""
    if kind == "input":
        return replace(usage, input_tokens=usage.input_tokens + n)
    if kind == "cached":
        return replace(usage, input_tokens=usage.input_tokens + n, cached_input_tokens=usage.cached_input_tokens + n)
    if kind == "cache_write":
        return replace(usage, input_tokens=usage.input_tokens + n, cache_write_tokens=usage.cache_write_tokens + n)
    if kind == "output":
        return replace(usage, output_tokens=usage.output_tokens + n)
    if kind == "reasoning":
        return replace(usage, output_tokens=usage.output_tokens + n, reasoning_tokens=usage.reasoning_tokens + n)
    if kind == "characters":
        return replace(usage, characters=usage.characters + n)
    if kind == "seconds":
        return replace(usage, seconds=usage.seconds + n)
    return replace(usage, quantity=usage.quantity + n)


@given(
    usage=_usage(),
    prices=_prices(),
    kind=st.sampled_from(["input", "cached", "cache_write", "output", "reasoning", "characters", "seconds", "units"]),
    n=st.integers(1, 1_000_000),
)
def test_cost_never_falls_as_usage_grows(usage: Usage, prices: UnitPrices, kind: str, n: int) -> None:
    before = cost(usage, prices=prices)
    after = cost(_more(usage, kind, n), prices=prices)
    assert after >= before >= 0


@given(usage=_usage(), prices=_prices())
def test_rounding_error_is_at_most_half_a_nano(usage: Usage, prices: UnitPrices) -> None:
    exact = cost(usage, prices=prices)
    assert abs(to_nano(exact) - exact * NANO_PER_USD) <= D("0.5")


@given(usage=_usage(), prices=_prices())
def test_discount_scales_the_total(usage: Usage, prices: UnitPrices) -> None:
    full = cost(usage, prices=replace(prices, discount=D(0)))
    assert cost(usage, prices=prices) == full * (1 - prices.discount)


# --- integer rates: the same cost, in integers ---------------------------------------------------------------------

_whole_nano_price = st.none() | st.decimals(min_value=0, max_value=100, places=9)


@st.composite
def _flat_prices(draw: st.DrawFn) -> UnitPrices:
    return UnitPrices(
        input_mtok=draw(_whole_nano_price),
        cached_input_mtok=draw(_whole_nano_price),
        cache_write_mtok=draw(_whole_nano_price),
        output_mtok=draw(_whole_nano_price),
        per_mchars=draw(_whole_nano_price),
        per_hour=draw(_whole_nano_price),
        per_unit=draw(_whole_nano_price),
    )


@given(usage=_usage(), prices=_flat_prices())
def test_integer_rates_cost_what_decimal_arithmetic_costs(usage: Usage, prices: UnitPrices) -> None:
    tokens_only = replace(usage, seconds=D(0), quantity=D(0))
    rates = NanoRates.of(prices)

    assert rates is not None
    assert rates.cost_nano(tokens_only) == to_nano(cost(tokens_only, prices=prices))


def test_integer_rates_round_half_to_even() -> None:
    rates = NanoRates.of(UnitPrices(input_mtok=D("0.000000001")))  # 1 nano-USD per million tokens

    assert rates is not None
    assert [rates.cost_nano(Usage(input_tokens=n)) for n in (499_999, 500_000, 1_500_000, 2_500_000)] == [0, 0, 2, 2]


@pytest.mark.parametrize(
    "prices",
    [
        UnitPrices(input_mtok=D("2.5"), discount=D("0.1")),
        UnitPrices(input_mtok=D("0.0000000001")),
        UnitPrices(output_mtok=SONNET_TIERED.input_mtok),
    ],
    ids=["discount", "finer-than-a-nano", "tiered"],
)
def test_no_integer_rates_where_they_would_not_be_exact(prices: UnitPrices) -> None:
    assert NanoRates.of(prices) is None


def test_integer_rates_leave_seconds_and_quantities_to_decimal() -> None:
    rates = NanoRates.of(UnitPrices(per_hour=D("0.5"), per_unit=D("0.04")))

    assert rates is not None
    assert rates.cost_nano(Usage(seconds=D("1.5"))) is None
    assert rates.cost_nano(Usage(quantity=D(2))) is None
