"""A local subscriber's mailbox: the hub puts published messages in, the subscriber's socket takes them out.

Kept small on purpose: a process holds one per connected customer, so what an idle one costs is
what limits how many customers a process can hold. It is a list and two slots, with no queue
object and no task waiting on it: a reader is either woken through `on_ready` (the socket
forwarder, which starts a task only while there is something to send) or waits in `get`.

Bounded: a subscriber with `limit` messages not yet taken is a slow consumer. It is dropped
rather than allowed to grow without end or stall the hub; it loses nothing, because its client
reconnects with `since` and replays from the order's stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Subscription:
    __slots__ = ("_limit", "_pending", "_waiter", "dropped", "on_ready")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._pending: list[str] = []
        self._waiter: asyncio.Future[None] | None = None
        self.dropped = False
        #: Called (synchronously, from the hub's listener) when messages arrive or the subscriber is dropped.
        self.on_ready: Callable[[], None] | None = None

    def put(self, data: str) -> None:
        if self.dropped:
            return
        if len(self._pending) >= self._limit:
            self.drop()
            return
        self._pending.append(data)
        self._ready()

    def drop(self) -> None:
        """Stop this subscriber: what it has not taken is discarded; its reader learns it from `dropped`."""
        if not self.dropped:
            self.dropped = True
            self._pending.clear()
            self._ready()

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def take(self) -> list[str]:
        """Every message not taken yet, oldest first."""
        taken, self._pending = self._pending, []
        return taken

    async def get(self) -> list[str] | None:
        """Wait for messages and take them; None once the subscriber was dropped."""
        while not self._pending and not self.dropped:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return None if self.dropped else self.take()

    def _ready(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self.on_ready is not None:
            self.on_ready()
