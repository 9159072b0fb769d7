"""The Redis side of the hub: which connections carry a process's subscriptions.

- `ClassicChannels`: one connection, SUBSCRIBE. On one Redis, and on a Cluster without sharded
  pub/sub (PUBLISH reaches every node over the cluster bus, so any one node will do).
- `ShardedChannels`: on a Cluster of Redis 7+, SSUBSCRIBE on the master that owns each channel's
  slot, where SPUBLISH delivers it: one connection (and listener task) per master in use. When a
  slot moves, Redis unsubscribes its channels (SUNSUBSCRIBE pushed to us) and answers a late
  SSUBSCRIBE with MOVED: either way the slot map is reloaded and those channels are lost.

Both report to the hub through `Events`. A channel is *lost* when its connection broke or Redis
dropped it (its slot moved to another node): what was published meanwhile never reaches this
process, so the hub drops that channel's subscribers (their clients replay with `since`) and the
channel is forgotten here; the next subscriber subscribes afresh, on whichever node owns it then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from typing import Any, Protocol

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import MovedError, SlotNotCoveredError

from livemap.tasks import cancel

log = logging.getLogger("livemap.hub")

#: Pause before reconnecting a classic connection that broke (Redis restarting, a network blip).
_RECONNECT_S = 0.5
#: Longest a subscriber waits for a broken classic connection to be back.
_UP_TIMEOUT_S = 10.0
#: Most bytes read from the pub/sub socket at once (a burst of messages is parsed in one go).
_CHUNK = 1 << 16


class Events(Protocol):
    def message(self, channel: bytes, data: bytes) -> None: ...

    def subscribed(self, channel: bytes) -> None: ...

    def lost(self, channels: Collection[bytes]) -> None: ...


def node_client(node: ClusterNode) -> aioredis.Redis:
    """A plain client of one Cluster node, with the node's own connection settings (auth, TLS, timeouts)."""
    pool = aioredis.ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs)
    return aioredis.Redis.from_pool(pool)


class ClassicChannels:
    """All of a process's channels on one connection (SUBSCRIBE).

    `client_for` gives the client whose settings (address, auth, TLS) the connection is made with,
    again after each break; `owned`: whether those clients are ours to close (a Cluster node's: any
    node will do, so a failed one is not retried).

    The connection is redis-py's (so every connection setting applies), but its replies are read
    here: each chunk the socket gives is fed to one hiredis reader and every message in it handed
    to the hub at once. redis-py's pub/sub reads one reply per await through five layers (a retry
    wrapper, the connection, the parser, its push handler, the message dict), and a process
    receives one message per driver fix and order event.
    """

    def __init__(self, client_for: Callable[[], aioredis.Redis], control: str, events: Events, *, owned: bool) -> None:
        self._client_for, self._owned = client_for, owned
        self._control, self._events = control.encode(), events
        self._client = client_for()
        self._conn: AbstractConnection | None = None
        self._channels: set[bytes] = set()
        # Set while the connection is up; subscribers wait for it after a break, so that none
        # subscribes on a connection that nobody will read.
        self._up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._conn = await self._open(self._client)
        self._up.set()
        self._task = asyncio.create_task(self._listen(), name="livemap-hub")

    async def stop(self) -> None:
        await cancel(self._task)
        if self._conn is not None:
            await self._conn.disconnect()
        if self._owned:
            await self._client.aclose()

    # check_health=False below: a health check would read the connection's reply itself, and the
    # replies here belong to `_listen`.
    async def subscribe(self, channel: bytes) -> None:
        await asyncio.wait_for(self._up.wait(), _UP_TIMEOUT_S)
        assert self._conn is not None
        self._channels.add(channel)
        await self._conn.send_command("SUBSCRIBE", channel, check_health=False)

    async def unsubscribe(self, channel: bytes) -> None:
        if channel in self._channels and self._conn is not None:
            self._channels.discard(channel)
            await self._conn.send_command("UNSUBSCRIBE", channel, check_health=False)

    async def _open(self, client: aioredis.Redis) -> AbstractConnection:
        """A new connection with `client`'s settings, subscribed to the control channel (so that it
        has a subscription from the start and Redis treats it as a subscriber)."""
        pool = client.connection_pool
        conn: AbstractConnection = pool.connection_class(**pool.connection_kwargs)
        try:
            await conn.connect()  # type: ignore[no-untyped-call]  # unannotated in redis-py
            await conn.send_command("SUBSCRIBE", self._control, check_health=False)
        except BaseException:
            await conn.disconnect()
            raise
        return conn

    async def _listen(self) -> None:
        while True:
            assert self._conn is not None
            stream = self._conn._reader  # the connection's socket, read here (see the class doc)
            replies = hiredis.Reader()
            try:
                if stream is None:
                    raise ConnectionError("not connected")
                while chunk := await stream.read(_CHUNK):
                    replies.feed(chunk)
                    while (reply := replies.gets()) is not False:
                        self._handle(reply)
                raise ConnectionError("Redis closed the connection")
            except (OSError, aioredis.RedisError, hiredis.ProtocolError) as exc:
                await self._reconnect(exc)

    def _handle(self, reply: Any) -> None:
        # A list in RESP2, a push (a list subclass) when the connection speaks RESP3.
        if not isinstance(reply, list) or len(reply) < 2:
            log.warning("unexpected reply on the pub/sub connection: %r", reply)
            return
        kind, channel = reply[0], reply[1]
        if kind == b"message":
            # Thousands a second: handed on as Redis sent them.
            self._events.message(channel, reply[2])
        elif kind == b"subscribe" and channel != self._control:
            self._events.subscribed(channel)

    async def _reconnect(self, exc: Exception) -> None:
        self._up.clear()
        lost, self._channels = self._channels, set()
        log.warning("pub/sub connection lost (%s); dropping %d channels' subscribers", exc, len(lost))
        self._events.lost(lost)
        await self._discard(self._client, self._conn)
        self._conn = None
        while True:
            await asyncio.sleep(_RECONNECT_S)
            client = self._client_for() if self._owned else self._client
            try:
                conn = await self._open(client)
            except (OSError, aioredis.RedisError) as again:
                log.warning("pub/sub connection: %s; retrying", again)
                await self._discard(client, None)
                continue
            self._client, self._conn = client, conn
            self._up.set()
            return

    async def _discard(self, client: aioredis.Redis, conn: AbstractConnection | None) -> None:
        with contextlib.suppress(aioredis.RedisError, OSError):
            if conn is not None:
                await conn.disconnect()
            if self._owned:
                await client.aclose()


