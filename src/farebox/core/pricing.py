"""What one usage event costs at a given set of unit prices: exact, pure, no catalog lookups.

`Usage` says how much was used, `UnitPrices` what each unit costs, and `cost(usage, prices=...)`
multiplies them out into an exact `Decimal` of USD. Rounding to stored nano-USD is the caller's
job (`farebox.core.money.to_nano`), so this module never rounds.

Token arithmetic follows genai-prices exactly, so a price resolved once from its catalog and
applied here gives the same total as `genai_prices.calc_price` (a property test holds the two together):

- `input_tokens` is the total input; the cached-read and cache-write parts of it are charged at
  their own prices when the model has them, and at the input price otherwise.
- Tiered prices use the "cliff" model: once the request's total input tokens exceed a tier's start,
  that tier's price applies to *all* tokens of that kind, not only those above the start.
- Each term is `price * count / per` (per = 10^6 tokens or characters, 3,600 seconds), as in genai-prices.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import TypeAlias

__all__ = ["NanoRates", "TieredPrice", "TokenPrice", "UnitPrices", "Usage", "cost"]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_MILLION = Decimal(1_000_000)
_SECONDS_PER_HOUR = Decimal(3600)
_NANO_PER_USD = 1_000_000_000
_PER_MILLION = 1_000_000
_HALF_MILLION = 500_000


@dataclass(slots=True)
class Usage:
    """How much one event used. Every count defaults to zero.

    Never changed once built. Not frozen: one is built for every event priced, and a frozen one's
    `__init__` took twice as long (each field set through `object.__setattr__`).

    Token semantics are OpenAI's (and genai-prices'), not Anthropic's raw wire fields: an adapter
    for a provider that reports cache tokens beside, rather than inside, its input count adds
    them up before building a `Usage`.
    """

    input_tokens: int = 0
    """All input tokens, *including* `cached_input_tokens` and `cache_write_tokens`."""
    output_tokens: int = 0
    """All output tokens, *including* `reasoning_tokens`."""
    cached_input_tokens: int = 0
    """The part of `input_tokens` read from the provider's prompt cache."""
    cache_write_tokens: int = 0
    """The part of `input_tokens` written to the provider's prompt cache."""
    reasoning_tokens: int = 0
    """The part of `output_tokens` spent reasoning: recorded for reports, charged as output."""
    characters: int = 0
    """Characters of text, for meters priced per character (text-to-speech)."""
    seconds: Decimal = _ZERO
    """Duration, for meters priced per hour (transcription, running or paused VMs)."""
    quantity: Decimal = _ZERO
    """Units of anything else, for meters priced per unit (images, requests, ...)."""

    def __post_init__(self) -> None:
        """Refuse counts that cannot be priced.

        Raises:
            ValueError: a negative count, a non-finite duration or quantity, cache tokens that exceed
                the input they are part of, or reasoning tokens that exceed the output.
        """
        if (
            min(
                self.input_tokens,
                self.output_tokens,
                self.cached_input_tokens,
                self.cache_write_tokens,
                self.reasoning_tokens,
                self.characters,
            )
            < 0
        ):
            raise ValueError(f"usage counts cannot be negative: {self}")
        if not (self.seconds.is_finite() and self.quantity.is_finite()) or self.seconds < 0 or self.quantity < 0:
            raise ValueError(f"seconds and quantity must be finite and not negative: {self}")
        if self.cached_input_tokens + self.cache_write_tokens > self.input_tokens:
            raise ValueError(
                "cached_input_tokens + cache_write_tokens cannot exceed input_tokens (input_tokens is the total"
                f" input, cache included): {self}"
            )
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError(f"reasoning_tokens cannot exceed output_tokens (which include them): {self}")


@dataclass(frozen=True, slots=True)
class TieredPrice:
    """A USD-per-million-tokens price that rises with the request's total input tokens.

    Cliff semantics, as genai-prices' `TieredPrices`: when `Usage.input_tokens` is *greater than* a
    tier's start, that tier's price applies to every token of the kind; otherwise `base` does.
    """

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...]
    """`(start_input_tokens, price)` pairs, in ascending order of start."""

    def __post_init__(self) -> None:
        """Refuse tiers out of order.

        Raises:
            ValueError: tier starts are negative or not in ascending order.
        """
        starts = [start for start, _ in self.tiers]
        if starts != sorted(starts) or any(start < 0 for start in starts):
            raise ValueError(f"tier starts must be non-negative and ascending: {starts}")

    def at(self, input_tokens: int) -> Decimal:
        """The price that applies to a request with `input_tokens` of total input."""
        for start, price in reversed(self.tiers):
            if input_tokens > start:
                return price
        return self.base


