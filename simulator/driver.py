"""A virtual driver: true motion along a route, and the noisy GPS fixes its phone would report.

The true motion of a trip is a pure function of the route and a seed, computed in simulated
time with a fixed step: cruise speed wanders smoothly (an Ornstein-Uhlenbeck process) inside
the urban band, the driver brakes for turns and red lights, waits there, rarely makes a
longer stop and, with a profile that has traffic, crawls through congested stretches.
Because it is replayable, a trip knows its exact arrival time the moment it is planned, which
is the ground truth an ETA can be scored against. Fixes add what phones add: slowly drifting
position error, an accuracy estimate, a heading only when moving, and a battery that drains.
"""

from __future__ import annotations

import collections
import copy
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from .drivable import Drivable
from .geo import bearing_deg
from .motion import Limit, MotionProfile, Sample, Walk, drive, reach_m


@dataclass(frozen=True, slots=True)
class TrueState:
    """Where a driver really is at ``t_ms`` (simulated epoch ms)."""

    t_ms: int
    lat: float
    lon: float
    x: float
    y: float
    speed_mps: float
    heading_deg: float | None
    travelled_m: float
    remaining_m: float
    arrived: bool


@dataclass(frozen=True, slots=True)
class Fix:
    """One GPS fix as a phone reports it (the driver socket's fix fields)."""

    lat: float
    lon: float
    ts: int
    speed: float
    heading: float | None
    accuracy: float
    battery: float

    def to_wire(self, seq: int | None = None) -> dict[str, object]:
        """The fix as the driver socket's JSON object; ``heading`` is null while standing still."""
        wire: dict[str, object] = {
            "lat": self.lat,
            "lon": self.lon,
            "ts": self.ts,
            "speed": self.speed,
            "heading": self.heading,
            "accuracy": self.accuracy,
            "battery": self.battery,
        }
        if seq is not None:
            wire["seq"] = seq
        return wire


class Jam(NamedTuple):
    """A congested stretch of a route: from ``start_m`` to ``end_m`` nobody goes faster than ``speed_mps``."""

    start_m: float
    end_m: float
    speed_mps: float


def plan_jams(route_length_m: float, seed: int, profile: MotionProfile) -> list[Jam]:
    """The congested stretches of one trip, deterministic for ``seed`` (the trip's seed)."""
    return _draw_jams(route_length_m, random.Random(f"{seed}:traffic"), profile, -math.inf)


def _draw_jams(route_length_m: float, rng: random.Random, profile: MotionProfile, after_m: float) -> list[Jam]:
    """Jams that begin beyond ``after_m``: each kilometre may start one."""
    jams: list[Jam] = []
    km = 0
    while km * 1000.0 < route_length_m and profile.jam_chance_per_km > 0:
        if rng.random() < profile.jam_chance_per_km:
            start = (km + rng.random()) * 1000.0
            end = min(start + rng.uniform(*profile.jam_length_m), route_length_m)
            if after_m < start < route_length_m:
                jams.append(Jam(start, end, rng.uniform(*profile.jam_speed_mps)))
        km += 1
    return jams


def _plan_limits(route: Drivable, rng: random.Random, p: MotionProfile) -> list[Limit]:
    limits = _crossing_limits(route, rng, p, -math.inf)
    if rng.random() < p.long_stop_chance:
        # A jam, a fuel stop, a chat with the doorman: somewhere in the middle of the trip.
        where = route.length_m * rng.uniform(0.2, 0.8)
        limits.append(Limit(where, 0.0, rng.uniform(*p.long_stop_s)))
    limits.sort(key=lambda lim: lim.distance_m)
    limits.append(Limit(route.length_m, 0.0, 0.0))
    return limits


def _crossing_limits(route: Drivable, rng: random.Random, p: MotionProfile, after_m: float) -> list[Limit]:
    """Red lights and turns at the crossings beyond ``after_m``."""
    limits: list[Limit] = []
    for crossing in route.crossings:
        if crossing.distance_m <= after_m:
            continue
        if rng.random() < p.red_light_chance:
            limits.append(Limit(crossing.distance_m, 0.0, rng.uniform(*p.red_light_s)))
        elif crossing.turn:
            limits.append(Limit(crossing.distance_m, rng.uniform(*p.turn_speed_mps), None))
    return limits


