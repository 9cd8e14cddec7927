"""The gateway: OpenAI- and Anthropic-compatible proxy routes and the provider wire formats they speak.

`farebox.gateway.providers` holds one module per provider wire format (usage extraction, stream usage
collectors, error envelopes) and the built-in `mock` provider; `farebox.gateway.tokens` counts tokens
offline for estimates.
"""

from __future__ import annotations

__all__: list[str] = []
