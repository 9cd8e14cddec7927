"""External usage ingestion: `POST /api/events`, idempotent by event id.

For usage that does not pass through the proxy (voice minutes, agent VM hours, LLM calls made elsewhere).
Authenticated like the admin API: the master key, or an owner's or admin's API token, which may post events
for its own account only (to it, another account and its keys are unknown, 422 as any unknown id). The body is
`{"events": [...]}` with 1 to 1,000 events, e.g.::

    {"id": "call-7f3a", "timestamp": "2025-06-01T12:00:00Z", "axis": "llm", "key_id": "...",
     "provider": "openai", "model": "gpt-4o", "input_tokens": 1200, "output_tokens": 350}
    {"id": "vm-2", "axis": "compute", "account_id": "...", "model": "vm-small", "seconds": 3600.5}

`id` (1..128 characters), `axis` (llm, voice, compute), `model`, and `key_id` or `account_id` are
required. A key gives the account, member, app, tags and agent (an `account_id` that differs from the
key's is an error, an `agent_id` in the event wins; a revoked key still takes usage it had). `timestamp`
is ISO-8601 with an offset (a naive one is refused, not guessed), the request time by default.
`operation` defaults per axis (`chat.completions`, `audio.speech`, `compute.vm`). Counts are integers
>= 0 (cached + cache-write tokens <= input, reasoning <= output); `seconds` and `quantity` decimals >= 0
with at most 6 places. Numbers are read exactly, never through float. With `cost_usd` (>= 0, at most 9
places) that cost is recorded; otherwise the price book prices the event, and an unknown model is
recorded at cost 0, unpriced. Unknown fields are errors. The `ingest_*` settings bound one event: how
far back and ahead its timestamp may lie, each of its counts, and its cost, given or priced.

200: `{"recorded": n, "duplicates": m, "results": [{"id", "status": "recorded"|"duplicate", "cost_usd"}]}`,
one result per event in order. An id already in the ledger, or repeated in the batch, is a duplicate:
nothing changes and `cost_usd` is the cost recorded the first time. A batch with any invalid event is
refused whole (422, `error.details` = `[{"index", "id", "loc", "message"}, ...]`); nothing is written.
Malformed JSON is 400 `invalid_json`; a body over the size limit is 413 (`BodySizeLimit`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any, Literal, NoReturn, Required

import jiter
import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    with_config,
)
from pydantic_core import PydanticCustomError
from starlette.responses import Response
from typing_extensions import TypedDict

from farebox.api.openapi import errors
from farebox.core.credentials import Principal
from farebox.core.events import Axis, RecordResult, UsageEvent
from farebox.core.json_types import JSON_INTEGER, Time, bounded_decimal
from farebox.core.money import NANO_PER_USD, format_usd
from farebox.core.pricing import Usage
from farebox.errors import InvalidRequest, ValidationFailed
from farebox.ledger.directory import Directory
from farebox.metering import Attribution, Outcome, PriceTarget, UsageEvents
from farebox.services import IngestLimits, authenticate, services

__all__ = ["DEFAULT_OPERATIONS", "MAX_EVENTS", "EventIn", "EventResult", "EventsResponse", "router"]


MAX_EVENTS = 1000
DEFAULT_OPERATIONS = MappingProxyType(
    {Axis.LLM: "chat.completions", Axis.VOICE: "audio.speech", Axis.COMPUTE: "compute.vm"}
)
_MAX_COUNT = 10**12
_MAX_MEASURE = 10**9
_MAX_COST_USD = 10**6
_FLOAT_LIMIT = Decimal("1e308")
_ZERO = Decimal(0)
_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "characters",
)


def _float(value: object) -> float:
    if isinstance(value, Decimal) and value.is_finite() and abs(value) < _FLOAT_LIMIT:
        return float(value)
    raise TypeError


def _metadata(value: object) -> dict[str, Any]:
    """Metadata as the ledger can store it: the body's exact decimals become JSON floats (it is not money)."""
    if not isinstance(value, dict):
        raise PydanticCustomError("dict_type", "must be a JSON object")
    try:
        orjson.dumps(value)  # the common case: no fractional numbers, nothing to convert
        return value
    except orjson.JSONEncodeError:
        try:
            converted: dict[str, Any] = orjson.loads(orjson.dumps(value, default=_float))
            return converted
        except orjson.JSONEncodeError:
            message = "numbers must be finite, integers fit in 64 bits, nesting at most 250 deep"
            raise PydanticCustomError("metadata_unstorable", message) from None


_Count = Annotated[int, Field(ge=0, le=_MAX_COUNT), JSON_INTEGER]
_Measure = Annotated[Decimal, *bounded_decimal(places=6, limit=_MAX_MEASURE)]
_Usd = Annotated[Decimal, *bounded_decimal(places=9, limit=_MAX_COST_USD)]
_Name = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=256)]
_Id = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=128)]


