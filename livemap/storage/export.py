"""Reading a store's orders and returns in pages, for exports: constant memory however many it has."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

from livemap.domain.records import Order, decode_hash, decode_history, text
from livemap.domain.responses import HistoryEntry
from livemap.domain.returns import ReturnRecord
from livemap.storage.retention import RetentionRecords

#: Orders read per round trip (and held at once).
EXPORT_PAGE = 500


class ExportRecords(RetentionRecords):
    """A store's orders, and its returns, page after page."""

    async def order_pages(self, sid: str) -> AsyncIterator[list[tuple[Order, list[HistoryEntry]]]]:
        """Every order of store `sid` with its history, EXPORT_PAGE at a time (HSCAN of its order index)."""
        cursor: int = 0
        while True:
            cursor, page = await self.redis.hscan(self.keys.store_orders(sid), cursor, count=EXPORT_PAGE)
            tids = [text(t) for t in cast(dict[bytes, bytes], page).values()]
            if tids:
                yield await self._with_history(tids)
            if cursor == 0:
                return

    async def return_pages(
        self, sid: str, start_ms: int, end_ms: int
    ) -> AsyncIterator[list[tuple[Order, ReturnRecord, list[HistoryEntry]]]]:
        """The returns of store `sid` asked for in [start_ms, end_ms), oldest first, EXPORT_PAGE at a time, each
        with its order and the order's history (ZRANGEBYSCORE of its returns index, by request time)."""
        low, skip = start_ms, 0
        while True:
            page = cast(
                list[tuple[bytes, float]],
                await self.redis.zrangebyscore(
                    self.keys.store_returns(sid), low, f"({end_ms}", start=skip, num=EXPORT_PAGE, withscores=True
                ),
            )
            if not page:
                return
            rows = await self._with_history([text(t) for t, _ in page])
            yield [(order, r, history) for order, history in rows if (r := self.return_of(order)) is not None]
            if len(page) < EXPORT_PAGE:
                return
            # The next page starts at the last score read, past the members of that score already read: requests
            # of the same millisecond may straddle pages, and an offset counted from the period's start would make
            # each page's read slower than the last.
            last = int(page[-1][1])
            read = sum(1 for _, score in page if int(score) == last)
            low, skip = last, (skip + read if last == low else read)

    async def _with_history(self, tids: list[str]) -> list[tuple[Order, list[HistoryEntry]]]:
        """Orders `tids` and their histories, in one round trip; any swept meanwhile is left out."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for tid in tids:
                pipe.hgetall(self.keys.order(tid))
                pipe.lrange(self.keys.order_history(tid), 0, -1)
            replies = await pipe.execute()
        pairs = zip(replies[::2], replies[1::2], strict=True)
        rows = [(Order(decode_hash(raw)), decode_history(history)) for raw, history in pairs]
        return [(order, history) for order, history in rows if order["tid"]]
