"""The routing table: which provider, upstream model and base URL serve each model name a client asks for.

Declared in `farebox.toml` as one `[[models]]` entry per model::

    [[models]]
    name = "gpt-4o"                      # what clients send as `model`
    provider = "openai"                  # openai | azure | anthropic | gemini | openai_compatible | mock
    upstream_model = "gpt-4o-2024-08-06" # what farebox sends upstream (default: name)
    base_url = "https://api.openai.com/v1"
    api_key_env = "OPENAI_API_KEY"       # the environment variable holding the provider credential
    price_as = "gpt-4o"                  # optional: the catalog model to price it as

farebox forwards requests in the client's own wire format and never translates between formats, so a
route serves the formats its provider speaks: OpenAI's for openai, azure and openai_compatible;
Anthropic Messages (and Anthropic's OpenAI-compatible chat endpoint) for anthropic; Gemini's native
API and its OpenAI-compatible endpoint for gemini; all of them for the built-in mock.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["DEFAULT_BASE_URLS", "DEFAULT_MOCK_MODELS", "ModelRoute", "Provider", "default_routes", "routing_table"]


class Provider(StrEnum):
    OPENAI = "openai"
    AZURE = "azure"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    OPENAI_COMPATIBLE = "openai_compatible"
    MOCK = "mock"


DEFAULT_BASE_URLS = {
    Provider.OPENAI: "https://api.openai.com/v1",
    Provider.ANTHROPIC: "https://api.anthropic.com",
    Provider.GEMINI: "https://generativelanguage.googleapis.com/v1beta",
}

DEFAULT_MOCK_MODELS = (
    ("gpt-4o-mini", "openai"),
    ("gpt-4o", "openai"),
    ("text-embedding-3-small", "openai"),
    ("tts-1", "openai"),
    ("whisper-1", "openai"),
    ("claude-sonnet-4-5", "anthropic"),
    ("gemini-2.5-flash", "google"),
)
"""What `make run` serves from the mock with no configuration: (model, catalog provider it is priced as)."""


class ModelRoute(BaseModel):
    """One `[[models]]` entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="The model name clients send.")
    provider: Provider
    upstream_model: str | None = Field(None, min_length=1, description="The model name sent upstream.")
    base_url: str | None = Field(None, description="Upstream base URL (default per provider; mock: farebox itself).")
    api_key_env: str | None = Field(None, description="Environment variable holding the provider credential.")
    api_version: str | None = Field(None, description="Azure OpenAI api-version.")
    price_as: str | None = Field(None, description="Catalog model (optionally provider/model) to price it as.")

    @model_validator(mode="after")
    def _complete(self) -> ModelRoute:
        if self.base_url is None and self.provider in (Provider.AZURE, Provider.OPENAI_COMPATIBLE):
            raise ValueError(f"model {self.name!r}: provider {self.provider.value} needs a base_url")
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"model {self.name!r}: base_url must start with http:// or https://")
        if self.provider is Provider.AZURE and self.api_version is None:
            raise ValueError(f"model {self.name!r}: provider azure needs an api_version")
        if self.api_key_env is None and self.provider not in (Provider.MOCK, Provider.OPENAI_COMPATIBLE):
            raise ValueError(f"model {self.name!r}: provider {self.provider.value} needs api_key_env")
        return self

    @property
    def upstream(self) -> str:
        return self.upstream_model or self.name

    @property
    def on_builtin_mock(self) -> bool:
        """Whether the route is served by the mock mounted in farebox itself (a `mock` route without `base_url`)."""
        return self.provider is Provider.MOCK and self.base_url is None


def default_routes() -> tuple[ModelRoute, ...]:
    """The routing table used when `farebox.toml` declares no models: every default model on the mock."""
    return tuple(
        ModelRoute(name=name, provider=Provider.MOCK, price_as=f"{provider}/{name}")
        for name, provider in DEFAULT_MOCK_MODELS
    )


def routing_table(models: tuple[ModelRoute, ...]) -> dict[str, ModelRoute]:
    """The routes by model name: the configured `[[models]]`, or the default mock models when none are."""
    return {route.name: route for route in (models or default_routes())}
