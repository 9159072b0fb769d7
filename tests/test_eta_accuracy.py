"""The ETA benchmark's scoring (buckets, baseline, variants side by side), and the grid's traffic and detours.

No server here: the benchmark's world and a tiny run against real servers are in test_eta_streets.py.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import pytest

from simulator.accuracy import (
    BASELINE_MPS,
    VARIANTS,
    Sample,
    align,
    baseline_eta_ms,
    bucket_of,
    error_stats,
    format_table,
    jump_pct,
    make_sample,
    percentile,
    summarize,
)
from simulator.city import Route, StreetGrid, detour, plan_route
from simulator.cli import build_parser
from simulator.driver import Trip, plan_jams
from simulator.geo import XY, LatLon, distance_m, haversine_m
from simulator.motion import MotionProfile

CENTER: LatLon = (-25.2865, -57.6470)
T0 = 1_600_000_000_000
#: A trip's own jams on the grid (the demo's drivers can have them): one crawl about every 8 km.
TRAFFIC = MotionProfile(jam_chance_per_km=0.12)


# --- scoring -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remaining_s", "bucket"),
    [
        (3600.0, "gt30"),
        (1800.1, "gt30"),
        (1800.0, "10to30"),
        (600.1, "10to30"),
        (600.0, "3to10"),
        (180.0, "3to10"),
        (179.9, "lt3"),
        (0.5, "lt3"),
    ],
)
def test_buckets_follow_true_remaining_time(remaining_s: float, bucket: str) -> None:
    """Over 30 min is gt30, over 10 is 10to30, 3 to 10 is 3to10, under 3 min is lt3."""
    assert bucket_of(remaining_s) == bucket


def test_error_statistics() -> None:
    """MAE, median and p90 (linear interpolation) of absolute errors, rounded to 0.1 s; None when empty."""
    errors = [float(e) for e in range(1, 11)]  # 1..10
    assert error_stats(errors) == {"mae_s": 5.5, "median_s": 5.5, "p90_s": 9.1}
    assert error_stats([7.04]) == {"mae_s": 7.0, "median_s": 7.0, "p90_s": 7.0}
    assert error_stats([]) == {"mae_s": None, "median_s": None, "p90_s": None}
    assert percentile([10.0, 0.0, 20.0], 50) == 10.0
    assert percentile([0.0, 10.0], 90) == pytest.approx(9.0)
    with pytest.raises(ValueError):
        percentile([], 50)


def test_baseline_is_straight_line_at_seven_metres_a_second() -> None:
    """The baseline ETA is the fix time plus the great-circle distance to the door at 7.0 m/s."""
    assert BASELINE_MPS == 7.0
    here, door = (-25.30, -57.60), (-25.30 + 0.0629, -57.60)  # ~7 km due north
    d = haversine_m(here, door)
    assert d == pytest.approx(6994.0, abs=2.0)  # 0.0629 deg of latitude on the mean-radius sphere
    assert baseline_eta_ms(T0, here, door) == T0 + round(d / 7.0 * 1000)
    assert baseline_eta_ms(T0, door, door) == T0
    assert baseline_eta_ms(T0, here, door, mps=3.5) == T0 + round(d / 3.5 * 1000)


def test_samples_after_the_true_arrival_are_skipped() -> None:
    """A location event at or after the true arrival scores nothing; before it, errors are absolute."""
    door = (-25.30, -57.60)
    assert make_sample("1", T0, T0 + 60_000, door, door, truth_ms=T0) is None
    assert make_sample("1", T0 + 1, T0, door, door, truth_ms=T0) is None
    s = make_sample("1", T0, T0 + 60_000, door, door, truth_ms=T0 + 90_000)
    assert s is not None
    assert (s.remaining_s, s.error_s, s.baseline_error_s) == (90.0, 30.0, 90.0)


def test_jump_share_counts_consecutive_moves_over_two_minutes() -> None:
    """A jump is a move of more than 120 s between consecutive ETAs of one delivery, never across deliveries."""
    assert jump_pct([[0, 120_000, 240_001], [10_000_000, 10_000_000]]) == pytest.approx(100 / 3, abs=0.05)
    assert jump_pct([[0], [999_999_999]]) == 0.0  # one ETA each: no pairs, nothing jumps
    assert jump_pct([]) == 0.0


TRUTH = T0 + 2_400_000


def _sample(ts: int, eta_err_s: float, base_err_s: float) -> Sample:
    """A sample of one delivery arriving at TRUTH: livemap late by eta_err_s, the baseline early by base_err_s."""
    return Sample("a", ts, TRUTH, TRUTH + round(eta_err_s * 1000), TRUTH - round(base_err_s * 1000))


def _report(variants: dict[str, list[Sample]], **kw: Any) -> dict[str, Any]:
    return summarize(variants, scenario="osm-helsinki", seed=7, speedup=60.0, interval_s=5.0, **kw)


def test_summary_has_exactly_the_published_shape() -> None:
    """The JSON report has the documented keys: per bucket n, each variant's, the baseline's and the floor's errors."""
    samples = [
        _sample(T0, 60, 600),  # 40 min left
        _sample(T0 + 1_000_000, 30, 300),  # 23 min 20 s
        _sample(T0 + 2_000_000, 10, 100),  # 6 min 40 s
        _sample(T0 + 2_340_000, 400, 20),  # 1 min: livemap's ETA moves by 390 s
    ]
    # The second variant is 10 s further off everywhere; the third is the first.
    later = [Sample(s.delivery, s.ts, s.truth_ms, s.eta_ms + 10_000, s.baseline_ms) for s in samples]
    report = _report({"livemap": samples, "livemap_no_fleet": later, "livemap_store_route": samples}, wall_time_s=12.5)
    assert list(report) == [
        "scenario",
        "deliveries",
        "seed",
        "baseline_mps",
        "speedup",
        "interval_s",
        "wall_time_s",
        "buckets",
        "jumps_over_2min_pct",
    ]
    assert (report["scenario"], report["deliveries"], report["seed"], report["baseline_mps"]) == (
        "osm-helsinki",
        1,
        7,
        7.0,
    )
    assert (report["speedup"], report["interval_s"], report["wall_time_s"]) == (60.0, 5.0, 12.5)
    buckets = report["buckets"]
    assert list(buckets) == ["gt30", "10to30", "3to10", "lt3", "all"]
    for bucket in buckets.values():
        assert list(bucket) == ["n", *VARIANTS, "baseline", "floor"]
        for name in (*VARIANTS, "baseline"):
            assert list(bucket[name]) == ["mae_s", "median_s", "p90_s"]
        floor_keys = ["n", "mae_s", "median_s", "p90_s", *(f"{v}_median_s" for v in VARIANTS), "present"]
        assert list(bucket["floor"]) == floor_keys
        assert list(bucket["floor"]["present"]) == ["mae_s", "median_s", "p90_s"]
    assert buckets["gt30"] == {
        "n": 1,
        "livemap": {"mae_s": 60.0, "median_s": 60.0, "p90_s": 60.0},
        "livemap_no_fleet": {"mae_s": 70.0, "median_s": 70.0, "p90_s": 70.0},
        "livemap_store_route": {"mae_s": 60.0, "median_s": 60.0, "p90_s": 60.0},
        "baseline": {"mae_s": 600.0, "median_s": 600.0, "p90_s": 600.0},
        "floor": {
            "n": 0,
            **{"mae_s": None, "median_s": None, "p90_s": None},
            **{f"{v}_median_s": None for v in VARIANTS},
            "present": {"mae_s": None, "median_s": None, "p90_s": None},
        },
    }
    assert [buckets[b]["livemap"]["median_s"] for b in ("10to30", "3to10", "lt3")] == [30.0, 10.0, 400.0]
    assert buckets["all"]["n"] == 4
    assert buckets["all"]["livemap"]["mae_s"] == 125.0
    assert buckets["all"]["baseline"]["median_s"] == 200.0
    # livemap's ETA moves 30 s, 20 s, then 390 s; the baseline's 300 s, 200 s, 80 s.
    assert report["jumps_over_2min_pct"] == {
        "livemap": 33.3,
        "livemap_no_fleet": 33.3,
        "livemap_store_route": 33.3,
        "baseline": 66.7,
    }
    lines = format_table(report).splitlines()
    assert all(title in lines[0] for title in ("livemap", "no fleet", "store route", "baseline", "floor"))
    gt30 = next(line for line in lines if line.startswith("gt30"))
    assert gt30.split("|")[1].split() == ["60.0", "60.0"]
    assert gt30.split("|")[2].split() == ["70.0", "70.0"]