class _Shard:
    """One master's connection and its listener."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.pubsub: PubSub = client.pubsub()
        self.channels: set[bytes] = set()
        self.leaving: set[bytes] = set()  # SUNSUBSCRIBEs we sent, whose confirmation is still to come
        self.task: asyncio.Task[None] | None = None


class ShardedChannels:
    """Each channel on the connection to the master that owns its slot (SSUBSCRIBE)."""

    def __init__(self, cluster: aioredis.RedisCluster, events: Events) -> None:
        self._cluster, self._events = cluster, events
        self._shards: dict[str, _Shard] = {}  # by node name (host:port)
        self._home: dict[bytes, _Shard] = {}  # channel -> its shard
        self._opening = asyncio.Lock()  # one connection per master, even when its first subscribers come together
        self._refreshing: asyncio.Future[None] | None = None

    async def start(self) -> None:
        pass  # a master's connection opens with its first channel

    async def stop(self) -> None:
        for name in list(self._shards):
            await self._close(name)

    async def subscribe(self, channel: bytes) -> None:
        node = self._cluster.get_node_from_key(channel.decode())
        if node is None:
            raise SlotNotCoveredError(f"no node serves the slot of {channel!r}")
        shard = self._shards.get(node.name) or await self._open(node)
        shard.channels.add(channel)
        self._home[channel] = shard
        await shard.pubsub.ssubscribe(channel)
        if self._shards.get(node.name) is not shard and channel in shard.channels:
            # It broke before we added the channel (when it broke after, it reported the channel lost).
            self._home.pop(channel, None)
            self._events.lost((channel,))

    async def _open(self, node: ClusterNode) -> _Shard:
        async with self._opening:
            shard = self._shards.get(node.name)
            if shard is None:
                shard = _Shard(node_client(node))
                try:
                    await shard.pubsub.connect()  # type: ignore[no-untyped-call]  # unannotated in redis-py
                except BaseException:
                    await shard.client.aclose()
                    raise
                shard.task = asyncio.create_task(self._listen(node.name, shard), name=f"livemap-hub-{node.name}")
                self._shards[node.name] = shard
            return shard

    async def unsubscribe(self, channel: bytes) -> None:
        shard = self._home.pop(channel, None)
        if shard is not None:
            shard.channels.discard(channel)
            shard.leaving.add(channel)
            await shard.pubsub.sunsubscribe(channel)

    async def _listen(self, name: str, shard: _Shard) -> None:
        while True:
            try:
                msg: dict[str, Any] | None = await shard.pubsub.get_message(timeout=None)
            except MovedError as exc:  # an SSUBSCRIBE reached this node after its slot had moved on
                await self._refresh()
                self._forget(shard, [c for c in shard.channels if self._cluster.keyslot(c) == exc.slot_id])
                continue
            except aioredis.RedisError as exc:
                # The connection broke: this master's channels are lost, whatever was published meanwhile too.
                log.warning("sharded pub/sub connection to %s lost (%s)", name, exc)
                await self._close(name)
                return
            if msg is None:
                continue
            kind, channel = msg["type"], msg["channel"]
            if kind == "smessage":
                self._events.message(channel, msg["data"])
            elif kind == "ssubscribe":
                self._events.subscribed(channel)
            elif kind == "sunsubscribe":
                if channel in shard.leaving:
                    shard.leaving.discard(channel)
                elif channel in shard.channels:
                    # Redis dropped it: its slot moved to another master. Learn where before anyone
                    # subscribes again, so that subscription goes to the new owner.
                    await self._refresh()
                    self._forget(shard, [channel])

    def _forget(self, shard: _Shard, channels: list[bytes]) -> None:
        for channel in channels:
            shard.channels.discard(channel)
            self._home.pop(channel, None)
            shard.pubsub.shard_channels.pop(channel, None)  # so a reconnect does not subscribe it again
        if channels:
            self._events.lost(channels)

    async def _refresh(self) -> None:
        """Reload the Cluster's slot map (a slot moved); one reload at a time, however many channels it moved."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._cluster.nodes_manager.initialize())
        try:
            await asyncio.shield(self._refreshing)
        except aioredis.RedisError as exc:
            log.warning("could not reload the Cluster's slot map: %s", exc)

    async def _close(self, name: str) -> None:
        shard = self._shards.pop(name, None)
        if shard is None:
            return
        lost, shard.channels = shard.channels, set()
        for channel in lost:
            self._home.pop(channel, None)
        if lost:
            log.warning("dropping %d channels' subscribers of %s", len(lost), name)
            self._events.lost(lost)
        if shard.task is not None and shard.task is not asyncio.current_task():
            await cancel(shard.task)
        with contextlib.suppress(aioredis.RedisError, OSError):
            await shard.pubsub.aclose()
        await shard.client.aclose()
