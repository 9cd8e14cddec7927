"""Cost advice: cheaper ways to buy the tokens a period used, each with its savings, the requests and keys it
concerns, and a confidence.

The usage is the analytics engine's, per slot (a local day, or an hour for a period of hours), key, agent, app,
provider, canonical model, operation and status (`UsageGroup`); only successful requests count. The prices are
today's, from the price book (the catalog and the overrides file) and the shipped table of alternatives
(`farebox.prices.alternatives`). A saving is what the requests cost, less what the same token counts (input,
cached input, cache write, output) cost the other way, the latter rounded to the nano-USD once per rule and
model; a rule whose saving is not positive recommends nothing.

The rules, and their confidence (a number stated per rule, for what the ledger cannot see; not fitted):

- `model_substitution` (0.6): the nearest cheaper sibling of a model's family, for the (key, slot) groups whose
  average request stayed small: under `SMALL_INPUT_TOKENS` input and `SMALL_OUTPUT_TOKENS` output tokens. The
  rollups hold sums, so a group's average can hide a large request, and whether the smaller model answers as
  well is not known: an estimate.
- `provider_routing` (0.9): the same canonical model at the cheapest other routable provider that sells it. Same
  tokens, same model; what is left uncertain is the other provider's service.
- `caching` (0.5): prompt prefixes sent more than once on a day (`farebox.ledger.prompt_prefixes`). Each repeat
  could read `PREFIX_TOKENS` (at most its request's average input) at the cache-read price instead of the input
  price, less what the repeats already read from cache; where nothing was read from cache yet, one cache write
  per prefix and day is charged against it. A provider's cache lives minutes, not a day, so not every repeat
  would hit.
- `batch_processing` (0.4): requests of keys that belong to an agent or an app (automated work), on operations a
  batch API takes, at the batch price (the catalog's, else the table's discount). The ledger cannot tell
  whether a caller waited for the answer: its rollups do not keep the stream flag.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from farebox.analytics.admin_common import ratio
from farebox.core.money import nano_to_usd, to_nano
from farebox.core.pricing import UnitPrices, Usage, cost
from farebox.ledger.prompt_prefixes import PrefixRow
from farebox.prices import PriceBook, UnknownModelError
from farebox.prices.alternatives import Alternatives

__all__ = [
    "CONFIDENCE",
    "PREFIX_TOKENS",
    "SMALL_INPUT_TOKENS",
    "SMALL_OUTPUT_TOKENS",
    "Recommendation",
    "UsageGroup",
    "batches",
    "caching",
    "routings",
    "substitutions",
]

SMALL_INPUT_TOKENS = 1_000
SMALL_OUTPUT_TOKENS = 500
PREFIX_TOKENS = 1_024
"""The tokens of the 4,096 characters the proxy hashes of a long prompt, at four characters a token."""
CONFIDENCE = {
    "model_substitution": Decimal("0.6"),
    "provider_routing": Decimal("0.9"),
    "caching": Decimal("0.5"),
    "batch_processing": Decimal("0.4"),
}
_GENERATING = frozenset({"chat.completions", "completions", "responses", "messages", "generate_content"})
_BATCHABLE = _GENERATING | {"embeddings"}
_PROMPTED = frozenset({"chat.completions", "responses", "messages"})


@dataclass(frozen=True, slots=True)
class UsageGroup:
    """One engine row: usage of one slot, key, agent, app, provider, canonical model, operation and status."""

    slot: int
    key: str
    agent: str
    app: str
    provider: str
    model: str
    operation: str
    ok: bool
    requests: int
    cost_nano: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int


@dataclass(slots=True)
class _Tally:
    """Usage summed over groups, and the keys it came from."""

    requests: int = 0
    cost_nano: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    keys: set[str] = field(default_factory=set)

    def add(self, group: UsageGroup) -> None:
        self.requests += group.requests
        self.cost_nano += group.cost_nano
        self.input_tokens += group.input_tokens
        self.cached_input_tokens += group.cached_input_tokens
        self.cache_write_tokens += group.cache_write_tokens
        self.output_tokens += group.output_tokens
        if group.key:
            self.keys.add(group.key)

    def at(self, prices: UnitPrices) -> int:
        """What these tokens cost at `prices`, tiers at the average request's input, in nano-USD."""
        usage = Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cached_input_tokens=self.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens,
        )
        return to_nano(cost(usage, prices=prices.at_input_tokens(self.input_tokens // max(self.requests, 1))))


@dataclass(slots=True)
class _Saving:
    """A recommendation being summed: nano-USD saved, requests and keys."""

    nano: int = 0
    requests: int = 0
    keys: set[str] = field(default_factory=set)

    def add(self, tally: _Tally, saved: int) -> None:
        self.nano += saved
        self.requests += tally.requests
        self.keys |= tally.keys


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One piece of advice."""

    type: str
    description: str
    savings_nano: int
    requests: int
    keys: tuple[str, ...]
    implementation: dict[str, Any]
    cache_hit_rate: Decimal | None = None
    """For caching: the share of the model's requests that would read their prefix from cache."""

    def shown(self) -> dict[str, Any]:
        """The seed's fields: type, description, estimatedSavings, affectedRequests, confidence, implementation."""
        answer: dict[str, Any] = {
            "type": self.type,
            "description": self.description,
            "estimatedSavings": nano_to_usd(self.savings_nano),
            "affectedRequests": self.requests,
            "affectedKeys": len(self.keys),
            "confidence": CONFIDENCE[self.type],
        }
        if self.cache_hit_rate is not None:
            answer["cacheHitRateProjected"] = self.cache_hit_rate
        answer["implementation"] = {"virtualKeys": list(self.keys), **self.implementation}
        return answer


def _ok(groups: Iterable[UsageGroup], operations: frozenset[str]) -> Iterable[UsageGroup]:
    return (group for group in groups if group.ok and group.operation in operations)


def _nearest_sibling(
    book: PriceBook, alternatives: Alternatives, provider: str, model: str, operation: str, at: datetime
) -> tuple[str, UnitPrices] | None:
    for sibling in alternatives.siblings(model):
        try:
            return sibling, book.show(sibling, provider=provider, operation=operation, at=at).prices
        except UnknownModelError:
            continue
    return None


def substitutions(
    groups: list[UsageGroup], book: PriceBook, alternatives: Alternatives, *, at: datetime, slot: str
) -> list[Recommendation]:
    """`model_substitution`: the nearest cheaper sibling, for the groups whose average request stayed small
    (`slot`: what a group's slot is, `day` or `hour`, for the description)."""
    small: dict[tuple[str, str, str], _Tally] = defaultdict(_Tally)
    for group in _ok(groups, _GENERATING):
        if (
            alternatives.siblings(group.model)
            and group.input_tokens < SMALL_INPUT_TOKENS * group.requests
            and group.output_tokens < SMALL_OUTPUT_TOKENS * group.requests
        ):
            small[(group.provider, group.model, group.operation)].add(group)
    found: dict[tuple[str, str], _Saving] = defaultdict(_Saving)
    for (provider, model, operation), tally in small.items():
        nearest = _nearest_sibling(book, alternatives, provider, model, operation, at)
        if nearest is not None:
            sibling, prices = nearest
            found[(model, sibling)].add(tally, tally.cost_nano - tally.at(prices))
    return [
        Recommendation(
            "model_substitution",
            f"Replace {model} with {sibling} for requests that stay small: each key's {slot} averaging under "
            f"{SMALL_INPUT_TOKENS:,} input and {SMALL_OUTPUT_TOKENS:,} output tokens a request",
            saving.nano,
            saving.requests,
            tuple(sorted(saving.keys)),
            {
                "modelMapping": {
                    "from": model,
                    "to": sibling,
                    "conditions": [f"input_tokens < {SMALL_INPUT_TOKENS}", f"output_tokens < {SMALL_OUTPUT_TOKENS}"],
                }
            },
        )
        for (model, sibling), saving in found.items()
        if saving.nano > 0
    ]


def routings(groups: list[UsageGroup], alternatives: Alternatives, *, at: datetime) -> list[Recommendation]:
    """`provider_routing`: the same model at the cheapest other routable provider that sells it."""
    used: dict[tuple[str, str, str], _Tally] = defaultdict(_Tally)
    for group in _ok(groups, _BATCHABLE):
        used[(group.provider, group.model, group.operation)].add(group)
    found: dict[tuple[str, str, str], _Saving] = defaultdict(_Saving)
    for (provider, model, operation), tally in used.items():
        offers = alternatives.offers(model, operation=operation, at=at, besides=provider)
        priced = sorted((tally.at(pricing.prices), seller) for seller, pricing in offers)
        if priced and priced[0][0] < tally.cost_nano:
            cheapest, seller = priced[0]
            found[(model, provider, seller)].add(tally, tally.cost_nano - cheapest)
    return [
        Recommendation(
            "provider_routing",
            f"Route {model} requests from {provider} to {seller}, which sells the same model for less",
            saving.nano,
            saving.requests,
            tuple(sorted(saving.keys)),
            {"routing": {"model": model, "from": provider, "to": seller}},
        )
        for (model, provider, seller), saving in found.items()
    ]


def batches(groups: list[UsageGroup], alternatives: Alternatives, *, at: datetime) -> list[Recommendation]:
    """`batch_processing`: the batch price for the requests of keys that belong to an agent or an app."""
    automated: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    for group in _ok(groups, _BATCHABLE):
        if group.agent or group.app:
            automated[(group.provider, group.model)].add(group)
    found = []
    for (provider, model), tally in automated.items():
        batch = alternatives.batch(model, provider=provider, at=at)
        if batch is None:
            continue
        if batch.prices is not None:
            saved, source = tally.cost_nano - tally.at(batch.prices), "the catalog's batch prices"
        else:
            assert batch.discount is not None
            saved = to_nano(nano_to_usd(tally.cost_nano) * batch.discount)
            source = f"{batch.discount:%} off at {batch.provider}"
        if saved > 0:
            found.append(
                Recommendation(
                    "batch_processing",
                    f"Send the {model} requests of agents' and apps' keys through {batch.provider}'s batch API "
                    f"({source}) where no one waits for the answer",
                    saved,
                    tally.requests,
                    tuple(sorted(tally.keys)),
                    {"batch": {"model": model, "provider": batch.provider}},
                )
            )
    return found


@dataclass(slots=True)
class _Repeats:
    """A model's repeated prefixes: the tokens that could be read from cache, and the cache writes that costs."""

    prefixes: int = 0
    requests: int = 0
    repeats: int = 0
    input_tokens: int = 0
    extra_cached: int = 0
    writes: int = 0
    keys: set[str] = field(default_factory=set)

    def add(self, requests: int, input_tokens: int, cached: int) -> None:
        """One prefix's day: `requests` sent it, with `input_tokens` and `cached` read from cache."""
        prefix = min(PREFIX_TOKENS, input_tokens // requests)
        extra = max(0, (requests - 1) * prefix - cached)
        self.prefixes += 1
        self.requests += requests
        self.repeats += requests - 1
        self.input_tokens += input_tokens
        self.extra_cached += extra
        if extra and not cached:
            self.writes += prefix

    def saving(self, prices: UnitPrices) -> int:
        """Nano-USD: the extra tokens read from cache instead of as input, less the cache writes."""
        read, writes = self.extra_cached, self.writes
        as_input = cost(Usage(input_tokens=read), prices=prices)
        as_cached = cost(Usage(input_tokens=read, cached_input_tokens=read), prices=prices)
        written = cost(Usage(input_tokens=writes, cache_write_tokens=writes), prices=prices)
        return to_nano(as_input - as_cached - (written - cost(Usage(input_tokens=writes), prices=prices)))


def caching(
    prefixes: list[PrefixRow], groups: list[UsageGroup], book: PriceBook, *, at: datetime
) -> list[Recommendation]:
    """`caching`: prompt caching for the prompt prefixes sent more than once on a day."""
    days: dict[tuple[str, int, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    keys: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in prefixes:
        totals = days[(row.account_id, row.day, row.provider, row.canonical_model, row.prefix)]
        totals[0] += row.requests
        totals[1] += row.input_tokens
        totals[2] += row.cached_input_tokens
        if row.key_id:
            keys[(row.provider, row.canonical_model)].add(row.key_id)
    repeats: dict[tuple[str, str], _Repeats] = defaultdict(_Repeats)
    for (_account, _day, provider, model, _prefix), (requests, input_tokens, cached) in days.items():
        repeats[(provider, model)].add(requests, input_tokens, cached)
    served: dict[tuple[str, str], int] = defaultdict(int)
    for group in _ok(groups, _PROMPTED):
        served[(group.provider, group.model)] += group.requests
    found = []
    for (provider, model), repeated in repeats.items():
        try:
            prices = book.show(model, provider=provider, at=at).prices
        except UnknownModelError:
            continue
        if prices.cached_input_mtok is None:
            continue
        saved = repeated.saving(prices.at_input_tokens(repeated.input_tokens // repeated.requests))
        total = served[(provider, model)]
        if saved > 0:
            found.append(
                Recommendation(
                    "caching",
                    f"Enable prompt caching for {model}: {repeated.repeats:,} requests repeated, on the same day, "
                    f"the first {PREFIX_TOKENS:,}+ tokens of a prompt sent before ({repeated.prefixes:,} such "
                    "prompt beginnings)",
                    saved,
                    repeated.requests,
                    tuple(sorted(keys[(provider, model)])),
                    {"caching": {"model": model, "provider": provider, "repeatedPrefixes": repeated.prefixes}},
                    cache_hit_rate=ratio(repeated.repeats, total),
                )
            )
    return found