def test_an_empty_bucket_has_n_zero_and_nulls() -> None:
    """No samples at all: every bucket is there, with n 0 and null statistics."""
    report = _report({name: [] for name in VARIANTS})
    assert report["deliveries"] == 0
    buckets = report["buckets"]
    for bucket in buckets.values():
        assert bucket["n"] == 0 and bucket["floor"]["n"] == 0
        assert {bucket[name]["median_s"] for name in (*VARIANTS, "baseline")} == {None}
    assert "-" in format_table(report)


def test_variants_are_compared_on_the_moments_all_of_them_scored() -> None:
    """align() keeps the (delivery, fix time) moments every variant has, in one order for all."""
    a = [Sample("1", T0 + k, T0 + 10_000, T0 + 9_000, T0) for k in (3, 1, 2)]
    b = [Sample("1", T0 + k, T0 + 10_000, T0 + 8_000, T0) for k in (1, 2)]
    c = [Sample("1", T0 + k, T0 + 10_000, T0 + 7_000, T0) for k in (2, 1, 4)]
    aligned = align({"a": a, "b": b, "c": c})
    assert [[s.ts - T0 for s in group] for group in aligned.values()] == [[1, 2]] * 3
    assert [group[0].eta_ms - T0 for group in aligned.values()] == [9_000, 8_000, 7_000]


