"""The embedded router: fastest car paths on the street graph of `LIVEMAP_OSM_PBF`, in this process.

Dijkstra from scipy's csgraph (C, on a CSR matrix of travel times) from the start node; the start
and the destination snap to the nearest graph node within `SNAP_M` (a KD-tree in a local metric
frame). Queries run in a worker thread, bounded by the router timeout, so the event loop never
waits on one. Fit for a city or a region; a country or a continent wants an OSRM or Valhalla server.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from livemap.routing.base import LatLon, RoadRoute, RouterUnavailable
from livemap.routing.osmgraph import StreetGraph, cached, metres_per_degree

#: A point farther than this from every street is off the map: no route.
SNAP_M = 1000.0


class EmbeddedRouter:
    """Routes on one extract's car graph; one per process, shared by every leg."""

    name = "osm"

    def __init__(self, graph: StreetGraph, timeout_s: float) -> None:
        self.graph = graph
        self._timeout_s = timeout_s
        n = graph.nodes
        # Parallel edges (two ways joining the same nodes) keep the faster: a CSR matrix would add them.
        order = np.lexsort((graph.cost_s, graph.dst, graph.src))
        src, dst, cost = graph.src[order], graph.dst[order], graph.cost_s[order]
        first = np.ones(len(src), dtype=bool)
        first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
        self._edge = order[first]  # CSR position -> the graph's edge id
        self._matrix = csr_matrix((cost[first], (src[first], dst[first])), shape=(n, n))
        self._lat0 = float(np.mean(graph.lat)) if n else 0.0
        north, east = metres_per_degree(self._lat0)
        self._scale = np.array([north, east])
        self._tree = cKDTree(np.column_stack([graph.lat, graph.lon]) * self._scale) if n else None

    @classmethod
    async def open(cls, path: str, data_dir: Path, timeout_s: float) -> EmbeddedRouter:
        """The router of extract `path`: its graph from the cache, or built (once) in a worker thread."""
        graph = await asyncio.to_thread(cached, Path(path), data_dir)
        return await asyncio.to_thread(cls, graph, timeout_s)

    def snap(self, point: LatLon) -> int | None:
        """The graph node nearest `point`, or None when no street is within SNAP_M."""
        if self._tree is None:
            return None
        distance, node = self._tree.query(np.array(point) * self._scale)
        return int(node) if math.isfinite(distance) and distance <= SNAP_M else None

    def route_sync(self, start: LatLon, end: LatLon) -> RoadRoute | None:
        """The fastest car route between the nodes nearest `start` and `end` (blocking: seconds on a big graph)."""
        a, b = self.snap(start), self.snap(end)
        if a is None or b is None:
            return None
        if a == b:
            p = (float(self.graph.lat[a]), float(self.graph.lon[a]))
            return RoadRoute([p, p], 0.0, 0.0)
        times, previous = dijkstra(self._matrix, directed=True, indices=a, return_predecessors=True)
        if not math.isfinite(times[b]):
            return None  # a one-way trap, another island
        path = [b]
        while path[-1] != a:
            path.append(int(previous[path[-1]]))
        path.reverse()
        edges = [self._edge_id(u, v) for u, v in itertools.pairwise(path)]
        g = self.graph
        return RoadRoute(
            points=[(float(g.lat[i]), float(g.lon[i])) for i in path],
            length_m=float(sum(g.length_m[e] for e in edges)),
            duration_s=float(times[b]),
            segments=tuple(edges),
        )

    def _edge_id(self, u: int, v: int) -> int:
        row = slice(self._matrix.indptr[u], self._matrix.indptr[u + 1])
        at = int(np.flatnonzero(self._matrix.indices[row] == v)[0])
        return int(self._edge[row.start + at])

    async def route(self, start: LatLon, end: LatLon) -> RoadRoute | None:
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.route_sync, start, end), self._timeout_s)
        except TimeoutError:
            raise RouterUnavailable(f"no route within {self._timeout_s} s") from None

    async def aclose(self) -> None:
        """Nothing to release: the graph goes with the process."""
