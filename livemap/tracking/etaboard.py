"""The dispatchers' ETA board: each store's live order ETAs, read once per tick for every dispatcher."""

from __future__ import annotations

import asyncio
import time
from typing import NamedTuple

import msgspec

from livemap.domain.events import DispatchEtaEvent
from livemap.domain.records import text
from livemap.storage.repository import Repository

_encode = msgspec.json.Encoder().encode

_ETA_FIELDS = ("id", "driver", "live", "eta_at", "remaining")
_ETA_CHUNK = 250


async def order_etas(store: Repository, sid: str) -> dict[str, DispatchEtaEvent]:
    """The current ETA of each of the store's live orders that has one, by tracking id."""
    k = store.keys
    tids = sorted(text(t) for t in await store.redis.smembers(k.store_active(sid)))
    rows: list[list[bytes | None]] = []
    # In pipelines of _ETA_CHUNK orders: a pipeline's replies are parsed in one go, and a fleet's
    # worth at once would hold up every socket on the event loop for tens of milliseconds.
    for at in range(0, len(tids), _ETA_CHUNK):
        async with store.redis.pipeline(transaction=False) as pipe:
            for tid in tids[at : at + _ETA_CHUNK]:
                pipe.hmget(k.order(tid), _ETA_FIELDS)
            rows += await pipe.execute()
    etas = {}
    for tid, row in zip(tids, rows, strict=True):
        oid, driver, live, eta_at, remaining = (text(v) if v is not None else "" for v in row)
        if live == "1" and eta_at:
            etas[tid] = DispatchEtaEvent(oid, tid, driver or None, int(eta_at), round(float(remaining or 0)))
    return etas


class BoardEta(NamedTuple):
    """An order's ETA event, encoded once per read for all the dispatchers that send it."""

    event: DispatchEtaEvent
    text: str


async def _board(store: Repository, sid: str) -> dict[str, BoardEta]:
    return {tid: BoardEta(e, _encode(e).decode()) for tid, e in (await order_etas(store, sid)).items()}


class EtaBoard:
    """Each store's order ETAs, read once for all of this process's dispatchers of that store.

    Dispatchers refresh their ETAs on the same wall-clock ticks (see web/sockets/dispatcher.py), so their reads
    coincide: the first one reads, the others within `max_age_s` share its answer (or its error).
    """

    def __init__(self, store: Repository, max_age_s: float = 1.0) -> None:
        self._store, self._max_age_s = store, max_age_s
        self._reads: dict[str, tuple[float, asyncio.Future[dict[str, BoardEta]]]] = {}

    async def etas(self, sid: str) -> dict[str, BoardEta]:
        now = time.monotonic()
        entry = self._reads.get(sid)
        if entry is None or now - entry[0] > self._max_age_s:
            # Forget the stores whose reads nobody shares any more, so the board stays their size.
            self._reads = {k: v for k, v in self._reads.items() if now - v[0] <= self._max_age_s}
            entry = self._reads[sid] = (now, asyncio.ensure_future(_board(self._store, sid)))
        # Shielded: one dispatcher leaving does not cancel the read the others wait for.
        return await asyncio.shield(entry[1])
