"""Road routes for live legs: asked of the router off the fix path, stored when they arrive.

A ping never waits for the router. A leg that goes live without a store's route keeps its straight
line until the road route is stored (then its customer, the dispatchers and the driver's sessions
hear of it); a driver who leaves the route gets a new one from where it is, at most once per
`reroute_interval_s`. A router that is down, slow or finds no way only means the leg keeps what it
has, and the order's `route_source` says which.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Literal

from livemap import metrics
from livemap.domain.clock import now_ms
from livemap.domain.events import RouteEvent
from livemap.domain.geometry import cumulative_lengths
from livemap.domain.streetpace import RoadPieces
from livemap.routing.base import LatLon, RoadRoute, Router, RouterUnavailable
from livemap.storage.repository import Repository
from livemap.tasks import cancel

log = logging.getLogger("livemap.routing")
#: Orders (and drivers) whose last request time is remembered: enough for every live leg of a process.
_REMEMBERED = 20_000
#: Least time between two warnings that the router is unavailable (each failed request would log one).
_WARN_EVERY_MS = 60_000

Reason = Literal["live", "off_route"]


def with_ends(start: LatLon, road: RoadRoute, dest: LatLon) -> tuple[list[LatLon], list[int]]:
    """The route from the driver's own position to the door (the street network ends at the nearest
    nodes), and the street segment under each of its pieces (-1 for the two that join it to the
    network); a point repeated in a row is dropped with its empty piece."""
    inner = road.points
    segs = list(road.segments) if inner and len(road.segments) == len(inner) - 1 else [-1] * max(len(inner) - 1, 0)
    points, ids = [start, *inner, dest], [-1, *segs, -1] if inner else [-1]
    out, out_ids = [start], []
    for p, seg in zip(points[1:], ids, strict=True):
        if p != out[-1]:
            out.append(p)
            out_ids.append(seg)
    if len(out) < 2:  # the driver is at the door: a route of one (empty) piece
        return [start, dest], [-1]
    return out, out_ids


class LegRoutes:
    """The process's road-route requests, one at a time per order."""

    def __init__(self, router: Router | None, repo: Repository, reroute_interval_s: float) -> None:
        self.router = router
        self._repo = repo
        self._interval_ms = round(reroute_interval_s * 1000)
        self._pending: dict[str, asyncio.Task[None]] = {}
        # When each order (reason "live") or driver ("off_route") last asked: a leg the router cannot
        # route, or a driver wandering off every route, asks again only after the interval.
        self._asked: OrderedDict[str, int] = OrderedDict()
        self._warned_at = 0
        # Road lengths between two doors, for the ETAs of queued stops: lengths only, never the path
        # (a queued customer must not see the door before theirs). None while the router is asked.
        self._chains: OrderedDict[tuple[LatLon, LatLon], float | None] = OrderedDict()
        self._chain_tasks: set[asyncio.Task[None]] = set()

    def request(self, sid: str, did: str, oid: str, tid: str, start: LatLon, dest: LatLon, reason: Reason) -> bool:
        """Ask for a road route from `start` to `dest` for order `tid`'s live leg; False when not asked."""
        if self.router is None or tid in self._pending:
            return False
        key = f"{sid}\x1f{did}" if reason == "off_route" else tid
        now = now_ms()
        if now - self._asked.get(key, -self._interval_ms) < self._interval_ms:
            return False
        self._asked[key] = now
        self._asked.move_to_end(key)
        while len(self._asked) > _REMEMBERED:
            self._asked.popitem(last=False)
        task = asyncio.create_task(self._route(self.router, sid, did, oid, tid, start, dest, reason))
        self._pending[tid] = task
        task.add_done_callback(lambda _: self._pending.pop(tid, None))
        return True

    async def _route(
        self, router: Router, sid: str, did: str, oid: str, tid: str, start: LatLon, dest: LatLon, reason: Reason
    ) -> None:
        try:
            road = await _timed(router, start, dest)
        except RouterUnavailable as exc:
            self._warn(f"router {router.name} unavailable, order {tid} keeps its route: {exc}")
            return
        if road is None:
            log.info("no road route for order %s from %s to %s: it keeps its straight line", tid, start, dest)
            return
        points, ids = with_ends(start, road, dest)
        cum = await asyncio.to_thread(cumulative_lengths, points)
        event = RouteEvent(points=points, source="router", reason=reason, ts=now_ms())
        pieces = RoadPieces(road.graph, tuple(ids)) if road.graph and any(i >= 0 for i in ids) else None
        try:
            await self._repo.set_leg_route(sid, oid, tid, did, cum, event, pieces)
        except Exception:  # a Redis hiccup: the leg keeps its route, the next request tries again
            log.exception("storing the road route of order %s failed", tid)

    def chain_length(self, sid: str, did: str, a: LatLon, b: LatLon) -> float | None:
        """The road length from door `a` to door `b` when known; else None, and the router is asked
        (the driver's sessions reload when it answers)."""
        if self.router is None:
            return None
        key = (a, b)
        if key in self._chains:
            self._chains.move_to_end(key)
            return self._chains[key]
        self._chains[key] = None  # asked once: a door the router cannot reach keeps the straight line
        while len(self._chains) > _REMEMBERED:
            self._chains.popitem(last=False)
        task = asyncio.create_task(self._chain(self.router, sid, did, key))
        self._chain_tasks.add(task)
        task.add_done_callback(self._chain_tasks.discard)
        return None

    async def _chain(self, router: Router, sid: str, did: str, key: tuple[LatLon, LatLon]) -> None:
        try:
            road = await _timed(router, *key)
        except RouterUnavailable as exc:
            self._chains.pop(key, None)  # asked again on the next reload
            self._warn(f"router {router.name} unavailable for a leg between stops: {exc}")
            return
        if road is None:
            return
        self._chains[key] = road.length_m
        try:
            await self._repo.db.publish(self._repo.keys.driver_channel(sid, did), '{"type":"orders"}')
        except Exception:  # the next reload (any change to the run) picks the length up anyway
            log.exception("telling driver %s's sessions of a leg length failed", did)

    def _warn(self, message: str) -> None:
        now = now_ms()
        if now - self._warned_at >= _WARN_EVERY_MS:
            self._warned_at = now
            log.warning("%s", message)

    async def __aenter__(self) -> LegRoutes:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel the requests under way (their legs keep what they have) and close the router."""
        for task in [*self._pending.values(), *self._chain_tasks]:
            await cancel(task)
        if self.router is not None:
            await self.router.aclose()


async def _timed(router: Router, start: LatLon, dest: LatLon) -> RoadRoute | None:
    """``router.route``, counted and timed for `/metrics` (outcome: ok, no_route, unavailable)."""
    began = time.perf_counter()
    outcome = "unavailable"
    try:
        road = await router.route(start, dest)
        outcome = "ok" if road is not None else "no_route"
        return road
    finally:
        metrics.ROUTER_CALLS.labels(outcome).inc()
        metrics.ROUTER_SECONDS.observe(time.perf_counter() - began)
