"""Fastest car paths between two graph nodes: Dijkstra over the turns (scipy.sparse.csgraph).

The search runs on segments (turns.py): a turn from s onto t costs s's driving time plus the
signal delay at the node between them, or s's time observed by the fleet (tracking/fleet.py), which
includes its wait at that node, where there is a fresh one. It starts at once from every segment leaving the start node
(`min_only`: one search, not one per segment) and ends on the best segment arriving at the end
node, whose own time is added last.

scipy has no "stop at this target": a `limit` (seconds) bounds how far the search spreads instead.
The first try allows `REACH_FACTOR` times the time at `REACH_SPEED_MPS` in a straight line (plus a
margin); a destination not found within it is searched again without a limit, so a long detour is
still found and only an unreachable one costs a whole-graph search (measure.py, README "Routing").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
from scipy.sparse.csgraph import dijkstra

from livemap.routing.osmgraph import F64, I64, MIN_SEGMENT_S, SIGNAL_DELAY_S, CarGraph, haversine_m

#: The first search reaches this many times the straight-line time at REACH_SPEED_MPS...
REACH_FACTOR = 3.0
#: ... an average city speed (m/s, 36 km/h), so most routes are found in the first, bounded search...
REACH_SPEED_MPS = 10.0
#: ... plus this much (s), for short trips around a block or a one-way loop.
REACH_MARGIN_S = 300.0


@dataclass(frozen=True, slots=True)
class Path:
    segments: list[int]  # segment ids, in order
    duration_s: float  # driving time plus signal delays


class TurnSearch:
    """Searches one graph; safe to call from several threads (it keeps no state between searches,
    and `observe` swaps the costs in one assignment that a search under way does not see)."""

    def __init__(self, graph: CarGraph) -> None:
        self.graph = graph
        #: What driving each segment costs by the map alone: its time plus the signal at its end.
        self.prior_s: F64 = graph.seg_time_s.astype(np.float64) + SIGNAL_DELAY_S * graph.node_signal[graph.seg_to]
        self._starts = np.zeros(graph.segments + 1, dtype=np.int64)
        np.cumsum(np.bincount(graph.turn_from, minlength=graph.segments), out=self._starts[1:])
        self._costs = self._matrix(self.prior_s), graph.seg_time_s.astype(np.float64)
        self.in_order = np.argsort(graph.seg_to, kind="stable").astype(np.int32)
        self.in_start = np.zeros(graph.nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(graph.seg_to, minlength=graph.nodes), out=self.in_start[1:])

    def _matrix(self, seg_cost: F64) -> scipy.sparse.csr_matrix:
        g = self.graph
        # turn_from is sorted, so the turns already are CSR rows: no sort, no copy of the indices.
        return scipy.sparse.csr_matrix((seg_cost[g.turn_from], g.turn_to, self._starts), shape=(g.segments,) * 2)

    def observe(self, seconds: dict[int, float]) -> None:
        """Cost these segments their observed driving time (s; a wait at their end included) from now
        on, every other segment its time by the map; an empty dict restores the map's times."""
        seg_cost, last = self.prior_s.copy(), self.graph.seg_time_s.astype(np.float64)
        if seconds:
            ids = np.fromiter(seconds.keys(), dtype=np.int64, count=len(seconds))
            times = np.maximum(np.fromiter(seconds.values(), dtype=np.float64, count=len(seconds)), MIN_SEGMENT_S)
            seg_cost[ids] = times
            last[ids] = times
        self._costs = self._matrix(seg_cost), last

    def path(self, start: int, end: int) -> Path | None:
        """The fastest path from node `start` to node `end`; None when there is none."""
        if start == end:
            return Path([], 0.0)
        g = self.graph
        sources = np.arange(g.out_start[start], g.out_start[start + 1])
        targets = self.in_order[self.in_start[end] : self.in_start[end + 1]]
        if not len(sources) or not len(targets):
            return None
        lat, lon = g.node_lat, g.node_lon
        straight = float(haversine_m(lat[[start]], lon[[start]], lat[[end]], lon[[end]])[0])
        first_limit = REACH_FACTOR * straight / REACH_SPEED_MPS + REACH_MARGIN_S
        for limit in (first_limit, np.inf):
            found = self._search(sources, targets, float(limit))
            if found is not None:
                return found
        return None

    def _search(self, sources: I64, targets: np.ndarray, limit: float) -> Path | None:
        turns, last = self._costs  # one read: costs swapped meanwhile apply to the next search
        dist, pred, _ = dijkstra(
            turns, directed=True, indices=sources, return_predecessors=True, min_only=True, limit=limit
        )
        total = dist[targets] + last[targets]
        best = int(np.argmin(total))
        if not np.isfinite(total[best]):
            return None
        segments = [int(targets[best])]
        while pred[segments[-1]] >= 0:  # scipy marks a search's source with -9999
            segments.append(int(pred[segments[-1]]))
        segments.reverse()
        return Path(segments, float(total[best]))
