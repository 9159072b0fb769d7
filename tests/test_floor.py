"""The benchmark's floor: re-driving a trip's futures from its exact present (simulator.driver.Trip.futures).

Where nothing is left to chance (no speed wander, fixed waits, every crossing red or none), every
future is the real one, so the floor must equal the true remaining time at every moment: while
cruising, braking, and in the middle of a wait. That is checked against the trip's own arrival
time, computed by driving it once from the start.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import replace

import pytest

from simulator.accuracy import Sample, format_table, summarize
from simulator.city import Route, StreetGrid, plan_route
from simulator.driver import Trip
from simulator.floor import with_floor
from simulator.motion import MotionProfile
from simulator.scenario import ScenarioOptions, plan_scenario

CENTER = (-25.2865, -57.6470)
T0 = 1_600_000_000_000

#: Nothing random left: a steady cruise, fixed turn speeds, and crossings that are all red or all green.
CERTAIN = MotionProfile(
    min_speed_mps=10.0,
    max_speed_mps=10.0,
    mean_speed_mps=10.0,
    speed_sigma_mps=0.0,
    turn_speed_mps=(5.0, 5.0),
    red_light_s=(30.0, 30.0),
    long_stop_chance=0.0,
)


def _route(seed: int, min_m: float = 1500.0, max_m: float = 3000.0) -> Route:
    grid = StreetGrid(CENTER, seed)
    return plan_route(grid, random.Random(seed), after=None, min_m=min_m, max_m=max_m)


@pytest.mark.parametrize("red_light_chance", [0.0, 1.0])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_futures_of_a_certain_trip_are_its_real_future(seed: int, red_light_chance: float) -> None:
    """With no luck left, every future ends when the real trip does, from any moment (waits included)."""
    trip = Trip(_route(seed), T0, seed, replace(CERTAIN, red_light_chance=red_light_chance))
    waited = 0
    for t in range(T0, trip.arrival_ms, 3_700):
        state = trip.state_at(t)
        waited += state.speed_mps == 0.0 and state.travelled_m > 0
        futures = trip.futures(t, 3, seed="test")
        truth = trip.remaining_s(t)
        assert futures == pytest.approx([truth] * 3, abs=1.0), f"at {(t - T0) / 1000:.1f} s"
    if red_light_chance:
        assert waited > 3, "the trip never stood at a red light: the wait was not tested"


def test_futures_at_and_after_arrival_are_zero() -> None:
    trip = Trip(_route(4), T0, 4, CERTAIN)
    assert trip.futures(trip.arrival_ms, 4, seed="x") == [0.0] * 4
    assert trip.futures(trip.arrival_ms + 60_000, 2, seed="x") == [0.0] * 2


def test_futures_draw_new_luck_deterministically() -> None:
    """With traffic, futures differ from one another, straddle the truth's scale, and repeat for the same seed."""
    profile = MotionProfile(jam_chance_per_km=0.12)
    trip = Trip(_route(5, 4000.0, 6000.0), T0, 5, profile)
    t = T0 + 60_000
    a = trip.futures(t, 16, seed="s")
    assert a == trip.futures(t, 16, seed="s")
    assert a != trip.futures(t, 16, seed="other")
    assert len(set(a)) > 8
    # An independent scale check: the rest of the route at 4-12 m/s, stops included.
    left_m = trip.state_at(t).remaining_m
    assert left_m / 12.0 < statistics.median(a) < left_m / 4.0


def _sample(number: str, k: int, err_s: float, floor_err_s: float | None) -> Sample:
    ts = T0 + k * 5000
    truth = T0 + 900_000
    floor = None if floor_err_s is None else truth + round(floor_err_s * 1000)
    return Sample(number, ts, truth, truth + round(err_s * 1000), truth - 200_000, floor)


def test_summary_scores_the_floor_only_where_computed_and_livemap_on_the_same_moments() -> None:
    samples = [
        _sample("a", k, err_s=100.0 if k % 2 else 10.0, floor_err_s=5.0 if k % 2 == 0 else None) for k in range(10)
    ]
    report = summarize({"livemap": samples}, scenario="test", seed=1, speedup=1.0, interval_s=5.0)
    floor = report["buckets"]["10to30"]["floor"]
    assert floor["n"] == 5
    assert floor["median_s"] == 5.0
    # On the floor's own moments livemap was 10 s off, though 100 s on the others.
    assert floor["livemap_median_s"] == 10.0
    assert report["buckets"]["10to30"]["livemap"]["median_s"] == 55.0
    assert report["buckets"]["lt3"]["floor"]["n"] == 0  # no samples there at all
    header, _, *rows = format_table(report).splitlines()
    assert "floor" in header.split("|")[-1]
    row = next(r for r in rows if r.startswith("10to30"))
    assert row.split("|")[-1].split() == ["5.0", "5.0", "-", "10.0", "5"]  # no present floor computed here


def test_with_floor_scores_one_moment_in_n_per_delivery_in_worker_processes() -> None:
    options = ScenarioOptions(seed=3, deliveries=2, drivers=1)
    start = T0
    scenario = plan_scenario(options).starting_at(start)
    samples = []
    for d in scenario.deliveries:
        for ts in range(d.trip.depart_ms, d.trip.arrival_ms, 30_000):
            samples.append(Sample(d.number, ts, d.trip.arrival_ms, ts, ts, None))
    scored = with_floor(options, start, samples, every=4, futures=4, workers=2)
    by_delivery: dict[str, list[Sample]] = {}
    for s in scored:
        by_delivery.setdefault(s.delivery, []).append(s)
    for d in scenario.deliveries:
        group = by_delivery[d.number]
        assert [s.floor_ms is not None for s in group] == [k % 4 == 0 for k in range(len(group))]
        for s in group:
            if s.floor_ms is not None:
                # Computed in another process from its own plan: it must match this process's trip.
                left = d.trip.futures(s.ts, 4, seed=f"floor:{d.number}:{s.ts}")
                assert s.floor_ms == s.ts + round(statistics.median(left) * 1000)
                now = d.trip.futures(s.ts, 4, seed=f"floor:{d.number}:{s.ts}", present_only=True)
                assert s.floor_present_ms == s.ts + round(statistics.median(now) * 1000)
    assert with_floor(options, start, samples, every=0) == samples
