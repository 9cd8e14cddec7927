"""farebox: a self-hosted LLM spend gateway. Every request priced, attributed and committed to a ledger."""

__version__ = "0.1.0"

__all__ = ["__version__"]
