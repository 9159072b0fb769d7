"""A car graph from an OpenStreetMap extract: read with pyosmium, kept as numpy arrays, cached on disk.

Directed edges between consecutive nodes of every way a car may drive: one-way streets one way
(`oneway=yes/true/1`, `-1` reversed; roundabouts and motorways implied, `oneway=no` overrides),
`access` / `motor_vehicle` = no or private left out. An edge's cost is its travel time: geodesic
length over the speed from `maxspeed` (km/h, mph, or a country's urban/rural zone), else the road
class's default, plus a fixed delay for arriving at a node tagged `highway=traffic_signals`. Turn
restrictions are not applied: they need an edge-based graph (twice the size, a slower search) for
little change on a city's ETAs; the routes may take a forbidden turn.

Built once per file (its SHA-256 and the format version name the cache), so a restart loads it in
a moment; a country extract takes minutes to build and says so while it works.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import osmium

log = logging.getLogger("livemap.routing")
FORMAT = 1
#: Default speeds (km/h) by `highway` class, for ways without a usable `maxspeed`; `_link` roads
#: take their class's. Urban-leaning: a delivery fleet drives mostly in town.
CLASS_KMH = {
    "motorway": 100.0,
    "trunk": 80.0,
    "primary": 60.0,
    "secondary": 50.0,
    "tertiary": 40.0,
    "unclassified": 30.0,
    "residential": 30.0,
    "living_street": 10.0,
    "service": 15.0,
}
#: What a traffic light costs on average (half the red phase times the share of red).
SIGNAL_DELAY_S = 15.0
#: `maxspeed` zone values (`FI:urban`, `DE:rural`, ...) by their suffix, km/h.
_ZONE_KMH = {"urban": 50.0, "rural": 80.0, "motorway": 120.0, "living_street": 10.0, "walk": 7.0}
_MPH = 1.609344
_EARTH_M = 6_371_008.8
_ONEWAY_YES = {"yes", "true", "1"}
_NO_ACCESS = {"no", "private"}
_SKIP_SERVICE = {"parking_aisle", "driveway", "drive-through"}

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class StreetGraph:
    """Nodes (lat, lon) and directed edges (src -> dst) with length, speed and cost (s)."""

    lat: Floats
    lon: Floats
    src: Ints
    dst: Ints
    length_m: Floats
    speed_mps: Floats
    cost_s: Floats

    @property
    def nodes(self) -> int:
        return len(self.lat)

    @property
    def edges(self) -> int:
        return len(self.src)


def speed_kmh(highway: str, maxspeed: str | None) -> float:
    """The speed a car drives on a way: its `maxspeed` when it reads as one, else its class's default."""
    base = CLASS_KMH.get(highway.removesuffix("_link"), 30.0)
    if not maxspeed:
        return base
    value = maxspeed.strip().lower()
    if ":" in value:  # a zone: FI:urban, RU:living_street
        return _ZONE_KMH.get(value.split(":", 1)[1], base)
    found = re.match(r"^(\d+(?:\.\d+)?)\s*(mph)?$", value)
    if not found or float(found.group(1)) <= 0:
        return base  # "none", "signals", "variable", "50;30": the class's default
    return float(found.group(1)) * (_MPH if found.group(2) else 1.0)


def _direction(tags: osmium.osm.TagList, highway: str) -> tuple[bool, bool]:
    """(forward, backward): which ways along its nodes a car may drive a way."""
    oneway = tags.get("oneway") or ""
    if oneway == "-1":
        return False, True
    if oneway in _ONEWAY_YES or (
        oneway != "no" and (tags.get("junction") in ("roundabout", "circular") or highway == "motorway")
    ):
        return True, False
    return True, True


def _drivable(tags: osmium.osm.TagList) -> str | None:
    """The way's `highway` class when a car may drive it, else None."""
    highway = tags.get("highway") or ""
    if highway.removesuffix("_link") not in CLASS_KMH or tags.get("area") == "yes":
        return None
    if tags.get("access") in _NO_ACCESS or tags.get("motor_vehicle") in _NO_ACCESS:
        return None
    if highway == "service" and tags.get("service") in _SKIP_SERVICE:
        return None
    return highway


