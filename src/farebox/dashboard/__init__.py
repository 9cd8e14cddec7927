"""The web dashboard: pages served by farebox whose every number comes from its own JSON API.

It reads only through the API and analytics, never the ledger, the meter or the database directly
(docs/architecture.md). Its third-party front-end code is vendored under `static/vendor` (`make vendor`).
"""

from __future__ import annotations

from farebox.dashboard.pages import STATIC_PATH, router, static_files

__all__ = ["STATIC_PATH", "router", "static_files"]
