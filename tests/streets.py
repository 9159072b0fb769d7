"""A few streets as an OpenStreetMap file, for routing tests: two ways from A to C, one short, one long.

B ---- C          A-B-C: 400 m (the road route from A)
|      |          A-D-E-F-C: 800 m (a driver who wanders to E gets E-F-C)
A      F
|      |
D ---- E
"""

from __future__ import annotations

from pathlib import Path

LatLon = tuple[float, float]
# About 200 m between neighbours at this latitude (0.0018 degrees north, 0.0036 east).
A: LatLon = (60.1700, 24.9400)
B: LatLon = (60.1718, 24.9400)
C: LatLon = (60.1718, 24.9436)
D: LatLon = (60.1682, 24.9400)
E: LatLon = (60.1682, 24.9436)
F: LatLon = (60.1700, 24.9436)
NODES = {1: A, 2: B, 3: C, 4: D, 5: E, 6: F}
WAYS = {10: [1, 2, 3], 11: [1, 4, 5, 6, 3]}


def osm_xml(
    path: Path,
    nodes: dict[int, LatLon],
    ways: dict[int, tuple[list[int], dict[str, str]]],
    signals: frozenset[int] = frozenset(),
) -> Path:
    """An .osm (XML) file of `nodes`, `ways` (node ids, tags) and traffic lights at `signals`' nodes,
    which the router reads like a .osm.pbf."""
    lines = ["<?xml version='1.0' encoding='UTF-8'?>", '<osm version="0.6" generator="livemap-tests">']
    for n, (lat, lon) in nodes.items():
        if n in signals:
            lines.append(f'  <node id="{n}" version="1" lat="{lat}" lon="{lon}">')
            lines += ['    <tag k="highway" v="traffic_signals"/>', "  </node>"]
        else:
            lines.append(f'  <node id="{n}" version="1" lat="{lat}" lon="{lon}"/>')
    for way, (refs, tags) in ways.items():
        lines.append(f'  <way id="{way}" version="1">')
        lines += [f'    <nd ref="{ref}"/>' for ref in refs]
        lines += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        lines.append("  </way>")
    lines.append("</osm>")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_osm(path: Path) -> Path:
    """The streets above."""
    return osm_xml(path, NODES, {way: (refs, {"highway": "residential"}) for way, refs in WAYS.items()})


def near(a: LatLon, b: LatLon, metres: float = 15.0) -> bool:
    """Whether two points are within `metres` (equirectangular: plenty at this scale)."""
    dlat = (a[0] - b[0]) * 111_320
    dlon = (a[1] - b[1]) * 111_320 * 0.4985  # cos(60.17 degrees)
    return (dlat * dlat + dlon * dlon) ** 0.5 <= metres
