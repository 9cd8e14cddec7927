"""The dashboard's pages: HTML shells that the browser fills from farebox's own JSON API.

A page carries no numbers of its own. Its script asks the API the dashboard's users could ask themselves
(`/api/analytics/...`, `/api/admin/virtual-keys`, ...) with the session's credential, so what a page shows is
what the API answers for the same range, under the same access rules, by construction. Pages are sent with a
strict Content-Security-Policy: scripts, styles and fonts come from farebox alone, and nothing runs inline (a
page's settings travel in `data-` attributes of its `<body>`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

from farebox import __version__
from farebox.api.sessions import SessionCaller, csrf_token
from farebox.core.credentials import Principal

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates

__all__ = ["STATIC_PATH", "router", "static_files"]

STATIC_PATH = "/dashboard/static"
_HERE = Path(__file__).parent

NAV = (
    ("usage", "Usage"),
    ("analytics", "Analytics"),
    ("keys", "Keys"),
    ("members", "Members"),
    ("live", "Live"),
    ("alerts", "Alerts"),
)
"""The pages in the navigation, in order: (path under /dashboard, label)."""

_SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}

router = APIRouter(prefix="/dashboard", include_in_schema=False)


def static_files() -> StaticFiles:
    """The dashboard's scripts, styles and vendored libraries, served from the package (mounted at `STATIC_PATH`)."""
    return StaticFiles(directory=_HERE / "static")


@cache
def _templates() -> Jinja2Templates:
    """The page templates, loaded with Jinja2 on the first page served: a gateway nobody opens the dashboard of
    never holds them."""
    from fastapi.templating import Jinja2Templates

    return Jinja2Templates(directory=_HERE / "templates")


def _page(request: Request, viewer: Principal, name: str, title: str, **context: Any) -> HTMLResponse:
    values = {
        "title": title,
        "page": name,
        "nav": NAV,
        "viewer": viewer,
        "csrf_token": csrf_token(request),
        "static": STATIC_PATH,
        "version": __version__,
        "active": name,
        "picker": True,
    }
    return _templates().TemplateResponse(request, f"{name}.html", values | context, headers=_SECURITY_HEADERS)


@router.get("")
async def home() -> RedirectResponse:
    """The dashboard starts on its usage page."""
    return RedirectResponse("/dashboard/usage", status_code=307)


@router.get("/usage", response_class=HTMLResponse)
async def usage(request: Request, viewer: SessionCaller) -> HTMLResponse:
    """Seed 000's page: a card per key (cap, spend, share used), daily spend stacked by model, the range and the
    provider and key filters, and a bar segment's requests."""
    return _page(request, viewer, "usage", "Usage")


@router.get("/analytics", response_class=HTMLResponse)
async def analytics(request: Request, viewer: SessionCaller) -> HTMLResponse:
    """Seed 003's page: Cost by Model and Cost by Model Over Time, with their tabs and the canonical toggle."""
    return _page(request, viewer, "analytics", "Analytics")


@router.get("/keys", response_class=HTMLResponse)
async def keys(request: Request, viewer: SessionCaller) -> HTMLResponse:
    """The account's keys with their caps and spend; create, rotate, change the cap, revoke (as the role allows)."""
    return _page(request, viewer, "keys", "Keys")


@router.get("/keys/{key_id}", response_class=HTMLResponse)
async def key(request: Request, viewer: SessionCaller, key_id: str) -> HTMLResponse:
    """One key's statistics page (seed 003): summary cards, budget, and its two cost-by-model charts."""
    return _page(request, viewer, "key", "Key statistics", key_id=key_id, active="keys", picker=False)


@router.get("/members", response_class=HTMLResponse)
async def members(request: Request, viewer: SessionCaller) -> HTMLResponse:
    """Member analytics (seed 003): the members by spend; an upgrade card or an access notice where they are not
    open to the viewer."""
    return _page(request, viewer, "members", "Members")


@router.get("/members/{member_id}", response_class=HTMLResponse)
async def member(request: Request, viewer: SessionCaller, member_id: str) -> HTMLResponse:
    """One member's usage: summary cards, most used, cost by model, top providers and apps."""
    return _page(request, viewer, "member", "Member", member_id=member_id, active="members", picker=False)


@router.get("/live", response_class=HTMLResponse)
async def live(request: Request, viewer: SessionCaller) -> HTMLResponse:
    """Seed 002's live view: today's and this month's requests, tokens and credits, and the credits remaining."""
    return _page(request, viewer, "live", "Live")


@router.get("/alerts", response_class=HTMLResponse)
async def alerts(request: Request, viewer: SessionCaller) -> HTMLResponse:
    """Recent threshold alerts and anomalies with their evidence, and the webhook endpoints' delivery logs."""
    return _page(request, viewer, "alerts", "Alerts")
