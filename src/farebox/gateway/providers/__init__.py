"""Provider wire formats: one module per format, each knowing how its provider reports usage and errors.

- `openai`: OpenAI and every OpenAI-compatible server (Azure OpenAI, vLLM, Ollama, Groq, OpenRouter, ...).
- `anthropic`: the Anthropic Messages API.
- `gemini`: Google's Gemini `generateContent` API.
- `mock`: the built-in offline provider, which answers in all three formats.

Each format module offers `usage_from_body()` for complete responses, a stream collector class (fed the
upstream bytes as they arrive, see `sse.UsageCollector`) and `error_body()` for errors in its own shape.
"""

from __future__ import annotations

__all__: list[str] = []
