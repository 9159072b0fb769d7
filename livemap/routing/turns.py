"""The turns a car may make from one segment onto the next, for the edge-based search (search.py).

Routing over segments rather than nodes is what lets a turn restriction forbid "from this way onto
that way at this node" while both ways stay usable otherwise. A car may go from segment s (u -> v)
onto any segment leaving v except:

- straight back to u (a u-turn), unless v is a dead end, where turning is the only way on;
- a turn a `no_*` restriction forbids (from way, via node, to way), or that an `only_*` one at the
  same from way and via node leaves out.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from livemap.routing.osmparse import Restriction

if TYPE_CHECKING:
    from livemap.routing.osmgraph import I32, I64, CarGraph


def build_turns(graph: CarGraph, restrictions: list[Restriction]) -> tuple[I32, I32]:
    """(turn_from, turn_to): every allowed turn, sorted by turn_from."""
    onward = np.diff(graph.out_start)[graph.seg_to]  # segments leaving each segment's end node
    turn_from = np.repeat(np.arange(graph.segments, dtype=np.int64), onward)
    first = np.cumsum(onward) - onward  # where each segment's turns begin in turn_from
    turn_to = graph.out_start[graph.seg_to][turn_from] + (np.arange(len(turn_from)) - first[turn_from])
    u_turn = graph.seg_to[turn_to] == graph.seg_from[turn_from]
    keep = ~u_turn | (onward[turn_from] == 1)
    keep &= ~_restricted(graph, restrictions, turn_from, turn_to)
    return turn_from[keep].astype(np.int32), turn_to[keep].astype(np.int32)


def _restricted(graph: CarGraph, restrictions: list[Restriction], turn_from: I64, turn_to: I64) -> np.ndarray:
    """Which turns the restrictions forbid (a boolean per turn)."""
    forbidden = np.zeros(len(turn_from), dtype=bool)
    rules = _rules(graph, restrictions)
    if not rules:
        return forbidden
    # Only turns from a restricted (way, via node) pair need a look: find those first, in numpy.
    nodes = graph.nodes
    key = graph.seg_way[turn_from] * nodes + graph.seg_to[turn_from]
    wanted = np.fromiter((way * nodes + via for way, via in rules), dtype=np.int64, count=len(rules))
    for k in np.flatnonzero(np.isin(key, wanted)):
        way, via = int(graph.seg_way[turn_from[k]]), int(graph.seg_to[turn_from[k]])
        no, only = rules[(way, via)]
        onto = int(graph.seg_way[turn_to[k]])
        forbidden[k] = onto in no or (bool(only) and onto not in only)
    return forbidden


def _rules(graph: CarGraph, restrictions: list[Restriction]) -> dict[tuple[int, int], tuple[set[int], set[int]]]:
    """(from way, via node index) -> (ways a car may not turn onto, ways it may only turn onto)."""
    rules: dict[tuple[int, int], tuple[set[int], set[int]]] = defaultdict(lambda: (set(), set()))
    for r in restrictions:
        via = int(np.searchsorted(graph.node_osm, r.via_node))
        if via < graph.nodes and graph.node_osm[via] == r.via_node:  # else its via node is no car node
            rules[(r.from_way, via)][1 if r.only else 0].add(r.to_way)
    return dict(rules)
