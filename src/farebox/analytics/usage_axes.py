"""`GET /api/usage`'s three axes, presented from one engine query's rows.

The route runs one query (`usage_query`): the month's days x account x axis x agent x model x operation, under the
caller's access. This module sorts its rows into the axes:

- compute: a row whose agent id is registered as a `plain_vm` workload of its account is that plain VM's; every
  other compute row is an agent's, and compute naming no agent is one agent entry with a null id and name, so the
  agents and plain VMs always add up to the axis total. `compute.vm.paused` is paused time; any other operation
  (`compute.vm.running`, `compute.vm`, ...) is running time.
- llm and voice: by agent and by canonical model; `model` filters the LLM axis and `voice_model` the voice axis,
  each matching the model as called or its canonical model, as the engine's model filter does.

Money stays integer nano-USD until it is shown: cents are nano-USD / 10^7, exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Generic, TypeVar

from farebox.analytics.calendar import Grain, Window
from farebox.analytics.engine import Dimension, Filters, Measure, Query, Row
from farebox.analytics.usage_schemas import (
    ComputeAgent,
    ComputeAxis,
    ComputeDay,
    LlmAgent,
    LlmAxis,
    LlmDay,
    LlmModel,
    PlainVm,
    VoiceAgent,
    VoiceAxis,
    VoiceDay,
    VoiceModel,
)
from farebox.core.events import Axis
from farebox.core.money import nano_to_cents
from farebox.ledger.workloads import Workload, WorkloadKind

__all__ = ["Axes", "ModelFilters", "present", "usage_query"]

PAUSED = "compute.vm.paused"
"""The operation of paused VM time; any other compute operation is running time."""

_MEASURES = (
    Measure.COST_NANO,
    Measure.REQUESTS,
    Measure.SECONDS_MICRO,
    Measure.CHARACTERS,
    Measure.INPUT_TOKENS,
    Measure.OUTPUT_TOKENS,
)
_GROUP_BY = (
    Dimension.ACCOUNT,
    Dimension.AXIS,
    Dimension.AGENT,
    Dimension.MODEL,
    Dimension.CANONICAL_MODEL,
    Dimension.OPERATION,
)
_MICRO_PER_HOUR = Decimal(3_600_000_000)
_HOURS_PLACES = Decimal("1E-9")

K = TypeVar("K")


def usage_query(window: Window, *, account_id: str | None, agent_id: str | None, local_days: bool) -> Query:
    """The one engine query behind the three axes: the window's days, `agent_id` alone when given."""
    filters = Filters({Dimension.AGENT: (agent_id,)} if agent_id is not None else {})
    return Query(
        window,
        _MEASURES,
        group_by=_GROUP_BY,
        grain=Grain.DAY,
        filters=filters,
        account_id=account_id,
        local_days=local_days,
    )


@dataclass(slots=True)
class _Sums:
    """Amounts of some usage: nano-USD, requests, microseconds, characters, tokens."""

    cost_nano: int = 0
    requests: int = 0
    seconds_micro: int = 0
    characters: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, other: _Sums) -> None:
        self.cost_nano += other.cost_nano
        self.requests += other.requests
        self.seconds_micro += other.seconds_micro
        self.characters += other.characters
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens

    @property
    def cents(self) -> Decimal:
        return nano_to_cents(self.cost_nano)

    @property
    def seconds(self) -> Decimal:
        return Decimal(self.seconds_micro).scaleb(-6)

    @property
    def hours(self) -> Decimal:
        return (Decimal(self.seconds_micro) / _MICRO_PER_HOUR).quantize(_HOURS_PLACES, rounding=ROUND_HALF_EVEN)


def _total(parts: Iterable[_Sums]) -> _Sums:
    total = _Sums()
    for part in parts:
        total.add(part)
    return total


@dataclass(frozen=True, slots=True)
class ModelFilters:
    """The models the LLM and voice axes are limited to (None: every model)."""

    llm: str | None = None
    voice: str | None = None


@dataclass(frozen=True, slots=True)
class Axes:
    """The three axes of one month."""

    compute: ComputeAxis
    llm: LlmAxis
    voice: VoiceAxis


_AgentKey = tuple[str, str]
"""(account id, agent id); '' for none."""
_ComputeKey = tuple[str, _AgentKey]
"""(`running`, `paused` or `vm`, the agent or plain VM)."""


