"""Many streaming SDK clients racing against a tiny limit (a cap, a prepaid balance) through the real gateway.

`hammer` runs 64 clients, each sending 3 streaming chat requests one after another (the mock upstream answers
after 40 ms, so many are in flight at once); `total_cost` sums what the events recorded cost.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any

import openai

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway

__all__ = ["CLIENTS", "HEADERS", "MESSAGES", "REQUESTS_PER_CLIENT", "hammer", "race", "sdk", "total_cost"]

CLIENTS = 64
REQUESTS_PER_CLIENT = 3
MESSAGES = [{"role": "user", "content": "Count to fifty."}]
HEADERS = {"x-mock-latency-ms": "40", "x-mock-output-tokens": "50"}


async def hammer(gateway: Gateway, secrets: list[str]) -> tuple[int, list[openai.APIStatusError]]:
    """64 streaming clients, each sending requests one after another with one of the keys: (successes, refusals)."""
    return await race([sdk(gateway.url, secret) for secret in secrets], per_request=False)


def sdk(url: str, secret: str) -> openai.AsyncOpenAI:
    """The OpenAI SDK on a gateway at `url` with a virtual key, the mock's latency and length set."""
    return openai.AsyncOpenAI(api_key=secret, base_url=f"{url}/v1", max_retries=0, default_headers=HEADERS)


async def race(clients: list[openai.AsyncOpenAI], *, per_request: bool) -> tuple[int, list[openai.APIStatusError]]:
    """`CLIENTS` streaming clients, each sending `REQUESTS_PER_CLIENT` requests one after another: client n through
    `clients[n % len(clients)]`, or (`per_request`) every request through the next of `clients` in turn, as a
    round-robin load balancer sends them. (successes, refusals); the clients are closed after."""
    refusals: list[openai.APIStatusError] = []
    successes = 0
    turn = itertools.cycle(clients)

    async def client(n: int) -> None:
        nonlocal successes
        for _ in range(REQUESTS_PER_CLIENT):
            chosen = next(turn) if per_request else clients[n % len(clients)]
            try:
                stream = await chosen.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=MESSAGES,
                    max_tokens=50,
                    stream=True,  # type: ignore[arg-type]
                )
                async for _chunk in stream:
                    pass
                successes += 1
            except openai.APIStatusError as exc:
                refusals.append(exc)

    try:
        await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    finally:
        for each in clients:
            await each.close()
    return successes, refusals


def total_cost(events: list[dict[str, Any]]) -> int:
    return sum(int(event["cost_nano"]) for event in events)
