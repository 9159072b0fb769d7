"""Reading a store's orders in pages, for exports: constant memory however many it has."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

from livemap.domain.records import Order, decode_hash, decode_history, text
from livemap.domain.responses import HistoryEntry
from livemap.storage.retention import RetentionRecords

#: Orders read per round trip (and held at once).
EXPORT_PAGE = 500


class ExportRecords(RetentionRecords):
    """A store's orders, page after page."""

    async def order_pages(self, sid: str) -> AsyncIterator[list[tuple[Order, list[HistoryEntry]]]]:
        """Every order of store `sid` with its history, EXPORT_PAGE at a time (HSCAN of its order index)."""
        cursor: int = 0
        while True:
            cursor, page = await self.redis.hscan(self.keys.store_orders(sid), cursor, count=EXPORT_PAGE)
            tids = [text(t) for t in cast(dict[bytes, bytes], page).values()]
            if tids:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for tid in tids:
                        pipe.hgetall(self.keys.order(tid))
                        pipe.lrange(self.keys.order_history(tid), 0, -1)
                    replies = await pipe.execute()
                pairs = zip(replies[::2], replies[1::2], strict=True)
                rows = [(Order(decode_hash(raw)), decode_history(history)) for raw, history in pairs]
                yield [(order, history) for order, history in rows if order["tid"]]  # one swept meanwhile: gone
            if cursor == 0:
                return
