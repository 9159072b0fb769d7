"""The retention sweep: every few minutes, each store's orders past its retention are deleted (storage/retention.py)."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from livemap.domain.clock import now_ms
from livemap.domain.records import text
from livemap.storage.repository import Repository
from livemap.tasks import cancel

log = logging.getLogger("livemap.retention")


class RetentionSweep:
    """Deletes what stores keep no longer. Use as an async context manager (started/stopped by the app)."""

    def __init__(self, repo: Repository, interval_s: float) -> None:
        self.repo, self.interval_s = repo, interval_s
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RetentionSweep:
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._run(), name="livemap-retention")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await cancel(self._task)

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep(now_ms())
            except aioredis.RedisError as exc:  # Redis away: try again next round
                log.warning("retention sweep failed: %s", exc)
            await asyncio.sleep(self.interval_s)

    async def sweep(self, now: int) -> int:
        """Delete every store's orders past retention at `now`; returns how many went."""
        total = 0
        for sid in sorted(text(s) for s in await self.repo.redis.smembers(self.repo.keys.stores())):
            while gone := await self.repo.expire_orders(sid, now):
                total += gone
                await asyncio.sleep(0)  # a large backlog does not hold the event loop
        if total:
            log.info("retention: %d final orders past their store's retention deleted", total)
        return total
