"""Stale and offline drivers: a periodic sweep that tells their customers and dispatchers, once.

Every process sweeps each store's `lastfix` index; a compare-and-set on the driver's `quiet` level
(0 live, 1 stale, 2 offline; `watchdog_claim.lua`) makes exactly one of them announce each step,
however many processes run. A new fix resets the level (in the ingest's driver script), so the next
silence is announced again.
"""

from __future__ import annotations

import logging
from typing import cast

import msgspec

from livemap.domain.clock import now_ms
from livemap.domain.events import OfflineEvent, StaleEvent, merge_json
from livemap.domain.records import decode_hash, text
from livemap.settings import Settings
from livemap.storage.db import STANDALONE, Batch
from livemap.storage.repository import Repository
from livemap.tracking.periodic import Periodic

log = logging.getLogger("livemap.watchdog")
_encode = msgspec.json.Encoder().encode

_CLAIM, _FORGET = STANDALONE["watchdog_claim"], STANDALONE["watchdog_forget"]


class Watchdog(Periodic):
    """Background sweep for silent drivers. Use as an async context manager (started/stopped by the app)."""

    name = "watchdog sweep"

    def __init__(self, store: Repository, settings: Settings) -> None:
        super().__init__(settings.watchdog_interval_s)
        self.store, self.settings = store, settings

    async def tick(self) -> None:
        await self.sweep()

    async def sweep(self) -> int:
        """Announce every driver that just went stale or offline; returns how many were announced."""
        now = now_ms()
        stale_before = now - int(self.settings.stale_after_s * 1000)
        offline_before = now - int(self.settings.online_window_s * 1000)
        k, redis = self.store.keys, self.store.redis
        sids = sorted(text(s) for s in await redis.smembers(k.stores()))
        async with redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.zrangebyscore(k.store_lastfix(sid), "-inf", stale_before, withscores=True)
            quiet = await pipe.execute()
        announced = 0
        for sid, members in zip(sids, cast(list[list[tuple[bytes, float]]], quiet), strict=True):
            for member, recv in members:
                did = text(member)
                level = 2 if recv <= offline_before else 1
                # A late sweep (a stalled process) can find a driver already past the offline line: it is
                # still announced stale first, so every watcher sees the same two steps in order.
                for step in range(1, level + 1):
                    if await self._announce(sid, did, step, int(recv)):
                        announced += 1
                if level == 2:  # nothing more to say about this driver until it sends a fix again
                    await _FORGET.call(redis, [k.store_lastfix(sid)], [did, int(recv)])
        return announced

    async def _announce(self, sid: str, did: str, level: int, recv: int) -> bool:
        store, k = self.store, self.store.keys
        if not await _CLAIM.call(store.redis, [k.driver(sid, did)], [level, recv]):
            return False  # another process announced it, or a fix arrived meanwhile
        raw = decode_hash(await store.redis.hgetall(k.driver(sid, did)))
        last_ts = int(raw.get("ts") or 0)
        event = StaleEvent(last_ts=last_ts) if level == 1 else OfflineEvent(last_ts=last_ts)
        body = _encode(event)
        tids = [text(t) for t in cast(list[bytes], await store.redis.zrange(k.driver_orders(sid, did), 0, -1))]
        orders = [o for o in await store.orders(tids) if o.live and o.driver == did]

        def queue(b: Batch) -> None:
            for order in orders:  # its customers (each order's script checks it is still live for this driver)
                store.emit(b, order.tracking_id, did, body)
            b.publish(k.store_channel(sid), merge_json(_encode({"driver_id": did}), body))  # the dispatchers, once

        await store.db.run(queue)
        log.info("driver %s of store %s is %s", did, sid, "stale" if level == 1 else "offline")
        return True
