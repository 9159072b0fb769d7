"""The demo's worlds: Helsinki's streets chain deliveries door to door and name real streets; the grid sends routes."""

from __future__ import annotations

import itertools
import random

from simulator.osmworld import helsinki
from simulator.streetroute import StreetRoute
from simulator.worlds import GRID_CENTER, GridWorld, StreetWorld


def test_helsinki_deliveries_chain_door_to_door_on_named_streets() -> None:
    world = StreetWorld(seed=3)
    rng = random.Random(5)
    routes = [world.plan(rng, None)]
    for _ in range(5):
        routes.append(world.plan(rng, routes[-1]))
    assert all(isinstance(r, StreetRoute) for r in routes)
    for before, after in itertools.pairwise(routes):
        assert isinstance(before, StreetRoute) and isinstance(after, StreetRoute)
        assert after.nodes[0] == before.nodes[-1], "each delivery starts at the last one's door"
    lengths = [r.length_m for r in routes]
    assert min(lengths) > 200 and max(lengths) < 4_500, lengths
    doors = {r.nodes[-1] for r in routes if isinstance(r, StreetRoute)}
    assert all(int(n) in set(helsinki().doors.tolist()) for n in doors), "doors a car can leave again"
    addresses = [world.address(r, rng) for r in routes]
    assert all(a.endswith(", Helsinki") and not a.startswith("Helsinki ") for a in addresses), addresses
    trip = world.trip(routes[0], depart_ms=1_000_000, seed=9)
    assert trip.arrival_ms > 1_000_000 + routes[0].length_m / 20 * 1000, "no faster than 72 km/h on average"
    assert not world.sends_route and world.timezone == "Europe/Helsinki"


def test_helsinki_is_deterministic_for_the_seed() -> None:
    first = [StreetWorld(seed=4).plan(random.Random(8), None) for _ in range(2)]
    assert first[0] == first[1]


def test_the_grid_world_sends_its_routes_and_drives_near_its_centre() -> None:
    world = GridWorld(GRID_CENTER, seed=2)
    route = world.plan(random.Random(1), None)
    assert world.sends_route and world.timezone == "America/Asuncion"
    lat, lon = route.destination
    assert abs(lat - GRID_CENTER[0]) < 0.1 and abs(lon - GRID_CENTER[1]) < 0.1
    assert world.trip(route, 0, 1).arrival_ms > 0
