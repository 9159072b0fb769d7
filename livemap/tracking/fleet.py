"""Street speeds learned from the fleet: every routed leg's drive teaches every other one.

A driver on a leg routed by the embedded router drives its streets' segments one after another;
each whole traversal (domain/streetpace.py) is a pace (s/m) for that segment. Each process keeps
its drivers' traversals for a moment and folds them, every `refresh_s`, into one Redis hash per
routing graph (lua/fleet_observe.lua): a mean per segment decayed by fix time (time constant `TAU_S`;
capped by the server's clock), with no driver, order or store in it, and segments unseen for
`HORIZON_MS` forgotten. Then it reads the
hash back, whoever wrote it, and the segments with enough recent weight are *fresh*: their pace is
the remaining time on those streets of every leg's ETA (eta.py) and their routing cost (search.py),
in place of the road class's speed, which knows no jams.

Routes by URL (OSRM, Valhalla) name no segment ids: fleet speeds need the embedded router.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from typing import Protocol

import msgspec

from livemap.domain.clock import now_ms
from livemap.domain.eta import LegState
from livemap.domain.geometry import Route
from livemap.domain.streetpace import KnownAhead, RoadPieces, Traversal, crossed
from livemap.routing.base import Router
from livemap.routing.embedded import EmbeddedRouter
from livemap.storage.db import STANDALONE
from livemap.storage.repository import Repository
from livemap.tasks import cancel

log = logging.getLogger("livemap.fleet")
_OBSERVE = STANDALONE["fleet_observe"]

#: A traversal's weight halves in about 7 minutes: a jam is known minutes after it starts, and a
#: cleared one forgotten about as fast.
TAU_S = 600.0
#: A segment is fresh while its decayed weight is at least this: one traversal stays fresh ~7 min.
FRESH_WEIGHT = 0.5
#: Segments unseen this long leave Redis (their weight is e^-6 by then).
HORIZON_MS = 3_600_000
#: Traversals a process keeps while Redis cannot take them (then the oldest are dropped).
_PENDING_MAX = 50_000
#: Traversals per script call: one call must not hold Redis for long.
_CHUNK = 2_000


class RoutedStop(Protocol):
    """What this module reads of a driver session's stop (tracking/positions.py)."""

    route: Route | None
    pieces: RoadPieces | None
    known: KnownAhead | None
    known_gen: int


class FleetSpeeds:
    """The process's share of the fleet's street speeds; off (`graph` empty) without the embedded router
    or with LIVEMAP_FLEET_SPEEDS=0."""

    def __init__(self, repo: Repository, router: Router | None, enabled: bool, refresh_s: float = 10.0) -> None:
        self._router = router if enabled and isinstance(router, EmbeddedRouter) and router.graph_id else None
        self.graph = self._router.graph_id if self._router is not None else ""
        self._repo = repo
        self._refresh_s = refresh_s
        self._pending: list[Traversal] = []
        #: Fresh paces (s/m) by segment id, as of the last refresh; `generation` counts refreshes.
        self.paces: dict[int, float] = {}
        self.generation = 0
        self._task: asyncio.Task[None] | None = None

    def known(self, stop: RoutedStop) -> KnownAhead | None:
        """The fresh paces on `stop`'s route ahead, or None when the fleet knows none of its streets."""
        if not self.paces or stop.route is None or stop.pieces is None or stop.pieces.graph != self.graph:
            return None
        if stop.known is None or stop.known_gen != self.generation:
            stop.known = KnownAhead(stop.route.cum_m, stop.pieces.ids, self.paces)
            stop.known_gen = self.generation
        return stop.known if stop.known.any else None

    def follow(self, stop: RoutedStop, before: LegState, after: LegState) -> LegState:
        """`after`, knowing which piece of the route the driver is on; the streets it drove whole
        between the two fixes are kept for the next refresh."""
        pieces, route = stop.pieces, stop.route
        if not self.graph or pieces is None or pieces.graph != self.graph or route is None:
            return after
        if before.measured != "route" or after.measured != "route" or after.off_route:
            return after  # off the route (or just back on it): where the driver entered a piece is unknown
        marks = (before.along_m, before.ts), (after.along_m, after.ts)
        seen, (piece, piece_ts) = crossed(route.cum_m, pieces.ids, *marks, (before.piece, before.piece_ts))
        if seen:
            self._pending += seen
            del self._pending[:-_PENDING_MAX]
        return msgspec.structs.replace(after, piece=piece, piece_ts=piece_ts)

    async def sync(self) -> None:
        """Send the traversals kept since the last call, then read every process's fresh paces."""
        if not self.graph:
            return
        k, client = self._repo.keys, self._repo.redis
        keys = [k.fleet_paces(self.graph), k.fleet_updated(self.graph)]
        pending, self._pending, sent = self._pending, [], 0
        try:
            while True:  # once at least: a call without traversals still prunes
                args: list[str | int | float] = [now_ms(), TAU_S, HORIZON_MS]
                for seg, pace, ts in pending[sent : sent + _CHUNK]:
                    args += [seg, repr(pace), ts]
                await _OBSERVE.call(client, keys, args)
                sent = min(sent + _CHUNK, len(pending))
                if sent == len(pending):
                    break
        finally:
            self._pending = (pending[sent:] + self._pending)[-_PENDING_MAX:]  # what Redis did not take
        self.paces = fresh_paces(await client.hgetall(keys[0]), now_ms())
        self.generation += 1
        if self._router is not None:
            await asyncio.to_thread(self._router.observe, self.paces)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.sync()
            except Exception:  # Redis away: the traversals wait for the next try, the paces stay
                log.exception("syncing the fleet's street speeds failed")

    async def __aenter__(self) -> FleetSpeeds:
        if self.graph:
            self._task = asyncio.create_task(self._run(), name="fleet speeds")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            await cancel(self._task)
        if self._pending:
            try:
                await self.sync()  # what this process learned last is not lost with it
            except Exception:
                log.warning("the fleet's last %d street traversals were not stored", len(self._pending))


def fresh_paces(raw: Mapping[bytes | str, bytes | str], now: int) -> dict[int, float]:
    """The paces of a graph's hash (lua/fleet_observe.lua) whose decayed weight is still FRESH_WEIGHT,
    aged by fix time: up to the newest observation, capped by the server's clock `now`."""
    rows: list[tuple[int, float, float, int]] = []
    for seg, value in raw.items():
        pace, weight, updated = value.split()
        rows.append((int(seg), float(pace), float(weight), int(updated)))
    clock = min(max((row[3] for row in rows), default=now), now)
    return {
        seg: pace
        for seg, pace, weight, updated in rows
        if weight * math.exp(-max(clock - updated, 0) / 1000 / TAU_S) >= FRESH_WEIGHT
    }
