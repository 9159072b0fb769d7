"""The motion model every simulated car shares: its profile, and driving through what lies ahead.

A drive is a sequence of *limits* along the path (a red light to wait at, a turn to slow for, the
door at the end) and a *cap* on speed wherever the driver is (its wandering cruise speed, a jam,
the street's speed): the car accelerates, brakes in time for the next limit, creeps the last
metres to a stop line, waits, and goes on. :mod:`.driver` drives a synthetic grid with it and
:mod:`.streetdrive` real streets; only the limits and the cap differ.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class MotionProfile:
    """How a driver moves and what its phone reports; the defaults describe urban car traffic."""

    min_speed_mps: float = 6.0
    max_speed_mps: float = 14.0
    mean_speed_mps: float = 10.0
    #: Spread of the cruise speed around its mean, m/s, and how fast it forgets a deviation.
    speed_sigma_mps: float = 2.0
    speed_memory_s: float = 25.0
    accel_mps2: float = 1.8
    brake_mps2: float = 2.5
    turn_speed_mps: tuple[float, float] = (4.0, 6.5)
    red_light_chance: float = 0.12
    red_light_s: tuple[float, float] = (10.0, 60.0)
    long_stop_chance: float = 0.08
    long_stop_s: tuple[float, float] = (120.0, 420.0)
    #: Congested stretches (traffic): chance per km of route that one begins, its length, its speed cap.
    #: Off by default; drawn from their own random stream, so turning them on changes nothing else.
    jam_chance_per_km: float = 0.0
    jam_length_m: tuple[float, float] = (300.0, 1500.0)
    jam_speed_mps: tuple[float, float] = (2.0, 5.0)
    step_s: float = 0.5
    #: GPS error: per-fix accuracy in metres (radial RMS), and how long the error stays correlated.
    accuracy_m: tuple[float, float] = (4.0, 8.0)
    noise_memory_s: float = 10.0
    moving_mps: float = 0.3
    battery_start_pct: tuple[float, float] = (55.0, 100.0)
    battery_drain_pct_per_h: tuple[float, float] = (6.0, 12.0)


class Sample(NamedTuple):
    """One step of a drive: time since departure, distance along the path, speed."""

    t_s: float
    s_m: float
    v_mps: float
    #: The drive's hidden state after this step: its wandering speed (a cruise speed on the grid,
    #: a pace on real streets) and the index of the next limit ahead.
    cruise_mps: float = 0.0
    k: int = 0


class Limit(NamedTuple):
    """Something at ``distance_m`` along the path: pass it at up to ``speed_mps``, or stop and wait ``dwell_s``."""

    distance_m: float
    speed_mps: float
    dwell_s: float | None  # None: pass at up to speed_mps; else stop and wait this long


class Walk(NamedTuple):
    """The wandering speed: an Ornstein-Uhlenbeck process around ``mean`` with spread ``sigma``, kept in bounds."""

    mean: float
    sigma: float
    low: float
    high: float


#: The speed cap at ``s`` metres, ``t`` seconds after the drive's start, with the wandering speed at ``cruise``.
Cap = Callable[[float, float, float], float]

# Stop lines are approached at walking pace for the last metres: braking exactly to zero at the
# line would need infinitely many ever-shorter steps.
CREEP_MPS = 1.0
SNAP_M = 0.5


def reach_m(p: MotionProfile) -> float:
    """How far ahead a driver starts braking for a limit, at most."""
    return p.max_speed_mps**2 / (2 * p.brake_mps2) + 2 * SNAP_M


def brake_for(limits: list[Limit], k: int, s: float, reach: float, p: MotionProfile) -> float:
    """The highest speed at ``s`` that still stops or slows in time for the limits ahead (from ``k``)."""
    allowed = math.inf
    for j in range(k, len(limits)):  # indices, not a slice: no copy of the limits ahead every step
        lim = limits[j]
        gap = lim.distance_m - s
        if gap > reach:
            break
        allowed = min(allowed, math.sqrt(lim.speed_mps**2 + 2 * p.brake_mps2 * max(gap - SNAP_M, 0.0)))
    return allowed


def drive(
    limits: list[Limit], start: Sample, rng: random.Random, p: MotionProfile, walk: Walk, cap: Cap
) -> Iterator[Sample]:
    """Drive from ``start`` (after its step) through ``limits`` to the last one, the end of the path."""
    dt = p.step_s
    keep = math.exp(-dt / p.speed_memory_s)
    kick = walk.sigma * math.sqrt(1.0 - keep * keep)
    reach = reach_m(p)
    t, s, v, cruise, k = start
    while True:
        cruise = walk.mean + (cruise - walk.mean) * keep + kick * rng.gauss(0.0, 1.0)
        cruise = min(max(cruise, walk.low), walk.high)
        allowed = min(cap(s, t, cruise), brake_for(limits, k, s, reach, p))
        v_new = min(allowed, v + p.accel_mps2 * dt)
        if limits[k].dwell_s is not None and limits[k].distance_m - s > SNAP_M:
            v_new = max(v_new, min(CREEP_MPS, v + p.accel_mps2 * dt))
        s_new = s + (v + v_new) / 2 * dt
        t += dt
        while k < len(limits):
            lim = limits[k]
            if lim.dwell_s is None:
                if s_new < lim.distance_m:
                    break
                k += 1
                continue
            if s_new < lim.distance_m - SNAP_M:
                break
            s_new, v_new = lim.distance_m, 0.0
            # Stopped: the wait shows as two samples at the same place, this one and one `dwell_s` later.
            yield Sample(t, s_new, 0.0, cruise, k + 1)
            if k == len(limits) - 1:
                return
            t += lim.dwell_s
            k += 1
            break
        s, v = s_new, v_new
        yield Sample(t, s, v, cruise, k)
