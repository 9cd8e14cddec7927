"""POST /api/events over HTTP, against a real SQLite ledger and the real price book."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from farebox.app import create_app
from farebox.core.owners import Account, VirtualKey
from farebox.core.periods import Period
from farebox.core.pricing import Usage
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.member_tokens import MemberTokens
from farebox.ledger.reader import EventRow, LedgerReader
from farebox.prices import PriceBook
from farebox.settings import Settings

MASTER = "fbx_master_test-events-0123456789"
MAX_BODY = 1024 * 1024
UTC_ZONE = ZoneInfo("UTC")
OVERRIDES = """
[[prices]]
model = "house-llm"
input_mtok = "2"
output_mtok = "8"

[[prices]]
model = "tts-lite"
provider = "voicecorp"
per_mchars = "15"

[[prices]]
model = "vm-small"
operation = "compute.vm"
per_hour = "0.05"
"""


@dataclass
class World:
    client: httpx.AsyncClient
    ledger: Ledger
    directory: Directory
    prices: PriceBook
    account: Account
    other: Account
    key: VirtualKey
    other_key: VirtualKey
    admin_secret: str
    """An API token of Ada, an admin."""
    member_secret: str
    """An API token of Bob, a plain member."""
    key_secret: str
    """The secret of Ada's virtual key `key`: a proxy credential, which may not ingest."""

    async def post(self, body: Any, *, secret: str = MASTER) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"authorization": f"Bearer {secret}", "content-type": "application/json"}
        return await self.client.post("/api/events", content=content, headers=headers)

    async def event(self, event_id: str) -> EventRow:
        """The recorded event (which must exist)."""
        row = await LedgerReader(self.ledger).event(event_id)
        assert row is not None, f"no event {event_id!r} was recorded"
        return row

    async def recorded(self, event_id: str) -> bool:
        return await LedgerReader(self.ledger).event(event_id) is not None

    async def spent(self, account: Account) -> int:
        at = datetime.now(UTC)
        return await self.ledger.spent(scope="account", scope_id=account.id, period=Period.TOTAL, at=at, tz=UTC_ZONE)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    overrides = tmp_path / "prices.toml"
    overrides.write_text(OVERRIDES)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}", price_overrides=overrides, max_body_bytes=MAX_BODY
    )
    ledger = Ledger(settings.database_url)
    prices = PriceBook.load(overrides)
    app = create_app(settings, ledger=ledger, prices=prices, master_key=MASTER)
    await ledger.start()
    try:
        directory: Directory = app.state.services.directory
        account = await directory.create_account(name="Acme")
        other = await directory.create_account(name="Globex")
        admin = await directory.create_member(account.id, email="ada@acme.test", name="Ada", role="admin")
        plain = await directory.create_member(account.id, email="bob@acme.test", name="Bob", role="member")
        key, key_secret = await directory.create_key(
            account.id, member_id=admin.id, name="agents", agent_id="support-bot", app="helpdesk", tags=["prod"]
        )
        tokens: MemberTokens = app.state.services.tokens
        _, admin_secret = await tokens.create(admin.id, name="ada's laptop")
        _, member_secret = await tokens.create(plain.id, name="bob's laptop")
        other_key, _ = await directory.create_key(other.id, name="globex")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://farebox.test") as client:
            yield World(
                client,
                ledger,
                directory,
                prices,
                account,
                other,
                key,
                other_key,
                admin_secret,
                member_secret,
                key_secret,
            )
    finally:
        await ledger.close()


def llm(event_id: str, key: VirtualKey, **fields: Any) -> dict[str, Any]:
    event = {
        "id": event_id,
        "timestamp": "2025-06-01T12:00:00Z",
        "axis": "llm",
        "key_id": key.id,
        "model": "house-llm",
        "input_tokens": 1000,
        "output_tokens": 500,
    }
    return event | fields


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert error["code"] == code
    assert {"type", "code", "message"} <= set(error) <= {"type", "code", "message", "details"}
    assert "Traceback" not in response.text
    return error


