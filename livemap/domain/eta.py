"""The ETA model: where the driver is along each stop's route, how fast it goes, when it arrives.

Per fix, only projection and arithmetic (no geodesic calls). State is split in two:
- `DriverSpeed` belongs to the driver (a learned speed survives from one stop to the next);
- `LegState` belongs to one order (progress, off-route streaks, which events were sent).

Speed is measured over windows of fix time (>= `WINDOW_S`) as progress along the route, so GPS
jitter around a standing driver does not read as motion. Two averages are kept: the *moving*
speed (windows where the driver moved), and the *overall* speed including stops, which starts at
the vehicle's prior and changes slowly. Remaining time blends them by distance: near the
destination the moving speed dominates (a red light now is already in the clock: `eta_at` slides
while the driver waits), far away the overall speed does (it includes the stops still to come).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec

from livemap.domain.events import ArrivedEvent, ArrivingEvent, DelayedEvent, EtaEvent, OffRouteEvent
from livemap.domain.geometry import Route
from livemap.domain.streetpace import KnownAhead
from livemap.settings import Settings

LegEvent = ArrivingEvent | ArrivedEvent | DelayedEvent | OffRouteEvent | EtaEvent

WINDOW_S = 10.0  # speed is measured over at least this much fix time
_MOVING_MPS = 1.5  # a window slower than this is a stop
_MAX_BELIEVED_MPS = 45.0  # faster progress than this is a projection jump, not speed
MOVE_TAU_S = 60.0  # the moving speed follows the last minute or so
AVG_TAU_S = 3600.0  # the overall speed follows the last hour (one slow trip must not sink the next)
_NEAR_M = 2500.0  # within this, remaining time leans on the moving speed
_MIN_AVG_WEIGHT = 0.2  # ... but never wholly: some stops are still to come
SMOOTH_TAU_S = 8.0  # displayed ETA follows the raw one with this time constant
_MIN_AHEAD_M = 60.0  # the projection window reaches at least this far past the last progress
_FIRST_WINDOW_M = 300.0  # a leg's first fix is looked for this far from the start
_ARRIVAL_REMAINING_M = 150.0  # "arrived" needs the route nearly done, not just the door nearby


@dataclass(frozen=True, slots=True)
class Prior:
    """What a vehicle does before we have seen it move: moving speed and overall (with stops)."""

    moving_mps: float
    overall_mps: float


PRIORS: dict[str, Prior] = {
    "car": Prior(10.0, 7.0),
    "motorbike": Prior(11.0, 8.0),
    "van": Prior(9.0, 6.5),
    "bicycle": Prior(5.0, 4.2),
    "foot": Prior(1.4, 1.2),
}


class DriverSpeed(msgspec.Struct):
    """A driver's learned speeds (m/s; None until observed) and its open measuring window."""

    moving: float | None = None
    overall: float | None = None
    win_ts: int = 0  # fix time the window opened
    win_progress: float = 0.0  # metres of progress inside the window


class LegState(msgspec.Struct):
    """One order's progress and event memory (persisted in the order's hash as JSON)."""

    along_m: float = 0.0
    ts: int = 0  # fix time of the last update
    remaining_m: float = 0.0
    raw_eta_at: int = 0
    eta_at: int = 0  # displayed (smoothed)
    off_route: bool = False
    streak: int = 0  # consecutive fixes disagreeing with `off_route`
    arriving: bool = False
    arrived: bool = False
    delayed: bool = False
    near_since: int = 0  # fix time since which the driver has been within the arrival radius
    measured: str = ""  # how `remaining_m` was last measured: "route", "straight" or "" (queued / none)
    pub_eta_at: int = 0  # last ETA sent to a queued stop's customer
    pub_ts: int = 0
    route_v: int = 0  # the version of the order's route `along_m` is measured on (a new route restarts it)
    piece: int = -1  # the route piece the driver is on, when its entry was seen (fleet speeds: streetpace.py)
    piece_ts: int = 0  # ... and the time it entered it


