"""The outcome of each send, met by whoever comes second: the sender waiting, or the shard delivering it."""

from __future__ import annotations

import asyncio
from typing import Union

from qqproto import MessageFailed, MessageSent

__all__ = ["Outcome", "Outcomes"]

Outcome = Union[MessageSent, MessageFailed]
#: (shard index, send_id): send ids count per connection.
Key = tuple[int, int]


class Outcomes:
    """Send outcomes by shard and send id, on the application's loop."""

    def __init__(self) -> None:
        self._waiting: dict[Key, asyncio.Future[Outcome]] = {}
        self._early: dict[Key, Outcome] = {}

    async def wait(self, key: Key) -> Outcome:
        """The outcome of the send ``key``, once its shard delivers it."""
        outcome = self._early.pop(key, None)
        if outcome is not None:
            return outcome
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        return await future

    def arrived(self, key: Key, outcome: Outcome) -> None:
        """A shard delivered the outcome of ``key``."""
        future = self._waiting.pop(key, None)
        if future is None:
            self._early[key] = outcome
        elif not future.done():
            future.set_result(outcome)

    def fail_all(self, error: Exception) -> None:
        """The shards are gone: every send still waiting fails with ``error``."""
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(error)
        self._waiting.clear()
        self._early.clear()
