"""Congestion every driver shares: a rush hour over the whole map, and jams on busy stretches of street.

Planned once for the whole day from the seed, before any trip is driven, so it is the same for
every driver, for every re-drive of the floor and in every process. A *jam* holds a stretch of
street (consecutive segments, 100-500 m along one street in one direction) from ``from_s`` until
``until_s`` (seconds of the day): while it lasts nobody drives there faster than ``factor`` times
the road-class speed. Every driver whose path crosses the stretch in that window meets it; one
passing before or after drives freely. Jams start on the streets most fastest paths use (where
traffic is), at random times over the day. The *rush hour* slows every street (x ``rush_factor``
at its height, ramping in and out).

Neither is in the road-class prior that a navigation app or livemap's router knows: what the
fleet's other drivers have just driven through is the only way to learn it.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .osmworld import StreetMap
from .streetroute import StreetRoute


@dataclass(frozen=True)
class TrafficOptions:
    """The day's congestion; times of day are a notional local clock, hours."""

    #: Simulated time 0 of the day is this time of day.
    day_starts_h: float = 15.0
    #: Full rush between these times, ramping in and out over ``rush_ramp_h`` on either side.
    rush_h: tuple[float, float] = (15.75, 17.0)
    rush_ramp_h: float = 0.25
    rush_factor: float = 0.6
    #: Jams that begin per hour of the day, over ``horizon_h`` hours (from half an hour before the day).
    jams_per_hour: float = 10.0
    horizon_h: float = 4.0
    jam_minutes: tuple[float, float] = (10.0, 60.0)
    jam_factor: tuple[float, float] = (0.15, 0.5)
    jam_length_m: tuple[float, float] = (100.0, 500.0)
    #: Busy streets: those on the fastest paths between this many random pairs of doors.
    usage_pairs: int = 400


class SharedJam(NamedTuple):
    """A jam on the map: ``segments`` (in driving order) held at ``factor`` x their speed in its window."""

    segments: tuple[int, ...]
    length_m: float
    from_s: float
    until_s: float
    factor: float


class RouteJam(NamedTuple):
    """A shared jam as one route meets it: ``start_m``-``end_m`` along the route."""

    start_m: float
    end_m: float
    from_s: float
    until_s: float
    factor: float

    def holds(self, s: float, day_s: float) -> bool:
        """Whether it slows a driver at ``s`` metres along the route at ``day_s``."""
        return self.start_m <= s < self.end_m and self.from_s <= day_s < self.until_s


@dataclass(frozen=True)
class Congestion:
    """The day's shared congestion: see the module docstring."""

    options: TrafficOptions
    jams: tuple[SharedJam, ...]

    def rush(self, day_s: float) -> float:
        """The rush hour's speed factor at ``day_s`` seconds into the day (1 outside it)."""
        o = self.options
        h = o.day_starts_h + day_s / 3600.0
        (a, b), ramp = o.rush_h, o.rush_ramp_h
        if a <= h <= b:
            weight = 1.0
        elif a - ramp < h < a:
            weight = (h - (a - ramp)) / ramp
        elif b < h < b + ramp:
            weight = ((b + ramp) - h) / ramp
        else:
            weight = 0.0
        return 1.0 - (1.0 - o.rush_factor) * weight

    def frozen_at(self, day_s: float) -> Congestion:
        """The congestion as it is at ``day_s``, held for ever: today's rush factor, the jams on now.

        What a fleet that saw every street at that moment could know, and no more: jams still to
        come are not in it, and the ones on now never clear.
        """
        rush = dataclasses.replace(self.options, rush_factor=self.rush(day_s), rush_h=(-math.inf, math.inf))
        on = tuple(j._replace(from_s=-math.inf, until_s=math.inf) for j in self.jams if j.from_s <= day_s < j.until_s)
        return Congestion(rush, on)

    def on_route(self, route: StreetRoute) -> list[RouteJam]:
        """Every jam whose stretch the route drives along, as stretches of the route."""
        where: dict[int, list[int]] = {}
        for k, seg in enumerate(route.segments):
            where.setdefault(seg, []).append(k)
        met: list[RouteJam] = []
        for jam in self.jams:
            ks = sorted(k for seg in jam.segments for k in where.get(seg, ()))
            for first, last in _runs(ks):
                met.append(RouteJam(route.start_m(first), route.start_m(last + 1), jam.from_s, jam.until_s, jam.factor))
        return sorted(met)


def plan_congestion(world: StreetMap, options: TrafficOptions, seed: int | str) -> Congestion:
    """The day's jams, deterministic for ``seed``."""
    usage = world.usage(random.Random(f"{seed}:usage"), options.usage_pairs)
    weights = (usage + 0.02 * float(usage.max() or 1.0)).tolist()
    rng = random.Random(f"{seed}:congestion")
    jams: list[SharedJam] = []
    for _ in range(round(options.jams_per_hour * options.horizon_h)):
        segments = _stretch(world, rng, weights, options.jam_length_m)
        begins = rng.uniform(-0.5, options.horizon_h - 0.5) * 3600.0
        lasts = rng.uniform(*options.jam_minutes) * 60.0
        length = float(world.graph.seg_len_m[list(segments)].sum())
        jams.append(SharedJam(segments, length, begins, begins + lasts, rng.uniform(*options.jam_factor)))
    return Congestion(options, tuple(jams))


def _stretch(
    world: StreetMap, rng: random.Random, weights: list[float], length_m: tuple[float, float]
) -> tuple[int, ...]:
    """Consecutive segments of about ``length_m`` along one street, from a segment drawn by ``weights``."""
    best: list[int] = []
    for _ in range(20):
        target = rng.uniform(*length_m)
        segments = [rng.choices(range(len(weights)), weights)[0]]
        length = float(world.graph.seg_len_m[segments[0]])
        while length < target:
            nxt = _straight_on(world, segments[-1])
            if nxt is None or nxt in segments:
                break
            segments.append(nxt)
            length += float(world.graph.seg_len_m[nxt])
        if length >= length_m[0]:
            return tuple(segments)
        if len(segments) > len(best):
            best = segments
    return tuple(best)


def _straight_on(world: StreetMap, seg: int, max_bend_deg: float = 30.0) -> int | None:
    """The segment a car turning from ``seg`` takes to go on along the same street: its way, else straight on."""
    g = world.graph
    lo, hi = np.searchsorted(g.turn_from, seg), np.searchsorted(g.turn_from, seg, side="right")
    onward = [int(t) for t in g.turn_to[lo:hi] if g.seg_to[t] != g.seg_from[seg]]
    same_way = [t for t in onward if g.seg_way[t] == g.seg_way[seg]]
    if same_way:
        return same_way[0]
    heading = _heading(world, seg)
    bends = [(abs((_heading(world, t) - heading + 180.0) % 360.0 - 180.0), t) for t in onward]
    bends = [b for b in bends if b[0] <= max_bend_deg]
    return min(bends)[1] if bends else None


def _heading(world: StreetMap, seg: int) -> float:
    a, b = int(world.graph.seg_from[seg]), int(world.graph.seg_to[seg])
    return math.degrees(math.atan2(world.y[b] - world.y[a], world.x[b] - world.x[a]))


def _runs(ks: list[int]) -> Iterator[tuple[int, int]]:
    """Runs of consecutive integers in a sorted list, as (first, last)."""
    first = last = None
    for k in ks:
        if last is not None and k == last + 1:
            last = k
            continue
        if first is not None and last is not None:
            yield first, last
        first = last = k
    if first is not None and last is not None:
        yield first, last
