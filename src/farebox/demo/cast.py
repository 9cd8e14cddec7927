"""Who the demo month is about: its accounts, members, keys, workloads and the models they call.

This is the one place the demo's data model lives. Everything is fixed data except the workloads' ids, which
come from the seed (`workload_ids`), so a seed always names the same agents and VMs.

A workload is an agent or a plain VM: something that runs on a VM by the hour (`compute` events, priced per
hour running or paused by the overrides file). Its id is written in the event's `agent_id`, the one column a
compute event has for who ran; an agent's key carries the same id, so the agent's LLM calls and its VM hours
share it. Each is registered by name and kind (`farebox.ledger.workloads`), so `/api/usage` names it.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from enum import StrEnum

from farebox.core.owners import Plan, Role
from farebox.ledger.workloads import WorkloadKind

__all__ = [
    "CAST",
    "LEAKED_KEY",
    "RUNAWAY_KEY",
    "AccountSpec",
    "CapLevel",
    "KeySpec",
    "MemberSpec",
    "ModelSpec",
    "WorkloadSpec",
    "model_spec",
    "workload_ids",
]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """How one model's requests look: whose it is, and the shape of their usage."""

    provider: str
    model: str
    operation: str
    input_tokens: int
    """The median input of a request (sizes spread log-normally around it); characters for text-to-speech."""
    output_tokens: int
    """The median output of a request; 0 for embeddings and voice."""
    cached_share: float = 0.0
    """Of requests, the share that read part of their prompt from the provider's cache."""
    reasoning_share: float = 0.0
    """Of the output, the share a reasoning model spends thinking."""
    latency_ms: int = 600
    """The median time to answer a request of the median size."""


_MODELS = (
    ModelSpec("openai", "gpt-4o", "chat.completions", 1_800, 350, cached_share=0.3, latency_ms=1_400),
    ModelSpec("openai", "gpt-4o-mini", "chat.completions", 900, 220, cached_share=0.3, latency_ms=700),
    ModelSpec("openai", "gpt-4.1", "chat.completions", 6_000, 600, cached_share=0.4, latency_ms=2_200),
    ModelSpec("openai", "gpt-4.1-mini", "chat.completions", 2_500, 300, cached_share=0.4, latency_ms=900),
    ModelSpec("openai", "gpt-5", "responses", 3_000, 1_200, cached_share=0.3, reasoning_share=0.5, latency_ms=6_000),
    ModelSpec("openai", "o3", "chat.completions", 4_000, 1_500, reasoning_share=0.6, latency_ms=9_000),
    ModelSpec("openai", "text-embedding-3-small", "embeddings", 700, 0, latency_ms=120),
    ModelSpec("anthropic", "claude-sonnet-4-5", "chat.completions", 5_000, 700, cached_share=0.6, latency_ms=3_500),
    ModelSpec("anthropic", "claude-haiku-4-5", "chat.completions", 1_500, 250, cached_share=0.5, latency_ms=800),
    ModelSpec("anthropic", "claude-opus-4-1", "chat.completions", 3_500, 900, latency_ms=7_000),
    ModelSpec("google", "gemini-2.5-flash", "chat.completions", 1_200, 300, cached_share=0.2, latency_ms=900),
    ModelSpec("google", "gemini-2.5-pro", "chat.completions", 8_000, 900, reasoning_share=0.4, latency_ms=7_500),
    ModelSpec("google", "gemini-2.0-flash", "chat.completions", 800, 200, latency_ms=500),
    ModelSpec("mistral", "mistral-large-latest", "chat.completions", 1_500, 400, latency_ms=1_800),
    ModelSpec("deepseek", "deepseek-chat", "chat.completions", 2_000, 500, cached_share=0.5, latency_ms=2_500),
    ModelSpec("openai", "tts-1", "audio.speech", 600, 0, latency_ms=900),
    ModelSpec("elevenlabs", "eleven-turbo", "audio.speech", 450, 0, latency_ms=400),
    ModelSpec("openai", "whisper-1", "audio.transcriptions", 0, 0, latency_ms=2_000),
)
_BY_NAME = {spec.model: spec for spec in _MODELS}


def model_spec(model: str) -> ModelSpec:
    """The spec of one of the demo's models."""
    return _BY_NAME[model]


