"""The directed car graph: OSM nodes, and segments (one per direction a car may drive between two
consecutive nodes of a way), in flat numpy arrays.

A segment's id is its index in the `seg_*` arrays; `RoadRoute.segments` are these ids. A segment is a
straight line from `node_lat/lon[seg_from]` to `node_lat/lon[seg_to]`, so ids plus the node arrays
are enough to draw one or to keep a learned speed per segment. Segments are sorted by `seg_from`:
`out_start[n]:out_start[n + 1]` are node n's outgoing ones (CSR).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from livemap.routing.osmparse import UNDEFINED_COORD, ParsedOsm

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]

#: Mean Earth radius (m): haversine lengths are within 0.5% of the ellipsoid's, far below OSM's own error.
EARTH_R = 6_371_008.8
#: Time lost passing a node tagged `highway=traffic_signals` (s): about a third of a typical 45 s
#: cycle, averaged over arriving on green and on red.
SIGNAL_DELAY_S = 15.0
#: No segment takes less (s): a zero-cost edge would vanish from scipy's sparse graph.
MIN_SEGMENT_S = 1e-3


@dataclass(frozen=True, slots=True)
class CarGraph:
    """See the module docstring. Every array is saved as is in the cache (graphcache.py)."""

    node_osm: I64  # OSM node id per node
    node_lat: F64
    node_lon: F64
    node_signal: Bool  # passing it costs SIGNAL_DELAY_S
    seg_from: I32
    seg_to: I32
    seg_way: I64  # the OSM way id it belongs to
    seg_len_m: F32
    seg_time_s: F32  # length over the way's car speed
    out_start: I64  # CSR over seg_from, len = nodes + 1
    # Turns: from segment `turn_from` onto segment `turn_to` (u-turns only at dead ends; turn
    # restrictions applied), sorted by turn_from; built by turns.py.
    turn_from: I32
    turn_to: I32

    @property
    def nodes(self) -> int:
        return len(self.node_osm)

    @property
    def segments(self) -> int:
        return len(self.seg_from)

    def arrays(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def haversine_m(lat1: F64, lon1: F64, lat2: F64, lon2: F64) -> F64:
    """Great-circle distance in metres, elementwise."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_R * np.arcsin(np.sqrt(np.minimum(h, 1.0))), dtype=np.float64)


def _pairs(parsed: ParsedOsm) -> tuple[I64, I64, I64]:
    """Consecutive node positions (a, b) inside each way (into `parsed.refs`), and each one's way index."""
    starts = np.frombuffer(parsed.way_starts, dtype=np.int64)
    lengths = np.diff(starts)
    way_of = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths - 1)
    # Every position but each way's last one starts a pair.
    last = np.zeros(int(starts[-1]), dtype=bool)
    last[starts[1:] - 1] = True
    a = np.flatnonzero(~last).astype(np.int64)
    return a, a + 1, way_of


def _directed(parsed: ParsedOsm, a: I64, b: I64, way: I64) -> tuple[I64, I64, I64]:
    """The pairs as directed segments (positions), each way's direction applied."""
    sense = np.frombuffer(parsed.way_dir, dtype=np.int8)[way]
    xs = np.frombuffer(parsed.xs, dtype=np.int32)
    refs = np.frombuffer(parsed.refs, dtype=np.int64)
    # A node missing from the extract has no location; a node repeated in a row makes no segment.
    ok = (xs[a] != UNDEFINED_COORD) & (xs[b] != UNDEFINED_COORD) & (refs[a] != refs[b])
    fwd, back = ok & (sense >= 0), ok & (sense <= 0)
    src = np.concatenate([a[fwd], b[back]])
    dst = np.concatenate([b[fwd], a[back]])
    return src, dst, np.concatenate([way[fwd], way[back]])


def build_graph(parsed: ParsedOsm) -> CarGraph:
    """The car graph of what osmparse read (turns included: see turns.py)."""
    from livemap.routing.turns import build_turns  # turns.py needs CarGraph: import here, no cycle

    a, b, way = _pairs(parsed)
    src, dst, way = _directed(parsed, a, b, way)
    refs = np.frombuffer(parsed.refs, dtype=np.int64)
    ends = np.concatenate([src, dst])  # positions in parsed.refs of every segment's two ends
    node_osm, index = np.unique(refs[ends], return_inverse=True)
    seg_from, seg_to = index[: len(src)].astype(np.int32), index[len(src) :].astype(np.int32)
    lat, lon = np.zeros(len(node_osm)), np.zeros(len(node_osm))
    lat[index] = np.frombuffer(parsed.ys, dtype=np.int32)[ends] / 1e7
    lon[index] = np.frombuffer(parsed.xs, dtype=np.int32)[ends] / 1e7
    length = haversine_m(lat[seg_from], lon[seg_from], lat[seg_to], lon[seg_to])
    kmh = np.frombuffer(parsed.way_kmh, dtype=np.float32)[way]
    time = np.maximum(length / (kmh / 3.6), MIN_SEGMENT_S)
    order = np.argsort(seg_from, kind="stable")
    seg_from, seg_to = seg_from[order], seg_to[order]
    out_start = np.zeros(len(node_osm) + 1, dtype=np.int64)
    np.cumsum(np.bincount(seg_from, minlength=len(node_osm)), out=out_start[1:])
    signals = np.fromiter(parsed.signals, dtype=np.int64, count=len(parsed.signals))
    way_ids = np.frombuffer(parsed.way_ids, dtype=np.int64)
    graph = CarGraph(
        node_osm=node_osm.astype(np.int64), node_lat=lat, node_lon=lon, node_signal=np.isin(node_osm, signals),
        seg_from=seg_from, seg_to=seg_to, seg_way=way_ids[way[order]],
        seg_len_m=length[order].astype(np.float32), seg_time_s=time[order].astype(np.float32),
        out_start=out_start, turn_from=np.zeros(0, np.int32), turn_to=np.zeros(0, np.int32),
    )  # fmt: skip
    turn_from, turn_to = build_turns(graph, parsed.restrictions)
    return _with_turns(graph, turn_from, turn_to)


def _with_turns(graph: CarGraph, turn_from: I32, turn_to: I32) -> CarGraph:
    arrays = graph.arrays() | {"turn_from": turn_from, "turn_to": turn_to}
    return CarGraph(**arrays)