TokenPrice: TypeAlias = Decimal | TieredPrice
"""USD per million tokens, flat or tiered."""

_TOKEN_FIELDS = ("input_mtok", "cached_input_mtok", "cache_write_mtok", "output_mtok")


@dataclass(frozen=True, slots=True)
class UnitPrices:
    """The unit prices an event is charged at; `None` means the unit is not priced.

    Missing cache prices fall back to `input_mtok` (cached tokens are then charged as ordinary input).
    """

    input_mtok: TokenPrice | None = None
    """USD per million input tokens (uncached input, and cache tokens that have no price of their own)."""
    cached_input_mtok: TokenPrice | None = None
    """USD per million input tokens read from the prompt cache."""
    cache_write_mtok: TokenPrice | None = None
    """USD per million input tokens written to the prompt cache."""
    output_mtok: TokenPrice | None = None
    """USD per million output tokens, reasoning included."""
    per_mchars: Decimal | None = None
    """USD per million characters."""
    per_hour: Decimal | None = None
    """USD per hour of `Usage.seconds`."""
    per_unit: Decimal | None = None
    """USD per unit of `Usage.quantity`."""
    discount: Decimal = _ZERO
    """Fraction (0 to 1) taken off the total, e.g. `Decimal("0.20")` for a negotiated 20% off."""

    def __post_init__(self) -> None:
        """Refuse a discount outside 0..1.

        Raises:
            ValueError: the discount is below 0 or above 1.
        """
        if not _ZERO <= self.discount <= _ONE:
            raise ValueError(f"discount must be a fraction from 0 to 1: {self.discount}")

    def tier_starts(self) -> tuple[int, ...]:
        """Every distinct tier start of the token prices, ascending (empty when nothing is tiered)."""
        starts: set[int] = set()
        for name in _TOKEN_FIELDS:
            price = getattr(self, name)
            if isinstance(price, TieredPrice):
                starts.update(start for start, _ in price.tiers)
        return tuple(sorted(starts))

    def at_input_tokens(self, input_tokens: int) -> UnitPrices:
        """These prices with every tier resolved for a request of `input_tokens` total input."""
        return UnitPrices(
            input_mtok=_flat(self.input_mtok, input_tokens),
            cached_input_mtok=_flat(self.cached_input_mtok, input_tokens),
            cache_write_mtok=_flat(self.cache_write_mtok, input_tokens),
            output_mtok=_flat(self.output_mtok, input_tokens),
            per_mchars=self.per_mchars,
            per_hour=self.per_hour,
            per_unit=self.per_unit,
            discount=self.discount,
        )

    def as_dict(self) -> dict[str, str]:
        """The set prices as plain decimal strings, as stored with each event.

        Unset prices are left out and so is a zero discount. A tiered price gives its base under the
        field's name and each tier under `"<field>><start>"`, e.g. `{"input_mtok": "3",
        "input_mtok>200000": "6"}`; resolve tiers first (`at_input_tokens`) to get only what was charged.
        """
        out: dict[str, str] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None or (field.name == "discount" and not value):
                continue
            if isinstance(value, TieredPrice):
                out[field.name] = _text(value.base)
                for start, price in value.tiers:
                    out[f"{field.name}>{start}"] = _text(price)
            else:
                out[field.name] = _text(value)
        return out


