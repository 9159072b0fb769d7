"""The hot path: a driver's fixes -> ETA model -> per-slot scripts (driver, store, geo cell, orders), one round trip.

A driver carries an ordered run of stops. The first live stop is the *active leg*: only its
customer gets the driver's position. The stops after it get ETAs chained from it (remaining
distance of the active leg, then each leg between destinations, plus a dwell time per stop).

Storing a message touches several Redis Cluster slots, so it is one script per slot (see
`livemap/storage/lua/*_fix.lua`), each applying the same rule on its own: a fix counts only when it
is newer than what that key already has. On one Redis they go as one EVALSHA of the script bundle
(one round trip, atomic; see `livemap.storage.db`); on a Cluster as one cluster pipeline. A
notifiable event's outbox entry goes first (on a Cluster, one round trip before); with sharded
pub/sub the dispatchers' copies of order events are published after their order's script (one more
round trip, only for messages that carry such events).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

import msgspec
from geopy.distance import geodesic

from livemap import metrics
from livemap.domain.clock import now_ms
from livemap.domain.eta import PRIORS, DriverSpeed, EtaModel, FixIn, LegEvent, LegState, Prior
from livemap.domain.events import (
    ArrivingEvent,
    DelayedEvent,
    DriverLocationEvent,
    LocationEvent,
    OffRouteEvent,
    merge_json,
)
from livemap.domain.geometry import Route, cumulative_lengths
from livemap.domain.messages import Fix
from livemap.domain.records import Order
from livemap.domain.streetpace import KnownAhead, RoadPieces
from livemap.storage.db import STEPS, Batch
from livemap.storage.keys import Keys, cell_of
from livemap.storage.repository import Repository
from livemap.tracking.fleet import FleetSpeeds
from livemap.tracking.legroutes import LegRoutes, Reason

_encode = msgspec.json.Encoder().encode
_leg_decoder = msgspec.json.Decoder(LegState)
_speed_decoder = msgspec.json.Decoder(DriverSpeed)
_pieces_decoder = msgspec.json.Decoder(RoadPieces)
#: Events that reach the notification outbox (the notifications worker turns them into messages).
_NOTIFY = (ArrivingEvent, DelayedEvent)
_DRIVER_FIX, _STORE_FIX, _GEO_FIX = STEPS["driver_fix"], STEPS["store_fix"], STEPS["geo_fix"]
_ORDER_FIX = STEPS["order_fix"]
#: One item of a stop's events: (fix ts, kind "L" | "E", customer json, dispatcher json, notifiable).
_Item = tuple[int, str, bytes, bytes, bool]


class OrderFixArgs(NamedTuple):
    """The ARGV of order_fix.lua, in its order (the script's header names them the same way)."""

    driver_id: str
    publish_command: str
    order_channel: str
    #: '' = the script returns the dispatchers' copies instead of publishing them (sharded pub/sub
    #: cannot reach the store's slot from the order's).
    store_channel: str
    stream_maxlen: int
    newest_ts: int
    active: int  # 1 for the driver's active leg, 0 for a queued stop
    leg_state: bytes  # LegState json
    eta_at: int
    remaining_m: int
    #: A route built here (the straight line from the first live fix, for an order without one), to be
    #: stored with the order, and its cumulative lengths; '' = none.
    route: bytes | str
    route_cum: bytes | str
    #: Per item: fix ts, kind ("L" location | "E" event), customer json, dispatcher json ('' for a
    #: location), notice token ('' = not notifiable).
    items: list[tuple[int, str, bytes, bytes, str]]

    def argv(self) -> list[str | int | bytes]:
        """The fields in order, then the items flattened: 12 + 5 per item."""
        args: list[str | int | bytes] = list(self[:-1])
        for item in self.items:
            args += item
        return args


def _latlon(value: list[float] | None) -> tuple[float, float] | None:
    return (value[0], value[1]) if value else None


def _num(value: float | None) -> str:
    return "" if value is None else repr(value)


@dataclass(slots=True)
class Stop:
    """One of the driver's live orders, as its session sees it."""

    tracking_id: str
    order_id: str
    destination: tuple[float, float]
    route: Route | None
    promised_by: int | None
    state: LegState
    #: The order's keys its script touches (hash, events, notices) and its channel, named once.
    keys: tuple[str, str, str]
    channel: str
    leg_m: float = 0.0  # metres from the previous stop's destination (queued stops)
    route_is_new: bool = False  # built here from the first fix: to be stored with the order
    routed: bool = False  # the route is on the streets (the store's or the router's): no road route to ask for
    pieces: RoadPieces | None = None  # the router's street segments under the route (fleet speeds)
    known: KnownAhead | None = None  # the fleet's fresh paces on them, as of refresh `known_gen`
    known_gen: int = -1


class RouteCache:
    """Routes by tracking id and version: built once per process (the projection frame), shared by sessions."""

    def __init__(self, size: int = 4096) -> None:
        self._routes: OrderedDict[tuple[str, int], tuple[Route, RoadPieces | None]] = OrderedDict()
        self._size = size

    def get(self, order: Order) -> tuple[Route | None, RoadPieces | None]:
        """The order's route, and the router's street segments under it when it named them."""
        key = (order.tracking_id, order.route_version)
        cached = self._routes.get(key)
        if cached is None:
            points, cum = order.json_field("route"), order.json_field("cum")
            if not points:
                return None, None
            route = Route([(p[0], p[1]) for p in points], cum)
            pieces = _pieces_decoder.decode(order["segs"]) if order["segs"] else None
            if pieces is not None and len(pieces.ids) != len(route.points) - 1:
                pieces = None  # not this route's (cannot happen with order_route.lua; never misread)
            cached = self._routes[key] = route, pieces
            if len(self._routes) > self._size:
                self._routes.popitem(last=False)
        else:
            self._routes.move_to_end(key)
        return cached


class Positions:
    """Process-wide ingest service; one `DriverSession` per connected driver socket."""

    def __init__(self, store: Repository, model: EtaModel, legs: LegRoutes, fleet: FleetSpeeds) -> None:
        self.store = store
        self.model = model
        self.routes = RouteCache()
        self.legs = legs
        self.fleet = fleet

    def session(self, store_id: str, driver_id: str) -> DriverSession:
        return DriverSession(self, store_id, driver_id)


class DriverSession:
    """What one driver's connection knows: its stops, speeds and newest fix time (a cache of Redis)."""

    def __init__(self, positions: Positions, store_id: str, driver_id: str) -> None:
        self._p = positions
        self._keys: Keys = positions.store.keys
        self.store_id, self.driver_id = store_id, driver_id
        self._stops: list[Stop] = []
        self._speed = DriverSpeed()
        self._prior: Prior = PRIORS["car"]
        self._last_ts = 0
        self._cell = ""  # the geo cell of the newest fix this session stored
        # Key names the hot path writes on every fix, named once per connection.
        self._driver_key = self._keys.driver(store_id, driver_id)
        self._store_keys = [self._keys.store_seen(store_id), self._keys.store_lastfix(store_id)]
        self._store_channel = self._keys.store_channel(store_id)

    async def load(self) -> list[Order]:
        """(Re)read the driver and its orders; returns all its orders in run order (its stops)."""
        store, k = self._p.store, self._keys
        async with store.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self._driver_key, ["ts", "speedmodel", "vehicle", "cell", "lat", "lon"])
            pipe.zrange(k.driver_orders(self.store_id, self.driver_id), 0, -1)
            (last_ts, speed, vehicle, cell, lat, lon), tids = await pipe.execute()
        self._last_ts = int(last_ts or 0)
        self._cell = cell.decode() if cell else ""
        self._speed = _speed_decoder.decode(speed) if speed else DriverSpeed()
        self._prior = PRIORS.get((vehicle or b"car").decode(), PRIORS["car"])
        orders = await store.orders([t.decode() for t in tids])
        # An order imported without a destination (address not geocoded) has no leg to follow: no ETA.
        live = [o for o in orders if o.live and o.driver == self.driver_id and o["destination"]]
        stops = [self._stop(order) for order in live]
        # Legs between consecutive destinations: by road once the router told (lengths only), else
        # geodesic times the detour factor; once per reload, never per fix.
        detour = self._p.model.t.detour_factor
        legs = await asyncio.to_thread(
            lambda: [geodesic(a.destination, b.destination).meters * detour for a, b in itertools.pairwise(stops)]
        )
        for previous, stop, straight_m in zip(stops[:-1], stops[1:], legs, strict=True):
            road_m = self._p.legs.chain_length(self.store_id, self.driver_id, previous.destination, stop.destination)
            stop.leg_m = straight_m if road_m is None else road_m
        self._stops = stops
        if stops and not stops[0].routed:
            # The leg just went live (or is still on its straight line): a road route from the driver's
            # newest position, else from the order's origin; without either, the first fix asks.
            start = (float(lat), float(lon)) if lat and lon else _latlon(live[0].json_field("origin"))
            if start is not None:
                self._ask_route(stops[0], start, "live")
        return orders

    def _stop(self, order: Order) -> Stop:
        k, tid = self._keys, order.tracking_id
        dest = order.json_field("destination")
        state = _leg_decoder.decode(order["leg"]) if order["leg"] else LegState()
        if state.route_v != order.route_version:  # a new route: the leg's progress starts again on it
            state = msgspec.structs.replace(
                state, along_m=0.0, off_route=False, streak=0, route_v=order.route_version, piece=-1
            )
        route, pieces = self._p.routes.get(order)
        return Stop(
            tid,
            order["id"],
            (dest[0], dest[1]),
            route,
            # The delivery's promise is not the pickup's: a return leg has none to be late against.
            None if order.on_return_leg else order.optional_int("promised_by"),
            state,
            (k.order(tid), k.order_events(tid), k.order_notices(tid)),
            k.order_channel(tid),
            routed=order.route_source != "straight_line",
            pieces=pieces,
        )

    def _ask_route(self, stop: Stop, start: tuple[float, float], reason: Reason) -> None:
        legs = self._p.legs
        legs.request(self.store_id, self.driver_id, stop.order_id, stop.tracking_id, start, stop.destination, reason)

    def _fix_items(self, fix: Fix, now: int) -> list[list[tuple[str, bytes, bytes, bool]]]:
        """Advance every stop by one (newer) fix; per stop: (kind, customer json, dispatcher json, notify)."""
        model, speed, prior = self._p.model, self._speed, self._prior
        items: list[list[tuple[str, bytes, bytes, bool]]] = [[] for _ in self._stops]
        if not self._stops:
            return items
        active = self._stops[0]
        if active.route is None:
            # No route and no origin: the route is the straight line from the first live fix.
            points = [(fix.lat, fix.lon), active.destination]
            active.route = Route(points, cumulative_lengths(points))
            active.route_is_new = True
        if not active.routed:
            self._ask_route(active, (fix.lat, fix.lon), "live")
        f = FixIn(fix.lat, fix.lon, fix.ts, fix.speed, fix.accuracy)
        fleet = self._p.fleet
        state, progress, events = model.step(
            active.state, active.route, f, speed, prior, active.promised_by, fleet.known(active)
        )
        active.state = state = fleet.follow(active, active.state, state)
        self._speed = model.measure(speed, progress, fix.ts, prior)
        location = LocationEvent(
            fix.lat,
            fix.lon,
            fix.speed,
            fix.heading,
            fix.accuracy,
            fix.ts,
            max(0, round((state.eta_at - now) / 1000)),
            state.eta_at,
            round(state.remaining_m),
        )
        items[0].append(("L", _encode(location), b"", False))
        items[0] += [self._event(active, e) for e in events]
        if any(isinstance(e, OffRouteEvent) and not e.resolved for e in events):
            self._ask_route(active, (fix.lat, fix.lon), "off_route")  # a new route from where the driver is
        # Queued stops: after the active one, each leg between destinations plus a dwell per stop.
        eta_at, remaining = state.eta_at, state.remaining_m
        for i, stop in enumerate(self._stops[1:], start=1):
            remaining += stop.leg_m
            eta_at += round((model.t.dwell_s + model.travel_s(stop.leg_m, self._speed, prior)) * 1000)
            stop.state, queued_events = model.queued(stop.state, eta_at, remaining, stop.promised_by, fix.ts)
            items[i] += [self._event(stop, e) for e in queued_events]
        return items

    def _event(self, stop: Stop, event: LegEvent) -> tuple[str, bytes, bytes, bool]:
        body = _encode(event)
        ids = _encode({"order_id": stop.order_id, "tracking_id": stop.tracking_id, "driver_id": self.driver_id})
        return "E", body, merge_json(ids, body), isinstance(event, _NOTIFY)

    async def ingest(self, fixes: list[Fix]) -> tuple[int, int]:
        """Store `fixes` (already validated) in one round trip; returns (accepted, ignored)."""
        store, db = self._p.store, self._p.store.db
        now = now_ms()
        newer, per_stop = self._advance(fixes, now)
        last = newer[-1].ts if newer else self._last_ts
        # A notifiable event's outbox entry is written first and names a token its event carries: the
        # worker sends it only once the order's script stored that event (see notify.outbox).
        tokens = [[store.new_notice() if item[4] else "" for item in items] for items in per_stop]
        cell = cell_of(newer[-1].lat, newer[-1].lon) if newer else ""

        def announce(b: Batch) -> None:
            for stop, items, stop_tokens in zip(self._stops, per_stop, tokens, strict=True):
                for item, token in zip(items, stop_tokens, strict=True):
                    if token:
                        store.announce(b, self.store_id, stop.tracking_id, item[3], token)

        def write(b: Batch) -> None:
            self._queue_driver_fix(b, fixes, now)  # first: its reply is the ack
            if newer:
                self._queue_store_and_geo_fix(b, newer, now, cell)
                self._queue_order_fixes(b, newer[-1].ts, per_stop, tokens)

        n_notices = sum(1 for stop_tokens in tokens for token in stop_tokens if token)
        with metrics.REDIS_SECONDS.time():
            replies = await db.run(announce, write)
        accepted, ignored = (int(x) for x in replies[n_notices])
        metrics.FIXES_ACCEPTED.inc(accepted)
        metrics.FIXES_IGNORED.inc(ignored)
        self._last_ts = max(self._last_ts, last)
        if newer:
            self._cell = cell
            if db.sharded:  # the order scripts returned the dispatchers' copies of their events
                copies = [copy for reply in replies[len(replies) - len(self._stops) :] for copy in reply]
                if copies:
                    await store.publish_all(self._store_channel, copies)
        return accepted, ignored

    def _advance(self, fixes: list[Fix], now: int) -> tuple[list[Fix], list[list[_Item]]]:
        """Run the stops' ETA model over the fixes newer than the newest one stored; returns those
        fixes and each stop's items."""
        per_stop: list[list[_Item]] = [[] for _ in self._stops]
        newer: list[Fix] = []
        last = self._last_ts
        for fix in fixes:
            if fix.ts <= last:  # mirror the scripts' acceptance so the model sees only newer fixes
                continue
            last = fix.ts
            newer.append(fix)
            for bucket, fix_items in zip(per_stop, self._fix_items(fix, now), strict=True):
                bucket += [(fix.ts, *item) for item in fix_items]
        return newer, per_stop

    def _queue_driver_fix(self, b: Batch, fixes: list[Fix], now: int) -> None:
        """Queue the driver hash's step, with every fix: the script decides which are newer."""
        driver_args: list[str | int | bytes] = [len(fixes), now, _encode(self._speed)]
        for f in fixes:
            driver_args += [f.ts, cell_of(f.lat, f.lon), repr(f.lon), repr(f.lat)]
            driver_args += [_num(f.speed), _num(f.heading), _num(f.accuracy), _num(f.battery)]
        b.script(_DRIVER_FIX, [self._driver_key], driver_args)

    def _queue_store_and_geo_fix(self, b: Batch, newer: list[Fix], now: int, cell: str) -> None:
        """Queue the store's step (its indexes, the dispatchers' copies) and the geo cells' (leave the
        previous cell, enter the newest fix's)."""
        k, sid, did = self._keys, self.store_id, self.driver_id
        newest = newer[-1]
        store_args: list[str | int | bytes] = [did, now, b.publish_command, self._store_channel]
        for f in newer:
            moved = DriverLocationEvent(did, f.lat, f.lon, f.speed, f.heading, f.accuracy, f.battery, f.ts)
            store_args += [f.ts, _encode(moved)]
        b.script(_STORE_FIX, self._store_keys, store_args)
        if self._cell and self._cell != cell:
            b.script(_GEO_FIX, [k.geo(sid, self._cell), k.geo_times(sid, self._cell)], [did, newest.ts, "", ""])
        geo_args: list[str | int] = [did, newest.ts, repr(newest.lon), repr(newest.lat)]
        b.script(_GEO_FIX, [k.geo(sid, cell), k.geo_times(sid, cell)], geo_args)

    def _queue_order_fixes(
        self, b: Batch, newest_ts: int, per_stop: list[list[_Item]], tokens: list[list[str]]
    ) -> None:
        """Queue one step per stop: its order's state and events."""
        schan = "" if self._p.store.db.sharded else self._store_channel
        for n, (stop, items, stop_tokens) in enumerate(zip(self._stops, per_stop, tokens, strict=True)):
            args = self._order_fix_args(b, stop, n == 0, newest_ts, schan, items, stop_tokens)
            b.script(_ORDER_FIX, stop.keys, args.argv())

    def _order_fix_args(
        self, b: Batch, stop: Stop, active: bool, newest_ts: int, schan: str, items: list[_Item], tokens: list[str]
    ) -> OrderFixArgs:
        """The order step's arguments for `stop`; a route built here goes once (the order keeps it)."""
        state, route = stop.state, stop.route
        route_json: bytes | str = ""
        cum_json: bytes | str = ""
        if route is not None and stop.route_is_new:
            route_json, cum_json = _encode(route.points), _encode(route.cum.tolist())
            stop.route_is_new = False
        return OrderFixArgs(
            driver_id=self.driver_id,
            publish_command=b.publish_command,
            order_channel=stop.channel,
            store_channel=schan,
            stream_maxlen=self._p.store.stream_maxlen,
            newest_ts=newest_ts,
            active=int(active),
            leg_state=_encode(state),
            eta_at=state.eta_at,
            remaining_m=round(state.remaining_m),
            route=route_json,
            route_cum=cum_json,
            items=[
                (ts, kind, body, dispatch, token)
                for (ts, kind, body, dispatch, _), token in zip(items, tokens, strict=True)
            ],
        )
