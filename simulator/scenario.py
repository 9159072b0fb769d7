"""The ETA benchmark's working day, planned ahead: who delivers what, along which streets, arriving when.

Everything here is a pure function of the options (the seed above all): routes of a chosen mix
of lengths on a large street grid, the path each driver really takes (now and then a detour
off the planned route), and each trip's true motion with traffic. Because every trip's
arrival is known before the first fix is sent, so is the length of the whole day, which is
what lets the benchmark start simulated time far enough in the past.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace

import msgspec

from .city import Route, StreetGrid, detour, plan_route
from .client import NewOrder, Point
from .courier import Timing
from .driver import MotionProfile, Trip
from .fakes import fake_customer, fake_tracking_number
from .geo import LatLon

#: Asunción, Paraguay (the demo's city).
CENTER: LatLon = (-25.2865, -57.6470)
FIRST_ORDER_NUMBER = 1001


@dataclass(frozen=True)
class RouteKind:
    """A class of delivery by street length: ``share`` of all deliveries are ``min_m``-``max_m`` long."""

    name: str
    share: float
    min_m: float
    max_m: float


#: Short city hops, cross-town runs and trips to the outskirts, so every remaining-time bucket gets data.
ROUTE_MIX: tuple[RouteKind, ...] = (
    RouteKind("city", 0.35, 1_500.0, 5_000.0),
    RouteKind("medium", 0.40, 5_000.0, 12_000.0),
    RouteKind("long", 0.25, 12_000.0, 25_000.0),
)

#: Urban car traffic with congestion: about one crawl of 300-1500 m at 2-5 m/s every 8 km.
TRAFFIC = MotionProfile(jam_chance_per_km=0.12)


@dataclass(frozen=True)
class ScenarioOptions:
    """What fixes a scenario; the same options always give the same scenario."""

    seed: int = 7
    deliveries: int = 240
    drivers: int = 40
    center: LatLon = CENTER
    mix: tuple[RouteKind, ...] = ROUTE_MIX
    detour_chance: float = 0.10
    profile: MotionProfile = TRAFFIC
    timing: Timing = field(default_factory=Timing)
    #: The grid: big enough for 25 km routes chained one after another.
    half_size_m: float = 16_000.0
    max_radius_m: float = 15_000.0


@dataclass(frozen=True)
class Delivery:
    """One order of the day: the planned ``route`` livemap is told, the ``path`` driven, the true ``trip``.

    Times are simulated epoch ms: ``created_ms`` when the order is created, processed and assigned;
    the trip departs (order shipped) and arrives (delivered); ``done_ms`` ends the handover
    (completed) and is when the driver's next order is created.
    """

    driver: int
    number: str
    kind: str
    route: Route
    path: Route
    detoured: bool
    trip: Trip
    created_ms: int
    done_ms: int
    request: NewOrder

    def shifted(self, offset_ms: int) -> Delivery:
        """The same delivery ``offset_ms`` later."""
        promised = self.request.promised_by
        return replace(
            self,
            trip=self.trip.departing(self.trip.depart_ms + offset_ms),
            created_ms=self.created_ms + offset_ms,
            done_ms=self.done_ms + offset_ms,
            request=msgspec.structs.replace(
                self.request, promised_by=None if promised is None else promised + offset_ms
            ),
        )


@dataclass(frozen=True)
class Scenario:
    """All deliveries of the day, in driver order then delivery order; ``start_ms`` is when the day begins."""

    options: ScenarioOptions
    grid: StreetGrid
    deliveries: tuple[Delivery, ...]
    start_ms: int

    @property
    def end_ms(self) -> int:
        """When the last handover ends."""
        return max(d.done_ms for d in self.deliveries)

    @property
    def span_ms(self) -> int:
        return self.end_ms - self.start_ms

    def by_driver(self) -> list[list[Delivery]]:
        """Each driver's deliveries, one after another."""
        runs: list[list[Delivery]] = [[] for _ in range(self.options.drivers)]
        for d in self.deliveries:
            runs[d.driver].append(d)
        return runs

    def starting_at(self, start_ms: int) -> Scenario:
        """The same day beginning at ``start_ms``."""
        offset = start_ms - self.start_ms
        return replace(self, deliveries=tuple(d.shifted(offset) for d in self.deliveries), start_ms=start_ms)