def test_jumps_use_absolute_eta_not_remaining_time() -> None:
    """An ETA that stays put while time passes is stable, whatever the remaining time does."""
    steady = [Sample("a", T0 + k * 5000, T0 + 600_000, T0 + 600_000, T0 + 600_000) for k in range(50)]
    report = _report({"livemap": steady})
    assert report["jumps_over_2min_pct"] == {"livemap": 0.0, "baseline": 0.0}
    buckets = report["buckets"]
    assert buckets["3to10"]["livemap"]["median_s"] == 0.0


# --- traffic -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grid() -> StreetGrid:
    return StreetGrid(CENTER, 3, half_size_m=16_000.0, max_radius_m=15_000.0)


@pytest.fixture(scope="module")
def long_route(grid: StreetGrid) -> Route:
    return plan_route(grid, random.Random(5), min_m=8000.0, max_m=10_000.0)


def test_jams_are_deterministic_and_within_their_bounds() -> None:
    """Jams depend only on the trip's seed: 300-1500 m long (or cut at the door), capped at 2-5 m/s."""
    profile = MotionProfile(jam_chance_per_km=0.5)
    plans = [plan_jams(20_000.0, seed, profile) for seed in range(40)]
    assert plans == [plan_jams(20_000.0, seed, profile) for seed in range(40)]
    assert len({tuple(p) for p in plans}) == 40
    jams = [j for p in plans for j in p]
    assert 0.3 * 20 * 40 < len(jams) < 0.7 * 20 * 40
    for jam in jams:
        assert 0.0 <= jam.start_m < jam.end_m <= 20_000.0
        assert 2.0 <= jam.speed_mps <= 5.0
        assert jam.end_m - jam.start_m <= 1500.0
        assert jam.end_m - jam.start_m >= 300.0 or jam.end_m == 20_000.0
    assert plan_jams(20_000.0, 1, MotionProfile()) == []


def test_traffic_caps_speed_inside_jams_and_leaves_the_rest_alone(long_route: Route) -> None:
    """Inside a jam the driver crawls at no more than the jam's cap, and the trip takes longer than without traffic."""
    seed = next(s for s in range(100) if plan_jams(long_route.length_m, s, TRAFFIC))
    trip = Trip(long_route, T0, seed, TRAFFIC)
    assert trip.jams == plan_jams(long_route.length_m, seed, TRAFFIC)
    states = [trip.state_at(t) for t in range(T0, trip.arrival_ms, 250)]
    inside = 0
    for s in states:
        for jam in trip.jams:
            # The first metres: still braking down to the crawl.
            if jam.start_m + 5.0 <= s.travelled_m < jam.end_m - 1.0:
                inside += 1
                assert s.speed_mps <= jam.speed_mps + 0.05
    assert inside > 0
    clear = Trip(long_route, T0, seed, MotionProfile())
    assert clear.jams == []
    assert trip.duration_s > clear.duration_s + 30.0


