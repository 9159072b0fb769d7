"""The ETA model (livemap.domain.eta): expected values computed independently, with geopy or closed-form arithmetic."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import TypeVar

import msgspec
import pytest

from conftest import dest, gd, route
from livemap.domain.eta import (
    AVG_TAU_S,
    MOVE_TAU_S,
    PRIORS,
    SMOOTH_TAU_S,
    WINDOW_S,
    DriverSpeed,
    EtaModel,
    FixIn,
    LegEvent,
    LegState,
    Prior,
)
from livemap.domain.events import ArrivedEvent, ArrivingEvent, DelayedEvent, EtaEvent, OffRouteEvent
from livemap.domain.geometry import LatLon, Route
from livemap.settings import Settings

T0 = 1_600_000_000_000  # fix time far from now: nothing may lean on the wall clock
HOUR_MS = 3_600_000
TOL_M = 2.0  # metres: projection in the route's local frame vs geodesic truth
FRAME_REL = 5e-3  # straight-line distances use a spherical local frame: within 0.5% of geodesic at city scale
ACCURACY_M = 8.0  # GPS noise: radial rms 8 m, i.e. 8/sqrt(2) per axis, as simulator/driver.py draws it
SIGMA_M = ACCURACY_M / math.sqrt(2)
# Along-route error allowed for a noisy fix: the noise alone stays under 25 m (4.4 sigma along track); at a
# right-angle corner the nearest point of the other leg can sit a little further along than the noise.
TRACK_TOL_M = 30.0

TUNING = Settings()
MODEL = EtaModel(TUNING)
CAR: Prior = PRIORS["car"]
START: LatLon = (-23.5505, -46.6333)  # São Paulo


def prior_travel_s(metres: float, moving: float = CAR.moving_mps, overall: float = CAR.overall_mps) -> float:
    """travel_s written out: remaining * ((1 - w) / moving + w / overall), w = clamp(remaining / 2500, 0.2, 1)."""
    w = min(max(metres / 2500, 0.2), 1.0)
    return metres * ((1 - w) / moving + w / overall)


@dataclass(frozen=True)
class SimRoute:
    """A route and where a driver truly is after `d` metres of it (computed without the model)."""

    name: str
    route: Route
    at: Callable[[float], LatLon]


def stepped(name: str, origin: LatLon, steps: list[tuple[float, float]]) -> SimRoute:
    """A polyline of geodesic steps (bearing, metres); the truth walks each step's geodesic."""
    starts = [origin]
    for bearing, metres in steps:
        starts.append(dest(starts[-1], bearing, metres))

    def at(d: float) -> LatLon:
        for (bearing, metres), start in zip(steps, starts, strict=False):
            if d <= metres:
                return dest(start, bearing, d)
            d -= metres
        return starts[-1]

    return SimRoute(name, route(starts), at)


ARC_R = 400.0
ARC_CENTRE: LatLon = (40.4168, -3.7038)  # Madrid


def arc() -> SimRoute:
    """A half circle of radius 400 m drawn with a vertex every 2 degrees; the truth drives the circle."""
    points = [dest(ARC_CENTRE, b * 2.0, ARC_R) for b in range(91)]
    return SimRoute("arc", route(points), lambda d: dest(ARC_CENTRE, math.degrees(d / ARC_R), ARC_R))


STRAIGHT = stepped("straight", START, [(60.0, 2000.0)])
L_SHAPE = stepped("L", START, [(0.0, 800.0), (90.0, 600.0)])
ARC = arc()
U_TURN = stepped("U-turn", START, [(0.0, 1000.0), (90.0, 30.0), (180.0, 1000.0)])  # way back 30 m east of way out
NORTH = stepped("north", START, [(0.0, 3000.0)])
U = U_TURN.route
N3 = NORTH.route
N3_END = N3.destination


def noisy(p: LatLon, rng: random.Random) -> LatLon:
    """`p` moved by gaussian GPS noise (per-axis sigma SIGMA_M)."""
    north, east = rng.gauss(0.0, SIGMA_M), rng.gauss(0.0, SIGMA_M)
    return dest(p, math.degrees(math.atan2(east, north)), math.hypot(north, east))


@dataclass
class Tick:
    truth_m: float
    before: LegState
    after: LegState
    progress: float
    events: list[LegEvent]
    speed: DriverSpeed


