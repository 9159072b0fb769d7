"""Simulated time that runs ``speedup`` times faster than the wall clock, starting from now."""

from __future__ import annotations

import asyncio
import time


class SimClock:
    """Simulated epoch milliseconds: ``start_ms`` at creation, then ``speedup`` x wall time.

    With ``speedup > 1`` simulated time pulls ahead of the wall clock, and a server that checks
    fix times against its own clock (livemap refuses fixes more than 10 minutes in the future)
    would eventually refuse every fix. ``max_lead_s`` caps that lead: once simulated time is
    that far ahead, it runs at wall speed. Built on the monotonic clock, so a wall-clock step
    (NTP, suspend) cannot make simulated time jump or run backwards.
    """

    def __init__(self, speedup: float = 1.0, *, start_ms: int | None = None, max_lead_s: float | None = None) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        self.speedup = speedup
        self.start_ms = int(time.time() * 1000) if start_ms is None else start_ms
        self._mono0 = time.monotonic()
        # Wall seconds after which the lead reaches its cap; infinite when it never does.
        self._cap_after_s = float("inf")
        self._lead_s = 0.0
        if max_lead_s is not None and speedup > 1:
            self._lead_s = max_lead_s
            self._cap_after_s = max_lead_s / (speedup - 1)

    def _sim_elapsed_s(self, wall_elapsed_s: float) -> float:
        if wall_elapsed_s <= self._cap_after_s:
            return wall_elapsed_s * self.speedup
        return wall_elapsed_s + self._lead_s

    def _wall_elapsed_s(self, sim_elapsed_s: float) -> float:
        if sim_elapsed_s <= self._cap_after_s * self.speedup:
            return sim_elapsed_s / self.speedup
        return sim_elapsed_s - self._lead_s

    def now_ms(self) -> int:
        """Current simulated time, epoch milliseconds."""
        return self.start_ms + int(self._sim_elapsed_s(time.monotonic() - self._mono0) * 1000.0)

    @property
    def capped(self) -> bool:
        """Whether simulated time has reached its lead cap and now runs at wall speed."""
        return time.monotonic() - self._mono0 > self._cap_after_s

    def wall_s_until(self, sim_ms: int) -> float:
        """Wall seconds until simulated time reaches ``sim_ms`` (negative if already past)."""
        target = self._wall_elapsed_s((sim_ms - self.start_ms) / 1000.0)
        return target - (time.monotonic() - self._mono0)

    async def sleep_until(self, sim_ms: int) -> None:
        """Sleep until simulated time reaches ``sim_ms``; returns at once if it already has."""
        delay = self.wall_s_until(sim_ms)
        if delay > 0:
            await asyncio.sleep(delay)
