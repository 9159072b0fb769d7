"""The retention sweep: every few minutes, each store's orders past its retention are deleted (storage/retention.py)."""

from __future__ import annotations

import asyncio
import logging

from livemap.domain.clock import now_ms
from livemap.domain.records import text
from livemap.storage.repository import Repository
from livemap.tracking.periodic import Periodic

log = logging.getLogger("livemap.retention")


class RetentionSweep(Periodic):
    """Deletes what stores keep no longer. Use as an async context manager (started/stopped by the app)."""

    name = "retention sweep"

    def __init__(self, repo: Repository, interval_s: float) -> None:
        super().__init__(interval_s)
        self.repo = repo

    async def tick(self) -> None:
        await self.sweep(now_ms())

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
