"""A dispatcher's subscription that keeps only each driver's newest location until it is sent.

A store with 2,000 drivers at 1 Hz publishes 2,000 locations a second, and a phone back from a
tunnel uploads minutes of buffered fixes at once; a dispatcher's map needs neither every fix nor
the burst, only where each driver is now. So locations skip the bounded mailbox (which would fill
and drop the socket as a slow consumer) and overwrite one slot per driver, keeping the newest by
fix time; the socket takes the slots once a second. Every other event still goes through the
mailbox, in order. (The ingest script already publishes at most one location per driver per second
of fix time; this adds the per-dispatcher bound in wall-clock time that bursts need.)
"""

from __future__ import annotations

from functools import lru_cache

import msgspec

from livemap.realtime.mailbox import Subscription

_LOCATION = '{"type":"location"'  # msgspec writes a struct's tag first


class Where(msgspec.Struct, frozen=True):
    """The part of a dispatcher `location` event that coalescing and the viewport need (shared: frozen)."""

    driver_id: str
    lat: float
    lon: float
    ts: int


_decode_where = msgspec.json.Decoder(Where).decode


@lru_cache(maxsize=64)
def _where(data: str) -> Where:
    """`data`'s driver, position and time, decoded once for all of a process's dispatchers of its store
    (the hub hands each the same str object, whose hash is cached: a hit costs an identity compare)."""
    return _decode_where(data)


class LatestLocations(Subscription):
    __slots__ = ("_latest",)

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self._latest: dict[str, tuple[Where, str]] = {}

    def put(self, data: str) -> None:
        if not data.startswith(_LOCATION):
            super().put(data)
            return
        if self.dropped:
            return
        try:
            where = _where(data)
        except msgspec.DecodeError:  # ValidationError included; not ours to judge: pass it on as it came
            super().put(data)
            return
        held = self._latest.get(where.driver_id)
        if held is None or where.ts > held[0].ts:
            self._latest[where.driver_id] = (where, data)

    def take_latest(self) -> list[tuple[Where, str]]:
        """Each driver's newest location since the last call (at most one per driver)."""
        taken, self._latest = self._latest, {}
        return list(taken.values())
