"""Retention: a final order, and everything kept for it, goes once its store's retention has passed.

When an order becomes final (completed, cancelled, returned) it joins its store's `retired` sorted
set, scored by that moment. The sweep takes those older than the store's `retention_days` and
deletes the order's keys (hash, event stream, history, notices, proof of delivery) and its entries in
the store's indexes (order number, shop link, active set, returns, the driver's run). Its tracking link then
answers "no longer tracked". Several processes may sweep at once: whoever removes an order from the
set deletes it, so each is deleted once.
"""

from __future__ import annotations

from typing import cast

from livemap.domain.clock import DAY_MS
from livemap.domain.records import Order, is_done, text
from livemap.storage.db import Pipe
from livemap.storage.returns import ReturnRecords

#: Orders deleted per store per sweep, at most: a sweep stays short however much is due.
SWEEP_BATCH = 500


class RetentionRecords(ReturnRecords):
    """Deleting what a store no longer needs to keep."""

    async def expire_orders(self, sid: str, now_ms: int, limit: int = SWEEP_BATCH) -> int:
        """Delete store `sid`'s orders final for longer than its retention; returns how many went.

        Three round trips per batch: read the orders, claim them (ZREM), delete the claimed.
        """
        k, retired = self.keys, self.keys.store_retired(sid)
        retention_ms = (await self.settings(sid)).retention_days * DAY_MS
        raw = await self.redis.zrangebyscore(retired, "-inf", now_ms - retention_ms, start=0, num=limit)
        due = [text(t) for t in cast(list[bytes], raw)]
        if not due:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for tid in due:
                pipe.hmget(k.order(tid), ["stage", "id", "driver", "source", "ext_id", "return_leg"])
            fields = [[text(v) if v is not None else "" for v in row] for row in await pipe.execute()]
        async with self.redis.pipeline(transaction=False) as pipe:
            for tid in due:  # a change that lost its race may have listed an order that is not final: unlist it
                pipe.zrem(retired, tid)
            claimed = await pipe.execute()
        gone = 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for tid, (stage, oid, driver, source, ext_id, leg), mine in zip(due, fields, claimed, strict=True):
                if not mine or (stage and not is_done(Order({"stage": stage, "return_leg": leg}))):
                    # Another process took it, or it is not over after all (not final, or a driver is
                    # collecting its return: the leg's end lists it again).
                    continue
                self._queue_delete(pipe, sid, tid, oid, driver, source, ext_id)
                gone += 1
            await pipe.execute()
        return gone

    def _queue_delete(self, pipe: Pipe, sid: str, tid: str, oid: str, driver: str, source: str, ext_id: str) -> None:
        """The order's own keys, and its entries in the store's indexes (all its own: ids are unique)."""
        k = self.keys
        pipe.delete(k.order(tid), k.order_events(tid), k.order_history(tid), k.order_notices(tid), k.order_proof(tid))
        if oid:
            pipe.hdel(k.store_orders(sid), oid)
        if source and ext_id:
            pipe.hdel(k.store_external_orders(sid, source), ext_id)
        pipe.srem(k.store_active(sid), tid)
        pipe.zrem(k.store_returns(sid), tid)
        pipe.zrem(k.store_placed(sid), tid)
        if driver:
            pipe.zrem(k.driver_orders(sid, driver), tid)
