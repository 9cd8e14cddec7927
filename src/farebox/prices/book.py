"""The price book: (provider, model, operation, usage, time) -> exact cost, fast enough for every event.

Resolving a model's prices (aliases, `provider/model` names, the genai-prices catalog, the overrides
file) is slow, so it happens once per (provider, model, operation, UTC day) and is kept in a bounded
LRU cache owned by the `PriceBook`. A price can change inside a day (an override's `effective_from`
date-time, a catalog off-peak window); the day's entry then holds one resolution per segment and an
event picks its segment by time. Pricing an event is a cache hit plus `core.pricing.cost`.

Name resolution, in order:

1. An alias from the overrides file replaces the model name (`my-fast-model` -> `openai/gpt-4o-mini`).
2. `provider/model` splits into provider and model when the prefix is a provider the catalog or the
   overrides file knows (`openai/gpt-4o`); with an explicit provider the full name is tried first,
   since some providers (OpenRouter) use `vendor/model` ids.
3. The catalog maps the name to its model id, the canonical model (`gpt-4o-2024-08-06` -> `gpt-4o`).
   A provider the catalog does not know (a self-hosted or mock upstream) keeps its name, and the
   model is priced as the catalog's model of that name.
4. The override entry that applies (see `farebox.prices.overrides`) is laid over the catalog prices.
   Override entries are themselves canonicalized the same way when the book is built.
"""

from __future__ import annotations

import functools
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from farebox.core.money import to_nano
from farebox.core.pricing import NanoRates, UnitPrices, Usage, cost
from farebox.prices.catalog import Catalog, CatalogPrice
from farebox.prices.overrides import OverrideEntry, PriceOverrides

