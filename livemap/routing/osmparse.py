"""Reads the car-relevant parts of an OpenStreetMap file (`.osm.pbf`, or `.osm` XML) with pyosmium.

One pass: libosmium keeps every node's location (its `flex_mem` index: a few hundred MB for a
large country) and a C++ key filter drops untagged nodes and unrelated objects before Python
sees them, so Python only handles roads, signals and turn restrictions.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from pathlib import Path

import osmium

from livemap.routing.osmtags import car_speed_kmh, direction

#: libosmium's "no location" coordinate (a way's node missing from an extract cut at its border).
UNDEFINED_COORD = 2147483647


@dataclass(frozen=True, slots=True)
class Restriction:
    """A turn restriction with a via node: `only` True for `only_*`, False for `no_*`."""

    from_way: int
    via_node: int
    to_way: int
    only: bool


@dataclass(slots=True)
class ParsedOsm:
    """The car ways, node by node, in file order; coordinates in libosmium's fixed point (1e-7 deg)."""

    refs: array[int] = field(default_factory=lambda: array("q"))  # node ids of every way, concatenated
    xs: array[int] = field(default_factory=lambda: array("i"))  # their longitudes
    ys: array[int] = field(default_factory=lambda: array("i"))  # their latitudes
    way_starts: array[int] = field(default_factory=lambda: array("q", [0]))  # way i is refs[starts[i]:starts[i+1]]
    way_ids: array[int] = field(default_factory=lambda: array("q"))
    way_kmh: array[float] = field(default_factory=lambda: array("f"))
    way_dir: array[int] = field(default_factory=lambda: array("b"))  # osmtags.direction: 1, -1 or 0
    signals: set[int] = field(default_factory=set)  # nodes tagged highway=traffic_signals
    restrictions: list[Restriction] = field(default_factory=list)


class _Reader(osmium.SimpleHandler):
    def __init__(self) -> None:
        super().__init__()
        self.out = ParsedOsm()

    def node(self, n: osmium.osm.Node) -> None:
        if n.tags.get("highway") == "traffic_signals":
            self.out.signals.add(n.id)

    def way(self, w: osmium.osm.Way) -> None:
        tags = w.tags.get
        kmh = car_speed_kmh(tags)
        sense = direction(tags) if kmh is not None else None
        if kmh is None or sense is None or len(w.nodes) < 2:
            return
        out = self.out
        for nd in w.nodes:
            out.refs.append(nd.ref)
            out.xs.append(nd.x)
            out.ys.append(nd.y)
        out.way_starts.append(len(out.refs))
        out.way_ids.append(w.id)
        out.way_kmh.append(kmh)
        out.way_dir.append(sense)

    def relation(self, r: osmium.osm.Relation) -> None:
        restriction = _restriction(r)
        if restriction is not None:
            self.out.restrictions.append(restriction)


def _restriction(r: osmium.osm.Relation) -> Restriction | None:
    """A `type=restriction` relation for cars with one from way, one via node, one to way; else None.

    Via-way restrictions and conditional ones (`restriction:conditional`, by time of day) are left out.
    """
    tags = r.tags.get
    kind = tags("restriction:motorcar") or tags("restriction")
    if tags("type") != "restriction" or not kind or not kind.startswith(("no_", "only_")):
        return None
    if "motorcar" in (tags("except") or "").split(";"):
        return None
    roles: dict[str, list[tuple[str, int]]] = {"from": [], "via": [], "to": []}
    for m in r.members:
        if m.role in roles:
            roles[m.role].append((m.type, m.ref))
    if [len(roles[k]) for k in ("from", "via", "to")] != [1, 1, 1]:
        return None
    (ft, fid), (vt, vid), (tt, tid) = roles["from"][0], roles["via"][0], roles["to"][0]
    if (ft, vt, tt) != ("w", "n", "w"):
        return None
    return Restriction(fid, vid, tid, kind.startswith("only_"))


def read_osm(path: Path) -> ParsedOsm:
    """The car ways, traffic signals and turn restrictions of the file at `path`."""
    reader = _Reader()
    keep = osmium.filter.KeyFilter("highway", "restriction", "restriction:motorcar")
    reader.apply_file(str(path), locations=True, filters=[keep])
    return reader.out