@dataclass(frozen=True, slots=True)
class FixIn:
    """The parts of a fix the model uses."""

    lat: float
    lon: float
    ts: int
    speed: float | None = None
    accuracy: float | None = None


class EtaModel:
    """Pure functions of (state, fix) -> (state, events); no I/O, so every rule is unit-testable."""

    def __init__(self, settings: Settings) -> None:
        self.t = settings  # thresholds: LIVEMAP_DETOUR_FACTOR, LIVEMAP_ARRIVING_M, ...

    def travel_s(self, remaining_m: float, speed: DriverSpeed, prior: Prior) -> float:
        """Seconds to cover `remaining_m` at this driver's speeds."""
        moving = max(_or(speed.moving, prior.moving_mps), self.t.speed_floor_mps)
        overall = max(_or(speed.overall, prior.overall_mps), self.t.speed_floor_mps)
        w = min(max(remaining_m / _NEAR_M, _MIN_AVG_WEIGHT), 1.0)
        return remaining_m * ((1 - w) / moving + w / overall)

    def _left_s(
        self, remaining_m: float, along: float | None, known: KnownAhead | None, speed: DriverSpeed, prior: Prior
    ) -> float:
        """Seconds left: the fleet's time on the streets ahead it knows, the driver's speeds on the rest."""
        if known is None or along is None or remaining_m <= 0:
            return self.travel_s(remaining_m, speed, prior)
        known_m, known_s = known.ahead(along)
        known_m = min(known_m, remaining_m)
        return self.travel_s(remaining_m, speed, prior) * (1 - known_m / remaining_m) + known_s

    def measure(self, speed: DriverSpeed, progress_m: float, ts: int, prior: Prior) -> DriverSpeed:
        """Fold `progress_m` made up to fix time `ts` into the driver's speeds."""
        if not speed.win_ts:
            return DriverSpeed(speed.moving, speed.overall, ts, 0.0)
        progress = speed.win_progress + max(progress_m, 0.0)
        if ts <= speed.win_ts:
            return DriverSpeed(speed.moving, speed.overall, speed.win_ts, progress)
        span = (ts - speed.win_ts) / 1000
        if span < WINDOW_S:
            return DriverSpeed(speed.moving, speed.overall, speed.win_ts, progress)
        v = min(progress / span, _MAX_BELIEVED_MPS)
        # Both start from the vehicle's prior: one window (maybe a red light) must not replace it.
        overall = _ewma(_or(speed.overall, prior.overall_mps), v, span, AVG_TAU_S)
        moving = _ewma(_or(speed.moving, prior.moving_mps), v, span, MOVE_TAU_S) if v >= _MOVING_MPS else speed.moving
        return DriverSpeed(moving, overall, ts, 0.0)

    def step(
        self,
        leg: LegState,
        route: Route,
        fix: FixIn,
        speed: DriverSpeed,
        prior: Prior,
        promised_by: int | None,
        known: KnownAhead | None = None,
    ) -> tuple[LegState, float, list[LegEvent]]:
        """Advance the active leg by one fix: new state, metres of progress, events to send.

        `known`: the fleet's fresh paces on the route's streets; those metres take the fleet's time."""
        accuracy = min(fix.accuracy or 0.0, 100.0)
        threshold = max(self.t.off_route_m, 2 * accuracy)
        along, off = self._locate(leg, route, fix, speed, prior, threshold)
        off_route, streak, turned = self._off_route(leg, off <= threshold, off, fix.ts)
        following = off <= threshold and not off_route
        along, remaining, measured, progress = self._track(leg, route, fix, along, following)
        left_s = self._left_s(remaining, along if measured == "route" else None, known, speed, prior)
        raw = fix.ts + round(left_s * 1000)
        shown = _smoothed_eta(leg, fix.ts, raw)
        arriving, arriving_event = self._arriving(leg, remaining, shown, fix.ts)
        arrived, near_since, arrived_event = self._arrived(leg, route, fix, remaining, accuracy)
        if arrived:
            remaining, raw, shown = 0.0, fix.ts, fix.ts
        delayed, delay_events = self._delay(leg.delayed, shown, promised_by, fix.ts)
        events: list[LegEvent] = [e for e in (turned, arriving_event, arrived_event) if e is not None]
        state = LegState(
            along_m=along,
            ts=fix.ts,
            remaining_m=remaining,
            raw_eta_at=raw,
            eta_at=shown,
            off_route=off_route,
            streak=streak,
            arriving=arriving,
            arrived=arrived,
            delayed=delayed,
            near_since=near_since,
            measured=measured,
            pub_eta_at=leg.pub_eta_at,
            pub_ts=leg.pub_ts,
        )
        return state, progress, events + delay_events

    def _locate(
        self, leg: LegState, route: Route, fix: FixIn, speed: DriverSpeed, prior: Prior, threshold: float
    ) -> tuple[float, float]:
        """Where along the route the fix is (metres from the start) and how far off it (metres)."""
        if leg.ts:
            # Look ahead about twice as far as the driver can have gone: far enough for GPS gaps,
            # short enough not to reach the way back of a U-turn (a longer jump is caught below).
            gap_s = max((fix.ts - leg.ts) / 1000, 1.0)
            ahead = max(_MIN_AHEAD_M, _or(speed.moving, prior.moving_mps) * gap_s * 2 + 20.0)
        else:
            ahead = _FIRST_WINDOW_M  # a first fix belongs near the start (or re-joins below)
        along, off = route.locate_near(fix.lat, fix.lon, leg.along_m - 30.0, leg.along_m + ahead)
        if off > threshold:
            # Left the window: maybe a shortcut re-joined the route further on (never backwards).
            g_along, g_off = route.locate(fix.lat, fix.lon)
            if g_off <= threshold and g_along > leg.along_m:
                along, off = g_along, g_off
        return along, off

    def _off_route(self, leg: LegState, on_route: bool, off: float, ts: int) -> tuple[bool, int, OffRouteEvent | None]:
        """Whether the driver is off the route, the streak of fixes disagreeing with that, and the
        event when this fix completes a streak (a single stray fix does not flip it)."""
        streak = leg.streak + 1 if on_route == leg.off_route else 0
        if streak < self.t.off_route_fixes:
            return leg.off_route, streak, None
        off_route = not leg.off_route
        return off_route, 0, OffRouteEvent(distance_m=round(off), resolved=not off_route, ts=ts)

    def _track(
        self, leg: LegState, route: Route, fix: FixIn, along: float, following: bool
    ) -> tuple[float, float, str, float]:
        """Progress and remaining distance: (along, remaining, how it was measured, metres of progress)."""
        if following:
            # GPS noise can project a fix slightly behind the last one; a delivery does not drive
            # backwards along its route, so progress only ever grows.
            along = max(along, leg.along_m)
            remaining = route.length_m - along
            measured = "route"
        else:
            along = leg.along_m
            remaining = route.straight_m(fix.lat, fix.lon) * self.t.detour_factor
            measured = "straight"
        # Progress counts only between two fixes measured the same way: switching between along
        # the route and straight x detour (or from a queued stop's chained distance) is not driving.
        progress = 0.0
        if leg.measured == measured == "route":
            progress = along - leg.along_m
        elif leg.measured == measured == "straight":
            progress = max(leg.remaining_m - remaining, 0.0)
        return along, remaining, measured, progress

    def _arriving(self, leg: LegState, remaining: float, shown: int, ts: int) -> tuple[bool, ArrivingEvent | None]:
        """`arriving` once close in distance or time, and the event when it starts."""
        t = self.t
        left_s = (shown - ts) / 1000
        if not leg.arriving and (remaining <= t.arriving_m or left_s <= t.arriving_s):
            return True, ArrivingEvent(ts=ts, remaining_m=round(remaining), eta_at=shown)
        if leg.arriving and not leg.arrived and remaining > 2 * t.arriving_m and left_s > 2 * t.arriving_s:
            return False, None  # hysteresis: re-armed only once clearly away again
        return leg.arriving, None

    def _arrived(
        self, leg: LegState, route: Route, fix: FixIn, remaining: float, accuracy: float
    ) -> tuple[bool, int, ArrivedEvent | None]:
        """`arrived`, the fix time since which the driver has been near, and the event when it arrives."""
        t = self.t
        # Arrived: stopped (or still there a fix later) near the door *and* near the end of the
        # trip, so passing close by on the way out of a loop does not count.
        near = route.straight_m(fix.lat, fix.lon) <= t.arrived_m + min(accuracy, 30.0)
        near = near and remaining <= max(3 * t.arrived_m, _ARRIVAL_REMAINING_M)
        near_since = (leg.near_since or fix.ts) if near else 0
        stopped = fix.speed is not None and fix.speed < _MOVING_MPS
        if near and not leg.arrived and (stopped or near_since < fix.ts):
            return True, near_since, ArrivedEvent(ts=fix.ts, lat=fix.lat, lon=fix.lon)
        return leg.arrived, near_since, None

    def queued(
        self, leg: LegState, eta_at: int, remaining_m: float, promised_by: int | None, ts: int
    ) -> tuple[LegState, list[LegEvent]]:
        """A stop later in the driver's run: its ETA comes from the stops before it."""
        events: list[LegEvent] = []
        if abs(eta_at - leg.pub_eta_at) > 60_000 or ts - leg.pub_ts >= 60_000:
            events.append(EtaEvent(eta_at=eta_at, remaining_m=round(remaining_m), ts=ts))
            pub_eta_at, pub_ts = eta_at, ts
        else:
            pub_eta_at, pub_ts = leg.pub_eta_at, leg.pub_ts
        delayed, delay_events = self._delay(leg.delayed, eta_at, promised_by, ts)
        state = msgspec.structs.replace(
            leg,
            ts=ts,
            eta_at=eta_at,
            raw_eta_at=eta_at,
            remaining_m=remaining_m,
            delayed=delayed,
            pub_eta_at=pub_eta_at,
            pub_ts=pub_ts,
            measured="",
        )
        return state, events + delay_events

    def _delay(self, delayed: bool, eta_at: int, promised_by: int | None, ts: int) -> tuple[bool, list[LegEvent]]:
        """`delayed` once when the ETA passes the promise, and once more if it comes back."""
        if promised_by is None:
            return delayed, []
        grace = self.t.delay_grace_s * 1000
        if not delayed and eta_at > promised_by + grace:
            return True, [DelayedEvent(eta_at=eta_at, promised_by=promised_by, resolved=False, ts=ts)]
        if delayed and eta_at < promised_by - grace:
            return False, [DelayedEvent(eta_at=eta_at, promised_by=promised_by, resolved=True, ts=ts)]
        return delayed, []


def _smoothed_eta(leg: LegState, ts: int, raw: int) -> int:
    """The displayed ETA at fix time `ts`: it follows the `raw` one with time constant SMOOTH_TAU_S,
    so one fix's jump does not make the customer's clock jump; never before the fix."""
    shown = raw
    if leg.eta_at and ts > leg.ts:
        alpha = 1 - math.exp(-(ts - leg.ts) / 1000 / SMOOTH_TAU_S)
        shown = round(leg.eta_at + alpha * (raw - leg.eta_at))
    return max(shown, ts)


def _or(learned: float | None, prior: float) -> float:
    # `is None`, not falsiness: a learned speed that decayed to 0.0 is still an observation.
    return prior if learned is None else learned


def _ewma(current: float, value: float, span_s: float, tau_s: float) -> float:
    """Time-weighted EWMA: a window of `span_s` counts as much as its share of `tau_s`."""
    alpha = 1 - math.exp(-span_s / tau_s)
    return current + alpha * (value - current)
