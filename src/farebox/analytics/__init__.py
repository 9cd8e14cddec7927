"""The read side: one typed query (measures x dimensions x time bucket x time zone x filters x the caller's access
scope) over the ledger's rollups, read through the ledger's reader, and the usage endpoints that present it.

Its place in the layers is fixed before its code (docs/architecture.md): it reads the ledger and never imports
the gateway, and the gateway never imports it.
"""

from __future__ import annotations

__all__: list[str] = []
