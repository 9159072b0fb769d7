"""Route geometry: a polyline with geodesic lengths computed once, projected per fix in metres.

Geodesic lengths (geopy, ~150 us a call) are computed once when the order is created and stored
with it. Per fix we only project onto the line in a local equirectangular frame (shapely) and map
the projected distance back onto the geodesic lengths by segment fraction, so the projection's
small distortion never reaches the remaining distance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from geopy.distance import geodesic
from shapely import LineString, Point

LatLon = tuple[float, float]
_EARTH_R = 6_371_008.8  # mean Earth radius (m), for the local frame only


def cumulative_lengths(points: Sequence[LatLon]) -> list[float]:
    """Geodesic distance (m) from the first point to each point along the polyline."""
    out = [0.0]
    for a, b in pairwise(points):
        out.append(out[-1] + geodesic(a, b).meters)
    return out


class Route:
    """A route as the driver drives it: locate fixes on it, measure what remains."""

    __slots__ = ("_kx", "_lat0", "_line", "_local_cum", "_lon0", "cum", "points")

    def __init__(self, points: Sequence[LatLon], cum: Sequence[float]) -> None:
        if len(points) < 2 or len(points) != len(cum):
            raise ValueError("a route needs two or more points and one cumulative length per point")
        self.points = [(float(lat), float(lon)) for lat, lon in points]
        self.cum = np.asarray(cum, dtype=float)
        self._lat0 = sum(p[0] for p in self.points) / len(self.points)
        self._lon0 = sum(p[1] for p in self.points) / len(self.points)
        self._kx = math.cos(math.radians(self._lat0))
        xy = [self._local(lat, lon) for lat, lon in self.points]
        self._line = LineString(xy)
        steps = [math.dist(a, b) for a, b in pairwise(xy)]
        self._local_cum = np.concatenate(([0.0], np.cumsum(steps)))

    @property
    def length_m(self) -> float:
        return float(self.cum[-1])

    def _local(self, lat: float, lon: float) -> tuple[float, float]:
        x = math.radians(lon - self._lon0) * self._kx * _EARTH_R
        y = math.radians(lat - self._lat0) * _EARTH_R
        return x, y

    def locate(self, lat: float, lon: float) -> tuple[float, float]:
        """(metres along the route to the fix's projection, metres from the fix to the route)."""
        p = Point(self._local(lat, lon))
        d = self._line.project(p)
        off = self._line.distance(p)
        i = int(np.searchsorted(self._local_cum, d, side="right")) - 1
        i = min(max(i, 0), len(self.cum) - 2)
        seg = self._local_cum[i + 1] - self._local_cum[i]
        frac = 0.0 if seg <= 0 else (d - self._local_cum[i]) / seg
        along = self.cum[i] + min(max(frac, 0.0), 1.0) * (self.cum[i + 1] - self.cum[i])
        return float(along), float(off)
