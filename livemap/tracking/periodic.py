"""A background sweep every few seconds that outlives Redis outages (the watchdog, the retention sweep)."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from livemap.tasks import cancel

log = logging.getLogger("livemap.tracking")


class Periodic:
    """Runs `tick()` every `interval_s` (0: never) while entered as an async context manager (the app's lifespan)."""

    name = "sweep"

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Periodic:
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._run(), name=f"livemap-{self.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await cancel(self._task)

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except aioredis.RedisError as exc:  # Redis away: try again next round
                log.warning("%s failed: %s", self.name, exc)
            await asyncio.sleep(self.interval_s)

    async def tick(self) -> None:
        raise NotImplementedError