def plan_scenario(options: ScenarioOptions, start_ms: int = 0) -> Scenario:
    """Plan the whole day; deterministic for ``options``."""
    if options.drivers < 1 or options.deliveries < options.drivers:
        raise ValueError("need at least one driver and at least one delivery per driver")
    grid = StreetGrid(options.center, options.seed, half_size_m=options.half_size_m, max_radius_m=options.max_radius_m)
    per_driver, extra = divmod(options.deliveries, options.drivers)
    deliveries: list[Delivery] = []
    for driver in range(options.drivers):
        count = per_driver + (1 if driver < extra else 0)
        deliveries += _plan_driver(options, grid, driver, count, start_ms)
    return Scenario(options, grid, tuple(deliveries), start_ms)


def pick_kind(rng: random.Random, mix: tuple[RouteKind, ...]) -> RouteKind:
    """A route kind drawn by its share."""
    x = rng.random() * sum(k.share for k in mix)
    for kind in mix:
        x -= kind.share
        if x < 0:
            return kind
    return mix[-1]


def plan_route_of_kind(grid: StreetGrid, rng: random.Random, kind: RouteKind, after: Route | None) -> Route:
    """A route whose street length is within ``kind``'s bounds (the closest of a few tries otherwise)."""
    best: Route | None = None
    miss = math.inf
    for _ in range(60):
        # Along a grid, street length is 1 to 1.41 times the straight line; aim the straight line accordingly.
        route = plan_route(grid, rng, after=after, min_m=kind.min_m / 1.3, max_m=kind.max_m / 1.05)
        off = max(kind.min_m - route.length_m, route.length_m - kind.max_m, 0.0)
        if off == 0.0:
            return route
        if off < miss:
            best, miss = route, off
    assert best is not None
    return best


def _plan_driver(options: ScenarioOptions, grid: StreetGrid, driver: int, count: int, start_ms: int) -> list[Delivery]:
    rng = random.Random(f"{options.seed}:eta:{driver}")
    timing = options.timing
    planned: list[Delivery] = []
    after: Route | None = None
    created = start_ms
    for k in range(count):
        kind = pick_kind(rng, options.mix)
        route = plan_route_of_kind(grid, rng, kind, after)
        path = detour(grid, route, rng) if rng.random() < options.detour_chance else None
        wait_s = rng.uniform(*(timing.first_departure_s if k == 0 else timing.departure_s))
        depart = created + round(wait_s * 1000)
        trip = Trip(path or route, depart, rng.getrandbits(63), options.profile)
        done = trip.arrival_ms + round(rng.uniform(*timing.handover_s) * 1000)
        number = str(FIRST_ORDER_NUMBER + k * options.drivers + driver)
        request = _request(rng, grid, route, number, created, timing)
        planned.append(
            Delivery(driver, number, kind.name, route, path or route, path is not None, trip, created, done, request)
        )
        after, created = route, done
    return planned


def _request(rng: random.Random, grid: StreetGrid, route: Route, number: str, now_ms: int, timing: Timing) -> NewOrder:
    # A shop's promise: the planned length at an average speed with stops, a random slack, rounded
    # up to the next five minutes.
    estimate_s = route.length_m / timing.promise_speed_mps + max(timing.departure_s)
    promised = now_ms + (estimate_s + rng.uniform(*timing.promise_slack_min) * 60) * 1000
    dest, origin = route.destination, route.origin
    return NewOrder(
        id=number,
        customer=fake_customer(rng),
        address=grid.address(route),
        destination=Point(lat=round(dest[0], 6), lon=round(dest[1], 6)),
        origin=Point(lat=round(origin[0], 6), lon=round(origin[1], 6)),
        route=route.to_wire(),
        promised_by=math.ceil(promised / 300_000) * 300_000,
        tracking_number=fake_tracking_number(rng),
        carrier="livemap eta benchmark",
    )