# A TypedDict rather than a model: pydantic validates a batch into dicts in half the time it takes to
# build model instances, which was a tenth of the endpoint's time per event.
@with_config(ConfigDict(extra="forbid"))
class EventIn(TypedDict, total=False):
    """One external usage event as posted; a count left out is 0, `seconds` and `quantity` too."""

    id: Required[_Id]
    timestamp: Time | None
    axis: Required[Literal["llm", "voice", "compute"]]
    key_id: _Id | None
    account_id: _Id | None
    agent_id: _Name | None
    provider: _Name | None
    model: Required[_Name]
    operation: _Name | None
    input_tokens: _Count
    output_tokens: _Count
    cached_input_tokens: _Count
    cache_write_tokens: _Count
    reasoning_tokens: _Count
    characters: _Count
    seconds: _Measure
    quantity: _Measure
    metadata: Annotated[dict[str, Any], PlainValidator(_metadata, json_schema_input_type=dict[str, Any])]
    cost_usd: _Usd | None


class EventResult(BaseModel):
    """What became of one posted event."""

    id: str
    status: Literal["recorded", "duplicate"]
    cost_usd: str = Field(description="Cost recorded for this id in decimal USD (for a duplicate, the first one's).")


class EventsResponse(BaseModel):
    """The answer to a batch: counts, and one result per posted event, in order."""

    recorded: int
    duplicates: int
    results: list[EventResult]


_EVENTS = TypeAdapter(list[EventIn])
_AXES = {axis.value: axis for axis in Axis}
_OWNED = {
    "anyOf": [{"required": [name], "properties": {name: {"type": "string"}}} for name in ("key_id", "account_id")]
}
"""`_check_event`'s first rule: a key or an account (not null)."""
_BATCH = {"type": "array", "minItems": 1, "maxItems": MAX_EVENTS, "items": TypeAdapter(EventIn).json_schema() | _OWNED}
_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["events"],
    "additionalProperties": False,
    "properties": {"events": _BATCH},
}

router = APIRouter(tags=["events"])


class _Problems:
    """Per-item errors of a batch, raised together as one 422."""

    def __init__(self, raw: Sequence[Any]):
        self.raw = raw
        self.items: list[dict[str, Any]] = []

    def add(self, index: int, loc: str, message: str) -> None:
        item = self.raw[index] if index < len(self.raw) else None
        event_id = item.get("id") if isinstance(item, dict) else None
        self.items.append(
            {"index": index, "id": event_id if isinstance(event_id, str) else None, "loc": loc, "message": message}
        )

    def raise_if_any(self) -> None:
        if self.items:
            first, bad = self.items[0], len({item["index"] for item in self.items})
            raise ValidationFailed(
                f"{bad} of {len(self.raw)} events invalid, nothing recorded; "
                f"events[{first['index']}].{first['loc']}: {first['message']}",
                details=self.items,
            )


def _reasons(refused: ValidationFailed | InvalidRequest) -> dict[str, int]:
    """A refused batch's events by reason: each invalid event under its first field at fault (`invalid:<field>`),
    a whole batch refused as such (`batch:<field>`)."""
    first: dict[int, str] = {}
    batch = None if refused.details else "body"
    for item in refused.details or []:
        if "index" in item:
            first.setdefault(item["index"], item["loc"].split(".")[0].split("[")[0])
        else:
            batch = item.get("loc", "body")
    if batch is not None and not first:
        return {f"batch:{batch}": 1}
    return dict(Counter(f"invalid:{loc}" for loc in first.values()))


def _refuse_batch(loc: str, message: str) -> NoReturn:
    raise ValidationFailed(f"{loc}: {message}", details=[{"loc": loc, "message": message}])


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _load_json(body: bytes) -> Any:
    """The JSON document in a body, its fractional numbers as exact decimals.

    jiter parses a batch in a third of the time Python's parser takes. Where the two differ, jiter refuses
    what Python's parser takes (a byte-order mark, a lone surrogate), so Python's parser decides those.

    Raises:
        ValueError, RecursionError: the body is not JSON.
    """
    try:
        return jiter.from_json(body, float_mode="decimal", cache_mode="keys", allow_inf_nan=False)
    except ValueError:
        return json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)


