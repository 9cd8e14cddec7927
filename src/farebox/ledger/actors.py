"""Who made an audited change to the ledger (a void, a top-up): the master key, a member through its API token, or
the `farebox` CLI. Kept with the change as `actor_kind` and `actor_member_id`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Actor", "ActorKind"]

ActorKind = Literal["master", "member", "cli"]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made an audited change: the master key, a member through its API token, or the `farebox` CLI."""

    kind: ActorKind
    member_id: str | None = None
    """The member, when `kind` is `member`."""