def _with_jams(limits: list[Limit], jams: list[Jam]) -> list[Limit]:
    """``limits`` plus braking to each jam's crawl before entering it, like for a turn; `_drive` caps speed inside."""
    if not jams:
        return limits
    brakes = [Limit(j.start_m, j.speed_mps, None) for j in jams]
    return [*sorted([*limits[:-1], *brakes], key=lambda lim: lim.distance_m), limits[-1]]


def _drive(
    limits: list[Limit], jams: list[Jam], rng: random.Random, p: MotionProfile, start: Sample
) -> Iterator[Sample]:
    """Drive from ``start`` through ``limits`` at the wandering cruise speed, crawling inside ``jams``."""

    def cap(s: float, t: float, cruise: float) -> float:
        return min([cruise, *(jam.speed_mps for jam in jams if jam.start_m <= s < jam.end_m)])

    walk = Walk(p.mean_speed_mps, p.speed_sigma_mps, p.min_speed_mps, p.max_speed_mps)
    return drive(limits, start, rng, p, walk, cap)


def _motion(route: Drivable, seed: int, p: MotionProfile) -> Iterator[Sample]:
    """True (time, distance, speed) samples of one trip from standstill at the origin to arrival."""
    rng = random.Random(seed)
    limits = _plan_limits(route, rng, p)
    jams = plan_jams(route.length_m, seed, p)
    cruise = min(max(rng.gauss(p.mean_speed_mps, p.speed_sigma_mps), p.min_speed_mps), p.max_speed_mps)
    start = Sample(0.0, 0.0, 0.0, cruise, 0)
    yield start
    yield from _drive(_with_jams(limits, jams), jams, rng, p, start)


