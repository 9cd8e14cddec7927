"""What the mock refuses, as its providers document it, so that one request's answer is bounded as theirs is.

| provider  | field                                 | accepted                                                  |
| --------- | ------------------------------------- | --------------------------------------------------------- |
| OpenAI    | `max_completion_tokens`, `max_tokens` | an integer, 1 to the model's largest output               |
| OpenAI    | `max_output_tokens` (Responses API)   | an integer, 16 to the model's largest output              |
| OpenAI    | `n` (chat, completions)               | 1 to 128                                                  |
| OpenAI    | `n` (images)                          | 1 to 10 (1 for `dall-e-3`)                                |
| OpenAI    | embeddings `dimensions`               | 1 to the model's own (1536; 3072 for `-large`); not `ada-002` |
| OpenAI    | speech `input`                        | at most 4096 characters                                   |
| OpenAI    | transcription `file`                  | at most 25 MB; at most 1400 s for `*-transcribe` models   |
| Anthropic | `max_tokens`                          | required: 0 (no output, not streamed) to the model's largest |
| Gemini    | `maxOutputTokens`                     | 1 to the model's largest output                           |
| Gemini    | `candidateCount`                      | 1 to 8                                                    |

The models' largest outputs are the providers' published figures, matched by name prefix; a name the table
does not know gets its provider's usual figure. Refusals carry each provider's wording where it is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from farebox.gateway.providers import openai
from farebox.gateway.providers.payload import JSONObject

__all__ = [
    "MAX_AUDIO_BYTES",
    "MAX_SPEECH_CHARACTERS",
    "MAX_TRANSCRIBE_SECONDS",
    "Refused",
    "anthropic_output_limit",
    "embedding_dimensions",
    "gemini_output_limit",
    "max_output_tokens",
    "openai_choices",
    "openai_output_limit",
]

Family = Literal["openai", "anthropic", "gemini"]

_LARGEST_OUTPUTS: Mapping[Family, tuple[tuple[str, int], ...]] = MappingProxyType(
    {
        # The first matching prefix wins, so a longer one comes before a shorter one it extends.
        "openai": (
            ("gpt-3.5", 4_096),
            ("gpt-4-turbo", 4_096),
            ("gpt-4.1", 32_768),
            ("gpt-4o", 16_384),
            ("gpt-4", 8_192),
            ("gpt-5", 128_000),
            ("o1", 100_000),
            ("o3", 100_000),
            ("o4", 100_000),
        ),
        "anthropic": (
            ("claude-3-5", 8_192),
            ("claude-3-haiku", 4_096),
            ("claude-3-opus", 4_096),
            ("claude-3-sonnet", 4_096),
            ("claude-opus-4-0", 32_000),
            ("claude-opus-4-1", 32_000),
            ("claude-opus-4-2025", 32_000),
        ),
        "gemini": (("gemini-1.5", 8_192), ("gemini-2.0", 8_192)),
    }
)
_USUAL_OUTPUT: Mapping[Family, int] = MappingProxyType({"openai": 16_384, "anthropic": 64_000, "gemini": 65_536})
_MAX_CHOICES = 128
_MAX_IMAGES = 10
_MAX_CANDIDATES = 8
MAX_SPEECH_CHARACTERS = 4096
MAX_AUDIO_BYTES = 25 * 1024 * 1024
MAX_TRANSCRIBE_SECONDS = 1400
"""The longest audio OpenAI's `gpt-4o-*transcribe*` models take."""


class Refused(Exception):
    """A request its provider would refuse: answered with `status` and `message` (OpenAI adds `param`, `code`)."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status


def max_output_tokens(family: Family, model: str) -> int:
    """The largest output `model` may be asked for, by its provider's published figures."""
    name = model.rsplit("/", 1)[-1].lower()
    return next((most for prefix, most in _LARGEST_OUTPUTS[family] if name.startswith(prefix)), _USUAL_OUTPUT[family])


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _openai_integer(body: JSONObject, name: str, *, least: int, most: int | None = None) -> int | None:
    value = body.get(name)
    refused = openai.count_error(value, name, minimum=least)
    if refused is not None:
        code, message = refused
        raise Refused(message, param=name, code=code)
    number = _integer(value)
    if number is None:
        return None
    if most is not None and number > most:
        raise Refused(
            f"Invalid '{name}': integer above maximum value. Expected a value <= {most}, but got {number} instead.",
            param=name,
            code="integer_above_max_value",
        )
    return number


