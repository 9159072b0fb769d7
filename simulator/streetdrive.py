"""Driving a street route: the motion model of :mod:`.driver` on real streets, in the day's shared congestion.

The physics are the grid's (accelerate, brake ahead for whatever is coming, wait at a red light,
now and then a long stop), with three differences:

- **Speed follows the street.** Each zone's road-class speed (:mod:`.streetroute`) times the
  driver's *pace*, which wanders smoothly around 1 (an Ornstein-Uhlenbeck process, as the grid's
  cruise speed does); the driver brakes ahead for a slower zone as for a turn.
- **Red lights only at traffic signals** the map has, each red on arrival by chance; turn
  slow-downs where the path turns at a crossing or bends sharply.
- **Shared congestion** (:mod:`.congestion`): the rush hour slows everyone, a jam caps the speed
  on its stretch while it lasts, and the driver brakes for a jam ahead as for a slower zone.
  Both depend on the time of day, so a trip knows when in the day it leaves (``day_s``).

Everything else is :class:`.driver.Trip`'s: the true state at any moment, a trip moved in time
as a whole, and the floor's futures, which here keep the congestion (it is the world's, not
luck) and draw the driver's own luck ahead afresh.
"""

from __future__ import annotations

import bisect
import collections
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from .congestion import Congestion
from .driver import Trip
from .motion import SNAP_M, Limit, MotionProfile, Sample, Walk, drive, reach_m
from .streetroute import StreetRoute


@dataclass(frozen=True)
class StreetProfile(MotionProfile):
    """A car in a city centre: the grid's profile with a pace instead of a cruise speed."""

    #: The driver's speed as a share of the street's road-class speed: mean, spread, bounds.
    pace_mean: float = 1.0
    pace_sigma: float = 0.08
    pace_range: tuple[float, float] = (0.85, 1.15)
    #: Braking is planned for this top speed (a 50 km/h street at the top of the pace range).
    max_speed_mps: float = 14.0
    #: The chance that a traffic signal is red as the driver arrives, and how long it then waits.
    red_light_chance: float = 0.5
    red_light_s: tuple[float, float] = (5.0, 45.0)
    turn_speed_mps: tuple[float, float] = (3.5, 6.0)


class _Street:
    """How fast anyone may drive along one route at any time of the day, and braking for what is ahead."""

    def __init__(self, route: StreetRoute, congestion: Congestion, day_s: float, brake_mps2: float) -> None:
        self.zones = route.zones()
        self.jams = congestion.on_route(route)
        #: When in the day the trip leaves (simulated seconds since the day's start).
        self.day_s = day_s
        self._rush = congestion.rush
        self._starts = [z.start_m for z in self.zones]
        # Where the speed may drop: a new zone or a jam begins.
        self._drops = sorted({z.start_m for z in self.zones[1:]} | {j.start_m for j in self.jams})
        self._brake = brake_mps2

    def speed(self, s: float, day_s: float, pace: float) -> float:
        """The speed at ``s`` metres along the route at ``day_s`` for a driver of ``pace``."""
        zone = self.zones[max(bisect.bisect_right(self._starts, s) - 1, 0)]
        factor = pace * self._rush(day_s)
        for jam in self.jams:
            if jam.holds(s, day_s):
                factor = min(factor, jam.factor)
        return zone.limit_mps * factor

    def allowed(self, s: float, day_s: float, pace: float, reach_m: float) -> float:
        """:meth:`speed` here, lowered to brake in time for every drop within ``reach_m`` ahead."""
        v = self.speed(s, day_s, pace)
        i = bisect.bisect_right(self._drops, s)
        while i < len(self._drops) and self._drops[i] - s <= reach_m:
            at = self._drops[i]
            v = min(v, math.sqrt(self.speed(at, day_s, pace) ** 2 + 2 * self._brake * max(at - s - SNAP_M, 0.0)))
            i += 1
        return v


def _street_limits(route: StreetRoute, rng: random.Random, p: MotionProfile, after_m: float) -> list[Limit]:
    """Red lights (at signals only) and turn slow-downs at the crossings beyond ``after_m``."""
    limits: list[Limit] = []
    for crossing, signal in zip(route.crossings, route.signals, strict=True):
        if crossing.distance_m <= after_m:
            continue
        if signal and rng.random() < p.red_light_chance:
            limits.append(Limit(crossing.distance_m, 0.0, rng.uniform(*p.red_light_s)))
        elif crossing.turn:
            limits.append(Limit(crossing.distance_m, rng.uniform(*p.turn_speed_mps), None))
    return limits


def _long_stop(rng: random.Random, p: MotionProfile, chance: float, lo_m: float, hi_m: float) -> list[Limit]:
    """A long stop somewhere between ``lo_m`` and ``hi_m``, with ``chance``: a parking hunt, a blocked street."""
    if rng.random() < chance:
        return [Limit(rng.uniform(lo_m, hi_m), 0.0, rng.uniform(*p.long_stop_s))]
    return []


