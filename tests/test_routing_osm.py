"""The embedded router on streets the tests write: one-way streets, speeds, traffic lights, islands, the cache.

Expected durations are computed here from the streets' geometry (geopy) and the documented speeds,
independently of the router's own arithmetic.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from geopy.distance import geodesic
from streets import A, B, C, D, E, F, osm_xml

from livemap.routing.embedded import EmbeddedRouter
from livemap.routing.osmgraph import SIGNAL_DELAY_S, speed_kmh

# Far from the others: an island no street joins.
G: tuple[float, float] = (60.1718, 24.9500)
H: tuple[float, float] = (60.1736, 24.9500)
NODES = {1: A, 2: B, 3: C, 4: D, 5: E, 6: F, 7: G, 8: H}


def metres(*points: tuple[float, float]) -> float:
    return sum(geodesic(a, b).meters for a, b in itertools.pairwise(points))


async def router(
    tmp_path: Path, ways: dict[int, tuple[list[int], dict[str, str]]], **kw: frozenset[int]
) -> EmbeddedRouter:
    return await EmbeddedRouter.open(str(osm_xml(tmp_path / "map.osm", NODES, ways, **kw)), tmp_path, 5.0)


async def test_a_one_way_street_is_driven_one_way_only(tmp_path: Path) -> None:
    ways = {
        10: ([1, 2, 3], {"highway": "residential", "oneway": "yes"}),  # A -> B -> C only
        11: ([1, 4, 5, 6, 3], {"highway": "residential"}),
    }
    r = await router(tmp_path, ways)
    there = await r.route(A, C)
    back = await r.route(C, A)
    assert there is not None and there.points == [A, B, C]
    assert back is not None and back.points == [C, F, E, D, A]  # around the block
    # The router measures on a sphere, geopy on the ellipsoid: a few metres per kilometre apart.
    assert abs(back.length_m / metres(C, F, E, D, A) - 1) < 0.005


async def test_oneway_minus_one_and_roundabouts(tmp_path: Path) -> None:
    ways = {
        10: ([1, 2, 3], {"highway": "residential", "oneway": "-1"}),  # C -> B -> A only
        11: ([1, 4, 5, 6, 3], {"highway": "residential", "junction": "roundabout"}),  # A -> ... -> C only
    }
    r = await router(tmp_path, ways)
    there, back = await r.route(A, C), await r.route(C, A)
    assert there is not None and there.points == [A, D, E, F, C]
    assert back is not None and back.points == [C, B, A]


async def test_duration_follows_maxspeed_class_and_signals(tmp_path: Path) -> None:
    ways = {
        10: ([1, 2], {"highway": "residential", "maxspeed": "20 mph"}),
        11: ([2, 3], {"highway": "primary"}),  # no maxspeed: the class's speed
    }
    r = await router(tmp_path, ways, signals=frozenset({3}))
    road = await r.route(A, C)
    assert road is not None and road.points == [A, B, C]
    expected = metres(A, B) / (20 * 1.609344 / 3.6) + metres(B, C) / (60 / 3.6) + SIGNAL_DELAY_S
    assert abs(road.duration_s - expected) < 0.5
    assert speed_kmh("secondary", "FI:urban") == 50 and speed_kmh("tertiary", "none") == 40


async def test_unreachable_and_off_the_map_are_no_route(tmp_path: Path) -> None:
    ways = {
        10: ([1, 2, 3], {"highway": "residential"}),
        12: ([7, 8], {"highway": "residential"}),  # the island
        13: ([4, 5], {"highway": "footway"}),  # not for cars
        14: ([5, 6], {"highway": "residential", "access": "private"}),
    }
    r = await router(tmp_path, ways)
    assert await r.route(A, G) is None  # another island
    assert await r.route(A, (60.20, 24.94)) is None  # 3 km from every street
    near_e = await r.route(A, E)  # E's streets are not drivable: it snaps to the nearest drivable node
    assert near_e is not None and near_e.points[-1] in (A, B, C)


async def test_the_graph_is_built_once_per_file_and_again_when_it_changes(tmp_path: Path) -> None:
    ways = {10: ([1, 2, 3], {"highway": "residential"})}
    await router(tmp_path, ways)
    [cache] = list((tmp_path / "routing").glob("*.npz"))
    built = cache.stat().st_mtime_ns
    os.utime(cache, ns=(built - 10**9, built - 10**9))
    again = await router(tmp_path, ways)  # same file: loaded, not rebuilt
    assert cache.stat().st_mtime_ns == built - 10**9 and again.graph.edges == 4
    changed = await router(tmp_path, ways | {11: ([1, 4, 5, 6, 3], {"highway": "residential"})})
    assert changed.graph.edges == 12
    assert len(list((tmp_path / "routing").glob("*.npz"))) == 1  # the old one is gone