class CapLevel(StrEnum):
    """How close a key's monthly cap is set to what it spent in the demo's last month."""

    NEAR = "near"
    """85 to 97% used: the cap alerts and the budget views have something to show."""
    COMFORTABLE = "comfortable"
    """40 to 60% used."""


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """An agent or a plain VM, billed by the hour of its VM."""

    name: str
    kind: WorkloadKind
    size: str
    """The VM's model in the price book: `vm-small`, `vm-medium` or `vm-large`."""
    active_hours: tuple[int, int]
    """Local hours [from, to) it runs on a weekday; an agent is paused the rest of the day, a plain VM is off
    (a plain VM of (0, 24) runs around the clock)."""
    weekends: bool = False
    """Whether it runs on Saturdays and Sundays as on weekdays (else an agent stays paused, a plain VM off)."""


@dataclass(frozen=True, slots=True)
class MemberSpec:
    name: str
    email: str
    role: Role


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A virtual key, the member who owns it, and the traffic it carries."""

    name: str
    owner: str
    """The owning member's e-mail."""
    models: tuple[tuple[str, float], ...]
    """The models it calls, each with its share of the key's requests."""
    weight: float
    """The key's share of its account's everyday LLM requests."""
    app: str | None = None
    agent: str | None = None
    """The name of the account's agent workload whose calls go through this key."""
    cap: CapLevel | None = None
    voice: tuple[tuple[str, float], ...] = ()
    """Voice models it calls, each with its share of the account's voice events."""


@dataclass(frozen=True, slots=True)
class AccountSpec:
    name: str
    plan: Plan
    timezone: str
    share: float
    """The account's share of the month's LLM requests."""
    members: tuple[MemberSpec, ...]
    keys: tuple[KeySpec, ...]
    workloads: tuple[WorkloadSpec, ...] = ()
    voice_share: float = 0.0
    """The account's share of the month's voice events."""


LEAKED_KEY = "ci-evals"
"""The quiet key whose secret leaks: for one hour it is hammered from many apps and addresses it never used."""
RUNAWAY_KEY = "nightly-batch"
"""The mostly idle key a script runs away with for one whole day, on one model."""

