"""One Redis subscription set per process, fanned out to local sockets through bounded queues.

Messages arrive already encoded (Redis publishes the JSON text), so each is decoded once and the
same text goes to every local subscriber. A subscriber with too many messages not yet sent is a
slow consumer: it is dropped (its socket closes with 1013) rather than allowed to stall the
listener, and it loses nothing because its client reconnects with `since` and replays from the
order's stream. The same happens to a channel's subscribers when its Redis connection breaks
(see `pubsub`).

`subscribe` returns once Redis confirmed the subscription, so whatever is read after it (the
customer socket's snapshot) cannot miss a message published later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Collection

import redis.asyncio as aioredis

from livemap.realtime.mailbox import Subscription
from livemap.realtime.pubsub import ClassicChannels, ShardedChannels, node_client
from livemap.storage.db import Db

_SUBSCRIBE_TIMEOUT = 10.0


class Hub:
    """Routes Redis channels to local subscriptions. Use as an async context manager."""

    def __init__(self, db: Db, control_channel: str, queue_size: int) -> None:
        self._queue_size = queue_size
        self._subs: dict[bytes, set[Subscription]] = defaultdict(set)
        self._confirm: dict[bytes, asyncio.Future[None]] = {}
        self._channels: ClassicChannels | ShardedChannels
        client = db.client
        if isinstance(client, aioredis.Redis):
            self._channels = ClassicChannels(lambda: client, control_channel, self, owned=False)
        elif db.sharded:
            self._channels = ShardedChannels(client, self)
        else:  # a Cluster without sharded pub/sub: a PUBLISH reaches every node, so any one will do
            self._channels = ClassicChannels(
                lambda: node_client(client.get_random_node()), control_channel, self, owned=True
            )

    async def __aenter__(self) -> Hub:
        await self._channels.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._channels.stop()
        for subs in self._subs.values():
            for sub in subs:
                sub.drop()

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
            await self._channels.subscribe(name)
        else:
            fut = self._confirm.get(name)  # another socket's SUBSCRIBE may still be in flight
        if fut is not None:
            await asyncio.wait_for(asyncio.shield(fut), _SUBSCRIBE_TIMEOUT)

    async def _remove(self, name: bytes, sub: Subscription) -> None:
        subs = self._subs.get(name)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        if not subs:
            del self._subs[name]
            self._confirm.pop(name, None)
            with contextlib.suppress(aioredis.RedisError):
                await self._channels.unsubscribe(name)

    # --- called by the Redis side (pubsub) -------------------------------------------------------

    def message(self, channel: bytes, data: bytes) -> None:
        targets = self._subs.get(channel)
        if targets:
            text = data.decode()  # decoded once, sent as-is to every local socket
            for sub in tuple(targets):
                sub.put(text)

    def subscribed(self, channel: bytes) -> None:
        fut = self._confirm.pop(channel, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def lost(self, channels: Collection[bytes]) -> None:
        """Redis no longer sends these channels: their subscribers are dropped (their clients replay with
        `since`) and the channels forgotten, so the next subscriber subscribes them again."""
        for channel in channels:
            for sub in self._subs.pop(channel, ()):
                sub.drop()
            self.subscribed(channel)  # a subscriber waiting for its confirmation finds itself dropped
