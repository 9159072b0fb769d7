"""The fleet a measurement drives: drivers with tokens, each with one live order and its route.

These are the records the harness hands to its load generator processes (as JSON), and the
geometry both need: where a driver is after so many metres along its route. Routes are street
grid zig-zags (alternating east-west and north-south blocks), so the ETA engine projects onto a
real polyline, not a straight line.
"""

from __future__ import annotations

import bisect
import random

import msgspec

from ..geo import LatLon, LocalFrame, distance_m

#: Asunción, Paraguay (the simulator's default city).
CENTER: LatLon = (-25.2865, -57.6470)
#: Blocks per route and their lengths: ~5 km, longer than any measurement drives at SPEED_MPS (and
#: few enough vertices that creating thousands of orders stays quick).
_BLOCKS = 12
_BLOCK_M = (250.0, 600.0)
#: Routes start within this distance of the centre.
_SPREAD_M = 4000.0
#: How fast the bench's drivers move along their routes (fix time, not wall time).
SPEED_MPS = 9.0


class DriverSpec(msgspec.Struct, frozen=True):
    """One driver of the fleet and its live order (shipped, assigned to it)."""

    #: Position in the whole fleet: picks the driver's phase and, in a scale-out, its server.
    index: int
    id: str
    token: str
    route: list[LatLon]
    tracking_id: str
    tracking_token: str


class Fleet(msgspec.Struct, frozen=True):
    #: The store's API key: what a dispatcher socket authenticates with.
    store_key: str
    drivers: list[DriverSpec]


def plan_route(rng: random.Random) -> list[LatLon]:
    """A zig-zag of street blocks starting somewhere around the city centre."""
    frame = LocalFrame(CENTER)
    x, y = rng.uniform(-_SPREAD_M, _SPREAD_M), rng.uniform(-_SPREAD_M, _SPREAD_M)
    east, north = rng.choice((-1.0, 1.0)), rng.choice((-1.0, 1.0))
    points = [frame.to_latlon(x, y)]
    for block in range(_BLOCKS):
        step = rng.uniform(*_BLOCK_M)
        if block % 2 == 0:
            x += east * step
        else:
            y += north * step
        points.append(frame.to_latlon(x, y))
    return points


class Walker:
    """Positions along one route by distance travelled (clamped to its ends)."""

    def __init__(self, route: list[LatLon]) -> None:
        self._frame = LocalFrame(route[0])
        self._xy = [self._frame.to_xy(lat, lon) for lat, lon in route]
        self._cum = [0.0]
        for a, b in zip(self._xy, self._xy[1:], strict=False):
            self._cum.append(self._cum[-1] + distance_m(a, b))

    @property
    def cumulative_m(self) -> list[float]:
        """Metres from the start to each vertex."""
        return list(self._cum)

    def at(self, metres: float) -> LatLon:
        d = min(max(metres, 0.0), self._cum[-1])
        i = max(1, min(bisect.bisect_left(self._cum, d), len(self._cum) - 1))
        seg = self._cum[i] - self._cum[i - 1]
        f = 0.0 if seg == 0 else (d - self._cum[i - 1]) / seg
        (x0, y0), (x1, y1) = self._xy[i - 1], self._xy[i]
        return self._frame.to_latlon(x0 + (x1 - x0) * f, y0 + (y1 - y0) * f)
