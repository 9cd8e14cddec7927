"""The demo month's usage events, built hour by hour in time order by the metering layer's own factory.

Every event is an `Attribution` (the key's, or the account's for VM hours) and an `Outcome` priced by
`UsageEvents.build`, as the proxy and `POST /api/events` build theirs: LLM calls as proxied requests, voice and
compute as ingested events. One `random.Random(seed)` draws everything in a fixed order, so a seed gives the
same events (ids aside: they are unique per run).
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from math import exp, log
from typing import Any
from zoneinfo import ZoneInfo

from farebox.core.events import MICRO, Axis, Status, UsageEvent
from farebox.core.pricing import Usage
from farebox.demo.cast import LEAKED_KEY, RUNAWAY_KEY, AccountSpec, KeySpec, ModelSpec, WorkloadSpec, model_spec
from farebox.demo.rhythm import HOUR, Window, allocate, hourly_weights, local_hour_at, vm_stretches
from farebox.metering import Attribution, Outcome, PriceTarget, UsageEvents

__all__ = ["Budget", "BoundAccount", "BoundKey", "Incident", "Tally", "Traffic"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR_US = HOUR * MICRO
_ERROR_RATE = 0.012
_ERRORS = {
    "openai": ((429, "rate_limit_exceeded"), (500, "server_error")),
    "anthropic": ((429, "rate_limit_error"), (529, "overloaded_error")),
    "google": ((429, "RESOURCE_EXHAUSTED"), (503, "UNAVAILABLE")),
}
_OTHER_ERRORS = ((429, "http_429"), (502, "http_502"))
_MAX_INPUT = 150_000
_MAX_OUTPUT = 16_000
_SPIKE_MODELS = (("claude-opus-4-1", 0.7), ("gpt-4o", 0.3))
_SPIKE_CLIENTS = 24
_SPIKE_DAY, _SPIKE_HOUR = 0.6, 3
"""The leaked key's hour: 03:00 local, three fifths into the window."""
_RUNAWAY_DAY, _RUNAWAY_HOURS = 0.8, (1, 23)
_RUNAWAY_SIZE = 4.0
"""The runaway script sends prompts this many times the model's usual size."""


@dataclass(frozen=True, slots=True)
class BoundKey:
    """A demo key as the directory created it."""

    spec: KeySpec
    key_id: str
    member_id: str
    attribution: Attribution


@dataclass(frozen=True, slots=True)
class BoundAccount:
    """A demo account as the directory created it, with its keys and its workloads' ids."""

    spec: AccountSpec
    account_id: str
    keys: tuple[BoundKey, ...]
    workload_ids: dict[str, str]
    """Workload name -> id."""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.spec.timezone)

    def key(self, name: str) -> BoundKey:
        return next(key for key in self.keys if key.spec.name == name)