def cost(usage: Usage, *, prices: UnitPrices) -> Decimal:
    """Exact USD cost of `usage` at `prices`, discount applied, not rounded.

    Args:
        usage: what was used.
        prices: what each unit costs.

    Returns:
        The cost in USD; round it with `farebox.core.money.to_nano` to store it.
    """
    total = _ZERO
    total_input = usage.input_tokens
    input_price = _rate(prices.input_mtok, total_input)
    uncached = total_input
    if usage.cached_input_tokens and prices.cached_input_mtok is not None:
        uncached -= usage.cached_input_tokens
        total += _rate(prices.cached_input_mtok, total_input) * usage.cached_input_tokens / _MILLION
    if usage.cache_write_tokens and prices.cache_write_mtok is not None:
        uncached -= usage.cache_write_tokens
        total += _rate(prices.cache_write_mtok, total_input) * usage.cache_write_tokens / _MILLION
    if uncached and input_price:
        total += input_price * uncached / _MILLION
    if usage.output_tokens and prices.output_mtok is not None:
        total += _rate(prices.output_mtok, total_input) * usage.output_tokens / _MILLION
    if usage.characters and prices.per_mchars is not None:
        total += prices.per_mchars * usage.characters / _MILLION
    if usage.seconds and prices.per_hour is not None:
        total += prices.per_hour * usage.seconds / _SECONDS_PER_HOUR
    if usage.quantity and prices.per_unit is not None:
        total += prices.per_unit * usage.quantity
    if prices.discount:
        total *= _ONE - prices.discount
    return total


@dataclass(frozen=True, slots=True)
class NanoRates:
    """Flat prices in whole nano-USD per million units, for costing in integers.

    `cost_nano(usage)` equals `money.to_nano(cost(usage, prices=...))` (a property test holds the two
    together) at a quarter of the time, on every proxied and ingested event. Only prices that convert
    exactly have these rates: see `of`.
    """

    input_mtok: int
    cached_input_mtok: int | None
    cache_write_mtok: int | None
    output_mtok: int | None
    per_mchars: int | None

    @classmethod
    def of(cls, prices: UnitPrices) -> NanoRates | None:
        """The rates of `prices`; None if they have a tier, a discount, or a price finer than a nano-USD
        per million units (such prices are costed in `Decimal` only)."""
        if prices.discount:
            return None
        try:
            return cls(
                input_mtok=_whole_nano(prices.input_mtok) or 0,
                cached_input_mtok=_whole_nano(prices.cached_input_mtok),
                cache_write_mtok=_whole_nano(prices.cache_write_mtok),
                output_mtok=_whole_nano(prices.output_mtok),
                per_mchars=_whole_nano(prices.per_mchars),
            )
        except ValueError:
            return None

    def cost_nano(self, usage: Usage) -> int | None:
        """The cost of `usage` in nano-USD, rounded half to even; None if it has seconds or a quantity
        (those are priced per hour and per unit, in `Decimal`)."""
        if usage.seconds or usage.quantity:
            return None
        uncached = usage.input_tokens
        total = 0  # in millionths of a nano-USD
        if usage.cached_input_tokens and self.cached_input_mtok is not None:
            uncached -= usage.cached_input_tokens
            total += self.cached_input_mtok * usage.cached_input_tokens
        if usage.cache_write_tokens and self.cache_write_mtok is not None:
            uncached -= usage.cache_write_tokens
            total += self.cache_write_mtok * usage.cache_write_tokens
        total += self.input_mtok * uncached
        if usage.output_tokens and self.output_mtok is not None:
            total += self.output_mtok * usage.output_tokens
        if usage.characters and self.per_mchars is not None:
            total += self.per_mchars * usage.characters
        nano, rest = divmod(total, _PER_MILLION)
        if rest > _HALF_MILLION or (rest == _HALF_MILLION and nano % 2):
            nano += 1
        return nano


def _whole_nano(price: TokenPrice | None) -> int | None:
    """A flat price in nano-USD (None when it is unset).

    Raises:
        ValueError: the price is tiered, or not a whole number of nano-USD.
    """
    if price is None:
        return None
    if isinstance(price, TieredPrice):
        raise ValueError("tiered")
    nano = price * _NANO_PER_USD
    if nano != nano.to_integral_value():
        raise ValueError("finer than a nano-USD")
    return int(nano)


def _rate(price: TokenPrice | None, input_tokens: int) -> Decimal:
    if price is None:
        return _ZERO
    if isinstance(price, TieredPrice):
        return price.at(input_tokens)
    return price


def _flat(price: TokenPrice | None, input_tokens: int) -> Decimal | None:
    return price.at(input_tokens) if isinstance(price, TieredPrice) else price


def _text(value: Decimal) -> str:
    # Positional notation: str(Decimal("1E+1")) would be "1E+1".
    return format(value, "f")