def _parse_batch(body: bytes, *, limits: IngestLimits, now: datetime) -> list[EventIn]:
    """The validated events of a request body; numbers are read as exact decimals, never floats.

    Raises:
        InvalidRequest: the body is not JSON (400 `invalid_json`).
        ValidationFailed: the body is not `{"events": [...]}` with 1 to 1,000 valid events, each within `limits`
            (422).
    """
    try:
        document = _load_json(body)
    except (ValueError, RecursionError):
        raise InvalidRequest("malformed JSON body", code="invalid_json") from None
    if not isinstance(document, dict):
        _refuse_batch("body", 'must be a JSON object: {"events": [...]}')
    extra = sorted(set(document) - {"events"})
    if extra:
        _refuse_batch(extra[0], 'unknown field; the body is {"events": [...]}')
    raw = document.get("events")
    if not isinstance(raw, list):
        _refuse_batch("events", "required, a list of events" if raw is None else "must be a list of events")
    if not 1 <= len(raw) <= MAX_EVENTS:
        _refuse_batch("events", f"1 to {MAX_EVENTS:,} events per request (got {len(raw):,})")
    problems = _Problems(raw)
    try:
        events = _EVENTS.validate_python(raw)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            index, *loc = error["loc"]
            problems.add(int(index), ".".join(str(part) for part in loc) or "event", error["msg"])
        problems.raise_if_any()
    for index, event in enumerate(events):
        _check_event(problems, index, event, limits=limits, now=now)
    problems.raise_if_any()
    return events


def _check_event(problems: _Problems, index: int, event: EventIn, *, limits: IngestLimits, now: datetime) -> None:
    if event.get("key_id") is None and event.get("account_id") is None:
        problems.add(index, "key_id", "give key_id or account_id")
    if event.get("cached_input_tokens", 0) + event.get("cache_write_tokens", 0) > event.get("input_tokens", 0):
        problems.add(index, "cached_input_tokens", "cached_input_tokens + cache_write_tokens exceed input_tokens")
    if event.get("reasoning_tokens", 0) > event.get("output_tokens", 0):
        problems.add(index, "reasoning_tokens", "reasoning_tokens exceed output_tokens")
    for name in _COUNTS:
        count = event.get(name, 0)
        if isinstance(count, int) and count > limits.max_tokens:
            problems.add(index, name, f"must be at most {limits.max_tokens:,} (setting ingest_max_tokens)")
    timestamp = event.get("timestamp")
    if timestamp is not None and not _within(timestamp, limits=limits, now=now):
        problems.add(
            index,
            "timestamp",
            f"must lie between {limits.max_age.days} days before now and "
            f"{int(limits.max_future.total_seconds())} seconds after it "
            "(settings ingest_max_age_days or raw_events_retention_days, the shorter, and ingest_max_future_seconds)",
        )


def _within(timestamp: datetime, *, limits: IngestLimits, now: datetime) -> bool:
    return now - limits.max_age <= timestamp <= now + limits.max_future


def _check_costs(posted: Sequence[EventIn], events: Sequence[UsageEvent], *, limits: IngestLimits) -> None:
    """Refuse the batch (422) when an event, given or priced, costs more than one event may."""
    problems = _Problems(posted)
    for index, event in enumerate(events):
        if event.cost_nano > limits.max_cost_nano:
            how = "given" if posted[index].get("cost_usd") is not None else "priced"
            problems.add(
                index,
                "cost_usd",
                f"{how} at {format_usd(event.cost_nano)} USD, over the {format_usd(limits.max_cost_nano)} USD "
                "one event may cost (setting ingest_max_cost_usd)",
            )
    problems.raise_if_any()


async def _resolve_owners(
    events: Sequence[EventIn], *, principal: Principal, directory: Directory
) -> list[Attribution]:
    """Whom each event is attributed to, looking each key and account up once per batch.

    Raises:
        PermissionDenied: a member's token that may not post events (403).
        ValidationFailed: unknown keys or accounts, or an account that is not the key's (422, per item). To a
            member's token, another account and its keys are unknown: their existence is not told.
    """
    problems = _Problems(events)
    keys = await directory.find_keys({k for event in events if (k := event.get("key_id")) is not None})
    accounts = await directory.find_accounts(
        {event.get("account_id") or "" for event in events if event.get("key_id") is None}
    )
    if principal.account_id is not None:
        principal.require_manage(principal.account_id)
        keys = {key_id: key for key_id, key in keys.items() if key.account_id == principal.account_id}
        accounts = {account_id: a for account_id, a in accounts.items() if account_id == principal.account_id}
    by_key = {k.id: Attribution(k.account_id, k.id, k.member_id, k.agent_id, k.app, k.tags) for k in keys.values()}
    by_account = {account_id: Attribution(account_id, None, None) for account_id in accounts}
    owners: list[Attribution] = []
    for index, event in enumerate(events):
        key_id, account_id = event.get("key_id"), event.get("account_id")
        if key_id is None:
            account_id = account_id or ""
            if account_id not in by_account:
                problems.add(index, "account_id", f"unknown account {account_id!r}")
            owners.append(by_account.get(account_id) or Attribution(account_id, None, None))
        elif (owner := by_key.get(key_id)) is None:
            problems.add(index, "key_id", f"unknown key {key_id!r}")
        else:
            if account_id is not None and account_id != owner.account_id:
                problems.add(index, "account_id", "differs from the account of the key")
            owners.append(owner)
    problems.raise_if_any()
    return owners


