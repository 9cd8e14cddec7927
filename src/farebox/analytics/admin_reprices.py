"""`POST /api/admin/analytics/recalculate-costs` (seed 004): recorded usage repriced with the price book of the day.

The seed's body (`startDate`, `endDate`, `virtualKeys`) plus `dryRun` and `reason`. Every event of the dates (local
days of each account's zone) that today's price book, at the event's own time, prices differently from its cost so
far gets a `reprice` adjustment with the difference, who, when and why (`farebox.ledger.reprices`): events are never
edited, and every view, export and spend counter follows. A dry run answers the same and writes nothing; a second run
finds nothing to change. For the master key (every account, or the one `account_id` names) and an account's owners
and admins (their account); the request itself is in the audit log with its body.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.responses import Response

from farebox.analytics.admin_common import Scoped, dated_window, envelope, invalid, scoped_responses, usd
from farebox.analytics.query_times import TimedRoute
from farebox.core.events import epoch_us, from_epoch_us
from farebox.core.owners import Role
from farebox.errors import PermissionDenied
from farebox.ledger.directory import Directory
from farebox.ledger.reprices import MAX_CHANGES_SHOWN, Recalculation, RepriceRange
from farebox.services import actor_of, services

__all__ = ["DEFAULT_REASON", "recalculation_data", "reprice_ranges", "router"]

router = APIRouter(prefix="/api/admin/analytics", tags=["admin analytics"], route_class=TimedRoute)

DEFAULT_REASON = "costs recalculated with the current price book"
_MAX_KEYS = 1_000


class RecalculateIn(BaseModel):
    """Which usage to reprice, whether to write, and why."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)

    start_date: date = Field(description="The first local day, `YYYY-MM-DD`.")
    end_date: date = Field(description="The last local day, included; at most 366 days after `startDate`.")
    virtual_keys: Annotated[list[str], Field(max_length=_MAX_KEYS)] | None = Field(
        None, description="Only these keys' events (ids); every key's, and events of no key, by default."
    )
    dry_run: bool = Field(False, description="Show the differences and write nothing.")
    reason: Annotated[str, Field(min_length=1, max_length=1_000)] = Field(
        DEFAULT_REASON, description="Why, kept with every adjustment."
    )


@router.post(
    "/recalculate-costs",
    summary="Reprice recorded usage with today's price book, as audited adjustments (or a dry run)",
    responses=scoped_responses(
        "A bad body: a missing or malformed date, `endDate` before `startDate` or over 366 days after it, an empty "
        "`reason`, or a key that is not the account's. `error.details` names it."
    ),
)
async def recalculate_costs(request: Request, body: RecalculateIn, scope: Scoped) -> Response:
    """Every difference between an event's cost so far and its cost in today's price book, appended as an adjustment
    (unless `dryRun`), and summed."""
    viewer = scope.viewer
    if not viewer.is_master and viewer.role not in (Role.OWNER, Role.ADMIN):
        raise PermissionDenied("recalculating costs is for the account's owners and admins", code="role_required")
    reason = body.reason.strip()
    if not reason:
        raise invalid("reason", "give the reason, 1 to 1,000 characters")
    found = services(request)
    ranges = await reprice_ranges(found.directory, scope.account_id, body.start_date, body.end_date, body.virtual_keys)
    done = await found.reprices.recalculate(ranges, reason=reason, by=actor_of(viewer), dry_run=body.dry_run)
    return envelope(
        recalculation_data(done, scope.account_id, body.start_date, body.end_date, body.virtual_keys, reason)
    )


async def reprice_ranges(
    directory: Directory, account_id: str | None, start_date: date, end_date: date, key_ids: Sequence[str] | None
) -> list[RepriceRange]:
    """One range per account (every account's without `account_id`), its dates in its zone; with keys, the accounts
    holding them only.

    Raises:
        NotFound: no such account (404).
        ValidationFailed: the end before the start or over 366 days after it, or a key not in scope (422).
    """
    if account_id is not None:
        accounts = [await directory.get_account(account_id)]
    else:
        accounts = await directory.list_accounts()
    wanted: tuple[str, ...] | None = None
    holders: set[str] | None = None
    if key_ids is not None:
        wanted = tuple(dict.fromkeys(key_ids))
        keys = {key.id: key for key in await directory.list_keys(account_id=account_id)}
        unknown = [key_id for key_id in wanted if key_id not in keys]
        if unknown:
            raise invalid("virtualKeys", f"no such key in scope: {', '.join(unknown[:5])}")
        holders = {keys[key_id].account_id for key_id in wanted}
    ranges = []
    for account in accounts:
        if holders is not None and account.id not in holders:
            continue
        zone = ZoneInfo(account.timezone)
        today = directory.now().astimezone(zone).date()
        window = dated_window(None, start_date, end_date, today=today, tz=zone)
        ranges.append(RepriceRange(account.id, epoch_us(window.since), epoch_us(window.until), wanted))
    return ranges


def recalculation_data(
    done: Recalculation,
    account_id: str | None,
    start_date: date,
    end_date: date,
    key_ids: Sequence[str] | None,
    reason: str,
) -> dict[str, Any]:
    """A recalculation as the API answers it (the envelope's `data`) and `farebox events recalculate --json` prints."""
    return {
        "dryRun": done.dry_run,
        "accountId": account_id,
        "startDate": start_date.isoformat(),
        "endDate": end_date.isoformat(),
        "virtualKeys": None if key_ids is None else list(key_ids),
        "reason": reason,
        "eventsExamined": done.examined,
        "eventsRepriced": done.repriced,
        "eventsLeftAsRecorded": {
            "unpriced": done.unpriced,
            "costGiven": done.cost_given,
            "noLongerPriced": done.no_longer_priced,
        },
        "previousCost": usd(done.previous_nano),
        "newCost": usd(done.new_nano),
        "difference": usd(done.new_nano - done.previous_nano),
        "accounts": [
            {"accountId": account_id, "eventsRepriced": repriced, "difference": usd(difference)}
            for account_id, (repriced, difference) in sorted(done.by_account.items())
        ],
        "changes": [
            {
                "eventId": change.event_id,
                "accountId": change.account_id,
                "virtualKeyId": change.key_id,
                "timestamp": from_epoch_us(change.timestamp_us).isoformat().replace("+00:00", "Z"),
                "previousCost": usd(change.previous_nano),
                "newCost": usd(change.new_nano),
                "difference": usd(change.new_nano - change.previous_nano),
            }
            for change in done.changes
        ],
        "changesListed": f"the first {MAX_CHANGES_SHOWN}" if done.repriced > MAX_CHANGES_SHOWN else "all",
    }
