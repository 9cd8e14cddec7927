"""Cheaper ways to buy the same tokens: a model's cheaper siblings, the same model at another provider, a batch API.

What is cheaper than what is shipped data (`alternatives.toml`, beside this module): model families, from the
largest model of a generation to the smallest; the catalog's providers farebox can route to; and the batch APIs'
discounts where the catalog holds no batch price. The prices themselves are the price book's (the catalog with
the overrides file laid over it) and, for batch, the catalog's `processing: batch` price variants.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from farebox.core.pricing import UnitPrices
from farebox.prices.book import ModelPricing, PriceBook
from farebox.prices.catalog import Catalog

__all__ = ["ALTERNATIVES_PATH", "Alternatives", "Batch"]

ALTERNATIVES_PATH = Path(__file__).with_name("alternatives.toml")
_BATCH = {"processing": "batch"}
_KEPT_BATCHES = 1024


class _Table(BaseModel):
    """The file's shape."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    families: tuple[tuple[str, ...], ...]
    routable_providers: tuple[str, ...] = Field(min_length=1)
    batch_discounts: dict[str, Decimal]


@dataclass(frozen=True, slots=True)
class Batch:
    """What a model's tokens cost through its provider's batch API."""

    provider: str
    """The catalog's provider id."""
    prices: UnitPrices | None
    """The catalog's batch prices of the model, when it has them."""
    discount: Decimal | None
    """Otherwise the fraction the provider's batch API takes off its standard prices (`alternatives.toml`)."""


class Alternatives:
    """The cheaper alternatives the table and the prices allow. Shared by the requests of one event loop; what it
    keeps of the catalog is bounded."""

    def __init__(
        self,
        book: PriceBook,
        *,
        families: Sequence[Sequence[str]],
        routable_providers: Sequence[str],
        batch_discounts: Mapping[str, Decimal],
        catalog: Catalog | None = None,
    ) -> None:
        """
        Raises:
            ValueError: a model in two families, or a batch discount that is not a fraction from 0 to 1.
        """
        self._book = book
        self._catalog = catalog or Catalog()
        self._siblings: dict[str, tuple[str, ...]] = {}
        for family in families:
            for position, model in enumerate(family):
                if model in self._siblings:
                    raise ValueError(f"model {model!r} is in two families")
                self._siblings[model] = tuple(family[position + 1 :])
        self.routable_providers = tuple(routable_providers)
        """The catalog's ids of the providers farebox can route to."""
        for provider, discount in batch_discounts.items():
            if not Decimal(0) < discount < Decimal(1):
                raise ValueError(f"batch discount of {provider!r}: a fraction between 0 and 1, not {discount}")
        self._batch_discounts = dict(batch_discounts)
        self._batches: dict[tuple[str | None, str, date], Batch | None] = {}

    @classmethod
    def load(cls, book: PriceBook, path: Path = ALTERNATIVES_PATH) -> Alternatives:
        """The alternatives of the table at `path` (the shipped one by default), priced by `book`.

        Raises:
            ValueError: the file cannot be read or does not have the table's shape; the message names it.
        """
        try:
            table = _Table.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
            raise ValueError(f"{path}: {exc}") from exc
        return cls(
            book,
            families=table.families,
            routable_providers=table.routable_providers,
            batch_discounts=table.batch_discounts,
        )

    def siblings(self, model: str) -> tuple[str, ...]:
        """The cheaper models of `model`'s family (its canonical name), the nearest first; none outside a family."""
        return self._siblings.get(model, ())

    def offers(
        self, model: str, *, operation: str = "", at: datetime, besides: str | None = None
    ) -> list[tuple[str, ModelPricing]]:
        """`(provider, pricing)` for each routable provider that sells `model` (`PriceBook.listed_at`), in the
        table's order of providers, leaving out the one named `besides` (as the ledger or the catalog names it)."""
        current = {besides, self._catalog.provider_id(besides)} if besides else set()
        found = []
        for provider in self.routable_providers:
            if provider in current:
                continue
            pricing = self._book.listed_at(model, provider=provider, operation=operation, at=at)
            if pricing is not None:
                found.append((provider, pricing))
        return found

    def batch(self, model: str, *, provider: str | None, at: datetime) -> Batch | None:
        """What `model`'s tokens cost through the batch API of the provider that sells it (`provider`: the name
        the ledger records; one the catalog does not know, such as `mock`, finds the model at any provider): the
        catalog's batch prices, else the table's discount for that provider; None when neither is known."""
        # Kept per UTC day, the day's first asker's instant standing for it: a catalog lookup takes about 0.2 ms,
        # and batch prices change on dates.
        key = (provider, model, at.astimezone(UTC).date())
        if key not in self._batches:
            if len(self._batches) >= _KEPT_BATCHES:
                self._batches.clear()
            self._batches[key] = self._batch_at(provider, model, at)
        return self._batches[key]

    def _batch_at(self, provider: str | None, model: str, at: datetime) -> Batch | None:
        standard = self._catalog.lookup(provider=provider, model=model, at=at)
        if standard is None:
            return None
        batch = self._catalog.lookup(provider=provider, model=model, at=at, context=_BATCH)
        if batch is not None and batch.prices != standard.prices:
            return Batch(standard.provider, batch.prices, None)
        discount = self._batch_discounts.get(standard.provider)
        return None if discount is None else Batch(standard.provider, None, discount)
