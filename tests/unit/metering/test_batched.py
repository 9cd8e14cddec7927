"""`Batched`: calls made while one batch is out go together in the next; each call gets its own answer or its
batch's error; a call whose caller was cancelled is still sent, and its answer heard."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from farebox.metering.batched import Batched

pytestmark = pytest.mark.anyio


class Server:
    """Answers each item doubled, after a turn of the event loop; remembers its batches."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.fail = False

    async def send(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(0.01)
        if self.fail:
            raise ConnectionError("down")
        return [item * 2 for item in items]


async def test_calls_made_while_a_batch_is_out_go_together_in_the_next() -> None:
    server = Server()
    batched: Batched[int, int] = Batched(server.send)
    assert await batched.call(1) == 2  # alone: at once
    answers = await asyncio.gather(*(batched.call(n) for n in range(10)))  # in one turn of the loop: one batch
    assert answers == [n * 2 for n in range(10)]
    first = asyncio.ensure_future(batched.call(100))
    await asyncio.sleep(0)  # its batch is out
    later = await asyncio.gather(*(batched.call(n) for n in range(3)))
    assert (await first, later) == (200, [0, 2, 4])
    assert server.batches == [[1], list(range(10)), [100], [0, 1, 2]]


async def test_a_failed_batch_fails_each_of_its_calls() -> None:
    server = Server()
    server.fail = True
    batched: Batched[int, int] = Batched(server.send)
    results = await asyncio.gather(*(batched.call(n) for n in range(3)), return_exceptions=True)
    assert [type(result) for result in results] == [ConnectionError] * 3
    server.fail = False
    assert await batched.call(4) == 8


async def test_a_cancelled_call_is_still_sent_and_its_answer_heard() -> None:
    server = Server()
    heard: list[tuple[int, int]] = []
    batched: Batched[int, int] = Batched(server.send, on_abandoned=lambda item, answer: heard.append((item, answer)))
    call = asyncio.ensure_future(batched.call(21))
    await asyncio.sleep(0)
    call.cancel()
    await asyncio.sleep(0.05)
    assert server.batches == [[21]] and heard == [(21, 42)]
