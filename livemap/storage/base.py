"""The repository's shared part: connections, credentials, and queuing an order's events and notices.

`Repository` (repository.py) stacks one class per aggregate on top of this: stores, orders,
drivers. An order's hash is the truth about it; the store's active set and each driver's run are
indexes in other Redis Cluster slots, kept so that a reader may find an order there that no longer
belongs (readers check the order) but never misses one that does.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import cast

import msgspec
from redis.typing import EncodableT, FieldT

from livemap.domain import security
from livemap.domain.records import Order, Principal, text
from livemap.storage.db import STEPS, Batch, Db
from livemap.storage.keys import Keys
from livemap.storage.secretbox import SecretBox

json_encoder = msgspec.json.Encoder()
StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]
#: Outbox entries kept (approximately).
OUTBOX_MAXLEN = 100_000
_EMIT = STEPS["emit"]


class RepositoryBase:
    """Connections and what every aggregate's writes share."""

    def __init__(self, db: Db, keys: Keys, *, stream_maxlen: int, box: SecretBox) -> None:
        self.db = db
        self.redis = db.client
        self.keys = keys
        self.stream_maxlen = stream_maxlen
        #: Seals the secrets stored in settings and orders (see secretbox).
        self.box = box

    # --- credentials -----------------------------------------------------------------------------

    def tracking_token(self, order: Order) -> str:
        """The customer's `t` of `order`, for the links livemap hands out."""
        return self.box.open(order["token_sealed"]) if order["token_sealed"] else order["token"]

    async def principal(self, token: str) -> Principal | None:
        """The store or driver a token belongs to, or None."""
        if not token:
            return None
        value = await self.redis.get(self.keys.credential(security.digest(token)))
        if value is None:
            return None
        kind, store_id, driver_id = text(value).split("\x1f")
        return Principal(kind, store_id, driver_id)

    def _credential(self, token: str, principal: Principal) -> tuple[str, str]:
        return self.keys.credential(security.digest(token)), "\x1f".join(
            (principal.kind, principal.store_id, principal.driver_id)
        )

    def emit(self, b: Batch, tid: str, did: str, body: bytes) -> None:
        """Queue: append `body` to the order's stream and publish it, if the order is still live for driver `did`."""
        k = self.keys
        args: list[EncodableT] = [did, self.stream_maxlen, b.publish_command, k.order_channel(tid), body]
        b.script(_EMIT, [k.order(tid), k.order_events(tid)], args)

    @staticmethod
    def new_notice() -> str:
        """A token tying a notifiable event to the outbox entry that announces it."""
        return secrets.token_hex(8)

    def announce(self, b: Batch, sid: str, tid: str, dispatch: bytes, token: str) -> None:
        """Queue the outbox entry of a notifiable event of order `tid`; its event must carry `token`."""
        entry: dict[FieldT, EncodableT] = {"store": sid, "tracking_id": tid, "data": dispatch, "notice": token}
        b.pipe.xadd(self.keys.outbox(), entry, maxlen=OUTBOX_MAXLEN, approximate=True)

    async def outbox_figures(self) -> tuple[int, int]:
        """Notifications not yet delivered (never read, read but unfinished, waiting to retry), and dead letters."""
        outbox, k = self.keys.outbox(), self.keys
        groups = await self.redis.xinfo_groups(outbox) if await self.redis.exists(outbox) else []
        if groups:  # a worker has read: what its group has not read yet (lag) or not finished (pending)
            waiting = sum(int(g.get("lag") or 0) + int(g.get("pending") or 0) for g in groups)
        else:  # no worker ever ran: every entry still waits
            waiting = int(await self.redis.xlen(outbox))
        delayed = int(await self.redis.zcard(k.outbox_delayed()))
        return waiting + delayed, int(await self.redis.xlen(k.outbox_dead()))

    async def has_notice(self, tid: str, token: str) -> bool:
        """Whether order `tid` stored the event that `token` announces."""
        return bool(await self.redis.sismember(self.keys.order_notices(tid), token))

    async def publish_all(self, channel: str, messages: Sequence[EncodableT]) -> None:
        def queue(b: Batch) -> None:
            for message in messages:
                b.publish(channel, message)

        await self.db.run(queue)

    async def events_after(self, tid: str, offset: str) -> list[tuple[str, str]]:
        """Stored events with an id greater than `offset`: (offset, JSON without the offset)."""
        entries = await self.redis.xrange(self.keys.order_events(tid), min=f"({offset}", max="+")
        return [(text(eid), text(f[b"data"])) for eid, f in cast(StreamEntries, entries)]
