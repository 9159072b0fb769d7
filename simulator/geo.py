"""Local metric geometry: an equirectangular frame around a centre point.

The simulator works in metres east/north of its city centre and converts to latitude and
longitude only at the edges. Over the ~10 km a demo city spans, the equirectangular error
is far below GPS noise, and it needs no projection library.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass, field

#: Mean Earth radius (IUGG), metres.
EARTH_RADIUS_M = 6_371_008.8

LatLon = tuple[float, float]
XY = tuple[float, float]


@dataclass(frozen=True)
class LocalFrame:
    """Metres east (x) and north (y) of ``origin``, by the equirectangular approximation."""

    origin: LatLon
    _m_per_deg_lat: float = field(init=False, repr=False)
    _m_per_deg_lon: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        lat0, lon0 = self.origin
        if not (-80.0 <= lat0 <= 80.0 and -180.0 <= lon0 <= 180.0):
            # Near the poles a degree of longitude shrinks to nothing and the flat frame breaks.
            raise ValueError(f"centre {self.origin} must have lat within -80..80 and lon within -180..180")
        m_per_deg = math.pi * EARTH_RADIUS_M / 180.0
        object.__setattr__(self, "_m_per_deg_lat", m_per_deg)
        object.__setattr__(self, "_m_per_deg_lon", m_per_deg * math.cos(math.radians(lat0)))

    def to_xy(self, lat: float, lon: float) -> XY:
        """Project ``(lat, lon)`` to metres east/north of the origin."""
        return (
            (lon - self.origin[1]) * self._m_per_deg_lon,
            (lat - self.origin[0]) * self._m_per_deg_lat,
        )

    def to_latlon(self, x: float, y: float) -> LatLon:
        """Inverse of :meth:`to_xy`."""
        return (
            self.origin[0] + y / self._m_per_deg_lat,
            self.origin[1] + x / self._m_per_deg_lon,
        )


def bearing_deg(dx: float, dy: float) -> float:
    """Compass bearing of a displacement in a local frame: 0 = north, 90 = east, in [0, 360)."""
    bearing = math.degrees(math.atan2(dx, dy)) % 360.0
    # A hair west of north, -tiny % 360.0 rounds up to 360.0 itself: that is north, 0.
    return bearing if bearing < 360.0 else 0.0


def distance_m(a: XY, b: XY) -> float:
    """Straight-line distance between two points of one local frame."""
    return math.hypot(b[0] - a[0], b[1] - a[1])


def haversine_m(a: LatLon, b: LatLon) -> float:
    """Great-circle distance between two ``(lat, lon)`` points on the mean-radius sphere, metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class Polyline:
    """A path through ``xy`` (two or more points of ``frame``), walked by distance along it."""

    frame: LocalFrame
    xy: tuple[XY, ...]
    _cum: tuple[float, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.xy) < 2:
            raise ValueError("a path needs at least two vertices")
        cum = [0.0]
        for a, b in itertools.pairwise(self.xy):
            cum.append(cum[-1] + distance_m(a, b))
        object.__setattr__(self, "_cum", tuple(cum))

    @property
    def length_m(self) -> float:
        """Length along the path, metres."""
        return self._cum[-1]

    @property
    def origin(self) -> LatLon:
        return self.frame.to_latlon(*self.xy[0])

    @property
    def destination(self) -> LatLon:
        return self.frame.to_latlon(*self.xy[-1])

    def start_m(self, k: int) -> float:
        """Where vertex ``k`` lies along the path."""
        return self._cum[k]

    def latlon(self) -> list[LatLon]:
        """Vertices as ``(lat, lon)``."""
        return [self.frame.to_latlon(x, y) for x, y in self.xy]

    def to_wire(self) -> list[list[float]]:
        """Vertices as the API's ``route``: ``[[lat, lon], ...]``, rounded to ~0.1 m."""
        return [[round(lat, 6), round(lon, 6)] for lat, lon in self.latlon()]

    def _segment(self, d: float) -> int:
        # At a vertex, the segment that starts there: a driver standing on a corner faces its next street.
        return min(max(bisect.bisect_right(self._cum, d) - 1, 0), len(self.xy) - 2)

    def point_at(self, d: float) -> XY:
        """Point at ``d`` metres along the path (clamped to its ends), local metres."""
        d = min(max(d, 0.0), self.length_m)
        k = self._segment(d)
        (ax, ay), (bx, by) = self.xy[k], self.xy[k + 1]
        seg = self._cum[k + 1] - self._cum[k]
        f = (d - self._cum[k]) / seg if seg > 0 else 0.0
        return ax + (bx - ax) * f, ay + (by - ay) * f

    def direction_at(self, d: float) -> XY:
        """Unit vector of travel at ``d`` metres along the path."""
        k = self._segment(min(max(d, 0.0), self.length_m))
        (ax, ay), (bx, by) = self.xy[k], self.xy[k + 1]
        seg = math.hypot(bx - ax, by - ay) or 1.0
        return (bx - ax) / seg, (by - ay) / seg
