"""The ETA benchmark's working day on central Helsinki's streets, planned ahead: who delivers what, where, when.

Everything here is a pure function of the options (the seed above all) and the extract: the day's
shared congestion (:mod:`.congestion`), a depot, and for each driver a chain of deliveries, each
starting at the door where the last one ended, to doors of a chosen mix of street lengths. The
path a driver takes is usually the fastest by the road-class prior, the one a navigation app
picks; now and then (``detour_chance``) another plausible path, the fastest under perturbed
costs, so that livemap's off-route re-routing gets exercised. Orders are created without a route,
as a shop's are; :meth:`Delivery.with_route` is the same order carrying the driven path.

Because every trip's arrival is known before the first fix is sent, so is the length of the whole
day, which is what lets the benchmark start simulated time far enough in the past.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

import msgspec

from .client import NewOrder, Point
from .congestion import Congestion, TrafficOptions, plan_congestion
from .courier import Timing
from .fakes import fake_customer, fake_tracking_number
from .osmworld import StreetMap, helsinki
from .routemix import ROUTE_MIX, RouteKind, next_delivery
from .streetdrive import StreetProfile, StreetTrip
from .streetroute import StreetRoute, street_route

NAME = "osm-helsinki"
FIRST_ORDER_NUMBER = 1001


@dataclass(frozen=True)
class ScenarioOptions:
    """What fixes a scenario; the same options always give the same scenario."""

    seed: int = 7
    deliveries: int = 240
    drivers: int = 24
    mix: tuple[RouteKind, ...] = ROUTE_MIX
    detour_chance: float = 0.25
    profile: StreetProfile = field(default_factory=StreetProfile)
    traffic: TrafficOptions = field(default_factory=TrafficOptions)
    timing: Timing = field(default_factory=Timing)


@dataclass(frozen=True)
class Delivery:
    """One order of the day: ``route`` the navigation app's path, ``path`` the one driven, ``trip`` the truth.

    Times are simulated epoch ms: ``created_ms`` when the order is created, processed and assigned;
    the trip departs (order shipped) and arrives (delivered); ``done_ms`` ends the handover
    (completed) and is when the driver's next order is created.
    """

    driver: int
    number: str
    kind: str
    route: StreetRoute
    path: StreetRoute
    detoured: bool
    trip: StreetTrip
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

    def with_route(self) -> NewOrder:
        """The order as a store that knows the driver's path sends it: with the driven path as ``route``."""
        return msgspec.structs.replace(self.request, route=self.path.to_wire())


@dataclass(frozen=True)
class Scenario:
    """All deliveries of the day, in driver order then delivery order; ``start_ms`` is when the day begins."""

    options: ScenarioOptions
    congestion: Congestion
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
        """The same day beginning at ``start_ms`` (congestion is in time of the day: it moves along)."""
        offset = start_ms - self.start_ms
        return replace(self, deliveries=tuple(d.shifted(offset) for d in self.deliveries), start_ms=start_ms)


def plan_scenario(options: ScenarioOptions, start_ms: int = 0) -> Scenario:
    """Plan the whole day; deterministic for ``options``."""
    if options.drivers < 1 or options.deliveries < options.drivers:
        raise ValueError("need at least one driver and at least one delivery per driver")
    world = helsinki()
    congestion = plan_congestion(world, options.traffic, options.seed)
    depot = world.depot(options.seed)
    per_driver, extra = divmod(options.deliveries, options.drivers)
    deliveries: list[Delivery] = []
    for driver in range(options.drivers):
        count = per_driver + (1 if driver < extra else 0)
        planner = _DriverPlanner(options, world, congestion, driver, start_ms)
        deliveries += planner.plan(depot, count)
    return Scenario(options, congestion, tuple(deliveries), start_ms)


class _DriverPlanner:
    """Plans one driver's chain of deliveries."""

    def __init__(
        self, options: ScenarioOptions, world: StreetMap, congestion: Congestion, driver: int, start_ms: int
    ) -> None:
        self.options = options
        self.world = world
        self.congestion = congestion
        self.driver = driver
        self.start_ms = start_ms
        self.rng = random.Random(f"{options.seed}:eta:{driver}")

    def plan(self, depot: int, count: int) -> list[Delivery]:
        o, rng = self.options, self.rng
        planned: list[Delivery] = []
        here, created = depot, self.start_ms
        for k in range(count):
            kind, door, fastest, other = next_delivery(self.world, here, rng, o.mix, o.detour_chance)
            wait_s = rng.uniform(*(o.timing.first_departure_s if k == 0 else o.timing.departure_s))
            depart = created + round(wait_s * 1000)
            route = street_route(self.world, fastest)
            path = route if other is None else street_route(self.world, other)
            day_s = (depart - self.start_ms) / 1000.0
            trip = StreetTrip(path, depart, rng.getrandbits(63), o.profile, self.congestion, day_s)
            done = trip.arrival_ms + round(rng.uniform(*o.timing.handover_s) * 1000)
            number = str(FIRST_ORDER_NUMBER + k * o.drivers + self.driver)
            request = self._request(route, number, created)
            planned.append(
                Delivery(self.driver, number, kind.name, route, path, other is not None, trip, created, done, request)
            )
            here, created = door, done
        return planned

    def _request(self, route: StreetRoute, number: str, now_ms: int) -> NewOrder:
        rng = self.rng
        promised_by = self.options.timing.promised_by(route.length_m, now_ms, rng)
        dest, origin = route.destination, route.origin
        return NewOrder(
            id=number,
            customer=fake_customer(rng),
            address=f"Helsinki, near {dest[0]:.5f}, {dest[1]:.5f}",
            destination=Point(lat=round(dest[0], 6), lon=round(dest[1], 6)),
            origin=Point(lat=round(origin[0], 6), lon=round(origin[1], 6)),
            promised_by=promised_by,
            tracking_number=fake_tracking_number(rng),
            carrier="livemap eta benchmark",
        )