class _Axis(Generic[K]):
    """Sums of one axis per day and key (an agent, a model, a plain VM)."""

    def __init__(self) -> None:
        self.days: dict[date, dict[K, _Sums]] = defaultdict(lambda: defaultdict(_Sums))

    def add(self, day: date, key: K, sums: _Sums) -> None:
        self.days[day][key].add(sums)

    def on(self, day: date) -> Mapping[K, _Sums]:
        return self.days.get(day, {})

    def month(self) -> dict[K, _Sums]:
        found: dict[K, _Sums] = defaultdict(_Sums)
        for day in self.days.values():
            for key, sums in day.items():
                found[key].add(sums)
        return found


def _ranked(found: Mapping[K, _Sums]) -> list[tuple[K, _Sums]]:
    """By descending cost, then by key, so that equal costs keep one order."""
    return sorted(found.items(), key=lambda item: (-item[1].cost_nano, repr(item[0])))


@dataclass(frozen=True, slots=True)
class _Names:
    workloads: Mapping[_AgentKey, Workload]

    def plain_vm(self, key: _AgentKey) -> bool:
        found = self.workloads.get(key)
        return found is not None and found.kind is WorkloadKind.PLAIN_VM

    def name(self, key: _AgentKey) -> str:
        found = self.workloads.get(key)
        return key[1] if found is None else found.name

    def agent(self, key: _AgentKey) -> tuple[str, str | None, str | None]:
        """(account id, agent id, agent name); the id and name are None for usage naming no agent."""
        return (key[0], None, None) if not key[1] else (key[0], key[1], self.name(key))


@dataclass(slots=True)
class _Split:
    """The LLM or voice axis: by agent, and by model."""

    agents: _Axis[_AgentKey]
    models: _Axis[str]

    def add(self, day: date, agent: _AgentKey, model: str, sums: _Sums) -> None:
        self.agents.add(day, agent, sums)
        self.models.add(day, model, sums)


def present(
    rows: Iterable[Row],
    *,
    days: list[date],
    workloads: Mapping[tuple[str, str], Workload],
    models: ModelFilters,
    has_keys: bool,
) -> Axes:
    """The axes of `usage_query`'s rows, every day of `days` present, named by the accounts' `workloads`."""
    names = _Names(workloads)
    compute: _Axis[_ComputeKey] = _Axis()
    llm, voice = _Split(_Axis(), _Axis()), _Split(_Axis(), _Axis())
    has_voice = False
    for row in rows:
        assert isinstance(row.at, date)
        account_id, axis, agent_id, model, canonical, operation = row.dimensions
        sums = _Sums(*row.measures)
        agent: _AgentKey = (account_id, agent_id)
        if axis == Axis.COMPUTE:
            kind = "vm" if names.plain_vm(agent) else "paused" if operation == PAUSED else "running"
            compute.add(row.at, (kind, agent), sums)
        elif axis == Axis.LLM and models.llm in (None, model, canonical):
            llm.add(row.at, agent, canonical, sums)
        elif axis == Axis.VOICE:
            has_voice = True
            if models.voice in (None, model, canonical):
                voice.add(row.at, agent, canonical, sums)
    return Axes(
        _compute(compute, days, names),
        _llm(llm, days, names, has_keys=has_keys),
        _voice(voice, days, names, has_voice=has_voice),
    )


def _compute_parts(found: Mapping[_ComputeKey, _Sums], names: _Names) -> tuple[list[ComputeAgent], list[PlainVm]]:
    parts: dict[str, dict[_AgentKey, _Sums]] = {"running": defaultdict(_Sums), "paused": defaultdict(_Sums), "vm": {}}
    for (kind, agent), sums in found.items():
        parts[kind][agent] = sums
    running, paused = parts["running"], parts["paused"]
    agents = {agent: _total((running[agent], paused[agent])) for agent in running.keys() | paused.keys()}
    computed = []
    for agent, total in _ranked(agents):
        account_id, agent_id, agent_name = names.agent(agent)
        computed.append(
            ComputeAgent(
                account_id=account_id,
                agent_id=agent_id,
                agent_name=agent_name,
                running_cents=running[agent].cents,
                paused_cents=paused[agent].cents,
                total_cents=total.cents,
                hours=total.hours,
                running_hours=running[agent].hours,
                paused_hours=paused[agent].hours,
                seconds=total.seconds,
            )
        )
    vms = [
        PlainVm(
            account_id=vm[0],
            plain_vm_id=vm[1],
            plain_vm_name=names.name(vm),
            cost_cents=sums.cents,
            hours=sums.hours,
            seconds=sums.seconds,
        )
        for vm, sums in _ranked(parts["vm"])
    ]
    return computed, vms


