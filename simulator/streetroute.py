"""A path on real streets in the form the motion model drives: a polyline, its crossings and its speeds.

Built from a path of car-graph segments (:mod:`.osmworld`): a vertex at every node passed, a
crossing wherever the path passes a node where more than two streets meet or a traffic signal
stands (a turn when the direction changes there, or on a sharp bend), and each segment's
road-class speed. Consecutive segments of one speed are merged into *zones*, where the motion
model changes its speed limit.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import NamedTuple

from .city import Crossing
from .geo import Polyline, distance_m
from .osmworld import StreetMap

#: A change of direction by more than this (degrees) at a crossing is a turn...
TURN_DEG = 35.0
#: ... and by more than this on a bend between two crossings, too.
BEND_DEG = 60.0
#: Directions at a node are measured over this far before and after it (short segments are noisy).
_LOOK_M = 12.0


class Zone(NamedTuple):
    """A stretch of one road-class speed: ``start_m``-``end_m`` along the route at ``limit_mps``."""

    start_m: float
    end_m: float
    limit_mps: float


@dataclass(frozen=True)
class StreetRoute(Polyline):
    """A path along the car graph: every node's position in the map's local frame and what lies between.

    ``segments[k]`` joins ``xy[k]`` to ``xy[k + 1]`` at ``limits_mps[k]``; ``crossings`` and
    ``signals`` (one flag per crossing) are what the driver meets on the way.
    """

    nodes: tuple[int, ...]
    segments: tuple[int, ...]
    limits_mps: tuple[float, ...]
    crossings: tuple[Crossing, ...]
    signals: tuple[bool, ...]

    def __post_init__(self) -> None:
        if len(self.xy) < 2 or len(self.segments) != len(self.xy) - 1 or len(self.signals) != len(self.crossings):
            raise ValueError("a street route needs two or more vertices, one segment between each two")
        super().__post_init__()

    def zones(self) -> list[Zone]:
        """Runs of consecutive segments of one road-class speed."""
        zones: list[Zone] = []
        for k, limit in enumerate(self.limits_mps):
            start, end = self._cum[k], self._cum[k + 1]
            if zones and zones[-1].limit_mps == limit:
                zones[-1] = zones[-1]._replace(end_m=end)
            else:
                zones.append(Zone(start, end, limit))
        return zones


def street_route(world: StreetMap, segments: list[int]) -> StreetRoute:
    """The route along ``segments`` (consecutive: each starts where the one before ends)."""
    g = world.graph
    nodes = [int(g.seg_from[segments[0]])] + [int(g.seg_to[s]) for s in segments]
    for s, nxt in itertools.pairwise(segments):
        if g.seg_to[s] != g.seg_from[nxt]:
            raise ValueError(f"segments {s} and {nxt} are not consecutive")
    xy = tuple((float(world.x[n]), float(world.y[n])) for n in nodes)
    draft = StreetRoute(
        world.frame, xy, tuple(nodes), tuple(segments), tuple(float(world.limit_mps[s]) for s in segments), (), ()
    )
    crossings: list[Crossing] = []
    signals: list[bool] = []
    for k in range(1, len(nodes) - 1):
        node, at = nodes[k], draft.start_m(k)
        signal = bool(g.node_signal[node])
        bend = _bend_deg(draft, at)
        crossing = int(world.degree[node]) > 2
        if crossing or signal or bend > BEND_DEG:
            crossings.append(Crossing(at, turn=bend > (TURN_DEG if crossing else BEND_DEG)))
            signals.append(signal)
    return StreetRoute(world.frame, xy, draft.nodes, draft.segments, draft.limits_mps, tuple(crossings), tuple(signals))


def _bend_deg(route: StreetRoute, at: float) -> float:
    """How much the direction of travel changes around ``at`` metres along the route, degrees."""
    before, here, after = route.point_at(at - _LOOK_M), route.point_at(at), route.point_at(at + _LOOK_M)
    if distance_m(before, here) < 0.5 or distance_m(here, after) < 0.5:
        return 0.0
    a = math.atan2(here[1] - before[1], here[0] - before[0])
    b = math.atan2(after[1] - here[1], after[0] - here[0])
    turn = abs(math.degrees(b - a)) % 360.0
    return min(turn, 360.0 - turn)