def drive(sim: SimRoute, seed: int, t0: int = T0, promised_by: int | None = None, mps: float = 10.0) -> list[Tick]:
    """A driver at `mps` from start to destination, one noisy fix a second, learning its speed as positions.py does."""
    rng = random.Random(seed)
    leg, speed = LegState(), DriverSpeed()
    ticks: list[Tick] = []
    for k in range(int(sim.route.length_m // mps) + 1):
        lat, lon = noisy(sim.at(k * mps), rng)
        ts = t0 + k * 1000
        new, progress, events = MODEL.step(
            leg, sim.route, FixIn(lat, lon, ts, None, ACCURACY_M), speed, CAR, promised_by
        )
        speed = MODEL.measure(speed, progress, ts, CAR)
        ticks.append(Tick(k * mps, leg, new, progress, events, speed))
        leg = new
    return ticks


def on(sim: SimRoute, d: float, side_m: float = 0.0, side_bearing: float = 90.0) -> LatLon:
    """The true point `d` metres along, optionally `side_m` metres off it towards `side_bearing`."""
    p = sim.at(d)
    return dest(p, side_bearing, side_m) if side_m else p


E = TypeVar("E")


def of_type(events: list[LegEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


class Leg:
    """Feeds fixes to `step` one after another, keeping the leg state and every event."""

    def __init__(
        self,
        route: Route,
        speed: DriverSpeed | None = None,
        promised_by: int | None = None,
        leg: LegState | None = None,
    ) -> None:
        self.route, self.promised_by = route, promised_by
        self.speed = speed or DriverSpeed()
        self.state = leg or LegState()
        self.events: list[LegEvent] = []
        self.last: list[LegEvent] = []
        self.progress = 0.0

    def fix(self, p: LatLon, ts: int, speed: float | None = None, accuracy: float | None = None) -> LegState:
        fix = FixIn(p[0], p[1], ts, speed, accuracy)
        self.state, self.progress, self.last = MODEL.step(
            self.state, self.route, fix, self.speed, CAR, self.promised_by
        )
        self.events += self.last
        return self.state


# --- Route.locate_near ---------------------------------------------------------------------------


def test_locate_near_keeps_a_noisy_fix_on_the_way_out_of_a_u_turn() -> None:
    """18 m east of the way out, 12 m from the way back: locate picks the way back, a window round 500 m the way out."""
    assert [gd(a, b) for a, b in pairwise(U.points)] == pytest.approx([1000.0, 30.0, 1000.0], abs=1e-3)
    out_foot, back_foot = on(U_TURN, 500.0), on(U_TURN, 1530.0)
    fix = dest(out_foot, 90, 18.0)
    assert gd(fix, back_foot) == pytest.approx(12.0, abs=0.1)
    along, off = U.locate(*fix)
    assert along == pytest.approx(1530.0, abs=TOL_M)
    assert off == pytest.approx(gd(fix, back_foot), abs=TOL_M)
    along, off = U.locate_near(*fix, 470.0, 700.0)
    assert along == pytest.approx(500.0, abs=TOL_M)
    assert off == pytest.approx(gd(fix, out_foot), abs=TOL_M)


@pytest.mark.parametrize(
    ("fix_along", "window", "expected_along"),
    [
        (300.0, (400.0, 600.0), 400.0),  # behind the window: its start
        (800.0, (400.0, 600.0), 600.0),  # ahead of the window: its end
        (1015.0, (900.0, 1100.0), 1015.0),  # inside, across a vertex (the turn)
    ],
)
def test_locate_near_clamps_to_the_window(fix_along: float, window: tuple[float, float], expected_along: float) -> None:
    """A fix on the route outside the window locates at the window's nearest end, at its true distance from it."""
    fix = on(U_TURN, fix_along)
    along, off = U.locate_near(*fix, *window)
    assert along == pytest.approx(expected_along, abs=TOL_M)
    assert off == pytest.approx(gd(fix, on(U_TURN, expected_along)), abs=TOL_M)


def test_locate_near_clamps_a_window_reaching_past_either_end_of_the_route() -> None:
    """A window from -30 m locates a fix behind the start at 0; one to length + 200 m a fix past the end at the end."""
    behind = dest(START, 180, 50.0)
    along, off = U.locate_near(*behind, -30.0, 200.0)
    assert along == 0.0
    assert off == pytest.approx(gd(behind, START), abs=TOL_M)
    end = U.destination
    past = dest(end, 180, 40.0)
    along, off = U.locate_near(*past, U.length_m - 30.0, U.length_m + 200.0)
    assert along == pytest.approx(U.length_m, abs=1e-6)
    assert off == pytest.approx(gd(past, end), abs=TOL_M)


def test_locate_near_window_starting_at_the_end() -> None:
    """A window lying wholly at or past the route's end clamps to the end (as `locate` does), not IndexError."""
    past = dest(U.destination, 180, 40.0)
    along, off = U.locate_near(*past, U.length_m, U.length_m + 200.0)
    assert along == pytest.approx(U.length_m, abs=1e-6)
    assert off == pytest.approx(gd(past, U.destination), abs=TOL_M)


# --- progress under noise ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sim", [STRAIGHT, L_SHAPE, ARC, U_TURN], ids=lambda s: s.name)
def test_progress_is_monotonic_and_tracks_the_truth_under_noise(sim: SimRoute, seed: int) -> None:
    """At 1 Hz with 8 m noise, along never decreases, remaining never grows, along stays within 30 m of the truth."""
    # (On the U-turn the start is 30 m from the destination, so `arrived` fires on the second fix: see
    # test_passing_the_destination_on_the_way_out_is_not_arrival. Progress is still checked all the way.)
    ticks = drive(sim, seed)
    assert len(ticks) > 100
    for t in ticks:
        s = t.after
        assert not s.off_route and not of_type(t.events, OffRouteEvent), t.truth_m
        assert s.along_m >= t.before.along_m, t.truth_m
        assert abs(s.along_m - t.truth_m) <= TRACK_TOL_M, (t.truth_m, s.along_m)
        expected_remaining = 0.0 if s.arrived else sim.route.length_m - s.along_m
        assert s.remaining_m == pytest.approx(expected_remaining, abs=1e-6), t.truth_m
        if t.before.ts:
            assert s.remaining_m <= t.before.remaining_m, t.truth_m
        if t.before.ts and not s.arrived:
            assert t.progress == pytest.approx(s.along_m - t.before.along_m, abs=1e-6), t.truth_m
    events = [e for t in ticks for e in t.events]
    assert len(of_type(events, ArrivedEvent)) == 1
    assert len(of_type(events, ArrivingEvent)) == 1
    assert ticks[-1].after.arrived and ticks[-1].after.remaining_m == 0.0


def test_u_turn_window_keeps_a_noisy_fix_on_the_way_out() -> None:
    """Regression: a fix 18 m east of the way out at 500 m (nearer the way back, 1530 m) moves progress to ~500 m."""
    leg = Leg(U, leg=LegState(along_m=490.0, ts=T0, remaining_m=U.length_m - 490.0))
    s = leg.fix(dest(on(U_TURN, 500.0), 90, 18.0), T0 + 1000)
    assert s.along_m == pytest.approx(500.0, abs=TOL_M)
    assert s.remaining_m == pytest.approx(1530.0, abs=TOL_M)
    assert not leg.events


def test_first_fix_on_a_u_turn_stays_at_the_start() -> None:
    """The first fix, 16 m east of the start (14 m from the way back's end), locates near 0 m, not at the end."""
    leg = Leg(U)
    s = leg.fix(dest(START, 90, 16.0), T0)
    assert s.along_m <= TRACK_TOL_M
    assert s.remaining_m == pytest.approx(U.length_m - s.along_m, abs=1e-6)
    assert not of_type(leg.events, ArrivingEvent)


def test_one_noisy_fix_near_a_u_turn_does_not_jump_onto_the_way_back() -> None:
    """At 910 m (90 m before the turn), a fix 1 s later 16 m east of the way out moves progress ~10 m, not ~200 m."""
    leg = Leg(U, leg=LegState(along_m=910.0, ts=T0, remaining_m=U.length_m - 910.0))
    s = leg.fix(dest(on(U_TURN, 920.0), 90, 16.0), T0 + 1000)
    assert s.along_m == pytest.approx(920.0, abs=TRACK_TOL_M)


def test_passing_the_destination_on_the_way_out_is_not_arrival() -> None:
    """On the U-turn the way out passes 30 m from the destination: a driver moving at 10 m/s there has not arrived."""
    leg = Leg(U)
    for k in range(5):
        leg.fix(on(U_TURN, 10.0 * k), T0 + k * 1000, speed=10.0)
    assert not of_type(leg.events, ArrivedEvent)
    assert leg.state.remaining_m == pytest.approx(U.length_m - 40.0, abs=TOL_M)


# --- off route -------------------------------------------------------------------------------------


def drive_north(leg: Leg, d_from: float, d_to: float, t: int, step_m: float = 10.0) -> int:
    """Noise-free fixes on NORTH every second from `d_from` to `d_to` metres; returns the next fix time."""
    d = d_from
    while d <= d_to:
        leg.fix(on(NORTH, d), t)
        t += 1000
        d += step_m
    return t


def test_off_route_after_n_fixes_falls_back_to_straight_line_times_detour() -> None:
    """N fixes 100 m off flip off_route with one event; remaining is then straight line to the destination x 1.3."""
    n = TUNING.off_route_fixes
    leg = Leg(N3)
    t = drive_north(leg, 0.0, 500.0, T0)
    assert not of_type(leg.events, OffRouteEvent)
    for i in range(n - 1):
        leg.fix(on(NORTH, 510.0 + 10 * i, 100.0), t)
        t += 1000
        assert not leg.state.off_route and not of_type(leg.last, OffRouteEvent)
        if i == 0:  # remaining grew (2490 m along -> ~3240 m straight x 1.3): no progress, and never negative
            assert leg.state.remaining_m > 3000.0 and leg.progress == 0.0
    fix = on(NORTH, 510.0 + 10 * (n - 1), 100.0)
    leg.fix(fix, t)
    t += 1000
    assert leg.state.off_route
    flips = of_type(leg.events, OffRouteEvent)
    assert len(flips) == 1 and not flips[0].resolved
    assert flips[0].distance_m == pytest.approx(100.0, abs=TOL_M)
    assert leg.state.along_m == pytest.approx(500.0, abs=TOL_M)  # progress waits where the route was left
    for i in range(5):
        fix = on(NORTH, 540.0 + 10 * i, 100.0)
        leg.fix(fix, t)
        t += 1000
        expected = gd(fix, N3_END) * TUNING.detour_factor
        assert leg.state.remaining_m == pytest.approx(expected, rel=FRAME_REL)
    assert len(of_type(leg.events, OffRouteEvent)) == 1
    # Back on the route: N fixes; the first N - 1 still count as off route.
    for i in range(n):
        fix = on(NORTH, 600.0 + 10 * i)
        leg.fix(fix, t)
        t += 1000
        if i < n - 1:
            assert leg.state.off_route
            assert leg.state.remaining_m == pytest.approx(gd(fix, N3_END) * TUNING.detour_factor, rel=FRAME_REL)
    flips = of_type(leg.events, OffRouteEvent)
    assert [f.resolved for f in flips] == [False, True]
    assert not leg.state.off_route
    assert leg.state.along_m == pytest.approx(600.0 + 10 * (n - 1), abs=TOL_M)
    assert leg.state.remaining_m == pytest.approx(N3.length_m - leg.state.along_m, abs=1e-6)
    assert leg.state.remaining_m == pytest.approx(3000.0 - 600.0 - 10 * (n - 1), abs=TOL_M)


def test_fewer_than_n_off_fixes_do_not_flip() -> None:
    """N - 1 fixes 100 m off, then back: no event, off_route stays false, remaining is along the route again."""
    leg = Leg(N3)
    t = drive_north(leg, 0.0, 500.0, T0)
    for i in range(TUNING.off_route_fixes - 1):
        leg.fix(on(NORTH, 510.0 + 10 * i, 100.0), t)
        t += 1000
    leg.fix(on(NORTH, 530.0), t)
    assert not of_type(leg.events, OffRouteEvent)
    assert not leg.state.off_route and leg.state.streak == 0
    assert leg.state.remaining_m == pytest.approx(3000.0 - 530.0, abs=TOL_M)


@pytest.mark.parametrize(("accuracy", "flips"), [(30.0, True), (40.0, False)])
def test_off_route_threshold_widens_with_poor_accuracy(accuracy: float, flips: bool) -> None:
    """Fixes 70 m off are off route at accuracy 30 m (threshold max(50, 60)) but not at 40 m (threshold 80)."""
    leg = Leg(N3)
    t = drive_north(leg, 0.0, 500.0, T0)
    for i in range(TUNING.off_route_fixes):
        leg.fix(on(NORTH, 510.0 + 10 * i, 70.0), t, accuracy=accuracy)
        t += 1000
    assert leg.state.off_route is flips
    assert len(of_type(leg.events, OffRouteEvent)) == int(flips)


def test_a_shortcut_rejoining_further_ahead_is_accepted() -> None:
    """Two fixes 100 m off (a cut-through), then one on the route at 800 m, past the 470-700 m window: taken at once."""
    leg = Leg(N3)
    t = drive_north(leg, 0.0, 500.0, T0)
    leg.fix(on(NORTH, 550.0, 100.0), t)
    leg.fix(on(NORTH, 650.0, 100.0), t + 1000)
    assert leg.state.streak == 2 and leg.state.along_m == pytest.approx(500.0, abs=TOL_M)
    assert N3.locate_near(*on(NORTH, 800.0), 470.0, 700.0)[1] > TUNING.off_route_m  # only the whole line finds it
    leg.fix(on(NORTH, 800.0), t + 2000)
    assert leg.state.along_m == pytest.approx(800.0, abs=TOL_M)
    assert leg.state.remaining_m == pytest.approx(2200.0, abs=TOL_M)
    assert leg.state.streak == 0 and not leg.state.off_route and not of_type(leg.events, OffRouteEvent)


def test_rejoining_ahead_after_an_off_route_episode_is_accepted() -> None:
    """Off route at 500 m, back on the route at 1500 m for N fixes: progress resumes at 1500 m, resolved once."""
    leg = Leg(N3)
    t = drive_north(leg, 0.0, 500.0, T0)
    for i in range(TUNING.off_route_fixes + 2):
        leg.fix(on(NORTH, 800.0 + 100 * i, 300.0), t)
        t += 5000
    assert leg.state.off_route
    t = drive_north(leg, 1500.0, 1500.0 + 10 * (TUNING.off_route_fixes - 1), t)
    assert [f.resolved for f in of_type(leg.events, OffRouteEvent)] == [False, True]
    end = 1500.0 + 10 * (TUNING.off_route_fixes - 1)
    assert leg.state.along_m == pytest.approx(end, abs=TOL_M)
    assert leg.state.remaining_m == pytest.approx(3000.0 - end, abs=TOL_M)


def test_rejoining_behind_is_not_progress() -> None:
    """Fixes on the route 400 m behind the progress leave it where it is; N of them count as off route."""
    leg = Leg(N3)
    t = drive_north(leg, 0.0, 1000.0, T0)
    before = leg.state.along_m
    for i in range(TUNING.off_route_fixes):
        leg.fix(on(NORTH, 600.0 + 10 * i), t)
        t += 1000
        assert leg.state.along_m == before
    assert leg.state.off_route
    assert len(of_type(leg.events, OffRouteEvent)) == 1
    fix = on(NORTH, 630.0)
    leg.fix(fix, t)
    assert leg.state.along_m == before
    assert leg.state.remaining_m == pytest.approx(gd(fix, N3_END) * TUNING.detour_factor, rel=FRAME_REL)


def test_an_off_route_detour_does_not_inflate_the_learned_speed() -> None:
    """A detour driven at a steady 10 m/s (500 m, then 100 E, 200 N, 100 W, back on at 700 m) keeps moving speed ~10."""
    leg = Leg(N3)
    path = [on(NORTH, d) for d in range(0, 500, 10)]
    a = on(NORTH, 500.0)
    path += [dest(a, 90, e) for e in range(0, 100, 10)]
    b = dest(a, 90, 100.0)
    path += [dest(b, 0, n) for n in range(0, 200, 10)]
    c = dest(b, 0, 200.0)
    path += [dest(c, 270, w) for w in range(0, 100, 10)]
    path += [on(NORTH, d) for d in range(700, 1300, 10)]
    fastest = 0.0
    for k, p in enumerate(path):
        leg.fix(p, T0 + k * 1000)
        leg.speed = MODEL.measure(leg.speed, leg.progress, T0 + k * 1000, CAR)
        fastest = max(fastest, leg.speed.moving or 0.0)
    assert [f.resolved for f in of_type(leg.events, OffRouteEvent)] == [False, True]
    assert fastest <= 12.0


# --- speed model ---------------------------------------------------------------------------------


def ewma(current: float, value: float, span_s: float, tau_s: float) -> float:
    return current + (1 - math.exp(-span_s / tau_s)) * (value - current)


def test_measure_opens_a_window_on_the_first_fix() -> None:
    """The first measurement only opens a window at the fix time: no speed yet, no progress carried."""
    s = MODEL.measure(DriverSpeed(), 123.0, T0, CAR)
    assert s == DriverSpeed(None, None, T0, 0.0)


def test_measure_ignores_windows_shorter_than_window_s() -> None:
    """Progress accumulates in the window until WINDOW_S of fix time has passed; speeds do not change before."""
    assert WINDOW_S == 10.0
    s = DriverSpeed(12.0, 8.0, T0, 0.0)
    s = MODEL.measure(s, 50.0, T0 + 5000, CAR)
    assert s == DriverSpeed(12.0, 8.0, T0, 50.0)
    s = MODEL.measure(s, 40.0, T0 + 9999, CAR)
    assert s == DriverSpeed(12.0, 8.0, T0, 90.0)
    s = MODEL.measure(s, 60.0, T0 + 10_000, CAR)
    assert s.win_ts == T0 + 10_000 and s.win_progress == 0.0
    assert s.moving == pytest.approx(ewma(12.0, 15.0, 10.0, MOVE_TAU_S), rel=1e-12)
    assert s.overall == pytest.approx(ewma(8.0, 15.0, 10.0, AVG_TAU_S), rel=1e-12)


def test_measure_does_not_count_negative_progress() -> None:
    """Negative progress (remaining grew) adds nothing: 50 m in the window then -30 m closes at 5 m/s."""
    s = MODEL.measure(DriverSpeed(12.0, 8.0, T0, 50.0), -30.0, T0 + 10_000, CAR)
    assert s.overall == pytest.approx(ewma(8.0, 5.0, 10.0, AVG_TAU_S), rel=1e-12)
    assert s.moving == pytest.approx(ewma(12.0, 5.0, 10.0, MOVE_TAU_S), rel=1e-12)


def test_a_first_window_moves_from_the_prior_not_replaces_it() -> None:
    """A first 20 s window at 15 m/s moves each speed from its prior by 1 - exp(-20/tau), not to 15."""
    s = MODEL.measure(DriverSpeed(), 0.0, T0, CAR)
    s = MODEL.measure(s, 300.0, T0 + 20_000, CAR)
    assert s.overall == pytest.approx(7.0 + (1 - math.exp(-20 / AVG_TAU_S)) * (15.0 - 7.0), rel=1e-12)
    assert 7.0 < s.overall < 8.0
    assert s.moving == pytest.approx(10.0 + (1 - math.exp(-20 / MOVE_TAU_S)) * (15.0 - 10.0), rel=1e-12)
    assert s.moving == pytest.approx(11.4173, abs=1e-4)


@pytest.mark.parametrize(
    ("metres", "moving_after"),
    [
        (14.0, None),  # 1.4 m/s: a stop, moving speed not observed
        (15.0, ewma(10.0, 1.5, 10.0, MOVE_TAU_S)),  # exactly 1.5 m/s: moving
    ],
)
def test_moving_speed_updates_only_on_windows_of_at_least_1_5_mps(metres: float, moving_after: float | None) -> None:
    """A 10 s window slower than 1.5 m/s leaves the moving speed alone; the overall speed follows it either way."""
    s = MODEL.measure(DriverSpeed(None, None, T0, 0.0), metres, T0 + 10_000, CAR)
    assert s.moving == (None if moving_after is None else pytest.approx(moving_after, rel=1e-12))
    assert s.overall == pytest.approx(ewma(7.0, metres / 10, 10.0, AVG_TAU_S), rel=1e-12)
    s = MODEL.measure(DriverSpeed(12.0, 8.0, T0, 0.0), 14.0, T0 + 10_000, CAR)
    assert s.moving == 12.0


def test_measured_progress_is_capped_at_45_mps() -> None:
    """1 km of progress in 10 s (a projection jump) counts as 45 m/s."""
    s = MODEL.measure(DriverSpeed(10.0, 7.0, T0, 0.0), 1000.0, T0 + 10_000, CAR)
    assert s.moving == pytest.approx(ewma(10.0, 45.0, 10.0, MOVE_TAU_S), rel=1e-12)
    assert s.overall == pytest.approx(ewma(7.0, 45.0, 10.0, AVG_TAU_S), rel=1e-12)


def test_a_red_light_keeps_the_moving_speed_and_a_finite_sliding_eta() -> None:
    """60 s stopped after 60 s at 10 m/s: moving speed unchanged, overall decays, ETA finite and sliding."""
    leg = Leg(N3)
    for k in range(61):  # 0..600 m
        leg.fix(on(NORTH, 10.0 * k), T0 + k * 1000)
        leg.speed = MODEL.measure(leg.speed, leg.progress, T0 + k * 1000, CAR)
    before = leg.speed
    assert before.moving is not None and before.overall is not None
    assert before.moving == pytest.approx(10.0, abs=0.05)
    eta_first = 0
    for k in range(61, 121):
        leg.fix(on(NORTH, 600.0), T0 + k * 1000)
        leg.speed = MODEL.measure(leg.speed, leg.progress, T0 + k * 1000, CAR)
        assert leg.progress == 0.0
        left = leg.state.eta_at - T0 - k * 1000
        assert 0 < left < 2400 / TUNING.speed_floor_mps * 1000
        eta_first = eta_first or leg.state.raw_eta_at
    assert leg.speed.moving == before.moving
    assert leg.speed.overall == pytest.approx(before.overall * math.exp(-60 / AVG_TAU_S), rel=1e-9)
    assert leg.state.remaining_m == pytest.approx(2400.0, abs=TOL_M)
    # Waiting is already in the clock: the raw ETA slid by the 59 s waited, plus what the lower overall speed adds
    # (the last fix is stepped with the speed after five of the six stopped windows).
    overall_then = before.overall * math.exp(-50 / AVG_TAU_S)
    expected_slide = 59_000 + 1000 * (
        prior_travel_s(2400.0, before.moving, overall_then) - prior_travel_s(2400.0, before.moving, before.overall)
    )
    assert leg.state.raw_eta_at - eta_first == pytest.approx(expected_slide, abs=50)


@pytest.mark.parametrize(
    ("remaining", "speed", "expected_s"),
    [
        (1000.0, DriverSpeed(12.0, 6.0), 1000 * (0.6 / 12 + 0.4 / 6)),  # w = 0.4
        (100.0, DriverSpeed(12.0, 6.0), 100 * (0.8 / 12 + 0.2 / 6)),  # near: w floors at 0.2
        (5000.0, DriverSpeed(12.0, 6.0), 5000 / 6),  # far: w = 1, overall only
        (2500.0, DriverSpeed(12.0, 6.0), 2500 / 6),
        (1000.0, DriverSpeed(), 1000 * (0.6 / 10 + 0.4 / 7)),  # nothing learned: the car prior
        (1000.0, DriverSpeed(0.5, 0.2), 1000 / 1.5),  # both below the floor
        (0.0, DriverSpeed(12.0, 6.0), 0.0),
        (1000.0, DriverSpeed(10.0, 0.0), 1000 * (0.6 / 10 + 0.4 / 1.5)),  # decayed to 0: observed, so the floor
    ],
)
def test_travel_s_blends_moving_and_overall_speed_by_distance(
    remaining: float, speed: DriverSpeed, expected_s: float
) -> None:
    """travel_s = remaining * ((1 - w) / moving + w / overall), w = remaining / 2500 in [0.2, 1], speeds >= floor."""
    assert MODEL.travel_s(remaining, speed, CAR) == pytest.approx(expected_s, rel=1e-12, abs=1e-12)


# --- time --------------------------------------------------------------------------------------------


def test_eta_follows_fix_time_not_the_wall_clock() -> None:
    """The same drive one hour later gives every ETA and event exactly one hour later, all else identical."""
    promised = T0 + 100_000
    a = drive(L_SHAPE, 0, T0, promised)
    b = drive(L_SHAPE, 0, T0 + HOUR_MS, promised + HOUR_MS)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert y.after.ts - x.after.ts == HOUR_MS
        assert y.after.eta_at - x.after.eta_at == HOUR_MS
        assert y.after.raw_eta_at - x.after.raw_eta_at == HOUR_MS
        assert (y.after.along_m, y.after.remaining_m) == (x.after.along_m, x.after.remaining_m)
        assert y.speed.moving == x.speed.moving and y.speed.overall == x.speed.overall
        assert len(x.events) == len(y.events)
        for ex, ey in zip(x.events, y.events, strict=True):
            shifted = {
                k: v + HOUR_MS if k in ("ts", "eta_at", "promised_by") else v
                for k, v in msgspec.structs.asdict(ex).items()
            }
            assert type(ey) is type(ex) and msgspec.structs.asdict(ey) == shifted
    kinds = {type(e) for t in a for e in t.events}
    assert {ArrivingEvent, ArrivedEvent, DelayedEvent} <= kinds


# --- smoothing -----------------------------------------------------------------------------------


def test_displayed_eta_moves_towards_the_raw_one_by_1_minus_exp_dt_over_tau() -> None:
    """The first fix shows the raw ETA; after a speed-up each fix closes 1 - exp(-dt/SMOOTH_TAU_S) of the gap."""
    slow, fast = DriverSpeed(4.0, 3.0), DriverSpeed(20.0, 16.0)
    leg = Leg(N3, slow)
    ts, d = T0, 0.0
    gaps = [1000, 2000, 1000, 3000, 1000, 7000, 1000, 1000, 5000, 1000]
    seen_gap = 0
    for i, dt in enumerate(gaps * 2):
        if i == len(gaps):
            leg.speed = fast
        before = leg.state
        ts += dt
        d += 10.0 * dt / 1000
        s = leg.fix(on(NORTH, d), ts)
        expected_raw = ts + round(prior_travel_s(3000.0 - d, leg.speed.moving or 0, leg.speed.overall or 0) * 1000)
        assert s.raw_eta_at == pytest.approx(expected_raw, abs=2)
        if i == 0:
            assert s.eta_at == s.raw_eta_at
            continue
        alpha = 1 - math.exp(-dt / 1000 / SMOOTH_TAU_S)
        assert s.eta_at == round(before.eta_at + alpha * (s.raw_eta_at - before.eta_at))
        if i >= len(gaps):
            assert s.raw_eta_at < s.eta_at < before.eta_at  # falling towards the faster raw ETA, never past it
            seen_gap = max(seen_gap, s.eta_at - s.raw_eta_at)
    assert seen_gap > 60_000  # the speed-up made a real gap for the smoothing to close


def test_displayed_eta_is_never_before_the_fix_time() -> None:
    """An ETA shown 20 s in the past, 60 m out: smoothing alone would stay in the past; the display holds at the fix."""
    past = T0 - 20_000
    leg = Leg(N3, leg=LegState(along_m=2930.0, ts=T0, remaining_m=70.0, raw_eta_at=past, eta_at=past, arriving=True))
    s = leg.fix(on(NORTH, 2940.0), T0 + 2_000)
    raw = T0 + 2_000 + prior_travel_s(60.0) * 1000
    assert s.raw_eta_at == pytest.approx(raw, abs=50)
    assert past + (1 - math.exp(-2 / SMOOTH_TAU_S)) * (raw - past) < T0 + 2_000 - 1000  # what smoothing alone gives
    assert s.eta_at == T0 + 2_000


# --- events --------------------------------------------------------------------------------------


# With the car prior, remaining r takes r * (0.1 + r * (1/7 - 1/10) / 2500) s while r <= 2500 m: 180 s at the root of
# a r^2 + 0.1 r - 180 = 0.
_A = (1 / 7 - 1 / 10) / 2500
ARRIVING_AT_M = (-0.1 + math.sqrt(0.1**2 + 4 * _A * 180)) / (2 * _A)


@pytest.mark.parametrize(("remaining", "fires"), [(1460.0, False), (1425.0, True)])
def test_arriving_fires_at_180_s_eta(remaining: float, fires: bool) -> None:
    """With the car prior 180 s of ETA is 1443 m (closed form): arriving fires on a first fix inside it, not outside."""
    assert abs(ARRIVING_AT_M - 1443.0) < 0.1
    assert prior_travel_s(ARRIVING_AT_M) == pytest.approx(180.0, abs=1e-9)
    assert (remaining < ARRIVING_AT_M) is fires
    leg = Leg(N3)
    s = leg.fix(on(NORTH, 3000.0 - remaining), T0)
    assert s.eta_at - T0 == pytest.approx(prior_travel_s(remaining) * 1000, abs=1000 * TOL_M * 0.15)
    assert len(of_type(leg.events, ArrivingEvent)) == int(fires)
    assert s.arriving is fires


@pytest.mark.parametrize(("remaining", "fires"), [(160.0, False), (140.0, True)])
def test_arriving_fires_within_150_m_even_with_a_distant_eta(remaining: float, fires: bool) -> None:
    """A displayed ETA still an hour away (smoothing) does not hold back arriving once remaining <= 150 m."""
    leg = Leg(N3, leg=LegState(along_m=2800.0, ts=T0, remaining_m=200.0, eta_at=T0 + HOUR_MS))
    s = leg.fix(on(NORTH, 3000.0 - remaining), T0 + 1000)
    assert s.eta_at - s.ts > 2 * TUNING.arriving_s * 1000
    events = of_type(leg.events, ArrivingEvent)
    assert len(events) == int(fires)
    if fires:
        assert events[0].remaining_m == pytest.approx(remaining, abs=TOL_M)
        assert events[0].eta_at == s.eta_at


def test_arriving_fires_once_on_the_way_in() -> None:
    """Driving the 3 km in: arriving fires once, on the first fix whose ETA is <= 180 s, no earlier than 1443 m out."""
    leg = Leg(N3)
    fired: list[LegState] = []
    for k in range(301):
        s = leg.fix(on(NORTH, 10.0 * k), T0 + k * 1000)
        if of_type(leg.last, ArrivingEvent):
            fired.append(s)
        if not fired:
            assert s.eta_at - s.ts > 180_000
    assert len(of_type(leg.events, ArrivingEvent)) == 1
    (s,) = fired
    assert s.eta_at - s.ts <= 180_000
    assert ARRIVING_AT_M - 150.0 < s.remaining_m <= ARRIVING_AT_M + TOL_M
    assert len(of_type(leg.events, ArrivedEvent)) == 1


def test_arriving_rearms_only_when_clearly_away_then_fires_again() -> None:
    """Arriving; 400 m away (520 m, 57 s) it stays spent; 2.5 km away (> 300 m, > 360 s) it re-arms and fires again."""
    leg = Leg(N3)
    t = T0
    leg.fix(on(NORTH, 2000.0), t)  # 1000 m out, 117 s
    assert len(of_type(leg.events, ArrivingEvent)) == 1
    for _ in range(5):
        t += 1000
        leg.fix(dest(N3_END, 90, 400.0), t)
    assert leg.state.off_route and leg.state.arriving
    assert leg.state.remaining_m == pytest.approx(400.0 * 1.3, rel=FRAME_REL)
    assert len(of_type(leg.events, ArrivingEvent)) == 1
    t += 60_000
    leg.fix(dest(N3_END, 90, 2500.0), t)
    expected_remaining = gd(dest(N3_END, 90, 2500.0), N3_END) * 1.3
    assert leg.state.remaining_m == pytest.approx(expected_remaining, rel=FRAME_REL)
    assert leg.state.remaining_m > 2 * TUNING.arriving_m
    assert leg.state.eta_at - t > 2 * TUNING.arriving_s * 1000
    assert not leg.state.arriving
    t += 60_000
    leg.fix(on(NORTH, 2900.0), t)  # still off route (one fix back): straight 100 m x 1.3
    again = of_type(leg.events, ArrivingEvent)
    assert len(again) == 2
    assert again[1].remaining_m == pytest.approx(100.0 * 1.3, abs=1.5)


def test_arriving_does_not_rearm_within_300_m_whatever_the_eta() -> None:
    """Armed-off at 250 m with the displayed ETA an hour away: remaining <= 2 x 150 m keeps it from re-arming."""
    leg = Leg(N3, leg=LegState(along_m=2740.0, ts=T0, remaining_m=260.0, eta_at=T0 + HOUR_MS, arriving=True))
    s = leg.fix(on(NORTH, 2750.0), T0 + 1000)
    assert s.eta_at - s.ts > 2 * TUNING.arriving_s * 1000
    assert s.arriving and not leg.events


def test_arrived_fires_once_on_the_second_fix_within_the_radius() -> None:
    """60 m out: no; 35 m moving: not yet; 30 m again: arrived, remaining 0, raw ETA = fix time; never again."""
    leg = Leg(N3, leg=LegState(along_m=2900.0, ts=T0, remaining_m=100.0, eta_at=T0 + 10_000))
    leg.fix(on(NORTH, 2940.0), T0 + 1000, speed=0.0)
    assert not leg.state.arrived
    leg.fix(on(NORTH, 2965.0), T0 + 2000, speed=5.0)
    assert not leg.state.arrived and leg.state.near_since == T0 + 2000
    s = leg.fix(on(NORTH, 2970.0), T0 + 3000, speed=5.0)
    assert s.arrived and s.remaining_m == 0.0 and s.raw_eta_at == T0 + 3000
    (arrived,) = of_type(leg.events, ArrivedEvent)
    assert (arrived.ts, arrived.lat, arrived.lon) == (T0 + 3000, *on(NORTH, 2970.0))
    for k, d in enumerate([2990.0, 3000.0, 2800.0, 2000.0]):
        s = leg.fix(on(NORTH, d), T0 + 4000 + 1000 * k, speed=0.0)
        assert s.arrived and s.remaining_m == 0.0
    assert len(of_type(leg.events, ArrivedEvent)) == 1


@pytest.mark.parametrize(
    ("metres_out", "speed", "accuracy", "arrived"),
    [
        (30.0, 1.0, None, True),  # stopped within 40 m: at once
        (30.0, 1.5, None, False),  # 1.5 m/s is moving: wait for a second fix
        (30.0, None, None, False),  # no speed: wait for a second fix
        (45.0, 0.0, None, False),  # outside 40 m
        (55.0, 0.0, 20.0, True),  # accuracy widens the radius: 40 + 20
        (55.0, 0.0, 10.0, False),  # 40 + 10
        (65.0, 0.0, 100.0, True),  # ... by at most 30 m
        (75.0, 0.0, 100.0, False),
    ],
)
def test_arrived_on_one_fix_needs_a_stop_within_the_radius(
    metres_out: float, speed: float | None, accuracy: float | None, arrived: bool
) -> None:
    """One fix arrives only when it reports < 1.5 m/s within 40 m (+ accuracy, at most 30 m) of the destination."""
    leg = Leg(N3)
    s = leg.fix(on(NORTH, 3000.0 - metres_out), T0, speed=speed, accuracy=accuracy)
    assert gd(on(NORTH, 3000.0 - metres_out), N3_END) == pytest.approx(metres_out, abs=1e-3)
    assert s.arrived is arrived
    assert len(of_type(leg.events, ArrivedEvent)) == int(arrived)
    assert (s.remaining_m == 0.0) is arrived


def test_arrived_needs_two_fixes_in_a_row_within_the_radius() -> None:
    """Near, out (50 m), near again: the streak restarted, so only the next near fix arrives."""
    leg = Leg(N3, leg=LegState(along_m=2900.0, ts=T0, remaining_m=100.0))
    for k, d in enumerate([2970.0, 2950.0, 2975.0]):
        leg.fix(on(NORTH, d), T0 + 1000 * (k + 1), speed=3.0)
        assert not leg.state.arrived, d
    leg.fix(on(NORTH, 2980.0), T0 + 4000, speed=3.0)
    assert leg.state.arrived and len(of_type(leg.events, ArrivedEvent)) == 1


def standing_then_fast(promised: int | None) -> tuple[Leg, list[LegState]]:
    """Stand 2 km out for 150 s (the ETA slides), then drive in at 40 m/s with speeds learned at 40 m/s for 40 s."""
    leg = Leg(N3, promised_by=promised)
    states = []
    for k in range(191):
        if k == 150:
            leg.speed = DriverSpeed(40.0, 40.0)
        states.append(leg.fix(on(NORTH, 1000.0 + 40.0 * max(k - 150, 0)), T0 + k * 1000))
    return leg, states


def test_delayed_fires_once_past_promise_plus_grace_and_recovers_once() -> None:
    """Promise = first ETA + 30 s: delayed once when the ETA passes promise + 60 s, resolved once below promise - 60."""
    e0 = T0 + round(prior_travel_s(2000.0) * 1000)
    promised = e0 + 30_000
    leg, states = standing_then_fast(promised)
    assert states[0].eta_at == pytest.approx(e0, abs=300)
    grace = round(TUNING.delay_grace_s * 1000)
    delays = of_type(leg.events, DelayedEvent)
    assert [d.resolved for d in delays] == [False, True]
    late = next(i for i, s in enumerate(states) if s.eta_at > promised + grace)
    assert delays[0] == DelayedEvent(states[late].eta_at, promised, False, states[late].ts)
    assert states[late - 1].eta_at <= promised + grace
    back = next(i for i, s in enumerate(states) if i > late and s.eta_at < promised - grace)
    assert back > 150
    assert delays[1] == DelayedEvent(states[back].eta_at, promised, True, states[back].ts)
    assert all(s.delayed for s in states[late:back]) and not states[-1].delayed


def test_no_delayed_events_without_a_promise() -> None:
    """The same sliding-then-recovering ETA with promised_by None sends no delayed event."""
    leg, states = standing_then_fast(None)
    assert not of_type(leg.events, DelayedEvent)
    assert states[149].eta_at - states[0].eta_at > 100_000  # the ETA did slide well past any grace
    assert not any(s.delayed for s in states)


# --- queued stops ----------------------------------------------------------------------------------


def test_queued_sends_an_eta_when_it_moved_over_60_s_or_a_minute_passed() -> None:
    """EtaEvent on the first call, when the ETA moved > 60 s, or after >= 60 s of fix time; not otherwise."""
    eta = T0 + 600_000
    leg, events = MODEL.queued(LegState(), eta, 4000.0, None, T0)
    assert events == [EtaEvent(eta_at=eta, remaining_m=4000, ts=T0)]
    assert (leg.pub_eta_at, leg.pub_ts) == (eta, T0)
    assert (leg.eta_at, leg.raw_eta_at, leg.ts, leg.remaining_m) == (eta, eta, T0, 4000.0)
    cases = [
        (eta + 60_000, T0 + 59_999, False),  # moved exactly 60 s, 59.999 s later
        (eta - 60_000, T0 + 30_000, False),
        (eta + 60_001, T0 + 1000, True),
        (eta - 60_001, T0 + 1000, True),
        (eta, T0 + 60_000, True),  # a minute passed
    ]
    for new_eta, ts, sends in cases:
        state, events = MODEL.queued(leg, new_eta, 3990.4, None, ts)
        assert events == ([EtaEvent(eta_at=new_eta, remaining_m=3990, ts=ts)] if sends else []), (new_eta, ts)
        assert state.eta_at == new_eta and state.ts == ts and state.remaining_m == 3990.4
        assert (state.pub_eta_at, state.pub_ts) == ((new_eta, ts) if sends else (eta, T0))


def test_queued_delay_fires_once_and_recovers_once() -> None:
    """A queued ETA past promise + 60 s sends delayed once; back before promise - 60 s it sends resolved once."""
    promised = T0 + 1_000_000
    leg = LegState()
    sent: list[LegEvent] = []
    for k, eta in enumerate([promised, promised + 60_000, promised + 60_001, promised + 300_000, promised - 59_999]):
        leg, events = MODEL.queued(leg, eta, 1000.0, promised, T0 + k * 1000)
        sent += of_type(events, DelayedEvent)
    assert sent == [DelayedEvent(promised + 60_001, promised, False, T0 + 2000)]
    leg, events = MODEL.queued(leg, promised - 60_001, 1000.0, promised, T0 + 9000)
    assert of_type(events, DelayedEvent) == [DelayedEvent(promised - 60_001, promised, True, T0 + 9000)]
    leg, events = MODEL.queued(leg, promised - 600_000, 1000.0, promised, T0 + 10_000)
    assert not of_type(events, DelayedEvent)


def test_queued_chain_adds_a_dwell_and_a_leg_per_stop() -> None:
    """Stop k's ETA = active ETA + sum over legs 2..k of (120 s dwell + travel_s(leg)), as positions.py chains it."""
    leg = Leg(N3)
    active = leg.fix(on(NORTH, 1000.0), T0)
    assert active.eta_at == pytest.approx(T0 + prior_travel_s(2000.0) * 1000, abs=300)
    legs_m = [400.0, 2500.0, 3000.0]
    # Chained exactly as DriverSession._fix_items does, with the model's own travel_s and the tuning's dwell.
    eta_at, remaining = active.eta_at, active.remaining_m
    got: list[tuple[int, float, list[LegEvent]]] = []
    for leg_m in legs_m:
        remaining += leg_m
        eta_at += round((MODEL.t.dwell_s + MODEL.travel_s(leg_m, leg.speed, CAR)) * 1000)
        state, events = MODEL.queued(LegState(), eta_at, remaining, None, T0)
        got.append((state.eta_at, state.remaining_m, events))
    # Closed form with the car prior: 400 m -> w 0.2; 2500 and 3000 m -> w 1, overall 7 m/s only.
    travel = [400 * (0.8 / 10 + 0.2 / 7), 2500 / 7, 3000 / 7]
    assert travel == pytest.approx([43.428571, 357.142857, 428.571429], abs=1e-6)
    for k, (eta_k, remaining_k, events) in enumerate(got, start=1):
        assert eta_k - active.eta_at == pytest.approx(1000 * (120 * k + sum(travel[:k])), abs=k)
        assert remaining_k == pytest.approx(2000.0 + sum(legs_m[:k]), abs=TOL_M)
        assert events == [EtaEvent(eta_at=eta_k, remaining_m=round(remaining_k), ts=T0)]
    dwell_total = got[-1][0] - active.eta_at - 1000 * sum(travel)
    assert dwell_total == pytest.approx(3 * 120_000, abs=3)