def _compute_day(day: date, found: Mapping[_ComputeKey, _Sums], names: _Names) -> ComputeDay:
    agents, vms = _compute_parts(found, names)
    agent_cents = sum((agent.total_cents for agent in agents), Decimal(0))
    vm_cents = sum((vm.cost_cents for vm in vms), Decimal(0))
    return ComputeDay(
        date=day,
        agent_cents=agent_cents,
        plain_vm_cents=vm_cents,
        total_cents=agent_cents + vm_cents,
        agents=agents,
        plain_vms=vms,
    )


def _compute(axis: _Axis[_ComputeKey], days: list[date], names: _Names) -> ComputeAxis:
    month = _compute_day(days[0], axis.month(), names)
    return ComputeAxis(
        total_cents=month.total_cents,
        agent_cents=month.agent_cents,
        plain_vm_cents=month.plain_vm_cents,
        daily=[_compute_day(day, axis.on(day), names) for day in days],
        agents=month.agents,
        plain_vms=month.plain_vms,
    )


def _llm_models(models: Mapping[str, _Sums]) -> list[LlmModel]:
    return [
        LlmModel(
            model=model,
            total_cents=sums.cents,
            requests=sums.requests,
            input_tokens=sums.input_tokens,
            output_tokens=sums.output_tokens,
        )
        for model, sums in _ranked(models)
    ]


def _llm_agent(names: _Names, agent: _AgentKey, sums: _Sums) -> LlmAgent:
    account_id, agent_id, agent_name = names.agent(agent)
    return LlmAgent(
        account_id=account_id,
        agent_id=agent_id,
        agent_name=agent_name,
        total_cents=sums.cents,
        requests=sums.requests,
        input_tokens=sums.input_tokens,
        output_tokens=sums.output_tokens,
    )


def _llm(axis: _Split, days: list[date], names: _Names, *, has_keys: bool) -> LlmAxis:
    daily = []
    for day in days:
        models = axis.models.on(day)
        total = _total(models.values())
        daily.append(
            LlmDay(
                date=day,
                total_cents=total.cents,
                requests=total.requests,
                input_tokens=total.input_tokens,
                output_tokens=total.output_tokens,
                models=_llm_models(models),
            )
        )
    models = axis.models.month()
    total = _total(models.values())
    return LlmAxis(
        total_cents=total.cents,
        requests=total.requests,
        input_tokens=total.input_tokens,
        output_tokens=total.output_tokens,
        daily=daily,
        agents=[_llm_agent(names, agent, sums) for agent, sums in _ranked(axis.agents.month())],
        models=_llm_models(models),
        has_keys=has_keys,
    )


def _voice_models(models: Mapping[str, _Sums]) -> list[VoiceModel]:
    return [
        VoiceModel(
            model=model,
            total_cents=sums.cents,
            characters=sums.characters,
            seconds=sums.seconds,
            requests=sums.requests,
        )
        for model, sums in _ranked(models)
    ]


def _voice_agent(names: _Names, agent: _AgentKey, sums: _Sums) -> VoiceAgent:
    account_id, agent_id, agent_name = names.agent(agent)
    return VoiceAgent(
        account_id=account_id,
        agent_id=agent_id,
        agent_name=agent_name,
        total_cents=sums.cents,
        characters=sums.characters,
        seconds=sums.seconds,
        requests=sums.requests,
    )


def _voice(axis: _Split, days: list[date], names: _Names, *, has_voice: bool) -> VoiceAxis:
    daily = []
    for day in days:
        models = axis.models.on(day)
        total = _total(models.values())
        daily.append(
            VoiceDay(
                date=day,
                total_cents=total.cents,
                characters=total.characters,
                seconds=total.seconds,
                requests=total.requests,
                models=_voice_models(models),
            )
        )
    models = axis.models.month()
    total = _total(models.values())
    return VoiceAxis(
        total_cents=total.cents,
        total_characters=total.characters,
        total_seconds=total.seconds,
        requests=total.requests,
        daily=daily,
        agents=[_voice_agent(names, agent, sums) for agent, sums in _ranked(axis.agents.month())],
        models=_voice_models(models),
        has_voice_usage=has_voice,
    )
