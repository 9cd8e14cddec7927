"""The usage analytics API under /api/analytics: cost by model, over time, per key and per member (seed 003).

Every route takes the shared range (`from`, `to` as local dates, `tz`, default the current month in the
account's zone) and filters (`provider`, `key`, `model`, `agent`, `member`, each one value or several
separated by commas), and answers from the analytics engine under the caller's access: the master key any
account (`account_id`), an owner, admin or billing token its account, a member token its own keys, a virtual
key itself. Money is decimal USD strings; `error_rate` is errors per request, a decimal fraction to four
places.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query, Request

from farebox.analytics.calendar import Grain, Window
from farebox.analytics.engine import Dimension, Engine, Filters, Measure
from farebox.analytics.engine import Query as UsageQuery
from farebox.analytics.query_times import TimedRoute
from farebox.analytics.views import ModelView, Scope, Series, Totals, Views
from farebox.core.credentials import Principal, PrincipalKind
from farebox.core.events import epoch_us, from_epoch_us
from farebox.core.json_types import LocalDate, Timezone
from farebox.core.money import format_usd
from farebox.core.owners import Plan, Role
from farebox.errors import NotFound, PermissionDenied, ValidationFailed
from farebox.ledger.reader import EventCursor, EventRow, LedgerReader
from farebox.services import authenticate, services

__all__ = ["account_zone", "router", "usage_scope"]

router = APIRouter(prefix="/api/analytics", tags=["analytics"], route_class=TimedRoute)

MAX_DAYS = 366
MAX_HOUR_DAYS = 7
_RATE = Decimal("0.0001")

Caller = Annotated[Principal, Depends(authenticate)]
Values = Annotated[str | None, Query(description="One value, or several separated by commas.")]


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details=[{"loc": field, "message": message}])


async def account_zone(
    request: Request, viewer: Principal, account_id: str | None, tz: str | None
) -> tuple[str | None, ZoneInfo, str | None]:
    """The account a usage request reads (the caller's own unless the master key names one), the zone its dates
    are in (`tz`, else the account's, else UTC), and the account's own zone.

    Raises:
        NotFound: an account the caller is not in, or that does not exist (404).
        ValidationFailed: `tz` is no IANA zone (422).
    """
    account_id = account_id or viewer.account_id
    own_zone = None
    if account_id is not None:
        if not viewer.is_master and account_id != viewer.account_id:
            raise NotFound(f"no account with id {account_id!r}", code="account_not_found")
        own_zone = (await services(request).directory.get_account(account_id)).timezone
    zone_name = tz or own_zone or "UTC"
    try:
        return account_id, ZoneInfo(zone_name), own_zone
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid("tz", f"not an IANA time zone: {zone_name!r}") from None


async def usage_scope(
    request: Request,
    viewer: Caller,
    from_: Annotated[
        LocalDate | None, Query(alias="from", description="First local date (default: the month's 1st).")
    ] = None,
    to: Annotated[
        LocalDate | None, Query(description="Last local date, included (default: the month's last day).")
    ] = None,
    tz: Annotated[Timezone | None, Query(description="IANA zone (default: the account's).")] = None,
    account_id: Annotated[
        str | None, Query(min_length=1, description="The account (the master key; others see their own).")
    ] = None,
    provider: Values = None,
    key: Values = None,
    model: Values = None,
    agent: Values = None,
    member: Values = None,
) -> Scope:
    """FastAPI dependency: the caller, the window and the filters a usage request asks for.

    Raises:
        NotFound: an account the caller is not in, or that does not exist (404).
        ValidationFailed: a bad zone or range (422).
    """
    account_id, zone, own_zone = await account_zone(request, viewer, account_id, tz)
    today = services(request).directory.now().astimezone(zone).date()
    first = from_ or (to or today).replace(day=1)
    last = to or ((first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1))
    if last < first:
        raise _invalid("to", "comes before from")
    if (last - first).days >= MAX_DAYS:
        raise _invalid("to", f"a range is at most {MAX_DAYS} days")
    filters = Filters.given(provider=provider, key=key, model=model, agent=agent, member=member)
    return Scope(viewer, Window(first, last, zone), account_id, filters, local_days=zone.key == own_zone)


Scoped = Annotated[Scope, Depends(usage_scope)]


def _views(request: Request) -> Views:
    return Views(Engine(LedgerReader(services(request).ledger)))


def _totals(totals: Totals) -> dict[str, Any]:
    rate = Decimal(totals.errors) / totals.requests if totals.requests else Decimal(0)
    return {
        "cost": format_usd(totals.cost_nano),
        "requests": totals.requests,
        "tokens": totals.tokens,
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "errors": totals.errors,
        "error_rate": str(rate.quantize(_RATE, rounding=ROUND_HALF_EVEN)),
    }


def _range(scope: Scope) -> dict[str, Any]:
    window = scope.window
    return {"from": window.first.isoformat(), "to": window.last.isoformat(), "tz": window.tz.key}


def _series(series: Series, name: str) -> dict[str, Any]:
    return {
        "buckets": [bucket.isoformat() for bucket in series.buckets],
        "series": [
            {
                name: value,
                "cost": [format_usd(slot.cost_nano) for slot in slots],
                "requests": [slot.requests for slot in slots],
                "tokens": [slot.tokens for slot in slots],
            }
            for value, slots in series.lines.items()
        ],
    }


def _grain(grain: Grain, scope: Scope) -> Grain:
    if grain is Grain.HOUR and (scope.window.last - scope.window.first).days >= MAX_HOUR_DAYS:
        raise _invalid("grain", f"hours are for ranges of at most {MAX_HOUR_DAYS} days")
    return grain


@router.get("/models", summary="Cost, requests and tokens by model")
async def models(request: Request, scope: Scoped, view: ModelView = ModelView.CANONICAL) -> dict[str, Any]:
    """Models ranked by cost over the range; `view=mappings` keeps each name a request used apart."""
    rows = await _views(request).breakdown(scope, view.dimension)
    return _range(scope) | {"view": view.value, "data": [{"model": name} | _totals(t) for name, t in rows]}


@router.get("/models/over-time", summary="Cost, requests and tokens by model per hour, day, week or month")
async def models_over_time(
    request: Request, scope: Scoped, grain: Grain = Grain.DAY, view: ModelView = ModelView.CANONICAL
) -> dict[str, Any]:
    """A stacked series: every slot of the range in `buckets`, one line per model in descending cost."""
    series = await _views(request).series(scope, view.dimension, _grain(grain, scope))
    return _range(scope) | {"grain": grain.value, "view": view.value} | _series(series, "model")


@router.get("/keys/{key_id}", summary="One virtual key's statistics")
async def key_statistics(
    key_id: str, request: Request, scope: Scoped, grain: Grain = Grain.DAY, view: ModelView = ModelView.CANONICAL
) -> dict[str, Any]:
    """Cost, tokens, requests and error rate of the key, and its cost by model, overall and over time."""
    key = await services(request).directory.get_key(key_id)
    viewer = scope.viewer
    missing = NotFound.of("virtual key", key_id)
    viewer.require_usage(key.account_id, key_id=key.id, member_id=key.member_id, missing=missing)
    values = dict(scope.filters.values) | {Dimension.KEY: (key.id,)}
    keyed = replace(scope, account_id=key.account_id, filters=Filters(values, models=scope.filters.models))
    views = _views(request)
    summary = await views.totals(keyed)
    by_model = await views.breakdown(keyed, view.dimension)
    series = await views.series(keyed, view.dimension, _grain(grain, scope))
    return _range(scope) | {
        "key": {"id": key.id, "name": key.name, "member_id": key.member_id},
        "summary": _totals(summary),
        "models": [{"model": name} | _totals(t) for name, t in by_model],
        "over_time": {"grain": grain.value, "view": view.value} | _series(series, "model"),
    }


async def _member_analytics(request: Request, scope: Scope) -> str:
    """The account whose member analytics the caller may see: owners and admins on the enterprise plan."""
    viewer = scope.viewer
    account_id = scope.account_id
    if account_id is None:
        raise _invalid("account_id", "the master key must name the account")
    if viewer.kind is not PrincipalKind.MASTER and viewer.role not in (Role.OWNER, Role.ADMIN):
        raise PermissionDenied("member analytics are for the account's owners and admins", code="role_required")
    account = await services(request).directory.get_account(account_id)
    if account.plan is not Plan.ENTERPRISE:
        raise PermissionDenied("member analytics come with the enterprise plan", code="upgrade_required")
    return account_id


@router.get("/members", summary="Usage per member, by spend")
async def members(request: Request, scope: Scoped) -> dict[str, Any]:
    """Per member of the account: cost, tokens, requests, error rate and key count; members without usage too."""
    account_id = await _member_analytics(request, scope)
    directory = services(request).directory
    used = dict(await _views(request).breakdown(scope, Dimension.MEMBER))
    key_counts: dict[str | None, int] = defaultdict(int)
    for key in await directory.list_keys(account_id=account_id):
        key_counts[key.member_id] += 1
    rows = [
        {"member_id": m.id, "name": m.name, "email": m.email, "role": m.role.value}
        | _totals(used.get(m.id, Totals()))
        | {"key_count": key_counts[m.id]}
        for m in await directory.list_members(account_id)
    ]
    rows.sort(key=lambda row: (-Decimal(row["cost"]), row["name"]))
    return _range(scope) | {"data": rows}


@router.get("/members/{member_id}", summary="One member's usage")
async def member_detail(member_id: str, request: Request, scope: Scoped) -> dict[str, Any]:
    """The member's totals, most used model, provider and app, cost by model, top providers and top apps."""
    account_id = await _member_analytics(request, scope)
    member = await services(request).directory.get_member(member_id)
    if member.account_id != account_id:
        raise NotFound(f"no member with id {member_id!r} in account {account_id!r}", code="member_not_found")
    values = dict(scope.filters.values) | {Dimension.MEMBER: (member.id,)}
    scoped = replace(scope, filters=Filters(values, models=scope.filters.models))
    views = _views(request)
    by_model = await views.breakdown(scoped, Dimension.CANONICAL_MODEL)
    by_provider = await views.breakdown(scoped, Dimension.PROVIDER)
    by_app = [(app, t) for app, t in await views.breakdown(scoped, Dimension.APP) if app]

    def top(rows: list[tuple[str, Totals]]) -> str | None:
        return rows[0][0] if rows else None

    return _range(scope) | {
        "member": {"id": member.id, "name": member.name, "email": member.email, "role": member.role.value},
        "summary": _totals(await views.totals(scoped)),
        "most_used": {"model": top(by_model), "provider": top(by_provider), "app": top(by_app)},
        "models": [{"model": name} | _totals(t) for name, t in by_model],
        "providers": [{"provider": name} | _totals(t) for name, t in by_provider],
        "apps": [{"app": name} | _totals(t) for name, t in by_app],
    }


def _cursor(row: EventRow) -> str:
    return base64.urlsafe_b64encode(f"{epoch_us(row.timestamp)}.{row.id}".encode()).decode().rstrip("=")


def _after(cursor: str | None) -> EventCursor | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts_us, event_id = text.split(".", 1)
        return EventCursor(from_epoch_us(int(ts_us)), event_id)
    except (ValueError, UnicodeDecodeError, OverflowError):
        raise _invalid("cursor", "not a cursor this API gave") from None


@router.get("/requests", summary="The requests behind a day (the drill-down), a page at a time")
async def requests(
    request: Request,
    scope: Scoped,
    day: Annotated[LocalDate, Query(alias="date", description="The local date.")],
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The day's totals for the filters, and its requests in time order: time, key, model, tokens, cost, status,
    latency; `next_cursor` is null on the last page."""
    day_scope = replace(scope, window=Window(day, day, scope.window.tz))
    query = UsageQuery(day_scope.window, (Measure.REQUESTS,), filters=scope.filters, account_id=scope.account_id)
    engine = Engine(LedgerReader(services(request).ledger))
    rows = await engine.requests(query, viewer=scope.viewer, after=_after(cursor), limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    return {"date": day.isoformat(), "tz": scope.window.tz.key} | {
        "summary": _totals(await Views(engine).totals(day_scope)),
        "data": [
            {
                "id": row.id,
                "timestamp": row.timestamp.isoformat().replace("+00:00", "Z"),
                "key_id": row.key_id,
                "member_id": row.member_id,
                "provider": row.provider,
                "model": row.model,
                "input_tokens": row.input_tokens,
                "output_tokens": row.output_tokens,
                "cost": format_usd(row.cost_nano),
                "status": row.status,
                "latency_ms": row.latency_ms,
            }
            for row in page
        ],
        "next_cursor": _cursor(page[-1]) if more else None,
    }


@router.get("/filters", summary="The providers, models, keys, agents and members with usage in the range")
async def filters(request: Request, scope: Scoped) -> dict[str, Any]:
    """What the range's usage can be filtered by (from the rollups and the directory, never raw events)."""
    views = _views(request)
    found = {
        dimension: [name for name, _totals in await views.breakdown(scope, dimension) if name]
        for dimension in (
            Dimension.PROVIDER,
            Dimension.CANONICAL_MODEL,
            Dimension.KEY,
            Dimension.AGENT,
            Dimension.MEMBER,
        )
    }
    directory = services(request).directory
    keys = await directory.find_keys(found[Dimension.KEY])
    names: dict[str, str | None] = {}
    for member_id in found[Dimension.MEMBER]:
        try:
            names[member_id] = (await directory.get_member(member_id)).name
        except NotFound:
            names[member_id] = None
    return _range(scope) | {
        "providers": sorted(found[Dimension.PROVIDER]),
        "models": sorted(found[Dimension.CANONICAL_MODEL]),
        "keys": [{"id": k, "name": keys[k].name if k in keys else None} for k in sorted(found[Dimension.KEY])],
        "agents": sorted(found[Dimension.AGENT]),
        "members": [{"id": m, "name": names[m]} for m in sorted(found[Dimension.MEMBER])],
    }