class Trip:
    """One drive along ``route`` leaving at ``depart_ms`` (simulated epoch ms); deterministic for ``seed``."""

    def __init__(self, route: Drivable, depart_ms: int, seed: int, profile: MotionProfile | None = None) -> None:
        self.route = route
        self.depart_ms = depart_ms
        self.seed = seed
        self.profile = profile or MotionProfile()
        #: Congested stretches along the route (none unless the profile has traffic).
        self.jams = plan_jams(route.length_m, seed, self.profile)
        # Drive it once to the end to learn the arrival time; the samples themselves are not kept.
        last = collections.deque(self._motion(), maxlen=1)[0]
        #: Seconds from departure to arrival, stops included.
        self.duration_s = last.t_s
        #: True arrival time, simulated epoch ms.
        self.arrival_ms = depart_ms + round(last.t_s * 1000)
        self._rewind()

    def departing(self, depart_ms: int) -> Trip:
        """The same drive leaving at ``depart_ms`` instead (without driving it again to learn its duration)."""
        trip = copy.copy(self)
        trip.depart_ms = depart_ms
        trip.arrival_ms = depart_ms + round(self.duration_s * 1000)
        trip._rewind()
        return trip

    def _motion(self) -> Iterator[Sample]:
        """The true samples of the drive from departure (a trip on real streets drives them its own way)."""
        return _motion(self.route, self.seed, self.profile)

    def _rewind(self) -> None:
        self._cursor = self._motion()
        self._prev = next(self._cursor)
        self._next = next(self._cursor, self._prev)

    def _travel(self, t_s: float) -> tuple[float, float]:
        """Distance travelled and speed ``t_s`` seconds after departure."""
        if t_s <= 0:
            return 0.0, 0.0
        if t_s >= self.duration_s:
            return self.route.length_m, 0.0
        if t_s < self._prev.t_s:
            # Callers ask in time order; replaying from the start keeps memory flat for the rare exception.
            self._rewind()
        while self._next.t_s < t_s:
            self._prev, self._next = self._next, next(self._cursor, self._next)
        span = self._next.t_s - self._prev.t_s
        f = (t_s - self._prev.t_s) / span if span > 0 else 1.0
        return (
            self._prev.s_m + (self._next.s_m - self._prev.s_m) * f,
            self._prev.v_mps + (self._next.v_mps - self._prev.v_mps) * f,
        )

    def state_at(self, t_ms: int) -> TrueState:
        """True position and motion at ``t_ms``: at the origin before departure, at the door after arrival."""
        travelled, speed = self._travel((t_ms - self.depart_ms) / 1000.0)
        x, y = self.route.point_at(travelled)
        lat, lon = self.route.frame.to_latlon(x, y)
        heading = bearing_deg(*self.route.direction_at(travelled)) if speed > self.profile.moving_mps else None
        return TrueState(
            t_ms=t_ms,
            lat=lat,
            lon=lon,
            x=x,
            y=y,
            speed_mps=speed,
            heading_deg=heading,
            travelled_m=travelled,
            remaining_m=max(self.route.length_m - travelled, 0.0),
            arrived=t_ms >= self.arrival_ms,
        )

    def futures(self, t_ms: int, count: int, seed: str) -> list[float]:
        """Seconds left from ``t_ms`` in ``count`` other futures of this trip: the same present, fresh luck.

        The present is all a driver could know at ``t_ms``: where it is and how fast it goes, the
        speed it cruises at, what it is braking for or waiting at (and how much longer the wait
        lasts), the jam it is in. Everything beyond braking distance is drawn again: red lights,
        turn speeds, jams, a long stop. No ETA can know more, so the median of these futures is as
        good as an ETA gets: the benchmark's *floor*.
        """
        p = self.profile
        t_s = (t_ms - self.depart_ms) / 1000.0
        if t_s >= self.duration_s:
            return [0.0] * count
        state, wait_s = self._present(max(t_s, 1e-6))
        length = self.route.length_m
        horizon = state.s_m + reach_m(p)
        rng = random.Random(self.seed)
        planned = _with_jams(_plan_limits(self.route, rng, p), self.jams)
        known = [lim for lim in planned[state.k : -1] if lim.distance_m <= horizon]
        current_jams = [j for j in self.jams if j.start_m <= horizon and j.end_m > state.s_m]
        # A long stop happens once in the middle 60% of a trip, if at all: only the part still ahead can hold it.
        lo, hi = max(0.2 * length, horizon), 0.8 * length
        long_stop_chance = p.long_stop_chance * max(hi - lo, 0.0) / (0.6 * length)
        start = state._replace(k=0)  # an index into each future's own limits
        left: list[float] = []
        for i in range(count):
            luck = random.Random(f"{seed}:{i}")
            ahead = _crossing_limits(self.route, luck, p, horizon)
            if luck.random() < long_stop_chance:
                ahead.append(Limit(luck.uniform(lo, hi), 0.0, luck.uniform(*p.long_stop_s)))
            jams = _draw_jams(length, luck, p, horizon)
            limits = [*sorted([*known, *ahead], key=lambda lim: lim.distance_m), planned[-1]]
            last = collections.deque(_drive(_with_jams(limits, jams), current_jams + jams, luck, p, start), maxlen=1)
            left.append(wait_s + (last[0].t_s if last else 0.0))
        return left

    def _present(self, t_s: float) -> tuple[Sample, float]:
        """The drive's state at ``t_s`` (its clock reset to 0) and how long the driver still waits there."""
        self._travel(t_s)
        prev, nxt = self._prev, self._next
        if prev.s_m == nxt.s_m and prev.v_mps == 0.0 and nxt.t_s - prev.t_s > self.profile.step_s * 1.5:
            return Sample(0.0, prev.s_m, 0.0, prev.cruise_mps, prev.k), nxt.t_s - t_s
        span = nxt.t_s - prev.t_s
        f = (t_s - prev.t_s) / span if span > 0 else 1.0
        s = prev.s_m + (nxt.s_m - prev.s_m) * f
        v = prev.v_mps + (nxt.v_mps - prev.v_mps) * f
        return Sample(0.0, s, v, prev.cruise_mps, prev.k), 0.0

    def remaining_s(self, t_ms: int) -> float:
        """True seconds from ``t_ms`` until arrival (0 once arrived): the ground truth for an ETA."""
        return max(self.arrival_ms - t_ms, 0) / 1000.0


#: Makes a trip from a route, its departure (simulated epoch ms) and a seed.
TripFactory = Callable[[Drivable, int, int], "Trip"]


