"""The hot path: a driver's fixes -> ETA model -> one atomic Redis script (store, index, streams, publish).

A driver carries an ordered run of stops. The first live stop is the *active leg*: only its
customer gets the driver's position. The stops after it get ETAs chained from it (remaining
distance of the active leg, then each leg between destinations, plus a dwell time per stop).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import OrderedDict
from dataclasses import dataclass

import msgspec
from geopy.distance import geodesic

from livemap.batcher import ScriptBatcher
from livemap.eta import PRIORS, DriverSpeed, EtaModel, FixIn, LegEvent, LegState, Prior
from livemap.keys import Keys, cell_of
from livemap.messages import ArrivingEvent, DelayedEvent, DriverLocationEvent, Fix, LocationEvent, merge_json
from livemap.routes import Route, cumulative_lengths
from livemap.store import Order, Store, load_script

_encode = msgspec.json.Encoder().encode
_leg_decoder = msgspec.json.Decoder(LegState)
_speed_decoder = msgspec.json.Decoder(DriverSpeed)
#: Events that reach the notification outbox (the notifications worker turns them into messages).
_NOTIFY = (ArrivingEvent, DelayedEvent)


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
    leg_m: float = 0.0  # metres from the previous stop's destination (queued stops)
    route_is_new: bool = False  # built here from the first fix: to be stored with the order


class RouteCache:
    """Routes by tracking id: built once per process (the projection frame), shared by sessions."""

    def __init__(self, size: int = 4096) -> None:
        self._routes: OrderedDict[str, Route] = OrderedDict()
        self._size = size

    def get(self, order: Order) -> Route | None:
        route = self._routes.get(order.tracking_id)
        if route is None:
            points, cum = order.json_field("route"), order.json_field("cum")
            if not points:
                return None
            route = Route([(p[0], p[1]) for p in points], cum)
            self._routes[order.tracking_id] = route
            if len(self._routes) > self._size:
                self._routes.popitem(last=False)
        else:
            self._routes.move_to_end(order.tracking_id)
        return route


class Positions:
    """Process-wide ingest service; one `DriverSession` per connected driver socket."""

    def __init__(self, store: Store, model: EtaModel) -> None:
        self.store = store
        self.model = model
        self.routes = RouteCache()
        self._ingest = load_script(store.redis, "ingest")
        self.batcher = ScriptBatcher(store.redis)

    async def aclose(self) -> None:
        """Answer the ingests still in flight before the Redis client closes."""
        await self.batcher.aclose()

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

    async def load(self) -> list[Order]:
        """(Re)read the driver and its orders; returns all its orders in run order (its stops)."""
        store, k = self._p.store, self._keys
        async with store.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(k.driver(self.store_id, self.driver_id), ["ts", "speedmodel", "vehicle"])
            pipe.zrange(k.driver_orders(self.store_id, self.driver_id), 0, -1)
            (last_ts, speed, vehicle), tids = await pipe.execute()
        self._last_ts = int(last_ts or 0)
        self._speed = _speed_decoder.decode(speed) if speed else DriverSpeed()
        self._prior = PRIORS.get((vehicle or b"car").decode(), PRIORS["car"])
        orders = await store.orders([t.decode() for t in tids])
        stops = []
        for order in orders:
            # An order imported without a destination (address not geocoded) has no leg to follow: no ETA.
            if order.live and order.driver == self.driver_id and order["destination"]:
                dest = order.json_field("destination")
                state = _leg_decoder.decode(order["leg"]) if order["leg"] else LegState()
                stops.append(
                    Stop(
                        order.tracking_id,
                        order["id"],
                        (dest[0], dest[1]),
                        self._p.routes.get(order),
                        order.optional_int("promised_by"),
                        state,
                    )
                )
        # Legs between consecutive destinations: geodesic once per reload, never per fix.
        detour = self._p.model.t.detour_factor
        legs = await asyncio.to_thread(
            lambda: [geodesic(a.destination, b.destination).meters * detour for a, b in itertools.pairwise(stops)]
        )
        for stop, leg_m in zip(stops[1:], legs, strict=True):
            stop.leg_m = leg_m
        self._stops = stops
        return orders

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
        f = FixIn(fix.lat, fix.lon, fix.ts, fix.speed, fix.accuracy)
        state, progress, events = model.step(active.state, active.route, f, speed, prior, active.promised_by)
        active.state = state
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
        store, k = self._p.store, self._keys
        now = int(time.time() * 1000)
        per_stop: list[list[tuple[int, str, bytes, bytes, bool]]] = [[] for _ in self._stops]
        last = self._last_ts
        for index, fix in enumerate(fixes):
            if fix.ts <= last:  # mirror the script's acceptance so the model sees only newer fixes
                continue
            last = fix.ts
            for bucket, fix_items in zip(per_stop, self._fix_items(fix, now), strict=True):
                bucket += [(index, *item) for item in fix_items]
        args: list[str | int | bytes] = [
            len(fixes),
            len(self._stops),
            store.stream_maxlen,
            self.driver_id,
            k.store_channel(self.store_id),
            k.geo_prefix(self.store_id),
            now,
            _encode(self._speed),
            k.outbox(),
            self.store_id,
        ]
        for f in fixes:
            moved = DriverLocationEvent(self.driver_id, f.lat, f.lon, f.speed, f.heading, f.accuracy, f.battery, f.ts)
            args += [
                f.ts,
                cell_of(f.lat, f.lon),
                repr(f.lon),
                repr(f.lat),
                _num(f.speed),
                _num(f.heading),
                _num(f.accuracy),
                _num(f.battery),
                _encode(moved),
            ]
        keys = [k.driver(self.store_id, self.driver_id), k.store_seen(self.store_id), k.last_fix()]
        for n, (stop, stop_items) in enumerate(zip(self._stops, per_stop, strict=True)):
            keys += [k.order(stop.tracking_id), k.order_events(stop.tracking_id)]
            state = stop.state
            args += [
                k.order_channel(stop.tracking_id),
                stop.tracking_id,
                int(n == 0),
                _encode(state),
                state.eta_at,
                round(state.remaining_m),
                len(stop_items),
            ]
            for index, kind, body, dispatch, notify in stop_items:
                args += [index, kind, body, dispatch, int(notify)]
        new_routes = [s for s in self._stops if s.route is not None and s.route_is_new]
        if new_routes:
            async with store.redis.pipeline(transaction=False) as pipe:
                for stop in new_routes:
                    assert stop.route is not None
                    okey = k.order(stop.tracking_id)
                    pipe.hsetnx(okey, "route", _encode(stop.route.points))
                    pipe.hsetnx(okey, "cum", _encode(stop.route.cum.tolist()))
                    stop.route_is_new = False
                await self._p._ingest(keys=keys, args=args, client=pipe)
                result = (await pipe.execute())[-1]
        else:
            # The usual case: one EVALSHA, sharing its round trip with the other drivers' pings.
            result = await self._p.batcher.call(self._p._ingest, keys, args)
        accepted, ignored = (int(x) for x in result)
        self._last_ts = max(self._last_ts, last)
        return accepted, ignored
