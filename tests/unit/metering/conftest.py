"""The price book the metering tests price with (fakes of the ledger and directory: `metering_fakes.py`)."""

from __future__ import annotations

import pytest

from farebox.prices import PriceBook


@pytest.fixture(scope="session")
def prices() -> PriceBook:
    """The bundled catalog, no overrides."""
    return PriceBook.load(None)
