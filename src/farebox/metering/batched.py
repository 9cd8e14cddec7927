"""Calls that wait for one in flight go out together: one round trip for all of them, as the ledger groups commits.

`Batched(send).call(item)` puts `item` in the next batch and waits for its answer. The first call starts a task
that sends a batch (`send(items) -> answers`, one answer per item, in order), then the next batch if calls came
meanwhile, until none are left: one call alone goes at once, and under load each round trip carries every call
that came while the one before was out. A batch that fails fails each of its calls with the same error.

The sending task does not belong to any caller: a caller cancelled while waiting does not stop its item from
being sent, and `on_abandoned(item, answer)` hears what an abandoned item was answered (a hold made for a request
that is gone is given back there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Batched"]

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class Batched(Generic[Item, Answer]):
    """Items sent in batches, one batch in flight at a time."""

    def __init__(
        self,
        send: Callable[[Sequence[Item]], Awaitable[Sequence[Answer]]],
        *,
        on_abandoned: Callable[[Item, Answer], None] | None = None,
    ) -> None:
        self._send = send
        self._on_abandoned = on_abandoned
        self._pending: list[tuple[Item, asyncio.Future[Answer]]] = []
        self._sending: asyncio.Task[None] | None = None

    async def call(self, item: Item) -> Answer:
        """Send `item` with the next batch; its answer.

        Raises:
            Exception: what sending its batch raised.
        """
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._sending is None:
            self._sending = asyncio.ensure_future(self._send_all())
        return await future

    async def _send_all(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    answers = await self._send([item for item, _future in batch])
                except Exception as exc:  # every call of the batch fails with it
                    for _item, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (item, future), answer in zip(batch, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
                    elif self._on_abandoned is not None:
                        self._on_abandoned(item, answer)
        finally:
            self._sending = None