def test_a_trip_can_leave_later_unchanged(long_route: Route) -> None:
    """departing() shifts a trip in time: same duration, every state the same, an hour later."""
    trip = Trip(long_route, T0, 4, TRAFFIC)
    later = trip.departing(T0 + 3_600_000)
    assert later.duration_s == trip.duration_s and later.arrival_ms == trip.arrival_ms + 3_600_000
    for t in range(T0, trip.arrival_ms, 7919):
        a, b = trip.state_at(t), later.state_at(t + 3_600_000)
        assert (a.x, a.y, a.speed_mps) == (b.x, b.y, b.speed_mps)


# --- detours -----------------------------------------------------------------------------------


def _off_route_m(route: Route, point: XY) -> float:
    """Distance from a point to a route's polyline."""
    best = math.inf
    for (ax, ay), (bx, by) in itertools.pairwise(route.xy):
        dx, dy = bx - ax, by - ay
        f = max(0.0, min(1.0, ((point[0] - ax) * dx + (point[1] - ay) * dy) / (dx * dx + dy * dy)))
        best = min(best, distance_m(point, (ax + dx * f, ay + dy * f)))
    return best


def test_detour_leaves_the_route_and_rejoins_it(grid: StreetGrid) -> None:
    """A detour starts and ends where the route does, strays 1-2 blocks off it, and costs 2-4 extra blocks."""
    made = 0
    for seed in range(30):
        rng = random.Random(seed)
        route = plan_route(grid, rng, min_m=3000.0, max_m=6000.0)
        path = detour(grid, route, rng)
        if path is None:
            continue
        made += 1
        assert (path.xy[0], path.xy[-1]) == (route.xy[0], route.xy[-1])
        assert (path.end_step, path.end_fraction) == (route.end_step, route.end_fraction)
        extra = path.length_m - route.length_m
        assert 195.0 <= extra <= 490.0
        stray = max(_off_route_m(route, path.point_at(d)) for d in range(0, int(path.length_m), 10))
        assert 95.0 <= stray <= 250.0
        # Along streets: consecutive corners are neighbours, and it never drives a street twice.
        for a, b in itertools.pairwise(path.corners):
            assert abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1
        streets = [frozenset(pair) for pair in itertools.pairwise(path.corners)]
        assert len(streets) == len(set(streets))
    assert made >= 25


def test_detour_is_deterministic_and_chained_routes_detour_too(grid: StreetGrid) -> None:
    """The same rng gives the same detour; a route that starts at a house (not a corner) keeps its start."""
    first = plan_route(grid, random.Random(1), min_m=3000.0, max_m=6000.0)
    second = plan_route(grid, random.Random(2), after=first, min_m=3000.0, max_m=6000.0)
    a = detour(grid, second, random.Random(9))
    b = detour(grid, second, random.Random(9))
    assert a is not None and b is not None
    assert a.xy == b.xy and a.xy != second.xy
    assert a.xy[0] == second.xy[0] == first.xy[-1]


def test_a_route_too_short_for_a_detour_gets_none(grid: StreetGrid) -> None:
    """With no straight run of the wanted length between its first corner and its final approach: None."""
    route = plan_route(grid, random.Random(3), min_m=1500.0, max_m=2000.0)
    assert detour(grid, route, random.Random(0), blocks=(500, 500)) is None


# --- the command line --------------------------------------------------------------------------


def test_cli_refuses_fewer_than_200_deliveries() -> None:
    """The buckets need data: --deliveries below 200 is an argument error; the defaults are the documented ones."""
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["eta-accuracy", "--deliveries", "199"])
    args = parser.parse_args(["eta-accuracy"])
    assert (args.seed, args.deliveries, args.drivers, args.speedup, args.interval) == (7, 240, 24, 60.0, 5.0)


def test_cli_wants_both_servers_or_neither() -> None:
    """--url without --no-fleet-url (or the reverse) is an argument error: every variant needs its server."""
    from simulator.cli import main

    for args in (["--url", "http://127.0.0.1:1"], ["--no-fleet-url", "http://127.0.0.1:1"]):
        with pytest.raises(SystemExit) as exit_:
            main(["eta-accuracy", *args, "--admin-token", "x"])
        assert exit_.value.code == 2