CAST = (
    AccountSpec(
        "Northwind Analytics",
        Plan.ENTERPRISE,
        "America/New_York",
        0.5,
        members=(
            MemberSpec("Ada Okafor", "ada@northwind.example", Role.OWNER),
            MemberSpec("Ben Carter", "ben@northwind.example", Role.ADMIN),
            MemberSpec("Chloe Diaz", "chloe@northwind.example", Role.BILLING),
            MemberSpec("Dan Evans", "dan@northwind.example", Role.MEMBER),
            MemberSpec("Eve Fischer", "eve@northwind.example", Role.MEMBER),
            MemberSpec("Farah Ghani", "farah@northwind.example", Role.MEMBER),
        ),
        keys=(
            KeySpec(
                "support-chat",
                "dan@northwind.example",
                (("gpt-4o-mini", 0.55), ("gpt-4.1", 0.15), ("claude-haiku-4-5", 0.3)),
                0.34,
                app="support-web",
                cap=CapLevel.NEAR,
            ),
            KeySpec(
                "research-agent",
                "eve@northwind.example",
                (("claude-sonnet-4-5", 0.55), ("o3", 0.15), ("text-embedding-3-small", 0.3)),
                0.24,
                agent="research-agent",
                cap=CapLevel.COMFORTABLE,
            ),
            KeySpec(
                "triage-agent",
                "dan@northwind.example",
                (("gpt-4.1-mini", 0.8), ("gemini-2.5-flash", 0.2)),
                0.12,
                agent="triage-agent",
                cap=CapLevel.NEAR,
            ),
            KeySpec("search-indexer", "ben@northwind.example", (("text-embedding-3-small", 1.0),), 0.12, app="indexer"),
            KeySpec("ops-console", "ada@northwind.example", (("gpt-5", 0.6), ("gemini-2.5-pro", 0.4)), 0.16),
            KeySpec(LEAKED_KEY, "farah@northwind.example", (("gemini-2.5-flash", 1.0),), 0.02, app="ci"),
        ),
        workloads=(
            WorkloadSpec("research-agent", WorkloadKind.AGENT, "vm-medium", (8, 20)),
            WorkloadSpec("triage-agent", WorkloadKind.AGENT, "vm-small", (0, 24), weekends=True),
            WorkloadSpec("build-runner", WorkloadKind.PLAIN_VM, "vm-large", (7, 19)),
            WorkloadSpec("metrics-db", WorkloadKind.PLAIN_VM, "vm-small", (0, 24), weekends=True),
        ),
    ),
    AccountSpec(
        "Chai & Code Studio",
        Plan.PRO,
        "Asia/Kolkata",
        0.25,
        members=(
            MemberSpec("Priya Raman", "priya@chaicode.example", Role.OWNER),
            MemberSpec("Arjun Mehta", "arjun@chaicode.example", Role.ADMIN),
            MemberSpec("Rohan Das", "rohan@chaicode.example", Role.BILLING),
            MemberSpec("Kavya Nair", "kavya@chaicode.example", Role.MEMBER),
        ),
        keys=(
            KeySpec(
                "voice-concierge",
                "kavya@chaicode.example",
                (("gpt-4o-mini", 0.7), ("gemini-2.0-flash", 0.3)),
                0.4,
                agent="voice-concierge",
                cap=CapLevel.NEAR,
                voice=(("tts-1", 0.45), ("eleven-turbo", 0.3), ("whisper-1", 0.25)),
            ),
            KeySpec(
                "mobile-backend",
                "arjun@chaicode.example",
                (("claude-haiku-4-5", 0.4), ("gemini-2.5-flash", 0.35), ("deepseek-chat", 0.25)),
                0.59,
                app="mobile-app",
                cap=CapLevel.COMFORTABLE,
            ),
            KeySpec(RUNAWAY_KEY, "priya@chaicode.example", (("gpt-4.1", 1.0),), 0.01, app="reports-cron"),
        ),
        workloads=(
            WorkloadSpec("voice-concierge", WorkloadKind.AGENT, "vm-small", (9, 23), weekends=True),
            WorkloadSpec("staging-box", WorkloadKind.PLAIN_VM, "vm-medium", (10, 19)),
        ),
        voice_share=0.8,
    ),
    AccountSpec(
        "Fjord Robotics",
        Plan.PRO,
        "Europe/Oslo",
        0.17,
        members=(
            MemberSpec("Ingrid Berg", "ingrid@fjord.example", Role.OWNER),
            MemberSpec("Lars Holm", "lars@fjord.example", Role.MEMBER),
            MemberSpec("Sofie Lund", "sofie@fjord.example", Role.MEMBER),
        ),
        keys=(
            KeySpec(
                "fleet-planner",
                "lars@fjord.example",
                (("claude-sonnet-4-5", 0.6), ("gpt-5", 0.4)),
                0.55,
                agent="fleet-planner",
                cap=CapLevel.COMFORTABLE,
            ),
            KeySpec(
                "docs-bot",
                "sofie@fjord.example",
                (("gemini-2.5-flash", 0.6), ("mistral-large-latest", 0.4)),
                0.45,
                app="docs-site",
                voice=(("tts-1", 1.0),),
            ),
        ),
        workloads=(WorkloadSpec("fleet-planner", WorkloadKind.AGENT, "vm-large", (6, 22)),),
        voice_share=0.2,
    ),
    AccountSpec(
        "Tiny Tools",
        Plan.FREE,
        "America/Los_Angeles",
        0.08,
        members=(
            MemberSpec("Sam Lee", "sam@tinytools.example", Role.OWNER),
            MemberSpec("Alex Kim", "alex@tinytools.example", Role.MEMBER),
        ),
        keys=(
            KeySpec(
                "side-project",
                "alex@tinytools.example",
                (("gpt-4o-mini", 0.5), ("gemini-2.0-flash", 0.3), ("gpt-4o", 0.2)),
                1.0,
                cap=CapLevel.NEAR,
            ),
        ),
    ),
)
"""The demo's accounts, in the order they are created."""


def workload_ids(seed: int) -> dict[tuple[str, str], str]:
    """Each workload's id by (account name, workload name): UUIDs drawn from the seed, the same for the same seed."""
    rng = random.Random(f"workloads-{seed}")
    return {
        (account.name, workload.name): str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for account in CAST
        for workload in account.workloads
    }
