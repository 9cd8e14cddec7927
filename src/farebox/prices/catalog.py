"""The genai-prices catalog, read as farebox `UnitPrices`.

A lookup here goes through `genai_prices.calc_price` and costs tens of microseconds, far too slow to
run per event; `PriceBook` calls it once per model and UTC day and caches the answer.

Only the units farebox meters are read from a catalog entry: input, cache-read, cache-write and
output tokens, input characters (`input_mchars`) and audio hours (`audio_hours`, else
`input_audio_hours`). Other catalog prices (web searches, per-request fees, audio or image
token prices, separate reasoning-token prices) are not charged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import TieredPrices, TimeOfDateConstraint

from farebox.core.pricing import TieredPrice, TokenPrice, UnitPrices

__all__ = ["Catalog", "CatalogPrice"]


@dataclass(frozen=True, slots=True)
class CatalogPrice:
    """A model found in the catalog and its prices at one instant."""

    provider: str
    """The catalog's provider id, e.g. `openai`."""
    model: str
    """The catalog's model id: the canonical model, e.g. `gpt-4o` for `gpt-4o-2024-08-06`."""
    prices: UnitPrices
    changes_at: tuple[time, ...]
    """UTC times of day at which this model's catalog price can change (off-peak windows), sorted."""


class Catalog:
    """Looks models up in the genai-prices catalog (the bundled snapshot, or one set by its updater)."""

    def provider_id(self, name: str) -> str | None:
        """The catalog's id for a provider name (`"openai"`, `"gemini"` -> `"google"`), or None if unknown."""
        try:
            provider = data_snapshot.get_snapshot().find_provider(None, name, None)
        except LookupError:
            return None
        return str(provider.id)

    def lookup(
        self, *, provider: str | None, model: str, at: datetime, context: Mapping[str, str] | None = None
    ) -> CatalogPrice | None:
        """The catalog's prices for `model` at `at`, or None when the catalog does not know it.

        Args:
            provider: the provider name; when the catalog does not know it the model is looked up
                across all providers (so a self-hosted or mock provider serving `gpt-4o` is priced
                as the catalog's `gpt-4o`).
            model: the model name as sent, matched the catalog's way (case-insensitive, dated
                snapshots map to their model).
            at: the time of the event; start-date and time-of-day prices are resolved for it.
            context: the request's context, which selects the catalog's price variants: `{"processing":
                "batch"}` for a batch API's prices where the catalog has them (None: the standard prices).
        """
        provider_id = self.provider_id(provider) if provider else None
        try:
            calc = genai_prices.calc_price(
                genai_prices.Usage(),
                model,
                provider_id=provider_id,
                genai_request_timestamp=at,
                price_context=dict(context) if context else None,
            )
        except LookupError:
            return None
        return CatalogPrice(
            provider=str(calc.provider.id),
            model=str(calc.model.id),
            prices=_unit_prices(calc.model_price),
            changes_at=_changes_at(calc.model.prices),
        )


def _unit_prices(model_price: Any) -> UnitPrices:
    """farebox unit prices from a genai-prices `ModelPrice`."""
    per_hour = _decimal(model_price.audio_hours)
    return UnitPrices(
        input_mtok=_token_price(model_price.input_mtok),
        cached_input_mtok=_token_price(model_price.cache_read_mtok),
        cache_write_mtok=_token_price(model_price.cache_write_mtok),
        output_mtok=_token_price(model_price.output_mtok),
        per_mchars=_decimal(model_price.input_mchars),
        per_hour=per_hour if per_hour is not None else _decimal(model_price.input_audio_hours),
    )


def _token_price(value: Any) -> TokenPrice | None:
    if isinstance(value, TieredPrices):
        return TieredPrice(
            base=Decimal(value.base),
            tiers=tuple((int(tier.start), Decimal(tier.price)) for tier in value.tiers),
        )
    return _decimal(value)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _changes_at(prices: Any) -> tuple[time, ...]:
    if not isinstance(prices, list):
        return ()
    times: set[time] = set()
    for conditional in prices:
        constraint = conditional.constraint
        if isinstance(constraint, TimeOfDateConstraint):
            times.add(_utc_time(constraint.start_time))
            times.add(_utc_time(constraint.end_time))
    return tuple(sorted(times))


def _utc_time(value: time) -> time:
    # genai-prices reads a naive time of day as UTC.
    return datetime.combine(date(1970, 1, 1), value, tzinfo=value.tzinfo or UTC).astimezone(UTC).time()
