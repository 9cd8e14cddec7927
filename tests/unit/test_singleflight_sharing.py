"""SingleFlight beyond the basics: what is shared is the very result, nothing is left behind after a load ends
(however it ends), and a waiter's cancellation never reaches the load or the other waiters."""

from __future__ import annotations

import asyncio

import pytest

from farebox.core.singleflight import SingleFlight

pytestmark = pytest.mark.anyio


class Gate:
    """A load that returns a fresh object once released, counting how often it ran."""

    def __init__(self) -> None:
        self.calls = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.error: BaseException | None = None

    async def __call__(self) -> list[int]:
        self.calls += 1
        self.entered.set()
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return [self.calls]


async def settle() -> None:
    """Let every ready task run until it blocks (no wall-clock sleeping)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_sharers_get_the_same_object_not_equal_copies() -> None:
    flight: SingleFlight[str, list[int]] = SingleFlight()
    gate = Gate()
    tasks = [asyncio.ensure_future(flight.run("k", gate)) for _ in range(3)]
    await gate.entered.wait()
    gate.release.set()
    first, second, third = await asyncio.gather(*tasks)
    assert first is second is third
    assert gate.calls == 1


async def test_an_uncontended_call_runs_its_own_load_and_returns_its_value() -> None:
    flight: SingleFlight[int, str] = SingleFlight()

    async def load() -> str:
        return "value"

    assert await flight.run(1, load) == "value"
    assert await flight.run(1, load) == "value"


async def test_the_same_key_loads_again_after_a_failure() -> None:
    flight: SingleFlight[str, list[int]] = SingleFlight()
    gate = Gate()
    gate.error = KeyError("missing")
    gate.release.set()
    with pytest.raises(KeyError):
        await flight.run("k", gate)
    gate.error = None
    assert await flight.run("k", gate) == [2], "a failure is not remembered"


async def test_waiters_get_the_loaders_exception_object() -> None:
    flight: SingleFlight[str, list[int]] = SingleFlight()
    gate = Gate()
    boom = RuntimeError("upstream down")
    gate.error = boom
    tasks = [asyncio.ensure_future(flight.run("k", gate)) for _ in range(3)]
    await gate.entered.wait()
    gate.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(result is boom for result in results)
    assert gate.calls == 1


async def test_a_cancelled_waiter_does_not_cancel_the_load_for_the_others() -> None:
    flight: SingleFlight[str, list[int]] = SingleFlight()
    gate = Gate()
    loader = asyncio.ensure_future(flight.run("k", gate))
    await gate.entered.wait()
    waiters = [asyncio.ensure_future(flight.run("k", gate)) for _ in range(3)]
    await settle()
    waiters[1].cancel()
    await settle()
    gate.release.set()
    assert await loader == [1]
    assert await waiters[0] == [1] and await waiters[2] == [1]
    assert waiters[1].cancelled()
    assert gate.calls == 1


async def test_when_the_loader_is_cancelled_exactly_one_waiter_takes_over() -> None:
    flight: SingleFlight[str, list[int]] = SingleFlight()
    gate = Gate()
    loader = asyncio.ensure_future(flight.run("k", gate))
    await gate.entered.wait()
    waiters = [asyncio.ensure_future(flight.run("k", gate)) for _ in range(4)]
    await settle()
    loader.cancel()
    await settle()
    gate.release.set()
    results = await asyncio.gather(*waiters)
    assert loader.cancelled()
    assert gate.calls == 2, "the cancelled load, then one replacement shared by all four waiters"
    assert all(result is results[0] for result in results)


async def test_a_cancelled_load_with_nobody_waiting_leaves_nothing_behind() -> None:
    flight: SingleFlight[str, list[int]] = SingleFlight()
    gate = Gate()
    loader = asyncio.ensure_future(flight.run("k", gate))
    await gate.entered.wait()
    loader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loader
    gate.release.set()
    assert await asyncio.wait_for(flight.run("k", gate), timeout=5) == [2], "the next caller loads afresh"


async def test_keys_are_compared_by_equality() -> None:
    flight: SingleFlight[tuple[str, int], list[int]] = SingleFlight()
    gate = Gate()
    first = asyncio.ensure_future(flight.run(("acct", 1), gate))
    await gate.entered.wait()
    second = asyncio.ensure_future(flight.run(("acct", int("1")), gate))
    different = asyncio.ensure_future(flight.run(("acct", 2), gate))
    await settle()
    gate.release.set()
    assert await first is await second
    assert await different == [2]
    assert gate.calls == 2
