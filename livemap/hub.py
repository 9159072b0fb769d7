"""One Redis pub/sub connection per process, fanned out to local sockets through bounded queues.

Messages arrive already encoded (Redis publishes the JSON text), so each is decoded once and the
same text goes to every local subscriber. A subscriber with too many messages not yet sent is a
slow consumer: it is dropped (its socket closes with 1013) rather than allowed to stall the
listener, and it loses nothing because its client reconnects with `since` and replays from the
order's stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from livemap.subscription import Subscription
from livemap.tasks import cancel

log = logging.getLogger("livemap.hub")

_SUBSCRIBE_TIMEOUT = 10.0


class Hub:
    """Routes Redis channels to local subscriptions. Use as an async context manager."""

    def __init__(self, client: aioredis.Redis, control_channel: str, queue_size: int) -> None:
        self._control = control_channel
        self._queue_size = queue_size
        self._pubsub = client.pubsub()
        self._subs: dict[bytes, set[Subscription]] = defaultdict(set)
        self._confirm: dict[bytes, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Hub:
        # The control subscription keeps the connection (and so the listener) alive while idle.
        await self._pubsub.subscribe(self._control)
        self._task = asyncio.create_task(self._listen(), name="livemap-hub")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await cancel(self._task)
        for subs in self._subs.values():
            for sub in subs:
                sub.drop()
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py

    @contextlib.asynccontextmanager
    async def subscribe(self, *channels: str, sub: Subscription | None = None) -> AsyncIterator[Subscription]:
        """Receive the messages published on `channels` from the moment this returns (into `sub`, if given)."""
        sub = Subscription(self._queue_size) if sub is None else sub
        names = [c.encode() for c in channels]
        try:
            for name in names:
                await self._add(name, sub)
            yield sub
        finally:
            for name in names:
                await self._remove(name, sub)

    async def _add(self, name: bytes, sub: Subscription) -> None:
        subs = self._subs[name]
        subs.add(sub)
        fut: asyncio.Future[None] | None
        if len(subs) == 1:
            fut = self._confirm[name] = asyncio.get_running_loop().create_future()
            await self._pubsub.subscribe(name)
        else:
            fut = self._confirm.get(name)  # another socket's SUBSCRIBE may still be in flight
        if fut is not None:
            await asyncio.wait_for(asyncio.shield(fut), _SUBSCRIBE_TIMEOUT)

    async def _remove(self, name: bytes, sub: Subscription) -> None:
        subs = self._subs.get(name)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._subs[name]
            self._confirm.pop(name, None)
            with contextlib.suppress(aioredis.RedisError):
                await self._pubsub.unsubscribe(name)

    async def _listen(self) -> None:
        while True:
            try:
                msg = await self._pubsub.get_message(timeout=None)
            except aioredis.RedisError as exc:
                # The connection broke: whatever was published meanwhile is lost to this process,
                # so every local subscriber is dropped and its client replays with `since`.
                log.warning("pub/sub connection lost (%s); dropping %d channels' subscribers", exc, len(self._subs))
                for subs in self._subs.values():
                    for sub in subs:
                        sub.drop()
                await asyncio.sleep(0.5)
                continue
            if msg is None:
                continue
            kind, channel = msg["type"], msg["channel"]
            if kind == "message":
                targets = self._subs.get(channel)
                if targets:
                    text = msg["data"].decode()  # decoded once, sent as-is to every local socket
                    for sub in tuple(targets):
                        sub.put(text)
            elif kind == "subscribe":
                fut = self._confirm.pop(channel, None)
                if fut is not None and not fut.done():
                    fut.set_result(None)
