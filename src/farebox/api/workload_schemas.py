"""The body of `PUT /api/admin/accounts/{account_id}/workloads/{workload_id}`, and how a workload is presented
(API and CLI alike)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from farebox.core.owners import NAME_PATTERN
from farebox.ledger.workloads import Workload, WorkloadKind

__all__ = ["WorkloadIn", "WorkloadOut"]


class WorkloadIn(BaseModel):
    """A workload's name and kind."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN, description="Display name.")
    kind: WorkloadKind = Field(WorkloadKind.AGENT, description="`agent` (the default) or `plain_vm`.")


class WorkloadOut(BaseModel):
    """A registered agent or plain VM."""

    id: str = Field(description="What its usage events carry in `agent_id`.")
    account_id: str
    kind: WorkloadKind
    name: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, workload: Workload) -> WorkloadOut:
        return cls(
            id=workload.id,
            account_id=workload.account_id,
            kind=workload.kind,
            name=workload.name,
            created_at=workload.created_at,
            updated_at=workload.updated_at,
        )