class _Reader(osmium.SimpleHandler):
    """Collects the drivable ways' node pairs and the traffic-signal nodes in one pass."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[int, int] = {}
        self.lat: list[float] = []
        self.lon: list[float] = []
        self.src: list[int] = []
        self.dst: list[int] = []
        self.speed: list[float] = []
        self.signals: set[int] = set()

    def node(self, n: osmium.osm.Node) -> None:
        if n.tags.get("highway") == "traffic_signals":
            self.signals.add(n.id)

    def _index(self, ref: osmium.osm.NodeRef) -> int:
        found = self.ids.get(ref.ref)
        if found is None:
            found = self.ids[ref.ref] = len(self.lat)
            self.lat.append(ref.location.lat)
            self.lon.append(ref.location.lon)
        return found

    def way(self, w: osmium.osm.Way) -> None:
        highway = _drivable(w.tags)
        if highway is None:
            return
        forward, backward = _direction(w.tags, highway)
        mps = speed_kmh(highway, w.tags.get("maxspeed")) / 3.6
        nodes = [self._index(ref) for ref in w.nodes if ref.location.valid()]
        for a, b in itertools.pairwise(nodes):
            for u, v, ok in ((a, b, forward), (b, a, backward)):
                if ok and u != v:
                    self.src.append(u)
                    self.dst.append(v)
                    self.speed.append(mps)


def _haversine_m(lat1: Floats, lon1: Floats, lat2: Floats, lon2: Floats) -> Floats:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * _EARTH_M * np.arcsin(np.sqrt(h)), dtype=np.float64)


def build(path: Path) -> StreetGraph:
    """Read `path` (any format pyosmium reads: .osm.pbf, .osm) into a car graph."""
    reader = _Reader()
    reader.apply_file(str(path), locations=True)
    lat, lon = np.array(reader.lat, dtype=np.float64), np.array(reader.lon, dtype=np.float64)
    src, dst = np.array(reader.src, dtype=np.int64), np.array(reader.dst, dtype=np.int64)
    speed = np.array(reader.speed, dtype=np.float64)
    length = _haversine_m(lat[src], lon[src], lat[dst], lon[dst])
    at_signal = np.zeros(len(lat), dtype=bool)
    signal_nodes = [i for osm_id, i in reader.ids.items() if osm_id in reader.signals]
    at_signal[signal_nodes] = True
    # Never 0 (two nodes at one place): the search takes a zero weight for no edge.
    cost = np.maximum(length / np.maximum(speed, 0.1), 1e-3) + np.where(at_signal[dst], SIGNAL_DELAY_S, 0.0)
    return StreetGraph(lat, lon, src, dst, length, speed, cost)


def cached(path: Path, data_dir: Path) -> StreetGraph:
    """The graph of `path`, from the cache in `data_dir/routing/` when it was built from the same file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    cache = data_dir / "routing" / f"{path.name}.{digest.hexdigest()[:16]}.v{FORMAT}.npz"
    if cache.exists():
        with np.load(cache) as saved:
            return StreetGraph(**{name: saved[name] for name in StreetGraph.__slots__})
    size_mb = path.stat().st_size / 1e6
    print(f"livemap: building the car graph from {path} ({size_mb:.1f} MB; this happens once per file)...", flush=True)
    started = time.monotonic()
    graph = build(path)
    cache.parent.mkdir(parents=True, exist_ok=True)
    for stale in cache.parent.glob(f"{path.name}.*.npz"):
        stale.unlink()  # the same file name built from older contents or an older format
    partial = cache.with_suffix(".partial.npz")
    np.savez(partial, **{name: getattr(graph, name) for name in StreetGraph.__slots__})
    partial.replace(cache)  # a crash mid-write never leaves a cache that loads half a graph
    took = time.monotonic() - started
    print(f"livemap: car graph ready: {graph.nodes:,} nodes, {graph.edges:,} edges in {took:.1f} s", flush=True)
    return graph


def metres_per_degree(lat: float) -> tuple[float, float]:
    """(north, east) metres per degree at latitude `lat`: the local frame snapping measures in."""
    north = math.pi * _EARTH_M / 180
    return north, north * math.cos(math.radians(lat))
