"""The shape `GET /api/usage` answers (seed 000): three independent axes, compute, LLM and voice.

Field names are the seed's (camelCase). Every `*Cents` is a JSON number holding the exact amount (nano-USD / 10^7,
continuous, never floored or rounded), written by `farebox.core.json_numbers`; `seconds` are exact too, and `hours`
are seconds / 3,600 to 9 decimal places (half to even). `agentId` and `agentName` are null for usage that names no
agent; an id used in events but not registered as a workload is an agent named by its id.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

__all__ = [
    "ComputeAgent",
    "ComputeAxis",
    "ComputeDay",
    "LlmAgent",
    "LlmAxis",
    "LlmDay",
    "LlmModel",
    "PlainVm",
    "UsageOut",
    "VoiceAgent",
    "VoiceAxis",
    "VoiceDay",
    "VoiceModel",
]

Cents = Annotated[
    Decimal,
    WithJsonSchema({"type": "number", "description": "Cents, exact (nano-USD / 10^7), never floored."}),
]
Hours = Annotated[
    Decimal, WithJsonSchema({"type": "number", "minimum": 0, "description": "Hours, to 9 decimal places."})
]
Seconds = Annotated[Decimal, WithJsonSchema({"type": "number", "minimum": 0, "description": "Seconds, exact."})]
Count = Annotated[int, Field(ge=0)]


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class _Agent(_Out):
    account_id: str = Field(description="The account the agent belongs to (several in the operator view).")
    agent_id: str | None = Field(description="The id events carry in `agent_id`; null for usage naming no agent.")
    agent_name: str | None = Field(description="Its registered name, else its id; null with `agentId`.")


class ComputeAgent(_Agent):
    """An agent's compute: running and paused VM time, priced per hour."""

    running_cents: Cents
    paused_cents: Cents
    total_cents: Cents
    hours: Hours
    running_hours: Hours
    paused_hours: Hours
    seconds: Seconds


class PlainVm(_Out):
    """A plain VM's compute (a workload registered as `plain_vm`)."""

    account_id: str
    plain_vm_id: str
    plain_vm_name: str
    cost_cents: Cents
    hours: Hours
    seconds: Seconds


class ComputeDay(_Out):
    """One local day of compute."""

    date: date
    agent_cents: Cents
    plain_vm_cents: Cents
    total_cents: Cents
    agents: list[ComputeAgent]
    plain_vms: list[PlainVm]


class ComputeAxis(_Out):
    """Compute (axis `compute`): agents' and plain VMs' VM time."""

    total_cents: Cents
    agent_cents: Cents
    plain_vm_cents: Cents
    daily: list[ComputeDay] = Field(description="Every day of the month, days without usage included.")
    agents: list[ComputeAgent] = Field(description="The month's totals per agent, by descending cost.")
    plain_vms: list[PlainVm] = Field(description="The month's totals per plain VM, by descending cost.")


class LlmModel(_Out):
    """One model's LLM usage (the canonical model; `model` filters by it or by the name requests used)."""

    model: str
    total_cents: Cents
    requests: Count
    input_tokens: Count
    output_tokens: Count


class LlmAgent(_Agent):
    """One agent's LLM usage."""

    total_cents: Cents
    requests: Count
    input_tokens: Count
    output_tokens: Count


class LlmDay(_Out):
    """One local day of LLM usage, by model."""

    date: date
    total_cents: Cents
    requests: Count
    input_tokens: Count
    output_tokens: Count
    models: list[LlmModel]


class LlmAxis(_Out):
    """LLM usage (axis `llm`)."""

    total_cents: Cents
    requests: Count
    input_tokens: Count
    output_tokens: Count
    daily: list[LlmDay] = Field(description="Every day of the month, days without usage included.")
    agents: list[LlmAgent]
    models: list[LlmModel]
    has_keys: bool = Field(description="Whether the account has at least one virtual key (any account, operator view).")


class VoiceModel(_Out):
    """One voice model's usage."""

    model: str
    total_cents: Cents
    characters: Count
    seconds: Seconds
    requests: Count


class VoiceAgent(_Agent):
    """One agent's voice usage."""

    total_cents: Cents
    characters: Count
    seconds: Seconds
    requests: Count


class VoiceDay(_Out):
    """One local day of voice usage, by model."""

    date: date
    total_cents: Cents
    characters: Count
    seconds: Seconds
    requests: Count
    models: list[VoiceModel]


class VoiceAxis(_Out):
    """Voice usage (axis `voice`): speech by characters, transcription by seconds."""

    total_cents: Cents
    total_characters: Count
    total_seconds: Seconds
    requests: Count
    daily: list[VoiceDay] = Field(description="Every day of the month, days without usage included.")
    agents: list[VoiceAgent]
    models: list[VoiceModel]
    has_voice_usage: bool = Field(description="Whether there is voice usage this month (before `voiceModel`).")


class UsageOut(_Out):
    """A month of usage on three independent axes."""

    month: str = Field(description="The month, `YYYY-MM`.")
    timezone: str = Field(description="The IANA zone the days are in: the account's (UTC in the operator view).")
    account_id: str | None = Field(description="The account; null in the operator view across accounts.")
    compute: ComputeAxis
    llm: LlmAxis
    voice: VoiceAxis
