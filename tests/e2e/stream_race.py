"""Many streaming SDK clients racing against a tiny limit (a cap, a prepaid balance) through the real gateway.

`hammer` runs 64 clients, each sending 3 streaming chat requests one after another (the mock upstream answers
after 40 ms, so many are in flight at once); `total_cost` sums what the events recorded cost.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import openai

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway

__all__ = ["CLIENTS", "HEADERS", "MESSAGES", "REQUESTS_PER_CLIENT", "hammer", "total_cost"]

CLIENTS = 64
REQUESTS_PER_CLIENT = 3
MESSAGES = [{"role": "user", "content": "Count to fifty."}]
HEADERS = {"x-mock-latency-ms": "40", "x-mock-output-tokens": "50"}


async def hammer(gateway: Gateway, secrets: list[str]) -> tuple[int, list[openai.APIStatusError]]:
    """64 streaming clients, each sending requests one after another: (successes, refusals)."""
    clients = [
        openai.AsyncOpenAI(api_key=secret, base_url=f"{gateway.url}/v1", max_retries=0, default_headers=HEADERS)
        for secret in secrets
    ]
    refusals: list[openai.APIStatusError] = []
    successes = 0

    async def client(n: int) -> None:
        nonlocal successes
        sdk = clients[n % len(clients)]
        for _ in range(REQUESTS_PER_CLIENT):
            try:
                stream = await sdk.chat.completions.create(
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
        for sdk in clients:
            await sdk.close()
    return successes, refusals


def total_cost(events: list[dict[str, Any]]) -> int:
    return sum(int(event["cost_nano"]) for event in events)