class VirtualDriver:
    """A driver and its phone: drives one :class:`Trip` after another and reports noisy fixes.

    Everything it does is deterministic for ``seed``. Trips draw from one random stream and
    the phone's noise from another, so the trips (and their true arrival times) do not depend
    on how often the simulator asks for fixes.
    """

    def __init__(self, seed: int | str, profile: MotionProfile | None = None) -> None:
        self.profile = p = profile or MotionProfile()
        self._plan_rng = random.Random(f"{seed}:plan")
        self._noise_rng = random.Random(f"{seed}:noise")
        self.trip: Trip | None = None
        self.battery_pct = self._plan_rng.uniform(*p.battery_start_pct)
        self._drain_pct_per_ms = self._plan_rng.uniform(*p.battery_drain_pct_per_h) / 3_600_000
        self._accuracy = self._noise_rng.uniform(*p.accuracy_m)
        self._error = (0.0, 0.0)
        self._last_fix_ms: int | None = None

    def begin_trip(self, route: Drivable, depart_ms: int, drive: TripFactory | None = None) -> Trip:
        """Plan the next trip; the driver waits at ``route``'s origin until ``depart_ms``.

        ``drive`` makes the trip from the route, departure and a seed of the driver's own
        (default: :class:`Trip` with the driver's profile; a world of real streets drives its own way).
        """
        if self.battery_pct < 15.0:
            # Phones get plugged in between deliveries; keeps a long demo from going flat. Drawn from the
            # phone's stream, not the trips': whether it is needed depends on the fixes taken.
            self.battery_pct = self._noise_rng.uniform(85.0, 100.0)
        seed = self._plan_rng.getrandbits(63)
        self.trip = Trip(route, depart_ms, seed, self.profile) if drive is None else drive(route, depart_ms, seed)
        return self.trip

    def take_trip(self, trip: Trip) -> None:
        """Drive ``trip``, planned elsewhere (a scenario planned ahead), next; draws nothing from the trip stream."""
        if self.battery_pct < 15.0:
            self.battery_pct = 95.0
        self.trip = trip

    def _current(self) -> Trip:
        if self.trip is None:
            raise RuntimeError("the driver has no trip yet: call begin_trip() first")
        return self.trip

    def true_state(self, t_ms: int) -> TrueState:
        """Where the driver really is at ``t_ms``."""
        return self._current().state_at(t_ms)

    def true_remaining_s(self, t_ms: int) -> float | None:
        """True seconds to the current trip's arrival, or None without a trip."""
        return None if self.trip is None else self.trip.remaining_s(t_ms)

    def true_remaining_m(self, t_ms: int) -> float | None:
        """True metres left along the current route, or None without a trip."""
        return None if self.trip is None else self.trip.state_at(t_ms).remaining_m

    def fix_at(self, t_ms: int) -> Fix:
        """The fix the phone reports at ``t_ms``; call with non-decreasing times."""
        p = self.profile
        state = self.true_state(t_ms)
        rng = self._noise_rng
        dt_s = 0.0 if self._last_fix_ms is None else max(t_ms - self._last_fix_ms, 0) / 1000.0
        self._last_fix_ms = t_ms
        # GPS error drifts rather than jumping fix to fix (multipath, satellite geometry change
        # slowly): an AR(1) process, whose memory fades with the time between fixes.
        keep = math.exp(-dt_s / p.noise_memory_s) if self._error != (0.0, 0.0) else 0.0
        fresh = math.sqrt(1.0 - keep * keep)
        low, high = p.accuracy_m
        # The accuracy estimate wanders too, on the same time scale.
        self._accuracy = min(max(self._accuracy + rng.gauss(0.0, 0.6) * fresh, low), high)
        # Accuracy is a radial RMS, so each axis gets accuracy / sqrt(2).
        sigma = self._accuracy / math.sqrt(2.0)
        ex = self._error[0] * keep + sigma * fresh * rng.gauss(0.0, 1.0)
        ey = self._error[1] * keep + sigma * fresh * rng.gauss(0.0, 1.0)
        self._error = (ex, ey)
        lat, lon = self._current().route.frame.to_latlon(state.x + ex, state.y + ey)
        self.battery_pct = max(self.battery_pct - self._drain_pct_per_ms * dt_s * 1000.0, 1.0)
        speed: float | None = None
        heading: float | None = None
        if state.heading_deg is not None:
            speed = max(state.speed_mps + rng.gauss(0.0, 0.25), 0.0)
            heading = (state.heading_deg + rng.gauss(0.0, 4.0)) % 360.0
        return Fix(
            lat=round(lat, 6),
            lon=round(lon, 6),
            ts=t_ms,
            speed=0.0 if speed is None else round(speed, 1),
            heading=None if heading is None else round(heading, 1) % 360.0,  # 359.96 rounds to 360.0
            accuracy=round(self._accuracy, 1),
            battery=float(round(self.battery_pct)),
        )
