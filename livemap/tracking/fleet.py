"""Street speeds learned from the fleet: every routed leg's drive teaches every other one.

A driver on a leg routed by the embedded router drives its streets' segments one after another;
each whole traversal (domain/streetpace.py) is a pace (s/m) for that segment. Each process keeps
its drivers' traversals for a moment and folds them, every `refresh_s`, into one Redis hash per
routing graph (lua/fleet_observe.lua): a mean per segment decayed by fix time (time constant `TAU_S`;
capped by the server's clock), with no driver, order or store in it, and segments unseen for
`HORIZON_MS` forgotten. Then it reads the hash back, whoever wrote it, and estimates each driven
street's pace now and how much slower than the map the city drives (`estimate`): those give the
remaining time of every routed leg's ETA (eta.py) and the routing costs (search.py), in place of the
road class's speed, which knows no jams.

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
from livemap.routing.osmgraph import F32, F64
from livemap.storage.db import STANDALONE
from livemap.storage.repository import Repository
from livemap.tasks import cancel

log = logging.getLogger("livemap.fleet")
_OBSERVE = STANDALONE["fleet_observe"]

#: A traversal's weight halves in about 7 minutes: a jam is known minutes after it starts, and a
#: cleared one forgotten about as fast.
TAU_S = 600.0
#: The map's pace counts as this many traversals in a street's estimate (see `estimate`).
PRIOR_WEIGHT = 0.5
#: Observations decayed below this weight are forgotten by the estimate (one traversal: ~30 min).
MIN_WEIGHT = 0.05
#: Segments unseen this long leave Redis (their weight is e^-6 by then).
HORIZON_MS = 3_600_000
#: Observations (decayed weight) needed before they say how fast the city drives now.
FACTOR_WEIGHT = 5.0
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
        #: The pace now (s/m) of every street the fleet drove lately, by segment id, as of the last
        #: refresh; `generation` counts refreshes.
        self.paces: dict[int, float] = {}
        #: How much slower than the map the fleet drives now (see `estimate`): the time of every
        #: street without an observation.
        self.factor: float | None = None
        self.generation = 0
        self._task: asyncio.Task[None] | None = None

    def known(self, stop: RoutedStop) -> KnownAhead | None:
        """The fleet's times on `stop`'s route ahead, or None when it can tell none of its streets."""
        if not self.paces or stop.route is None or stop.pieces is None or stop.pieces.graph != self.graph:
            return None
        if stop.known is None or stop.known_gen != self.generation:
            prior = self._router.prior_s if self._router is not None else None
            by_map = None if prior is None else (lambda seg: float(prior[seg]))
            stop.known = KnownAhead(stop.route.cum_m, stop.pieces.ids, self.paces, by_map, self.factor)
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
        """Send the traversals kept since the last call, then read back every process's and estimate."""
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
        seen = observed(await client.hgetall(keys[0]), now_ms())
        if self._router is not None:
            self.paces, self.factor = estimate(seen, self._router.graph.seg_len_m, self._router.prior_s)
            await asyncio.to_thread(self._router.observe, self.paces)
        self.generation += 1

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


def observed(raw: Mapping[bytes | str, bytes | str], now: int) -> dict[int, tuple[float, float]]:
    """Each segment of a graph's hash (lua/fleet_observe.lua) as (pace, weight decayed to now), aged by
    fix time: up to the newest observation, capped by the server's clock `now`. Weights below
    MIN_WEIGHT are left out: too old to tell anything."""
    rows: list[tuple[int, float, float, int]] = []
    for key, value in raw.items():
        p, w, t = value.split()
        rows.append((int(key), float(p), float(w), int(t)))
    clock = min(max((row[3] for row in rows), default=now), now)
    out: dict[int, tuple[float, float]] = {}
    for seg, pace, weight, updated in rows:
        decayed = weight * math.exp(-max(clock - updated, 0) / 1000 / TAU_S)
        if decayed >= MIN_WEIGHT:
            out[seg] = pace, decayed
    return out


def estimate(
    seen: Mapping[int, tuple[float, float]], lengths: F32, prior_s: F64
) -> tuple[dict[int, float], float | None]:
    """Each observed segment's pace now, and the city's factor (observed over map time, weighted).

    The factor says how much slower than the map the fleet drives now, a rush hour say: every street
    without an observation takes its map time times it. An observed street's pace leans on its
    observations as far as their weight goes, and on the map's pace times the factor for the rest
    (PRIOR_WEIGHT): a street driven a minute ago tells its pace; one driven twenty minutes ago, little.
    """
    weights = sum(w for _, w in seen.values())
    factor = None
    if weights >= FACTOR_WEIGHT:
        observed_s = sum(w * pace * float(lengths[seg]) for seg, (pace, w) in seen.items())
        factor = observed_s / sum(w * float(prior_s[seg]) for seg, (_, w) in seen.items())
    paces: dict[int, float] = {}
    for seg, (pace, w) in seen.items():
        by_map = float(prior_s[seg]) / max(float(lengths[seg]), 1.0) * (factor or 1.0)
        paces[seg] = (w * pace + PRIOR_WEIGHT * by_map) / (w + PRIOR_WEIGHT)
    return paces, factor
