"""SingleFlight: callers of one key share a load; a failure reaches them all; a cancelled loader is replaced."""

from __future__ import annotations

import asyncio

import pytest

from farebox.core.singleflight import SingleFlight

pytestmark = pytest.mark.anyio


class Loads:
    def __init__(self, *, fail: bool = False) -> None:
        self.started = 0
        self.release = asyncio.Event()
        self.fail = fail

    async def __call__(self) -> int:
        self.started += 1
        number = self.started
        await self.release.wait()
        if self.fail:
            raise LookupError("gone")
        return number


async def test_concurrent_callers_of_one_key_share_one_load_and_other_keys_load_apart() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    loads = Loads()
    same = [asyncio.ensure_future(flight.run("a", loads)) for _ in range(5)]
    other = asyncio.ensure_future(flight.run("b", loads))
    await asyncio.sleep(0)
    loads.release.set()
    assert await asyncio.gather(*same) == [1] * 5
    assert await other == 2
    assert await flight.run("a", loads) == 3, "a finished load is not kept: the next caller loads again"


async def test_a_failed_load_fails_every_caller_that_shared_it() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    loads = Loads(fail=True)
    callers = [asyncio.ensure_future(flight.run("a", loads)) for _ in range(3)]
    await asyncio.sleep(0)
    loads.release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert loads.started == 1 and all(isinstance(result, LookupError) for result in results)


async def test_a_cancelled_waiter_leaves_the_load_and_a_cancelled_loader_is_replaced() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    loads = Loads()
    loader = asyncio.ensure_future(flight.run("a", loads))
    await asyncio.sleep(0)
    quitter = asyncio.ensure_future(flight.run("a", loads))
    waiter = asyncio.ensure_future(flight.run("a", loads))
    await asyncio.sleep(0)
    quitter.cancel()
    await asyncio.sleep(0)
    assert quitter.cancelled() and not loader.done()
    loader.cancel()  # the caller running the load goes away: the waiter starts a load of its own
    await asyncio.sleep(0)
    loads.release.set()
    assert await waiter == 2
    assert loader.cancelled()
