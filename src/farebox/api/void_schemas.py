"""The bodies of `POST /api/admin/events/{event_id}/void`, and how a void is presented (API, CLI, webhooks alike)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from farebox.core.owners import NAME_PATTERN
from farebox.ledger.adjustments import MAX_REASON, Void, void_record

__all__ = ["VoidIn", "VoidOut", "present_void"]


class VoidIn(BaseModel):
    """Why the event is voided: kept with the void for the audit trail."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[
        str,
        StringConstraints(min_length=1, max_length=MAX_REASON),
        Field(json_schema_extra={"pattern": NAME_PATTERN}, description="Why; not blank (surrounding blanks dropped)."),
    ]


class VoidOut(BaseModel):
    """A void: the voided event's attribution and its amounts negated, why, who and when."""

    id: str
    event_id: str
    account_id: str
    key_id: str | None
    member_id: str | None
    event_timestamp: str = Field(description="When the voided usage happened: the hour and periods it is netted in.")
    reason: str
    voided_at: str
    voided_by: str = Field(description="Who voided it: `master` (the master key), `member` (a member's key) or `cli`.")
    voided_by_member_id: str | None = Field(description="The member who voided it, when `voided_by` is `member`.")
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    characters: int
    seconds: str
    quantity: str
    cost_usd: str = Field(description="The voided event's cost, negated, in decimal USD (`-0.006`).")


def present_void(void: Void) -> VoidOut:
    """The API shape of a void (the data of its `usage.voided` webhook, too)."""
    return VoidOut.model_validate(void_record(void))
