"""The web dashboard: server-rendered pages whose every number comes from `farebox.analytics`.

Its place in the layers is fixed before its code (docs/architecture.md): it reads only through analytics,
never the ledger, the meter or the database directly.
"""

from __future__ import annotations

__all__: list[str] = []
