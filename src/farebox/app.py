"""The composition root: `create_app()` builds the ledger, price book and routes, and wires them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.responses import JSONResponse

from farebox import __version__
from farebox.api import admin, events
from farebox.api.errors import install_error_handlers
from farebox.api.limits import BodySizeLimit
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.prices import PriceBook
from farebox.settings import Settings, resolve_master_key

__all__ = ["create_app"]


def create_app(
    settings: Settings,
    *,
    ledger: Ledger | None = None,
    prices: PriceBook | None = None,
    master_key: str | None = None,
) -> FastAPI:
    """Build the farebox ASGI app. Tests pass their own ledger, price book or master key."""
    ledger = ledger or Ledger(settings.database_url)
    prices = prices or PriceBook.load(settings.price_overrides)
    master_key = master_key or resolve_master_key(settings)[0]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await ledger.start()
        try:
            yield
        finally:
            await ledger.close()

    app = FastAPI(title="farebox", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.ledger = ledger
    app.state.prices = prices
    app.state.master_key = master_key
    app.state.directory = Directory(ledger)
    install_error_handlers(app)
    app.include_router(admin.router)
    app.include_router(events.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
