"""The graph node nearest a point: where a route starts and ends.

Nodes are indexed in a k-d tree on 3-D points on the sphere (metres from the Earth's centre): the
chord between two of them is the great-circle distance to within millimetres at street scale, and
unlike a flat projection it holds for an extract spanning a whole country. A start snaps only to a
node a car can leave, an end only to one a car can reach; farther than `max_m` from every such node
is off the map. Snapping is to nodes, not onto the nearest segment: OSM nodes are dense along
streets (tens of metres apart), and callers join the true start and end to the route themselves.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from livemap.routing.osmgraph import EARTH_R, F64, CarGraph

#: A point farther than this (m) from every street is off the map.
MAX_SNAP_M = 1000.0


def _xyz(lat: F64, lon: F64) -> F64:
    p, lam = np.radians(lat), np.radians(lon)
    return np.column_stack([np.cos(p) * np.cos(lam), np.cos(p) * np.sin(lam), np.sin(p)]) * EARTH_R


class Snapper:
    def __init__(self, graph: CarGraph, max_m: float = MAX_SNAP_M) -> None:
        self.max_m = max_m
        has_out = np.diff(graph.out_start) > 0
        has_in = np.bincount(graph.seg_to, minlength=graph.nodes) > 0
        xyz = _xyz(graph.node_lat, graph.node_lon)
        self._starts, self._start_tree = np.flatnonzero(has_out), cKDTree(xyz[has_out])
        self._ends, self._end_tree = np.flatnonzero(has_in), cKDTree(xyz[has_in])

    def start(self, lat: float, lon: float) -> int | None:
        """The node nearest (lat, lon) that a car can drive away from; None when off the map."""
        return self._nearest(self._start_tree, self._starts, lat, lon)

    def end(self, lat: float, lon: float) -> int | None:
        """The node nearest (lat, lon) that a car can drive to; None when off the map."""
        return self._nearest(self._end_tree, self._ends, lat, lon)

    def _nearest(self, tree: cKDTree, nodes: np.ndarray, lat: float, lon: float) -> int | None:
        if not len(nodes):
            return None
        point = _xyz(np.array([lat]), np.array([lon]))[0]
        dist, i = tree.query(point, distance_upper_bound=self.max_m)
        return int(nodes[i]) if np.isfinite(dist) else None