def openai_output_limit(
    body: JSONObject, model: str, *, names: tuple[str, ...] = ("max_completion_tokens", "max_tokens"), least: int = 1
) -> int | None:
    """A request's output limit (the first of `names` given: chat's `max_completion_tokens` wins over its
    `max_tokens`; the Responses API has `max_output_tokens`, of at least 16), or None when it sets none.

    Raises:
        Refused: a limit that is not an integer, below `least`, or above the model's largest output, named.
    """
    most = max_output_tokens("openai", model)
    limits = []
    for name in names:
        limit = _openai_integer(body, name, least=least)
        if limit is not None and limit > most:
            raise Refused(
                f"{name} is too large: {limit}. This model supports at most {most} completion tokens, "
                f"whereas you provided {limit}.",
                param=name,
                code="invalid_value",
            )
        limits.append(limit)
    return next((limit for limit in limits if limit is not None), None)


def openai_choices(body: JSONObject, *, images: bool = False, model: str = "") -> int:
    """How many choices (or images) a request asks for: `n`, 1 by default.

    Raises:
        Refused: `n` not an integer, below 1 or above 128 (10 for images, 1 for `dall-e-3`).
    """
    n = _openai_integer(body, "n", least=1, most=_MAX_IMAGES if images else _MAX_CHOICES) or 1
    if images and model.startswith("dall-e-3") and n != 1:
        raise Refused("You must provide n=1 for this model.", param="n", code="invalid_value")
    return n


def embedding_dimensions(body: JSONObject, model: str) -> int:
    """The dimensions of a model's embeddings: the request's `dimensions`, else the model's own.

    Raises:
        Refused: `dimensions` for a model that has no such option, or outside 1 to the model's own.
    """
    native = 3072 if model.endswith("-large") else 1536
    if body.get("dimensions") is not None and "ada-002" in model:
        raise Refused("This model does not support specifying dimensions.", code="invalid_value")
    return _openai_integer(body, "dimensions", least=1, most=native) or native


def anthropic_output_limit(body: JSONObject, model: str) -> int:
    """A Messages request's `max_tokens`: required, 0 (cache pre-warming, not streamed) to the model's largest.

    Raises:
        Refused: `max_tokens` missing, not an integer, negative, above the model's largest output, or 0 in a
            stream.
    """
    value = body.get("max_tokens")
    if value is None:
        raise Refused("max_tokens: Field required")
    limit = _integer(value)
    if limit is None:
        raise Refused("max_tokens: Input should be a valid integer")
    if limit < 0:
        raise Refused("max_tokens: Input should be greater than or equal to 0")
    most = max_output_tokens("anthropic", model)
    if limit > most:
        raise Refused(f"max_tokens: {limit} > {most}, which is the maximum allowed number of output tokens for {model}")
    if limit == 0 and body.get("stream") is True:
        raise Refused("max_tokens: 0 (cache pre-warming) cannot be streamed")
    return limit


def _gemini_range(config: JSONObject, name: str, most: int) -> int | None:
    value = config.get(name)
    if value is None:
        return None
    number = _integer(value)
    if number is None:
        raise Refused(f"Invalid value at 'generation_config.{name}' (TYPE_INT32), {value!r}")
    if not 1 <= number <= most:
        raise Refused(
            f"Unable to submit request because it has a {name} value of {number} but the supported range is from "
            f"1 (inclusive) to {most + 1} (exclusive). Update the value and try again."
        )
    return number


def gemini_output_limit(config: JSONObject | None, model: str) -> int | None:
    """A `generateContent` request's `maxOutputTokens`, or None when it sets none (its `candidateCount` checked).

    Raises:
        Refused: either outside its range, in Gemini's words.
    """
    if config is None:
        return None
    _gemini_range(config, "candidateCount", _MAX_CANDIDATES)
    return _gemini_range(config, "maxOutputTokens", max_output_tokens("gemini", model))
