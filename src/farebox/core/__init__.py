"""Pure domain: money, keys, usage events and prices. No I/O, no frameworks, no settings."""
