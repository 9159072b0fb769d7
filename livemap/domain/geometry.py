"""Route geometry: a polyline with geodesic lengths computed once, projected per fix in metres.

Geodesic lengths (geopy, slow per call) are computed once when the order is created and stored
with it. Per fix we only project onto the line in a local equirectangular frame and map the
projected distance back onto the geodesic lengths by segment fraction, so the frame's small
distortion never reaches the remaining distance.

A fix is projected onto a *window* of the route around the driver's last known progress, not
onto the whole line: on a route that comes back near itself (a U-turn, a loop round a block) the
nearest point of the whole line can be a later part of the trip, and one noisy fix would then
teleport the progress ahead. The whole line (shapely) is consulted only to re-join after leaving
the route.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
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


def _interp(x: float, xs: list[float], ys: list[float]) -> float:
    """`np.interp` on plain lists (a fraction of its per-call cost): ys piecewise linear over the
    non-decreasing xs, clamped to the ends."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = bisect_right(xs, x) - 1  # xs[i] <= x < xs[i + 1]: a segment of positive length
    return ys[i] + (x - xs[i]) / (xs[i + 1] - xs[i]) * (ys[i + 1] - ys[i])


class Route:
    """A route as the driver drives it: locate fixes on it, measure what remains."""

    __slots__ = ("_cum", "_kx", "_lat0", "_line", "_local_cum", "_lon0", "_seg", "cum", "points")

    def __init__(self, points: Sequence[LatLon], cum: Sequence[float]) -> None:
        if len(points) < 2 or len(points) != len(cum):
            raise ValueError("a route needs two or more points and one cumulative length per point")
        self.points = [(float(lat), float(lon)) for lat, lon in points]
        self.cum = np.asarray(cum, dtype=float)
        self._lat0 = sum(p[0] for p in self.points) / len(self.points)
        self._lon0 = sum(p[1] for p in self.points) / len(self.points)
        self._kx = math.cos(math.radians(self._lat0))
        xy = np.array([self.local(lat, lon) for lat, lon in self.points])
        self._line = LineString(xy)
        # Per segment: start x, y, direction dx, dy, length (plain floats for the per-fix loop).
        self._seg = [
            (float(a[0]), float(a[1]), float(b[0] - a[0]), float(b[1] - a[1]), math.dist(a, b)) for a, b in pairwise(xy)
        ]
        # Plain lists for the per-fix lookups: bisect on a list costs a fraction of a numpy call.
        self._cum: list[float] = self.cum.tolist()
        self._local_cum: list[float] = np.concatenate(([0.0], np.cumsum([seg[4] for seg in self._seg]))).tolist()

    @property
    def length_m(self) -> float:
        return self._cum[-1]

    @property
    def cum_m(self) -> list[float]:
        """Metres from the start to each point (a list: the per-fix lookups bisect it)."""
        return self._cum

    @property
    def destination(self) -> LatLon:
        return self.points[-1]

    def local(self, lat: float, lon: float) -> tuple[float, float]:
        """Metres east and north of the route's centre (equirectangular; fine at city scale)."""
        x = math.radians(lon - self._lon0) * self._kx * _EARTH_R
        y = math.radians(lat - self._lat0) * _EARTH_R
        return x, y

    def straight_m(self, lat: float, lon: float) -> float:
        """Straight-line metres from a point to the destination (cheap: no geodesic per fix)."""
        x, y = self.local(lat, lon)
        dx, dy = self.local(*self.points[-1])
        return math.hypot(x - dx, y - dy)

    def _geodesic_along(self, local_along: float) -> float:
        return _interp(local_along, self._local_cum, self._cum)

    def _local_of(self, along_m: float) -> float:
        """Inverse of `_geodesic_along`: the local-frame distance for a geodesic one."""
        return _interp(along_m, self._cum, self._local_cum)

    def locate(self, lat: float, lon: float) -> tuple[float, float]:
        """(metres along the route to the fix's nearest point anywhere, metres from the route)."""
        p = Point(self.local(lat, lon))
        return self._geodesic_along(self._line.project(p)), float(self._line.distance(p))

    def locate_near(self, lat: float, lon: float, from_m: float, to_m: float) -> tuple[float, float]:
        """Like `locate`, but only the part of the route between `from_m` and `to_m` (metres along)."""
        lo, hi = self._local_of(max(from_m, 0.0)), self._local_of(min(to_m, self.length_m))
        cum = self._local_cum
        first = min(max(bisect_right(cum, lo) - 1, 0), len(self._seg) - 1)
        last = max(min(bisect_left(cum, hi), len(self._seg)), first + 1)
        px, py = self.local(lat, lon)
        best_d2, best_along = math.inf, lo
        # A window spans a handful of segments: a plain loop beats numpy's per-call overhead here.
        for i in range(first, last):
            ax, ay, dx, dy, length = self._seg[i]
            start = cum[i]
            t = ((px - ax) * dx + (py - ay) * dy) / (length * length) if length > 0 else 0.0
            # Clamp to the segment and to the window.
            t = min(
                max(t, 0.0, (lo - start) / length if length > 0 else 0.0),
                1.0,
                (hi - start) / length if length > 0 else 1.0,
            )
            d2 = (ax + t * dx - px) ** 2 + (ay + t * dy - py) ** 2
            if d2 < best_d2:
                best_d2, best_along = d2, start + t * length
        return self._geodesic_along(best_along), math.sqrt(best_d2)
