"""The embedded car router (`name = "osm"`): routes on the car graph of an OpenStreetMap extract.

`EmbeddedRouter.open(path, data_dir, timeout_s)` loads the graph from its cache or builds it
(graphcache.py) in a worker thread, so a server starting on a country extract keeps its event loop
free. Each route is searched in a thread of the router's own (two workers: the search is CPU-bound
and this targets small machines) and bounded by `timeout_s`; a search that runs past it is
abandoned (it finishes in its thread, unseen) and the caller gets `RouterUnavailable`.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from livemap.routing.base import LatLon, RoadRoute, RouterUnavailable
from livemap.routing.graphcache import graph_id, load_or_build
from livemap.routing.osmgraph import F64, CarGraph
from livemap.routing.search import TurnSearch
from livemap.routing.snap import Snapper

#: Searches at a time; more wait for a free worker (their wait counts towards the timeout).
WORKERS = 2


class EmbeddedRouter:
    """A `Router` over an extract's car graph."""

    name = "osm"

    def __init__(self, graph: CarGraph, timeout_s: float, graph_id: str = "") -> None:
        self.graph = graph
        #: Names the graph in what outlives the process (fleet speeds are kept per graph and segment id).
        self.graph_id = graph_id
        self.timeout_s = timeout_s
        self._search = TurnSearch(graph)
        self._snap = Snapper(graph)
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="livemap-route")

    @classmethod
    async def open(cls, path: str, data_dir: Path, timeout_s: float) -> EmbeddedRouter:
        """The router for the extract at `path`, its graph cached under `data_dir / "routing"`."""
        graph, _ = await asyncio.to_thread(load_or_build, Path(path), Path(data_dir))
        gid = await asyncio.to_thread(graph_id, Path(path), Path(data_dir))  # remembered: no second hash
        return await asyncio.to_thread(cls, graph, timeout_s, gid)  # the k-d trees and turn matrix take a moment too

    async def route(self, start: LatLon, end: LatLon) -> RoadRoute | None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout_s):
                return await loop.run_in_executor(self._pool, self.route_now, start, end)
        except TimeoutError:
            raise RouterUnavailable(f"osm: no route within {self.timeout_s:g} s") from None

    def route_now(self, start: LatLon, end: LatLon) -> RoadRoute | None:
        """The route, computed in the calling thread (route() runs it in a worker; measure.py directly)."""
        first, last = self._snap.start(*start), self._snap.end(*end)
        if first is None or last is None:
            return None  # off the map
        path = self._search.path(first, last)
        if path is None:
            return None  # unreachable by car (a one-way trap, another island)
        g = self.graph
        nodes = [first] + [int(g.seg_to[s]) for s in path.segments]
        return RoadRoute(
            points=[(float(g.node_lat[n]), float(g.node_lon[n])) for n in nodes],
            length_m=float(sum(float(g.seg_len_m[s]) for s in path.segments)),
            duration_s=path.duration_s,
            segments=tuple(path.segments),
            graph=self.graph_id,
        )

    @property
    def prior_s(self) -> F64:
        """Each segment's driving time by the map (s), the signal at its end included."""
        return self._search.prior_s

    def observe(self, paces: dict[int, float]) -> None:
        """Route on the fleet's fresh paces (s/m by segment id) where there are some; see search.py."""
        lengths = self.graph.seg_len_m
        self._search.observe({seg: pace * float(lengths[seg]) for seg, pace in paces.items() if seg < len(lengths)})

    async def aclose(self) -> None:
        # A search under way finishes in its thread; nothing waits for it.
        self._pool.shutdown(wait=False, cancel_futures=True)