def _plan_limits(route: StreetRoute, rng: random.Random, p: MotionProfile) -> list[Limit]:
    limits = _street_limits(route, rng, p, -math.inf)
    limits += _long_stop(rng, p, p.long_stop_chance, 0.2 * route.length_m, 0.8 * route.length_m)
    limits.sort(key=lambda lim: lim.distance_m)
    limits.append(Limit(route.length_m, 0.0, 0.0))
    return limits


def _first_pace(rng: random.Random, p: StreetProfile) -> float:
    return min(max(rng.gauss(p.pace_mean, p.pace_sigma), p.pace_range[0]), p.pace_range[1])


def _drive(
    limits: list[Limit], street: _Street, rng: random.Random, p: StreetProfile, start: Sample, t0_s: float
) -> Iterator[Sample]:
    """Drive from ``start`` (``t0_s`` after departure) through ``limits`` to the last one, the door.

    Samples carry the driver's pace where the grid's carry its cruise speed, and times from ``start``.
    """
    reach = reach_m(p)

    def cap(s: float, t: float, pace: float) -> float:
        return street.allowed(s, street.day_s + t0_s + t, pace, reach)

    return drive(limits, start, rng, p, Walk(p.pace_mean, p.pace_sigma, *p.pace_range), cap)


class StreetTrip(Trip):
    """One drive along a street route leaving at ``depart_ms``, ``day_s`` seconds into the congested day.

    Deterministic for ``seed`` and the congestion; :meth:`departing` moves it in time unchanged,
    which holds as long as the whole day (and so its congestion) moves with it.
    """

    def __init__(
        self,
        route: StreetRoute,
        depart_ms: int,
        seed: int,
        profile: StreetProfile,
        congestion: Congestion,
        day_s: float,
    ) -> None:
        self.street_route = route
        self.street_profile = profile
        self.congestion = congestion
        self.street = _Street(route, congestion, day_s, profile.brake_mps2)
        super().__init__(route, depart_ms, seed, profile)

    def departing(self, depart_ms: int) -> StreetTrip:
        trip = super().departing(depart_ms)
        assert isinstance(trip, StreetTrip)
        return trip

    def _motion(self) -> Iterator[Sample]:
        rng = random.Random(self.seed)
        limits = _plan_limits(self.street_route, rng, self.street_profile)
        start = Sample(0.0, 0.0, 0.0, _first_pace(rng, self.street_profile), 0)
        yield start
        yield from _drive(limits, self.street, rng, self.street_profile, start, 0.0)

    def futures(self, t_ms: int, count: int, seed: str, *, present_only: bool = False) -> list[float]:
        """Seconds left from ``t_ms`` in ``count`` other futures: the same present and congestion, fresh luck.

        As :meth:`.driver.Trip.futures`: the present (position, speed, pace, what the driver brakes
        for or waits at) is kept; beyond braking distance red lights, turn speeds and a long stop are
        drawn again. The shared congestion is kept whole, jams still to come included: it belongs to
        the world. With ``present_only`` it is the congestion of this moment held for ever
        (:meth:`.congestion.Congestion.frozen_at`): what watching every street now could tell.
        """
        p = self.street_profile
        street = self.street
        if present_only:
            now_s = street.day_s + (t_ms - self.depart_ms) / 1000.0
            street = _Street(self.street_route, self.congestion.frozen_at(now_s), street.day_s, p.brake_mps2)
        t_s = (t_ms - self.depart_ms) / 1000.0
        if t_s >= self.duration_s:
            return [0.0] * count
        state, wait_s = self._present(max(t_s, 1e-6))
        length = self.street_route.length_m
        horizon = state.s_m + reach_m(p)
        planned = _plan_limits(self.street_route, random.Random(self.seed), p)
        known = [lim for lim in planned[state.k : -1] if lim.distance_m <= horizon]
        # A long stop happens once in the middle 60% of a trip, if at all: only the part still ahead can hold it.
        lo, hi = max(0.2 * length, horizon), 0.8 * length
        chance = p.long_stop_chance * max(hi - lo, 0.0) / (0.6 * length)
        start = state._replace(k=0)  # an index into each future's own limits
        left: list[float] = []
        for i in range(count):
            luck = random.Random(f"{seed}:{i}")
            ahead = _street_limits(self.street_route, luck, p, horizon) + _long_stop(luck, p, chance, lo, hi)
            limits = [*sorted([*known, *ahead], key=lambda lim: lim.distance_m), planned[-1]]
            drive = _drive(limits, street, luck, p, start, max(t_s, 1e-6) + wait_s)
            last = collections.deque(drive, maxlen=1)
            left.append(wait_s + (last[0].t_s if last else 0.0))
        return left
