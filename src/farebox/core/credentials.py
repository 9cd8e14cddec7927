"""Members' personal API tokens: the credential for the admin API, separate from proxy keys.

A virtual key calls models and reads its own usage; a member token does admin work with its member's
role; the master key is the operator. Each credential does one job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from farebox.core.owners import KeyStatus

__all__ = ["MemberToken"]


@dataclass(frozen=True, slots=True)
class MemberToken:
    """A member's personal API token for the admin API; it acts with the member's current role.

    Like a key's, its secret is shown once at creation and only its hash is kept.
    """

    id: str
    account_id: str
    member_id: str
    name: str
    display_prefix: str
    """The start of the secret, safe to show (e.g. `fbx_mt_Ab3dE9…`)."""
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    """When the token last authenticated a request (to the minute)."""
    created_at: datetime

    def status(self, now: datetime) -> KeyStatus:
        """Revoked (for good), expired (at or after `expires_at`), or active."""
        if self.revoked_at is not None:
            return KeyStatus.REVOKED
        if self.expires_at is not None and now >= self.expires_at:
            return KeyStatus.EXPIRED
        return KeyStatus.ACTIVE