# Recording


@pytest.mark.anyio
async def test_records_a_batch_priced_and_attributed_to_the_key(world: World) -> None:
    events = [llm("e-1", world.key), llm("e-2", world.key, input_tokens=2000, cached_input_tokens=500, metadata={})]
    response = await world.post({"events": events})

    assert response.status_code == 200, response.text
    assert response.json() == {
        "recorded": 2,
        "duplicates": 0,
        "results": [
            {"id": "e-1", "status": "recorded", "cost_usd": "0.006"},
            {"id": "e-2", "status": "recorded", "cost_usd": "0.008"},
        ],
    }
    row = await world.event("e-1")
    assert row.cost_nano == 6_000_000
    assert row.account_id == world.account.id
    assert row.key_id == world.key.id
    assert row.member_id == world.key.member_id
    assert (row.agent_id, row.app, row.tags) == ("support-bot", "helpdesk", ("prod",))
    assert (row.axis, row.operation, row.source, row.priced) == ("llm", "chat.completions", "ingest", True)
    assert row.unit_prices == {"input_mtok": "2", "output_mtok": "8"}
    assert row.timestamp == datetime(2025, 6, 1, 12, tzinfo=UTC)
    assert await world.spent(world.account) == 14_000_000


@pytest.mark.anyio
async def test_catalog_model_is_priced_and_canonicalised(world: World) -> None:
    event = llm("cat-1", world.key, model="openai/gpt-4o", input_tokens=10_000, output_tokens=2_000)
    response = await world.post({"events": [event]})

    assert response.status_code == 200, response.text
    at = datetime(2025, 6, 1, 12, tzinfo=UTC)
    usage = Usage(input_tokens=10_000, output_tokens=2_000)
    expected = world.prices.price(
        provider=None, model="openai/gpt-4o", operation="chat.completions", usage=usage, at=at
    )
    row = await world.event("cat-1")
    assert expected.priced and expected.cost_nano > 0
    assert (row.cost_nano, row.canonical_model, row.provider) == (expected.cost_nano, "gpt-4o", "openai")


@pytest.mark.anyio
async def test_same_batch_again_is_all_duplicates_and_spend_is_unchanged(world: World) -> None:
    batch = {"events": [llm("d-1", world.key), llm("d-2", world.key, output_tokens=0)]}
    first = await world.post(batch)
    spent = await world.spent(world.account)

    again = await world.post(batch)

    assert again.status_code == 200
    assert again.json() == {
        "recorded": 0,
        "duplicates": 2,
        "results": [
            {"id": "d-1", "status": "duplicate", "cost_usd": "0.006"},
            {"id": "d-2", "status": "duplicate", "cost_usd": "0.002"},
        ],
    }
    assert [r["cost_usd"] for r in first.json()["results"]] == ["0.006", "0.002"]
    assert await world.spent(world.account) == spent == 8_000_000


@pytest.mark.anyio
async def test_mixed_batch_records_new_ids_and_answers_repeats_as_duplicates(world: World) -> None:
    await world.post({"events": [llm("m-1", world.key)]})
    # A different body under a known id does not change what was recorded, and the answer says so.
    batch = [llm("m-1", world.key, output_tokens=0), llm("m-2", world.key), llm("m-2", world.key, output_tokens=0)]

    response = await world.post({"events": batch})

    assert response.json() == {
        "recorded": 1,
        "duplicates": 2,
        "results": [
            {"id": "m-1", "status": "duplicate", "cost_usd": "0.006"},
            {"id": "m-2", "status": "recorded", "cost_usd": "0.006"},
            {"id": "m-2", "status": "duplicate", "cost_usd": "0.006"},
        ],
    }
    assert await world.spent(world.account) == 12_000_000


@pytest.mark.anyio
async def test_voice_by_characters_and_compute_by_seconds_from_overrides(world: World) -> None:
    # Numbers are sent as JSON text that binary floats cannot hold, to show they are read exactly.
    body = (
        b'{"events": ['
        b'{"id": "v-1", "axis": "voice", "account_id": "%s", "provider": "voicecorp", "model": "tts-lite",'
        b' "characters": 5400, "agent_id": "reader"},'
        b'{"id": "c-1", "axis": "compute", "account_id": "%s", "model": "vm-small", "seconds": 5400.1},'
        b'{"id": "c-2", "axis": "compute", "account_id": "%s", "model": "vm-small", "seconds": "0.000001",'
        b' "quantity": 1234567.000001}'
        b"]}"
    ) % (world.account.id.encode(), world.account.id.encode(), world.account.id.encode())

    response = await world.post(body)

    assert response.status_code == 200, response.text
    # 5400 chars at $15/M = 0.081; 5400.1 s at $0.05/h = 0.0750013888... -> 75001389 nano (half even).
    assert [r["cost_usd"] for r in response.json()["results"]] == ["0.081", "0.075001389", "0.00"]
    voice = await world.event("v-1")
    assert (voice.operation, voice.member_id, voice.agent_id) == ("audio.speech", None, "reader")
    assert voice.unit_prices == {"per_mchars": "15"}
    compute = await world.event("c-1")
    assert (compute.operation, compute.seconds_micro, compute.cost_nano) == (
        "compute.vm",
        5_400_100_000,
        75_001_389,
    )
    tiny = await world.event("c-2")
    assert (tiny.seconds_micro, tiny.quantity_micro) == (1, 1_234_567_000_001)


@pytest.mark.anyio
async def test_cost_usd_is_recorded_exactly_instead_of_the_price(world: World) -> None:
    body = b'{"events": [%s, %s]}' % (
        orjson.dumps(llm("x-1", world.key, cost_usd="0.0420")),
        orjson.dumps(llm("x-2", world.key, model="no-such-model"))[:-1] + b', "cost_usd": 0.123456789}',
    )

    response = await world.post(body)

    assert [r["cost_usd"] for r in response.json()["results"]] == ["0.042", "0.123456789"]
    row = await world.event("x-2")
    assert (row.cost_nano, row.priced, row.unit_prices) == (123_456_789, True, {"cost_usd": "0.123456789"})


@pytest.mark.anyio
async def test_unknown_model_is_recorded_unpriced_at_zero(world: World) -> None:
    response = await world.post({"events": [llm("u-1", world.key, model="mystery-9000", provider="nowhere")]})

    assert response.json()["results"] == [{"id": "u-1", "status": "recorded", "cost_usd": "0.00"}]
    row = await world.event("u-1")
    assert (row.priced, row.cost_nano, row.model, row.provider) == (False, 0, "mystery-9000", "nowhere")


@pytest.mark.anyio
async def test_timestamp_defaults_to_now_and_metadata_is_kept(world: World) -> None:
    before = datetime.now(UTC)
    event = llm("t-1", world.key, metadata={"run": "r7", "score": 0.25, "steps": [1, 2]})
    del event["timestamp"]

    await world.post({"events": [event]})

    row = await world.event("t-1")
    assert before <= row.timestamp <= datetime.now(UTC)
    assert row.metadata == {"run": "r7", "score": 0.25, "steps": [1, 2]}


@pytest.mark.anyio
async def test_an_admin_member_posts_for_its_own_account(world: World) -> None:
    response = await world.post({"events": [llm("own-1", world.key)]}, secret=world.admin_secret)

    assert response.status_code == 200
    assert (await world.event("own-1")).account_id == world.account.id


# Bad input: the one error shape, the right status, nothing written.


@pytest.mark.anyio
async def test_malformed_json_is_400(world: World) -> None:
    assert_error(await world.post(b'{"events": [{"id": "a",'), 400, "invalid_json")
    assert_error(await world.post(b'{"events": [{"seconds": NaN}]}'), 400, "invalid_json")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [[], "events", None, {"events": {}}, {}, {"events": []}, {"events": [], "extra": 1}],
    ids=["list", "string", "null", "events-object", "no-events", "empty", "extra-field"],
)
async def test_wrong_top_level_shape_is_422(world: World, body: Any) -> None:
    error = assert_error(await world.post(body), 422, "validation_failed")
    assert error["details"][0].keys() == {"loc", "message"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fields", "loc", "message"),
    [
        ({"input_tokens": "12"}, "input_tokens", "Input should be a valid integer"),
        (
            {"output_tokens": 5.5},
            "output_tokens",
            "Input should be a valid integer, got a number with a fractional part",
        ),
        ({"characters": True}, "characters", "Input should be a valid integer"),
        ({"input_tokens": -1}, "input_tokens", "Input should be greater than or equal to 0"),
        ({"seconds": -3}, "seconds", "must not be negative"),
        ({"seconds": "1.0000001"}, "seconds", "must have at most 6 decimal places"),
        ({"quantity": [1]}, "quantity", "must be a decimal number or a decimal string"),
        ({"quantity": "1_000"}, "quantity", "must be a decimal number or a decimal string"),
        ({"seconds": 10**10}, "seconds", "must be at most 1000000000"),
        ({"cost_usd": "0.0000000001"}, "cost_usd", "must have at most 9 decimal places"),
        ({"axis": "video"}, "axis", "Input should be 'llm', 'voice' or 'compute'"),
        ({"timestamp": "2025-06-01T12:00:00"}, "timestamp", "Input should have timezone info"),
        (
            {"timestamp": 1748779200},
            "timestamp",
            "must be an RFC 3339 time with a UTC offset, such as 2026-01-31T12:00:00Z",
        ),
        ({"id": ""}, "id", "String should have at least 1 character"),
        ({"model": None}, "model", "Input should be a valid string"),
        ({"colour": "blue"}, "colour", "Extra inputs are not permitted"),
        ({"metadata": [1]}, "metadata", "must be a JSON object"),
        (
            {"metadata": {"n": 2**70, "x": 0.5}},
            "metadata",
            "numbers must be finite, integers fit in 64 bits, nesting at most 250 deep",
        ),
        (
            {"cached_input_tokens": 900, "cache_write_tokens": 200},
            "cached_input_tokens",
            "cached_input_tokens + cache_write_tokens exceed input_tokens",
        ),
        ({"reasoning_tokens": 501}, "reasoning_tokens", "reasoning_tokens exceed output_tokens"),
        ({"key_id": None}, "key_id", "give key_id or account_id"),
    ],
)
async def test_invalid_event_is_422_per_item_and_nothing_is_written(
    world: World, fields: dict[str, Any], loc: str, message: str
) -> None:
    batch = [llm("ok-1", world.key), llm("bad", world.key, **fields), llm("ok-2", world.key)]

    error = assert_error(await world.post({"events": batch}), 422, "validation_failed")

    assert error["details"] == [{"index": 1, "id": "bad" if loc != "id" else "", "loc": loc, "message": message}]
    for event_id in ("ok-1", "ok-2"):
        assert not await world.recorded(event_id)
    assert await world.spent(world.account) == 0


@pytest.mark.anyio
async def test_every_bad_event_is_listed(world: World) -> None:
    batch = [llm("a", world.key, input_tokens=-1, output_tokens="x"), llm("b", world.key), llm("c", world.key, axis=1)]

    error = assert_error(await world.post({"events": batch}), 422, "validation_failed")

    assert [(d["index"], d["id"], d["loc"]) for d in error["details"]] == [
        (0, "a", "input_tokens"),
        (0, "a", "output_tokens"),
        (2, "c", "axis"),
    ]
    assert error["message"].startswith("2 of 3 events invalid, nothing recorded")


@pytest.mark.anyio
async def test_more_than_1000_events_is_422_naming_the_limit(world: World) -> None:
    batch = [{"id": f"n-{i}", "axis": "llm", "key_id": world.key.id, "model": "m"} for i in range(1001)]

    error = assert_error(await world.post({"events": batch}), 422, "validation_failed")

    assert error["details"] == [{"loc": "events", "message": "1 to 1,000 events per request (got 1,001)"}]


@pytest.mark.anyio
async def test_1000_events_are_accepted(world: World) -> None:
    batch = [{"id": f"k-{i}", "axis": "llm", "key_id": world.key.id, "model": "house-llm"} for i in range(1000)]

    response = await world.post({"events": batch})

    assert response.status_code == 200
    assert response.json()["recorded"] == 1000


@pytest.mark.anyio
async def test_oversized_body_is_413(world: World) -> None:
    event = llm("big", world.key, metadata={"blob": "x" * MAX_BODY})

    assert_error(await world.post({"events": [event]}), 413, "payload_too_large")
    assert not await world.recorded("big")


@pytest.mark.anyio
async def test_unknown_key_or_account_is_422_per_item(world: World) -> None:
    batch = [
        llm("ok", world.key),
        llm("k", world.key, key_id="no-such-key"),
        {"id": "a", "axis": "voice", "account_id": "no-such-account", "model": "tts-lite"},
        llm("mismatch", world.key, account_id=world.other.id),
    ]

    error = assert_error(await world.post({"events": batch}), 422, "validation_failed")

    assert error["details"] == [
        {"index": 1, "id": "k", "loc": "key_id", "message": "unknown key 'no-such-key'"},
        {"index": 2, "id": "a", "loc": "account_id", "message": "unknown account 'no-such-account'"},
        {"index": 3, "id": "mismatch", "loc": "account_id", "message": "differs from the account of the key"},
    ]
    assert not await world.recorded("ok")


@pytest.mark.anyio
async def test_wrong_or_missing_master_key_is_401(world: World) -> None:
    assert_error(await world.post({"events": [llm("w", world.key)]}, secret="fbx_master_wrong"), 401, "invalid_api_key")
    response = await world.client.post("/api/events", json={"events": [llm("w", world.key)]})
    assert_error(response, 401, "missing_api_key")


@pytest.mark.anyio
async def test_another_accounts_ids_are_unknown_to_a_member_and_refuse_the_whole_batch(world: World) -> None:
    by_account = [llm("own", world.key), {"id": "o", "axis": "llm", "account_id": world.other.id, "model": "m"}]
    by_key = [llm("own", world.key), llm("o", world.other_key)]
    nowhere = [llm("own", world.key), {"id": "o", "axis": "llm", "account_id": "no-such-account", "model": "m"}]

    messages = []
    for batch in (by_account, by_key, nowhere):
        response = await world.post({"events": batch}, secret=world.admin_secret)
        assert_error(response, 422, "validation_failed")
        (detail,) = response.json()["error"]["details"]
        assert detail["index"] == 1
        messages.append(detail["message"].split(" ")[:2])
    assert messages == [["unknown", "account"], ["unknown", "key"], ["unknown", "account"]]
    assert not await world.recorded("own")


@pytest.mark.anyio
async def test_a_member_who_is_not_an_admin_is_403(world: World) -> None:
    assert_error(await world.post({"events": [llm("p", world.key)]}, secret=world.member_secret), 403, "not_admin")


@pytest.mark.anyio
async def test_a_virtual_key_may_not_ingest_even_for_itself(world: World) -> None:
    assert_error(await world.post({"events": [llm("p", world.key)]}, secret=world.key_secret), 403, "proxy_key")
    assert not await world.recorded("p")


@pytest.mark.anyio
async def test_openapi_documents_the_request_and_response(world: World) -> None:
    schema = (await world.client.get("/openapi.json")).json()
    operation = schema["paths"]["/api/events"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["events"]["maxItems"] == 1000
    assert "EventsResponse" in schema["components"]["schemas"]
