"""Prices: the genai-prices catalog, a local overrides file and the canonical-model mapping on top.

`PriceBook` is the one entry point: build it once (`PriceBook.load(path)`) and call `price(...)` per
event. `DEFAULT_OVERRIDES_PATH` is a shipped example overrides file (VM sizes, a voice model); it
is not loaded unless passed in.
"""

from __future__ import annotations

from pathlib import Path

from farebox.prices.book import ModelPricing, PriceBook, PricedUsage, Quote, UnknownModelError
from farebox.prices.catalog import Catalog, CatalogPrice
from farebox.prices.overrides import OverrideEntry, PriceOverrides, PriceOverridesError

__all__ = [
    "DEFAULT_OVERRIDES_PATH",
    "Catalog",
    "CatalogPrice",
    "ModelPricing",
    "OverrideEntry",
    "PriceBook",
    "PriceOverrides",
    "PriceOverridesError",
    "PricedUsage",
    "Quote",
    "UnknownModelError",
]

DEFAULT_OVERRIDES_PATH = Path(__file__).with_name("default_overrides.toml")
