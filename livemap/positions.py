"""The hot path: a driver's fixes -> ETA -> one atomic Redis script (store, index, stream, publish)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

import msgspec

from livemap.eta import EtaState, SpeedModel
from livemap.keys import Keys, cell_of
from livemap.messages import DriverLocationEvent, Fix, LocationEvent
from livemap.routes import Route, cumulative_lengths
from livemap.store import Order, Store, load_script

_encode = msgspec.json.Encoder().encode


def _num(value: float | None) -> str:
    return "" if value is None else repr(value)


@dataclass(slots=True)
class _Leg:
    """One live order a driver carries, as its session sees it."""

    tracking_id: str
    destination: tuple[float, float]
    route: Route | None
    eta: EtaState


class RouteCache:
    """Routes by tracking id: built once per process (shapely geometry), shared by sessions."""

    def __init__(self, size: int = 4096) -> None:
        self._routes: OrderedDict[str, Route] = OrderedDict()
        self._size = size

    def get(self, order: Order) -> Route | None:
        route = self._routes.get(order.tracking_id)
        if route is None:
            points, cum = order.json_field("route"), order.json_field("cum")
            if not points:
                return None
            route = Route([tuple(p) for p in points], cum)
            self._routes[order.tracking_id] = route
            if len(self._routes) > self._size:
                self._routes.popitem(last=False)
        else:
            self._routes.move_to_end(order.tracking_id)
        return route


class Positions:
    """Process-wide ingest service; one `DriverSession` per connected driver socket."""

    def __init__(self, store: Store, model: SpeedModel) -> None:
        self.store = store
        self.model = model
        self.routes = RouteCache()
        self._ingest = load_script(store.redis, "ingest")

    def session(self, store_id: str, driver_id: str) -> DriverSession:
        return DriverSession(self, store_id, driver_id)


class DriverSession:
    """What one driver's connection knows: its live legs and newest fix time (a cache of Redis)."""

    def __init__(self, positions: Positions, store_id: str, driver_id: str) -> None:
        self._p = positions
        self._keys: Keys = positions.store.keys
        self.store_id, self.driver_id = store_id, driver_id
        self._legs: list[_Leg] = []
        self._last_ts = 0

    async def load(self) -> list[Order]:
        """(Re)read the driver's orders; returns them all (its stops), keeps the live ones as legs."""
        store, k = self._p.store, self._keys
        async with store.redis.pipeline(transaction=False) as pipe:
            pipe.hget(k.driver(self.store_id, self.driver_id), "ts")
            pipe.smembers(k.driver_orders(self.store_id, self.driver_id))
            last_ts, tids = await pipe.execute()
        self._last_ts = int(last_ts or 0)
        orders = await store.orders(sorted(t.decode() for t in tids))
        legs = []
        for order in orders:
            if order.live and order.driver == self.driver_id:
                eta = EtaState(
                    along_m=float(order["along"] or 0),
                    speed_mps=float(order["speed"] or 0),
                    ts=int(order["eta_ts"] or 0),
                    eta_at=int(order["eta_at"] or 0),
                    remaining_m=float(order["remaining"] or 0),
                )
                dest = order.json_field("destination")
                legs.append(_Leg(order.tracking_id, (dest[0], dest[1]), self._p.routes.get(order), eta))
        self._legs = legs
        return orders

    async def ingest(self, fixes: list[Fix]) -> tuple[int, int]:
        """Store `fixes` (already validated) in one round trip; returns (accepted, ignored)."""
        store, k, model = self._p.store, self._keys, self._p.model
        now = int(time.time() * 1000)
        args: list[str | int | bytes] = [
            len(fixes),
            len(self._legs),
            store.stream_maxlen,
            self.driver_id,
            k.store_channel(self.store_id),
            k.geo_prefix(self.store_id),
            now,
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
        keys = [k.driver(self.store_id, self.driver_id), k.store_seen(self.store_id)]
        new_routes: list[tuple[str, Route]] = []
        final_states: list[EtaState] = []
        for leg in self._legs:
            keys += [k.order(leg.tracking_id), k.order_events(leg.tracking_id)]
            args.append(k.order_channel(leg.tracking_id))
            if leg.route is None:
                # No route and no origin: the route is the straight line from the first live fix.
                points = [(fixes[0].lat, fixes[0].lon), leg.destination]
                leg.route = Route(points, cumulative_lengths(points))
                new_routes.append((leg.tracking_id, leg.route))
            state, last = leg.eta, self._last_ts
            for f in fixes:
                if f.ts > last:  # mirror the script's acceptance so the model sees only newer fixes
                    last = f.ts
                    state = model.update(state, leg.route, f.lat, f.lon, f.ts)
                eta_s = max(0, round((state.eta_at - now) / 1000))
                event = LocationEvent(
                    f.lat, f.lon, f.speed, f.heading, f.accuracy, f.ts, eta_s, state.eta_at, round(state.remaining_m)
                )
                args += [
                    _encode(event),
                    repr(state.along_m),
                    repr(state.speed_mps),
                    state.eta_at,
                    round(state.remaining_m),
                ]
            final_states.append(state)
        async with store.redis.pipeline(transaction=False) as pipe:
            for tid, route in new_routes:
                okey = k.order(tid)
                pipe.hsetnx(okey, "route", _encode(route.points))
                pipe.hsetnx(okey, "cum", _encode(route.cum.tolist()))
            await self._p._ingest(keys=keys, args=args, client=pipe)
            results = await pipe.execute()
        accepted, ignored = (int(x) for x in results[-1])
        if accepted:
            self._last_ts = max(self._last_ts, *(f.ts for f in fixes))
            for leg, state in zip(self._legs, final_states, strict=True):
                leg.eta = state
        return accepted, ignored
