"""What every proxy route shares, built once by `create_app`: the routing table, the upstream pool, the meter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from farebox.core.credits import CreditRate
from farebox.gateway.bounds import EmbeddingBounds
from farebox.gateway.model_routes import ModelRoute, Provider
from farebox.gateway.prompt_prefix import PromptPrefixes
from farebox.gateway.tokens import Tokenizer
from farebox.gateway.upstream import Upstream
from farebox.metering import Meter, PriceTarget

__all__ = ["Gateway"]

_CATALOG_PROVIDERS: Mapping[Provider, str] = MappingProxyType(
    {Provider.OPENAI: "openai", Provider.AZURE: "openai", Provider.ANTHROPIC: "anthropic", Provider.GEMINI: "google"}
)


@dataclass(frozen=True, slots=True)
class Gateway:
    """The proxy routes' shared parts."""

    routes: Mapping[str, ModelRoute]
    """The routing table, by the model name clients send."""
    credentials: Mapping[str, str]
    """Provider credentials by route name, read from the environment at start-up."""
    upstream: Upstream
    meter: Meter
    tokenizer: Tokenizer
    mock_base_url: str
    mock_key: str | None = None
    """The key the built-in mock requires of farebox's own requests; None when farebox serves no mock."""
    default_output_tokens: int = 4096
    """The output a reservation assumes for a request that sets no output limit."""
    embeddings: EmbeddingBounds = EmbeddingBounds()
    """The most one embeddings request may ask for."""
    credit_rate: CreditRate = CreditRate()
    """Credits per USD: `x-credits-remaining` counts in credits for an account that holds them."""
    prompt_prefixes: PromptPrefixes | None = None
    """Hashes long prompts' beginnings for the usage events (`gateway.prompt_prefix`); None: no hashes."""

    def price_target(self, route: ModelRoute) -> PriceTarget:
        """What a route's usage is priced as: its `price_as` (`provider/model` or `model`), else its upstream model."""
        if route.price_as is not None:
            provider, slash, model = route.price_as.partition("/")
            return PriceTarget(provider, model) if slash else PriceTarget(None, route.price_as)
        return PriceTarget(_CATALOG_PROVIDERS.get(route.provider, route.provider.value), route.upstream)
