"""The read side: one typed query (measures x dimensions x time bucket x time zone x filters x the caller's access
scope) over the ledger's rollups, read through the ledger's reader, and the usage endpoints that present it.

Its place in the layers is fixed before its code (docs/architecture.md): it reads the ledger and never imports
the gateway, and the gateway never imports it.
"""

from __future__ import annotations

from farebox.analytics.calendar import Grain, Window, month_window
from farebox.analytics.engine import Dimension, Engine, Filters, Measure, Query, Row

__all__ = ["Dimension", "Engine", "Filters", "Grain", "Measure", "Query", "Row", "Window", "month_window"]