@dataclass(frozen=True, slots=True)
class Budget:
    """How the month's events split: the rest of `total` after voice, compute and the two incidents is LLM."""

    total: int
    voice: int
    spike: int
    runaway: int
    chunks: int
    """Events each running or paused stretch of a VM is cut into."""
    compute: int

    @property
    def llm(self) -> int:
        return self.total - self.voice - self.spike - self.runaway - self.compute

    @classmethod
    def of(cls, total: int, *, stretches: int) -> Budget:
        """About 6% voice, 2% compute, 1.5% in the leaked key's hour and 3% on the runaway day."""
        chunks = max(1, round(total * 0.02) // max(stretches, 1))
        return cls(total, round(total * 0.06), round(total * 0.015), round(total * 0.03), chunks, chunks * stretches)


@dataclass(slots=True)
class Incident:
    """The leaked key's hour or the runaway day: where and when, and what it cost."""

    account_id: str
    key_id: str
    start: datetime
    end: datetime
    events: int = 0
    cost_nano: int = 0


@dataclass(slots=True)
class Tally:
    """What was generated, counted as it is built, to check the ledger against and to set caps from."""

    events: dict[Axis, int] = field(default_factory=lambda: dict.fromkeys(Axis, 0))
    cost_nano: dict[Axis, int] = field(default_factory=lambda: dict.fromkeys(Axis, 0))
    last_month_nano: dict[str, int] = field(default_factory=dict)
    """Key id -> what it spent in its account's calendar month of the window's last day (`Window.last_month`)."""


@dataclass(frozen=True, slots=True)
class _Model:
    spec: ModelSpec
    target: PriceTarget
    mu_in: float
    mu_out: float
    errors: tuple[tuple[int, str], ...]

    @classmethod
    def of(cls, name: str) -> _Model:
        spec = model_spec(name)
        target = PriceTarget(spec.provider, spec.model)
        mu_out = log(spec.output_tokens) if spec.output_tokens else 0.0
        return cls(spec, target, log(max(spec.input_tokens, 1)), mu_out, _ERRORS.get(spec.provider, _OTHER_ERRORS))


class _Choice:
    """Weighted choice by one draw: `pick(rng)`."""

    def __init__(self, items: Sequence[Any], weights: Sequence[float]):
        self.items = list(items)
        self.cum = list(accumulate(weights))

    def pick(self, rng: random.Random) -> Any:
        # random() < 1, so the draw is below the last running sum and bisect stays within the items.
        return self.items[bisect(self.cum, rng.random() * self.cum[-1])]


def _hour_of(window: Window, epoch_s: int) -> int:
    return min(max((epoch_s - window.start_s) // HOUR, 0), window.hours - 1)


class Traffic:
    """The month's events for the created accounts, in batches in time order (`batches`), and what they cost."""

    def __init__(
        self, accounts: Sequence[BoundAccount], *, window: Window, total: int, seed: int, run: str, events: UsageEvents
    ):
        self._rng = rng = random.Random(seed)
        self._window = window
        self._events = events
        self._run = run
        self._next = 0
        self.tally = Tally()
        self._accounts = list(accounts)
        self._keys = [_Choice(a.keys, [k.spec.weight for k in a.keys]) for a in accounts]
        self._models = {
            k.key_id: _Choice([_Model.of(m) for m, _ in k.spec.models], [w for _, w in k.spec.models])
            for a in accounts
            for k in a.keys
        }
        self._voices = [
            _Choice(
                [(k, _Model.of(m)) for k in a.keys for m, _ in k.spec.voice],
                [w for k in a.keys for _, w in k.spec.voice],
            )
            if any(k.spec.voice for k in a.keys)
            else None
            for a in accounts
        ]
        self._months = {a.account_id: window.last_month(a.tz) for a in accounts}
        self._stretches = [
            [(a, workload, stretch) for stretch in vm_stretches(workload, window, a.tz)]
            for a in accounts
            for workload in a.spec.workloads
        ]
        self.budget = budget = Budget.of(total, stretches=sum(len(s) for s in self._stretches))
        weights = [hourly_weights(window, a.tz, rng) for a in accounts]
        llm = allocate(budget.llm, [a.spec.share for a in accounts])
        voice = allocate(budget.voice, [a.spec.voice_share for a in accounts])
        self._llm_hours = [allocate(n, w) for n, w in zip(llm, weights, strict=True)]
        self._voice_hours = [allocate(n, w) for n, w in zip(voice, weights, strict=True)]
        self.leak, self._leak_hours = self._spike(budget.spike)
        self.runaway, self._runaway_hours = self._runaway(budget.runaway)
        self._spike_clients = self._clients(self._incident_account(LEAKED_KEY).key(LEAKED_KEY))
        self._spike_models = _Choice([_Model.of(m) for m, _ in _SPIKE_MODELS], [w for _, w in _SPIKE_MODELS])

    # The two incidents

    def _incident_account(self, key_name: str) -> BoundAccount:
        return next(a for a in self._accounts if any(k.spec.name == key_name for k in a.keys))

    def _spike(self, count: int) -> tuple[Incident, dict[int, int]]:
        account = self._incident_account(LEAKED_KEY)
        days = list(self._window.local_days(account.tz))
        day = days[min(int(len(days) * _SPIKE_DAY), len(days) - 1)]
        hour = _hour_of(self._window, local_hour_at(day, _SPIKE_HOUR, account.tz))
        start = self._window.start + timedelta(hours=hour)
        incident = Incident(account.account_id, account.key(LEAKED_KEY).key_id, start, start + timedelta(hours=1))
        return incident, {hour: count}

    def _runaway(self, count: int) -> tuple[Incident, dict[int, int]]:
        account = self._incident_account(RUNAWAY_KEY)
        days = list(self._window.local_days(account.tz))
        day = days[min(int(len(days) * _RUNAWAY_DAY), len(days) - 1)]
        first = _hour_of(self._window, local_hour_at(day, _RUNAWAY_HOURS[0], account.tz))
        last = _hour_of(self._window, local_hour_at(day, _RUNAWAY_HOURS[1], account.tz) - 1)
        hours = range(first, last + 1)
        start, end = self._window.start + timedelta(hours=first), self._window.start + timedelta(hours=last + 1)
        incident = Incident(account.account_id, account.key(RUNAWAY_KEY).key_id, start, end)
        return incident, dict(zip(hours, allocate(count, [1.0] * len(hours)), strict=True))

    def _clients(self, key: BoundKey) -> list[Attribution]:
        """The apps and addresses the leaked secret is used from: none of them the key's own."""
        rng = self._rng
        return [
            replace(
                key.attribution,
                app=f"unknown-{rng.getrandbits(24):06x}",
                metadata={"client_ip": f"203.0.113.{rng.randrange(1, 255)}", "user_agent": "python-requests/2.31"},
            )
            for _ in range(_SPIKE_CLIENTS)
        ]

    # Building events

    def _build(self, us: int, attribution: Attribution, outcome: Outcome, *, source: str = "proxy") -> UsageEvent:
        self._next += 1
        at = _EPOCH + timedelta(microseconds=us)
        event = self._events.build(
            f"demo-{self._run}-{self._next}", at=at, attribution=attribution, outcome=outcome, source=source
        )
        tally, axis, cost = self.tally, outcome.axis, event.cost_nano
        tally.events[axis] += 1
        tally.cost_nano[axis] += cost
        key_id = attribution.key_id
        month = self._months[attribution.account_id]
        if key_id is not None and month[0] <= us < month[1]:
            tally.last_month_nano[key_id] = tally.last_month_nano.get(key_id, 0) + cost
        return event

    def _llm(self, us: int, attribution: Attribution, model: _Model, *, size: float = 1.0) -> UsageEvent:
        rng, spec = self._rng, model.spec
        if rng.random() < _ERROR_RATE:
            http_status, error_type = model.errors[rng.random() < 0.3]
            latency = int(rng.uniform(50, 900))
            outcome = Outcome(
                spec.provider,
                spec.model,
                model.target,
                spec.operation,
                Axis.LLM,
                Usage(),
                status=Status.ERROR,
                http_status=http_status,
                error_type=error_type,
                latency_ms=latency,
            )
            return self._build(us, attribution, outcome)
        tokens_in = min(int(exp(rng.gauss(model.mu_in, 0.8)) * size) + 1, _MAX_INPUT)
        tokens_out = min(int(exp(rng.gauss(model.mu_out, 0.6))) + 1, _MAX_OUTPUT) if model.mu_out else 0
        cached = cache_write = 0
        if spec.cached_share and rng.random() < spec.cached_share:
            cached = int(tokens_in * rng.uniform(0.3, 0.9))
        elif spec.provider == "anthropic" and rng.random() < 0.1:
            cache_write = tokens_in // 2
        usage = Usage(tokens_in, tokens_out, cached, cache_write, int(tokens_out * spec.reasoning_share))
        latency = int(
            spec.latency_ms * exp(rng.gauss(0.0, 0.35)) * (0.6 + 0.4 * min(tokens_out / (spec.output_tokens or 1), 4))
        )
        streamed = spec.operation != "embeddings" and rng.random() < 0.45
        ttft = int(latency * rng.uniform(0.08, 0.3)) if streamed else None
        outcome = Outcome(
            spec.provider,
            spec.model,
            model.target,
            spec.operation,
            Axis.LLM,
            usage,
            http_status=200,
            latency_ms=latency,
            ttft_ms=ttft,
            streamed=streamed,
        )
        return self._build(us, attribution, outcome)

    def _voice(self, us: int, key: BoundKey, model: _Model) -> UsageEvent:
        rng, spec = self._rng, model.spec
        if spec.operation == "audio.transcriptions":
            usage = Usage(seconds=Decimal(int(rng.lognormvariate(log(45), 0.7)) + 1))
        else:
            usage = Usage(characters=int(rng.lognormvariate(model.mu_in, 0.7)) + 1)
        latency = int(spec.latency_ms * rng.lognormvariate(0.0, 0.3))
        outcome = Outcome(
            spec.provider,
            spec.model,
            model.target,
            spec.operation,
            Axis.VOICE,
            usage,
            http_status=200,
            latency_ms=latency,
        )
        return self._build(us, key.attribution, outcome, source="ingest")

    def _compute(
        self, account: BoundAccount, workload: WorkloadSpec, start: int, seconds: int, *, running: bool
    ) -> UsageEvent:
        workload_id = account.workload_ids[workload.name]
        attribution = Attribution(account.account_id, None, None, agent_id=workload_id)
        operation = "compute.vm.running" if running else "compute.vm.paused"
        target = PriceTarget(None, workload.size)
        outcome = Outcome(None, workload.size, target, operation, Axis.COMPUTE, Usage(seconds=Decimal(seconds)))
        return self._build(start * MICRO, attribution, outcome, source="ingest")

    def _compute_by_hour(self) -> dict[int, list[tuple[BoundAccount, WorkloadSpec, int, int, bool]]]:
        """Each stretch of each VM cut into `budget.chunks` events (whole seconds), by the UTC hour they start in."""
        by_hour: dict[int, list[tuple[BoundAccount, WorkloadSpec, int, int, bool]]] = {}
        chunks = self.budget.chunks
        for stretches in self._stretches:
            for account, workload, stretch in stretches:
                length = stretch.end - stretch.start
                marks = [stretch.start + length * i // chunks for i in range(chunks + 1)]
                for begin, end in zip(marks, marks[1:], strict=False):
                    if end > begin:
                        item = (account, workload, begin, end - begin, stretch.running)
                        by_hour.setdefault(_hour_of(self._window, begin), []).append(item)
        return by_hour

    def _hour(
        self, index: int, compute: Sequence[tuple[BoundAccount, WorkloadSpec, int, int, bool]]
    ) -> list[UsageEvent]:
        """The events of the window's `index`th hour."""
        rng, out = self._rng, []
        base = (self._window.start_s + index * HOUR) * MICRO
        for keys, llm, voice, voices in zip(self._keys, self._llm_hours, self._voice_hours, self._voices, strict=True):
            for _ in range(llm[index]):
                key = keys.pick(rng)
                out.append(
                    self._llm(base + rng.randrange(_HOUR_US), key.attribution, self._models[key.key_id].pick(rng))
                )
            for _ in range(voice[index]):
                assert voices is not None, "an account without voice keys has no voice share"
                key, model = voices.pick(rng)
                out.append(self._voice(base + rng.randrange(_HOUR_US), key, model))
        for account, workload, start, seconds, running in compute:
            out.append(self._compute(account, workload, start, seconds, running=running))
        out.extend(self._incident(self.leak, self._leak_hours.get(index, 0), base))
        out.extend(self._incident(self.runaway, self._runaway_hours.get(index, 0), base))
        return out

    def _incident(self, incident: Incident, count: int, base: int) -> Iterator[UsageEvent]:
        rng = self._rng
        key = self._key(incident.key_id)
        for _ in range(count):
            us = base + rng.randrange(_HOUR_US)
            if incident is self.leak:
                event = self._llm(us, rng.choice(self._spike_clients), self._spike_models.pick(rng), size=2.0)
            else:
                event = self._llm(us, key.attribution, self._models[key.key_id].items[0], size=_RUNAWAY_SIZE)
            incident.events += 1
            incident.cost_nano += event.cost_nano
            yield event

    def _key(self, key_id: str) -> BoundKey:
        return next(k for a in self._accounts for k in a.keys if k.key_id == key_id)

    def batches(self, size: int) -> Iterator[list[UsageEvent]]:
        """Every event of the window, hour by hour, in lists of about `size` (an hour is never split)."""
        compute = self._compute_by_hour()
        batch: list[UsageEvent] = []
        for index in range(self._window.hours):
            batch.extend(self._hour(index, compute.get(index, ())))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch
