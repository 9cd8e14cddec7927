"""The metering flow: open a ticket (reserve the worst case), record the outcome, always release.

Each case is what the gateway lives through: a request that succeeds, one the upstream fails, one the
client walks away from, one cancelled by a shutdown, one the ledger cannot record, one a cap refuses.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from metering_fakes import JUNE_10, USD, MemoryLedger, Owners, account, key, member

from farebox.core.events import Axis, RecordResult, Status
from farebox.core.pricing import Usage
from farebox.core.spend import CapRefused, Scope
from farebox.errors import LedgerUnavailable
from farebox.metering import Attribution, Call, InFlight, Meter, Outcome, PriceTarget
from farebox.prices import PriceBook

pytestmark = pytest.mark.anyio

GPT_4O = PriceTarget("openai", "gpt-4o")
WORST = Usage(input_tokens=1000, output_tokens=1000)
USED = Usage(input_tokens=1000, output_tokens=100)
USED_COST = 3_500_000  # 1,000 x $2.50/M + 100 x $10/M = $0.0035 (the README's quote)
WORST_COST = 12_500_000  # 1,000 x $2.50/M + 1,000 x $10/M


def attribution() -> Attribution:
    return Attribution("acct-1", "key-1", "mem-1", agent_id="agent-7", app="helpdesk", tags=("prod",))


def outcome(usage: Usage = USED, **fields: object) -> Outcome:
    return Outcome("mock", "gpt-4o", GPT_4O, "chat.completions", Axis.LLM, usage, **fields)  # type: ignore[arg-type]


class Flow:
    """A meter over one capped key, and calls to open on it."""

    def __init__(self, prices: PriceBook, *, key_cap: int | None = 1, account_cap: int | None = None) -> None:
        self.ledger = MemoryLedger()
        self.owners = Owners(account(cap_usd=account_cap), member(), key(cap_usd=key_cap))
        self.meter: Meter = self.owners.meter(self.ledger, prices)
        self.worst_case_calls = 0
        self.abandoned_calls = 0
        self.calls = 0

    def call(self) -> Call:
        self.calls += 1

        def worst_case() -> Usage:
            self.worst_case_calls += 1
            return WORST

        async def abandoned() -> Outcome:
            self.abandoned_calls += 1
            return outcome(estimated=True, status=Status.ERROR, http_status=499, error_type="cancelled")

        return Call(
            f"req-{self.calls}",
            JUNE_10,
            self.owners.key,
            attribution(),
            GPT_4O,
            "chat.completions",
            worst_case,
            abandoned,
        )

    async def remaining(self) -> int | None:
        caps = await self.meter.budgets.caps_for(self.owners.key)
        return await self.meter.budgets.remaining(caps, at=JUNE_10)


async def test_a_request_holds_its_worst_case_then_settles_to_its_true_cost(prices: PriceBook) -> None:
    flow = Flow(prices)
    ticket = await flow.meter.open(flow.call())
    async with ticket:
        assert await ticket.remaining(at=JUNE_10) == USD - WORST_COST
        in_flight = flow.meter.in_flight
        assert (in_flight.count, in_flight.of("acct-1"), in_flight.of("acct-2")) == (1, 1, 0), "per account too"
        event = await ticket.record(outcome())
        assert await flow.remaining() == USD - USED_COST  # released as soon as it is committed
    assert flow.meter.in_flight.count == 0 == flow.meter.in_flight.of("acct-1")
    assert event.cost_nano == USED_COST and event.priced
    assert (event.key_id, event.member_id, event.agent_id, event.app, event.tags) == (
        "key-1",
        "mem-1",
        "agent-7",
        "helpdesk",
        ("prod",),
    )
    assert flow.ledger.events == {"req-1": event} and ticket.recorded is event
    assert await flow.remaining() == USD - USED_COST


async def test_an_upstream_error_is_recorded_at_no_cost_and_gives_the_hold_back(prices: PriceBook) -> None:
    flow = Flow(prices)
    async with await flow.meter.open(flow.call()) as ticket:
        event = await ticket.record(outcome(Usage(), status=Status.ERROR, http_status=502, error_type="unreachable"))
    assert (event.status, event.http_status, event.error_type, event.cost_nano) == (Status.ERROR, 502, "unreachable", 0)
    assert await flow.remaining() == USD


async def test_a_client_gone_before_anything_was_recorded_still_releases(prices: PriceBook) -> None:
    flow = Flow(prices)
    with pytest.raises(ConnectionResetError):
        async with await flow.meter.open(flow.call()):
            raise ConnectionResetError("the client went away")
    assert await flow.remaining() == USD
    assert flow.ledger.events == {} and flow.abandoned_calls == 0  # not a cancellation: nothing estimated
    assert flow.meter.in_flight.count == 0 == flow.meter.in_flight.of("acct-1")


async def test_a_cancelled_request_is_recorded_as_abandoned_then_released(prices: PriceBook) -> None:
    flow = Flow(prices)
    forwarded = asyncio.Event()

    async def forward() -> None:
        async with await flow.meter.open(flow.call()):
            forwarded.set()
            await asyncio.sleep(3600)  # the upstream is still working when the shutdown's grace runs out

    task = asyncio.create_task(forward())
    await forwarded.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (event,) = flow.ledger.events.values()
    assert (event.estimated, event.http_status, event.error_type) == (True, 499, "cancelled")
    assert event.cost_nano == USED_COST
    assert await flow.remaining() == USD - USED_COST and flow.meter.in_flight.count == 0


async def test_a_request_cancelled_after_it_recorded_is_not_recorded_twice(prices: PriceBook) -> None:
    flow = Flow(prices)
    recorded = asyncio.Event()

    async def forward() -> None:
        async with await flow.meter.open(flow.call()) as ticket:
            await ticket.record(outcome())
            recorded.set()
            await asyncio.sleep(3600)  # the last bytes are still on their way out

    task = asyncio.create_task(forward())
    await recorded.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert flow.abandoned_calls == 0 and list(flow.ledger.events) == ["req-1"]


async def test_a_failed_commit_releases_and_leaves_nothing_recorded(prices: PriceBook) -> None:
    flow = Flow(prices)
    flow.ledger.fail = True
    async with await flow.meter.open(flow.call()) as ticket:
        with pytest.raises(LedgerUnavailable):
            await ticket.record(outcome())
        assert ticket.recorded is None
        assert await flow.remaining() == USD  # nothing was charged, nothing is held
    assert flow.meter.in_flight.count == 0


async def test_a_cap_that_cannot_take_the_worst_case_refuses_before_anything_is_held(prices: PriceBook) -> None:
    flow = Flow(prices, key_cap=None, account_cap=0)
    refused = []
    flow.meter.budgets.on_refused.append(refused.append)
    with pytest.raises(CapRefused) as error:
        await flow.meter.open(flow.call())
    assert error.value.status == 402 and error.value.code == "budget_exceeded"
    assert error.value.cap.scope is Scope.ACCOUNT and refused == [error.value.cap]
    assert "spend cap of account 'Acme'" in error.value.message
    assert flow.meter.in_flight.count == 0


async def test_an_uncapped_key_never_counts_its_worst_case(prices: PriceBook) -> None:
    flow = Flow(prices, key_cap=None)
    async with await flow.meter.open(flow.call()) as ticket:
        assert await ticket.remaining(at=JUNE_10) is None
        await ticket.record(outcome())
    assert flow.worst_case_calls == 0  # no prompt was tokenized for a reservation nobody needs


async def test_parallel_requests_cannot_push_spend_past_the_cap(prices: PriceBook) -> None:
    flow = Flow(prices, key_cap=None)
    flow.owners.account = account(cap_nano=4 * WORST_COST)  # exactly four worst cases
    started = asyncio.Event()

    async def request() -> bool:
        try:
            async with await flow.meter.open(flow.call()) as ticket:
                await started.wait()
                await ticket.record(outcome(WORST))
        except CapRefused:
            return False
        return True

    tasks = [asyncio.create_task(request()) for _ in range(32)]
    await asyncio.sleep(0)
    started.set()
    results = await asyncio.gather(*tasks)
    assert results.count(True) == 4
    assert sum(event.cost_nano for event in flow.ledger.events.values()) == 4 * WORST_COST


async def test_record_many_reports_each_event_and_a_duplicate_at_its_first_cost(prices: PriceBook) -> None:
    flow = Flow(prices)
    events = flow.meter.events
    first = events.build("evt-1", at=JUNE_10, attribution=attribution(), outcome=outcome(), source="ingest")
    again = events.build(
        "evt-1", at=JUNE_10 + timedelta(hours=1), attribution=attribution(), outcome=outcome(WORST), source="ingest"
    )
    other = events.build("evt-2", at=JUNE_10, attribution=attribution(), outcome=outcome(), cost_nano=7)
    recorded = await flow.meter.record_many([first, again, other])
    assert [(r.event.id, r.result, r.cost_nano) for r in recorded] == [
        ("evt-1", RecordResult.RECORDED, USED_COST),
        ("evt-1", RecordResult.DUPLICATE, USED_COST),
        ("evt-2", RecordResult.RECORDED, 7),
    ]
    assert other.unit_prices == {"cost_usd": "0.000000007"} and other.priced


async def test_authorize_answers_the_key_of_a_secret(prices: PriceBook) -> None:
    flow = Flow(prices)
    assert await flow.meter.authorize("fbx_sk_" + "a" * 43) is flow.owners.key


async def test_a_request_cancelled_while_the_ledger_is_down_still_ends_cancelled(prices: PriceBook) -> None:
    flow = Flow(prices)
    flow.ledger.fail = True
    forwarded = asyncio.Event()

    async def forward() -> None:
        async with await flow.meter.open(flow.call()):
            forwarded.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(forward())
    await forwarded.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):  # not LedgerUnavailable: shutdown goes on
        await task
    assert flow.abandoned_calls == 1 and flow.ledger.events == {}
    assert await flow.remaining() == USD and flow.meter.in_flight.count == 0


async def test_requests_in_flight_are_counted_in_all_and_per_account() -> None:
    in_flight = InFlight()
    for account_id in ("acct-1", "acct-1", "acct-2"):
        in_flight.enter(account_id)
    assert (in_flight.count, in_flight.of("acct-1"), in_flight.of("acct-2"), in_flight.of("acct-3")) == (3, 2, 1, 0)
    in_flight.leave("acct-2")
    in_flight.leave("acct-1")
    assert (in_flight.count, in_flight.of("acct-1"), in_flight.of("acct-2")) == (1, 1, 0)
    in_flight.leave("acct-1")
    assert (in_flight.count, in_flight.of("acct-1")) == (0, 0)
    assert await in_flight.drained(timeout=1), "idle once the last account's last request left"