__all__ = ["ModelPricing", "PriceBook", "PricedUsage", "Quote", "UnknownModelError"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UnknownModelError(LookupError):
    """Neither the catalog nor the overrides file prices this model (for `show` and `quote`)."""


@dataclass(slots=True)
class PricedUsage:
    """The price of one event (not frozen: it is built for every event, and a frozen one costs twice as much)."""

    cost_nano: int
    """Exact cost rounded to whole nano-USD (`money.to_nano`); 0 when not priced."""
    unit_prices: dict[str, str]
    """The unit prices it was charged at, tiers resolved (`UnitPrices.as_dict`); empty when not priced."""
    priced: bool
    """False when neither the catalog nor the overrides know the model (the event costs 0 and says so)."""
    canonical_model: str
    """The catalog's model id (or the override's model name); the model as given when not priced."""
    provider: str
    """The provider the prices are for: the catalog's id, or the name given; "" when none is known."""


@dataclass(frozen=True, slots=True)
class ModelPricing:
    """What `PriceBook.show` tells about a model."""

    provider: str
    canonical_model: str
    prices: UnitPrices
    """Tiers unresolved."""
    source: str
    """`catalog`, `override` (a model only the overrides file prices) or `catalog+override`."""
    override: str | None
    """The override entry that applies, e.g. `prices[0] (model "gpt-4o")`, or None."""


@dataclass(frozen=True, slots=True)
class Quote:
    """What `PriceBook.quote` tells: an event's cost, exact and rounded."""

    pricing: ModelPricing
    usage: Usage
    cost: Decimal
    """Exact USD, not rounded."""
    cost_nano: int
    unit_prices: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Resolution:
    """A model's prices over one stretch of time."""

    provider: str
    canonical_model: str
    prices: UnitPrices | None
    source: str
    override: OverrideEntry | None
    override_model: str
    """The model name override entries were matched on."""
    catalog_changes: tuple[datetime, ...]
    tier_starts: tuple[int, ...]
    charged: tuple[dict[str, str], ...]
    """`prices.as_dict()` with tiers resolved, one per tier level (index = tier starts below the input)."""
    rates: NanoRates | None = None
    """The prices as integer rates, when they convert exactly (`NanoRates.of`)."""
    catalog_provider: str = ""
    """The provider whose catalog entry was found ("" for none): the catalog answers for another provider when
    the one asked for does not list the model (Azure for OpenAI's models)."""

    def cost_nano(self, usage: Usage) -> int:
        assert self.prices is not None
        nano = self.rates.cost_nano(usage) if self.rates is not None else None
        return to_nano(cost(usage, prices=self.prices)) if nano is None else nano

    def charged_at(self, input_tokens: int) -> dict[str, str]:
        return dict(self.charged[bisect_left(self.tier_starts, input_tokens)])

    def pricing(self) -> ModelPricing:
        if self.prices is None:
            raise UnknownModelError(f"no price for model {self.canonical_model!r}")
        describe = self.override.describe() if self.override else None
        return ModelPricing(self.provider, self.canonical_model, self.prices, self.source, describe)


@dataclass(frozen=True, slots=True)
class _Day:
    """A model's resolutions over one UTC day: `resolutions[i]` applies from `starts[i]`."""

    starts: tuple[datetime, ...]
    resolutions: tuple[_Resolution, ...]

    def at(self, instant: datetime) -> _Resolution:
        if len(self.resolutions) == 1:
            return self.resolutions[0]
        return self.resolutions[bisect_right(self.starts, instant) - 1]


class PriceBook:
    """Prices usage events from the genai-prices catalog and a local overrides file.

    Safe to share between threads and tasks: its only state is its cache (`functools.lru_cache`).
    """

    def __init__(
        self, *, catalog: Catalog | None = None, overrides: PriceOverrides | None = None, cache_size: int = 4096
    ) -> None:
        """Build a price book.

        Args:
            catalog: the catalog; the bundled genai-prices data by default.
            overrides: the parsed overrides file; none by default.
            cache_size: how many (provider, model, operation, day) resolutions to keep.

        Raises:
            PriceOverridesError: two override entries collapse to the same canonical model, provider,
                operation and date.
        """
        self._catalog = catalog or Catalog()
        raw = overrides or PriceOverrides()
        self._override_providers = frozenset(entry.provider for entry in raw.entries if entry.provider)
        self._aliases = raw.aliases
        self._overrides = replace(raw, entries=tuple(self._canonical_entry(entry) for entry in raw.entries))
        self._overrides.check()
        self._day = functools.lru_cache(maxsize=cache_size)(self._resolve_day)

    @classmethod
    def load(cls, overrides_path: Path | None, *, cache_size: int = 4096) -> PriceBook:
        """The bundled catalog plus the overrides file at `overrides_path` (if any).

        Raises:
            PriceOverridesError: the file cannot be read or has a bad entry; the message names both.
        """
        overrides = PriceOverrides.load(overrides_path) if overrides_path is not None else None
        return cls(overrides=overrides, cache_size=cache_size)

    def price(self, *, provider: str | None, model: str, operation: str, usage: Usage, at: datetime) -> PricedUsage:
        """Price one event. Never raises for an unknown model: it comes back with `priced=False`.

        Args:
            provider: the upstream provider, or None to let the model name decide.
            model: the model as requested or reported (`gpt-4o`, `openai/gpt-4o`, an alias).
            operation: what was done (`chat.completions`, `compute.vm.running`, ...); selects override entries.
            usage: what was used.
            at: when; a naive datetime is taken as UTC.
        """
        at = _utc(at)
        resolution = self._day(provider, model, operation, at.date()).at(at)
        if resolution.prices is None:
            return PricedUsage(0, {}, False, model, resolution.provider)
        return PricedUsage(
            cost_nano=resolution.cost_nano(usage),
            unit_prices=resolution.charged_at(usage.input_tokens),
            priced=True,
            canonical_model=resolution.canonical_model,
            provider=resolution.provider,
        )

    def show(
        self, model: str, *, provider: str | None = None, operation: str = "", at: datetime | None = None
    ) -> ModelPricing:
        """The unit prices of a model at `at` (now by default).

        Raises:
            UnknownModelError: neither the catalog nor the overrides price the model.
        """
        when = _utc(at) if at is not None else datetime.now(UTC)
        return self._day(provider, model, operation, when.date()).at(when).pricing()

    def quote(
        self,
        model: str,
        *,
        usage: Usage,
        provider: str | None = None,
        operation: str = "",
        at: datetime | None = None,
    ) -> Quote:
        """What `usage` of a model costs at `at` (now by default), exact and rounded.

        Raises:
            UnknownModelError: neither the catalog nor the overrides price the model.
        """
        when = _utc(at) if at is not None else datetime.now(UTC)
        resolution = self._day(provider, model, operation, when.date()).at(when)
        pricing = resolution.pricing()
        exact = cost(usage, prices=pricing.prices)
        return Quote(pricing, usage, exact, to_nano(exact), resolution.charged_at(usage.input_tokens))

    def listed_at(self, model: str, *, provider: str, operation: str = "", at: datetime) -> ModelPricing | None:
        """The prices of a model at one provider, if that provider sells it: the catalog lists the model under
        that provider, or an override entry names the provider for it; None otherwise (a model priced only
        through the catalog's entry at another provider is not sold there).

        Args:
            model: the model, resolved as `price` resolves it.
            provider: a provider name the catalog or the overrides file knows (`openai`, `together`).
            operation: selects override entries, as in `price`.
            at: when.
        """
        when = _utc(at)
        resolution = self._day(provider, model, operation, when.date()).at(when)
        if resolution.prices is None:
            return None
        seller = self._provider_name(provider)
        override = resolution.override
        if resolution.catalog_provider != seller and (override is None or override.provider != seller):
            return None
        return resolution.pricing()

    def cache_info(self) -> functools._CacheInfo:
        """Hits, misses and size of the per-day resolution cache."""
        return self._day.cache_info()

    def _resolve_day(self, provider: str | None, model: str, operation: str, day: date) -> _Day:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        first = self._resolve_at(provider, model, operation, start)
        changes = {*first.catalog_changes, *self._overrides.changes_on(model=first.override_model, day=day)}
        starts = (start, *sorted(change for change in changes if change.date() == day and change != start))
        rest = tuple(self._resolve_at(provider, model, operation, instant) for instant in starts[1:])
        return _Day(starts, (first, *rest))

    def _resolve_at(self, provider: str | None, model: str, operation: str, at: datetime) -> _Resolution:
        found, resolved_provider, override_model = self._identify(provider, model, at)
        entry = self._overrides.select(model=override_model, provider=resolved_provider, operation=operation, at=at)
        if entry is not None and entry.provider is not None and not resolved_provider:
            resolved_provider = entry.provider
        base = found.prices if found is not None else None
        prices = entry.applied_to(base or UnitPrices()) if entry is not None else base
        changes = tuple(datetime.combine(at.date(), t, tzinfo=UTC) for t in (found.changes_at if found else ()))
        if prices is None or not _sets_a_price(prices):
            return _Resolution(resolved_provider, model, None, "", None, override_model, changes, (), ({},))
        starts = prices.tier_starts()
        charged = tuple(prices.at_input_tokens(n).as_dict() for n in (0, *(start + 1 for start in starts)))
        source = "catalog" if entry is None else ("override" if found is None else "catalog+override")
        return _Resolution(
            resolved_provider,
            override_model,
            prices,
            source,
            entry,
            override_model,
            changes,
            starts,
            charged,
            NanoRates.of(prices),
            found.provider if found is not None else "",
        )

    def _identify(self, provider: str | None, model: str, at: datetime) -> tuple[CatalogPrice | None, str, str]:
        """The catalog entry (if any), provider and canonical model of an event's (provider, model)."""
        if (target := self._aliases.get(model)) is not None:
            target_provider, model = self._split(target)
            provider = target_provider or provider
        found, lookup_provider, lookup_model = self._lookup(provider, model, at)
        if lookup_provider is not None:
            resolved_provider = self._provider_name(lookup_provider)
        else:
            resolved_provider = found.provider if found is not None else ""
        return found, resolved_provider, found.model if found is not None else lookup_model

    def _lookup(self, provider: str | None, name: str, at: datetime) -> tuple[CatalogPrice | None, str | None, str]:
        """The catalog's answer for the first candidate reading of (provider, name) it knows."""
        split_provider, rest = self._split(name)
        candidates: list[tuple[str | None, str]]
        if provider is None:
            candidates = [(split_provider, rest)]
        else:
            candidates = [(provider, name)]
            if split_provider is not None:
                candidates.append((provider, rest))
        for candidate_provider, candidate_name in candidates:
            if (found := self._catalog.lookup(provider=candidate_provider, model=candidate_name, at=at)) is not None:
                return found, candidate_provider, candidate_name
        return None, candidates[-1][0], candidates[-1][1]

    def _split(self, name: str) -> tuple[str | None, str]:
        """`("openai", "gpt-4o")` for `openai/gpt-4o` when the prefix is a known provider, else `(None, name)`."""
        prefix, slash, rest = name.partition("/")
        if slash and rest and (known := self._known_provider(prefix)) is not None:
            return known, rest
        return None, name

    def _known_provider(self, name: str) -> str | None:
        return self._catalog.provider_id(name) or (name if name in self._override_providers else None)

    def _provider_name(self, provider: str) -> str:
        """The catalog's id for a provider it knows (`gemini` -> `google`), else the name as given."""
        return self._catalog.provider_id(provider) or provider

    def _canonical_entry(self, entry: OverrideEntry) -> OverrideEntry:
        """The entry keyed the way events are resolved: split `provider/model`, catalog model id."""
        at = entry.effective_from or _EPOCH
        found, lookup_provider, lookup_model = self._lookup(entry.provider, entry.model, at)
        provider = self._provider_name(lookup_provider) if lookup_provider is not None else None
        return replace(entry, provider=provider, model=found.model if found is not None else lookup_model)


def _utc(at: datetime) -> datetime:
    if at.tzinfo is UTC:
        return at
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _sets_a_price(prices: UnitPrices) -> bool:
    return any(
        value is not None
        for value in (
            prices.input_mtok,
            prices.cached_input_mtok,
            prices.cache_write_mtok,
            prices.output_mtok,
            prices.per_mchars,
            prices.per_hour,
            prices.per_unit,
        )
    )
