"""The dashboard's list of a store's orders: newest first, filtered, a page at a time (domain/orderlist.py).

The store's `placed` index (tracking ids by the time each order was placed) is kept by `create_order`
and retention. Orders made before it existed are put in it the first time the list finds the index
holding fewer orders than the store has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from livemap.domain.orderlist import FIELDS
from livemap.domain.records import Order, text
from livemap.storage.export import ExportRecords

#: Index entries read per round trip.
PAGE = 200
#: Orders one request reads at most: a filter that keeps few orders answers with a cursor to go on from.
SCAN_LIMIT = 5000


class ListingRecords(ExportRecords):
    """A store's orders, newest placed first."""

    async def list_orders(
        self, sid: str, keep: Callable[[Order], bool], limit: int, since_ms: int, until_ms: int,
        cursor: tuple[int, int] | None,
    ) -> tuple[list[Order], tuple[int, int] | None]:  # fmt: skip
        """Up to `limit` orders placed in [since_ms, until_ms) that `keep` keeps, newest first, from `cursor`
        (placed ms, orders of that ms already read); and the cursor to go on from, None at the end."""
        await self._index_older_orders(sid)
        key = self.keys.store_placed(sid)
        top, skip = cursor if cursor else (until_ms - 1, 0)
        found: list[Order] = []
        for _ in range(SCAN_LIMIT // PAGE):
            rows = await self.redis.zrevrangebyscore(key, top, since_ms, start=skip, num=PAGE, withscores=True)
            if not rows:
                return found, None
            listed = [(text(t), int(score)) for t, score in cast(list[tuple[bytes, float]], rows)]
            orders = await self._rows([tid for tid, _ in listed])
            for (_, placed), order in zip(listed, orders, strict=True):
                # Orders of one millisecond come in a fixed order: the cursor counts those read.
                top, skip = (top, skip + 1) if placed == top else (placed, 1)
                if order is not None and keep(order):
                    found.append(order)
                    if len(found) == limit:
                        return found, (top, skip)
        return found, (top, skip)

    async def _rows(self, tids: list[str]) -> list[Order | None]:
        """The list's fields of each order (None for one deleted meanwhile)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for tid in tids:
                pipe.hmget(self.keys.order(tid), FIELDS)
            replies = await pipe.execute()
        out: list[Order | None] = []
        for values in replies:
            raw = {f: text(v) for f, v in zip(FIELDS, values, strict=True) if v is not None}
            out.append(Order(raw) if raw.get("tid") else None)
        return out

    async def _index_older_orders(self, sid: str) -> None:
        """Put the store's orders that are not in its `placed` index there (orders made before it existed)."""
        k = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(k.store_placed(sid))
            pipe.hlen(k.store_orders(sid))
            indexed, total = await pipe.execute()
        if indexed >= total:
            return
        cursor = 0
        while True:
            cursor, page = await self.redis.hscan(k.store_orders(sid), cursor, count=500)
            tids = [text(t) for t in cast(dict[bytes, bytes], page).values()]
            if tids:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for tid in tids:
                        pipe.hget(k.order(tid), "created")
                    created = await pipe.execute()
                # An id whose order never got written (a crash in between) goes in at 0: counted, never shown.
                placed = {tid: int(c or 0) for tid, c in zip(tids, created, strict=True)}
                await self.redis.zadd(k.store_placed(sid), placed, nx=True)
            if cursor == 0:
                return