class _Batch:
    """Builds a batch's ledger events, sharing the attributions and price targets its events have in common."""

    def __init__(self, events: UsageEvents, *, now: datetime) -> None:
        self._events = events
        self._now = now
        self._attributions: dict[tuple[int, str], Attribution] = {}
        self._targets: dict[tuple[str | None, str], PriceTarget] = {}

    def build(self, event: EventIn, owner: Attribution) -> UsageEvent:
        """The priced, attributed ledger event of a posted event."""
        axis = _AXES[event["axis"]]
        timestamp = event.get("timestamp")
        provider, model, cost_usd = event.get("provider"), event["model"], event.get("cost_usd")
        usage = Usage(
            input_tokens=event.get("input_tokens", 0),
            output_tokens=event.get("output_tokens", 0),
            cached_input_tokens=event.get("cached_input_tokens", 0),
            cache_write_tokens=event.get("cache_write_tokens", 0),
            reasoning_tokens=event.get("reasoning_tokens", 0),
            characters=event.get("characters", 0),
            seconds=event.get("seconds", _ZERO),
            quantity=event.get("quantity", _ZERO),
        )
        target = self._targets.get((provider, model))
        if target is None:
            target = self._targets[(provider, model)] = PriceTarget(provider, model)
        operation = event.get("operation") or DEFAULT_OPERATIONS[axis]
        return self._events.build(
            event["id"],
            at=timestamp if timestamp is not None else self._now,  # `Time` gives it in UTC
            attribution=self._attribution(event, owner),
            outcome=Outcome(provider, model, target, operation, axis, usage),
            source="ingest",
            cost_nano=None if cost_usd is None else int(cost_usd * NANO_PER_USD),  # exact: at most 9 places, checked
        )

    def _attribution(self, event: EventIn, owner: Attribution) -> Attribution:
        """The owner's attribution, with the event's own agent and metadata when it names them."""
        agent_id, metadata = event.get("agent_id"), event.get("metadata")
        if metadata:
            return replace(owner, agent_id=agent_id or owner.agent_id, metadata=metadata)
        if not agent_id or agent_id == owner.agent_id:
            return owner
        found = self._attributions.get((id(owner), agent_id))
        if found is None:
            found = self._attributions[(id(owner), agent_id)] = replace(owner, agent_id=agent_id)
        return found


@router.post(
    "/api/events",
    summary="Ingest external usage events",
    responses={
        200: {"model": EventsResponse},
        **errors(
            {
                422: 'The body is not `{"events": [...]}` with 1 to 1,000 valid events; or an event names an unknown '
                "key or account, or an account that is not its key's; counts cached and cache-write tokens beyond its "
                "input tokens or reasoning tokens beyond its output tokens; or lies beyond the `ingest_*` settings "
                "(counts, cost, how far back or ahead its timestamp is); or its metadata holds an integer beyond 64 "
                "bits or nests deeper than 250. Nothing is recorded; `error.details` gives each event's index, id and "
                "field."
            }
        ),
    },
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _REQUEST_SCHEMA}}}},
)
async def ingest_events(request: Request, principal: Annotated[Principal, Depends(authenticate)]) -> Response:
    """Price, attribute and record a batch of external usage events, all or nothing, idempotent by id."""
    now = datetime.now(UTC)
    found = services(request)
    try:
        posted = _parse_batch(await request.body(), limits=found.ingest_limits, now=now)
        owners = await _resolve_owners(posted, principal=principal, directory=found.directory)
        batch = _Batch(found.meter.events, now=now)
        events = [batch.build(event, owner) for event, owner in zip(posted, owners, strict=True)]
        _check_costs(posted, events, limits=found.ingest_limits)
    except (ValidationFailed, InvalidRequest) as refused:
        found.ledger.ingestion.rejected(_reasons(refused))
        raise
    recorded = await found.meter.record_many(events)
    items = [{"id": r.event.id, "status": r.result, "cost_usd": format_usd(r.cost_nano)} for r in recorded]
    count = sum(1 for r in recorded if r.result is RecordResult.RECORDED)
    if count < len(recorded):
        found.ledger.ingestion.rejected({"duplicate": len(recorded) - count})
    answer = {"recorded": count, "duplicates": len(recorded) - count, "results": items}
    return Response(orjson.dumps(answer), media_type="application/json")
