"""Where the demo's couriers drive: central Helsinki's real streets, or a made-up grid without map data.

A *world* plans each next delivery (from where the last one ended), names its address and drives
it. The two differ in what livemap is told:

- :class:`StreetWorld` (the default whenever the sample extract is installed) drives livemap's own
  car graph of the extract that the server routes on (``livemap demo`` points
  ``LIVEMAP_OSM_PBF`` at it). Orders go out **without** a route, as a shop's do: the server routes
  each leg when it is shipped, and re-routes a driver who takes another way (a quarter of the
  trips do).
- :class:`GridWorld` drives a synthetic grid (:mod:`.city`) that no map holds, so its orders carry
  the driven path as their ``route``: the only way the server can know the streets.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Protocol

from .city import Route, StreetGrid, plan_route
from .congestion import Congestion, TrafficOptions
from .drivable import Drivable
from .driver import Trip
from .geo import LatLon
from .motion import MotionProfile
from .osmworld import StreetMap, helsinki, helsinki_pbf, street_names
from .routemix import ROUTE_MIX, next_delivery
from .streetdrive import StreetProfile, StreetTrip
from .streetroute import StreetRoute, street_route

#: Asunción, Paraguay: the grid's default centre.
GRID_CENTER: LatLon = (-25.2865, -57.6470)


class World(Protocol):
    """What a courier needs of the place it drives in."""

    #: ``helsinki`` or ``grid``: what ``simulator run --world`` takes.
    name: str
    #: The demo store's IANA time zone: where the world lies.
    timezone: str
    #: Whether orders carry the driven path as ``route`` (only where livemap cannot route itself).
    sends_route: bool

    def plan(self, rng: random.Random, after: Drivable | None) -> Drivable:
        """The next delivery's path: from the depot, or from where ``after`` ended."""
        ...

    def address(self, route: Drivable, rng: random.Random) -> str:
        """A plausible street address for the door at the end of ``route``."""
        ...

    def trip(self, route: Drivable, depart_ms: int, seed: int) -> Trip:
        """The drive along ``route``, leaving at ``depart_ms``; deterministic for ``seed``."""
        ...


class GridWorld:
    """A synthetic street grid around ``center`` (:class:`.city.StreetGrid`); orders carry their routes."""

    name = "grid"
    sends_route = True

    def __init__(self, center: LatLon, seed: int, timezone: str = "America/Asuncion") -> None:
        self.grid = StreetGrid(center, seed)
        self.timezone = timezone
        self._profile = MotionProfile()

    def plan(self, rng: random.Random, after: Drivable | None) -> Drivable:
        assert after is None or isinstance(after, Route)
        return plan_route(self.grid, rng, after=after)

    def address(self, route: Drivable, rng: random.Random) -> str:
        assert isinstance(route, Route)
        return self.grid.address(route)

    def trip(self, route: Drivable, depart_ms: int, seed: int) -> Trip:
        return Trip(route, depart_ms, seed, self._profile)


class StreetWorld:
    """Central Helsinki's streets (:mod:`.osmworld`), free-flowing: deliveries of the benchmark's mix of lengths.

    No jams and no rush hour: the demo is for watching, ``make bench-eta`` is for measuring. A
    quarter of the trips leave the navigation app's path for another plausible one, which the
    server notices (``off_route``) and re-routes.
    """

    name = "helsinki"
    timezone = "Europe/Helsinki"
    sends_route = False
    detour_chance = 0.25

    def __init__(self, seed: int, streets: StreetMap | None = None, extract: Path | None = None) -> None:
        self.map = streets or helsinki()
        self._names = street_names(extract or helsinki_pbf())
        self._depot = self.map.depot(seed)
        self._congestion = Congestion(TrafficOptions(rush_factor=1.0, jams_per_hour=0.0), ())
        self._profile = StreetProfile()

    def plan(self, rng: random.Random, after: Drivable | None) -> Drivable:
        assert after is None or isinstance(after, StreetRoute)
        here = self._depot if after is None else after.nodes[-1]
        _, _, fastest, other = next_delivery(self.map, here, rng, ROUTE_MIX, self.detour_chance)
        return street_route(self.map, other or fastest)

    def address(self, route: Drivable, rng: random.Random) -> str:
        assert isinstance(route, StreetRoute)
        ways = self.map.graph.seg_way
        # The last named street of the path: the door's own, or the nearest named one before it.
        name = next(
            (self._names[w] for w in (int(ways[s]) for s in reversed(route.segments)) if w in self._names), None
        )
        return f"{name or 'Helsinki'} {rng.randint(1, 60)}, Helsinki"

    def trip(self, route: Drivable, depart_ms: int, seed: int) -> Trip:
        assert isinstance(route, StreetRoute)
        # day_s only matters to congestion, and this world has none.
        return StreetTrip(route, depart_ms, seed, self._profile, self._congestion, day_s=0.0)
