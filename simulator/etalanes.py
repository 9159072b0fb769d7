"""The ETA benchmark's drivers: one planned driver, driven into several livemap variants at once.

Each planned driver is a :class:`ScheduledCourier`: one virtual driver (one true motion, one
phone) whose every fix goes, identical, to one *lane* per variant (:class:`Lane`): that variant's
copy of the driver, in that variant's store, with its own socket, its own copy of each order
(created with or without the driven path as ``route``) and a customer socket per order
(:class:`Tracker`) recording every location event. Stage changes go to every lane together, so
the variants see the same day at the same moments and differ only in what livemap does with it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit, urlunsplit

import msgspec
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from .client import ApiError, LivemapClient, OrderCreated, with_retries
from .clock import SimClock
from .driver import VirtualDriver
from .link import DriverLink
from .motion import MotionProfile
from .scenario import Delivery
from .stats import Stats

log = logging.getLogger(__name__)

_FINAL_STAGES = frozenset({"delivered", "completed", "cancelled", "returned"})


@dataclass(frozen=True, slots=True)
class Seen:
    """A location event as the customer's socket delivered it."""

    ts: int
    eta_at: int
    lat: float
    lon: float
    remaining_m: int | None


@dataclass
class Counters:
    location_events: int = 0
    socket_drops: int = 0
    stage_waits_timed_out: int = 0


class Variant(NamedTuple):
    """A livemap variant: a store on a server; ``with_route``: its orders carry the driven path."""

    name: str
    url: str
    client: LivemapClient
    with_route: bool


class _TrackMessage(msgspec.Struct):
    type: str
    offset: str | None = None
    ts: int | None = None
    eta_at: int | None = None
    lat: float | None = None
    lon: float | None = None
    remaining_m: int | None = None
    stage: str | None = None


class _Stop(msgspec.Struct):
    tracking_id: str
    live: bool = False


class _Stops(msgspec.Struct):
    type: str
    stops: list[_Stop] = []


_decode_track = msgspec.json.Decoder(_TrackMessage).decode
_decode_stops = msgspec.json.Decoder(_Stops).decode


def _ws_base(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class Tracker:
    """The customer's socket of one order: records every location event until the order is delivered.

    Connects with ``since`` (from ``0-0`` at first), so events published before the socket
    opened, or while it was reconnecting, are replayed rather than lost.
    """

    def __init__(self, url: str, created: OrderCreated, counters: Counters) -> None:
        self._uri = f"{_ws_base(url)}/ws/track/{created.tracking_id}"
        self._token = created.tracking_token
        self._counters = counters
        self.seen: list[Seen] = []
        #: Set once livemap's road route for the leg arrived (orders created without a route).
        self.routed = asyncio.Event()
        self._offset = "0-0"

    async def run(self) -> None:
        """Record until a final stage arrives; reconnects on a dropped socket; runs until then or cancelled."""
        while True:
            try:
                query = urlencode({"t": self._token, "since": self._offset})
                async with connect(f"{self._uri}?{query}", open_timeout=10, close_timeout=2, max_size=2**22) as ws:
                    async for raw in ws:
                        if self._take(raw):
                            return
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                self._counters.socket_drops += 1
                log.info("tracking socket lost (%s); reconnecting", type(exc).__name__)
            await asyncio.sleep(random.uniform(0.2, 1.0))

    def _take(self, raw: str | bytes) -> bool:
        try:
            msg = _decode_track(raw)
        except msgspec.DecodeError:
            return False
        if msg.offset is not None and msg.type != "snapshot":
            self._offset = msg.offset
        if msg.type == "location" and None not in (msg.ts, msg.eta_at, msg.lat, msg.lon):
            assert msg.ts is not None and msg.eta_at is not None and msg.lat is not None and msg.lon is not None
            self.seen.append(Seen(msg.ts, msg.eta_at, msg.lat, msg.lon, msg.remaining_m))
            self._counters.location_events += 1
        if msg.type == "route":
            self.routed.set()
        return msg.type == "stage" and msg.stage in _FINAL_STAGES


class Lane:
    """One variant's copy of a driver: its id and socket in that variant's store, its orders there."""

    def __init__(
        self, variant: Variant, driver_id: str, token: str, stats: Stats, counters: Counters, settle_timeout_s: float
    ) -> None:
        self.variant = variant
        self.driver_id = driver_id
        self.link = DriverLink(variant.url, token, stats, label=f"{variant.name}/{driver_id}", on_push=self._on_push)
        self.trackers: dict[str, Tracker] = {}
        self.tracker_tasks: list[asyncio.Task[None]] = []
        self._stats = stats
        self._counters = counters
        self._settle_timeout_s = settle_timeout_s
        self._created: dict[str, OrderCreated] = {}
        self._live: set[str] = set()
        self._stops_changed = asyncio.Event()
        self._stops_seen = False
        self._link_task: asyncio.Task[None] | None = None

    def _on_push(self, raw: str | bytes) -> None:
        try:
            stops = _decode_stops(raw)
        except msgspec.DecodeError:
            return
        if stops.type == "stops":
            self._live = {s.tracking_id for s in stops.stops if s.live}
            self._stops_seen = True
            self._stops_changed.set()

    async def _call(self, label: str, make: Callable[[], Awaitable[Any]]) -> bool:
        """Run an API call with retries; a permanent failure is counted and logged, not raised."""
        try:
            await with_retries(make)
            return True
        except ApiError as exc:
            self._stats.api_errors += 1
            log.warning("%s driver %s: %s failed: %s", self.variant.name, self.driver_id, label, exc)
            return False

    async def open(self, d: Delivery) -> None:
        """Create the order (received), move it to processing, assign it, and open its customer socket."""
        client = self.variant.client
        request = d.with_route() if self.variant.with_route else d.request
        try:
            created = await with_retries(lambda: client.create_order(request))
        except ApiError as exc:
            self._stats.api_errors += 1
            log.warning("%s driver %s: creating order %s failed: %s", self.variant.name, self.driver_id, d.number, exc)
            return
        self._stats.orders_created += 1
        self._created[d.number] = created
        tracker = Tracker(self.variant.url, created, self._counters)
        self.trackers[d.number] = tracker
        self.tracker_tasks.append(asyncio.create_task(tracker.run(), name=f"track {self.variant.name} {d.number}"))
        await self._call(f"process {d.number}", lambda: client.set_stage(d.number, "processing"))
        await self._call(f"assign {d.number}", lambda: client.assign(d.number, self.driver_id))

    async def connect(self) -> bool:
        """Open the driver's socket and wait for livemap's first ``stops`` push; False if it did not come in time.

        A driver's app is connected before the day starts. It also matters: livemap reads the
        driver's orders when the socket opens and only then subscribes to their changes, so an order
        shipped in that gap stays unknown to the socket's session (no location events for it).
        """
        if self._link_task is None:
            self._link_task = asyncio.create_task(self.link.run(), name=f"link {self.link.label}")
        try:
            async with asyncio.timeout(self._settle_timeout_s):
                while not self._stops_seen:
                    self._stops_changed.clear()
                    await self._stops_changed.wait()
        except TimeoutError:
            return False
        return True

    async def disconnect(self) -> None:
        if self._link_task is not None:
            self._link_task.cancel()
            await asyncio.wait([self._link_task])

    async def abandon(self) -> None:
        """Close the driver's socket and every customer socket it opened (setup failed)."""
        await self.disconnect()
        for task in self.tracker_tasks:
            task.cancel()
        if self.tracker_tasks:
            await asyncio.wait(self.tracker_tasks)

    async def stage(self, d: Delivery, stage: str) -> bool:
        if d.number not in self._created:
            return False
        return await self._call(f"{stage} {d.number}", lambda: self.variant.client.set_stage(d.number, stage))

    async def until_live(self, d: Delivery) -> None:
        """Wait until livemap has pushed the driver's stops with ``d`` live: later fixes count for it;
        an order sent without a route, also until livemap's road route for it reached the customer.

        In real time the router answers within milliseconds of the leg going live, before the next
        fix; at 60x those milliseconds are simulated seconds of fixes scored on the straight line.
        """
        if d.number not in self._created:
            return
        tid = self._created[d.number].tracking_id
        try:
            async with asyncio.timeout(self._settle_timeout_s):
                while tid not in self._live:
                    self._stops_changed.clear()
                    await self._stops_changed.wait()
                if not self.variant.with_route:
                    await self.trackers[d.number].routed.wait()
        except TimeoutError:
            self._counters.stage_waits_timed_out += 1
            log.info("%s driver %s: order %s not live yet", self.variant.name, self.driver_id, d.number)

    async def settled(self) -> None:
        """Wait until every fix pushed so far is answered (bounded by the settle timeout)."""
        try:
            async with asyncio.timeout(self._settle_timeout_s):
                await self.link.wait_settled(self.link.pushed_seq)
        except TimeoutError:
            self._counters.stage_waits_timed_out += 1
            log.info("%s driver %s: fixes still unanswered", self.variant.name, self.driver_id)


class ScheduledCourier:
    """One planned driver working through its deliveries in every lane: stages over REST, a fix every interval."""

    def __init__(
        self,
        *,
        index: int,
        deliveries: list[Delivery],
        lanes: list[Lane],
        stats: Stats,
        interval_s: float,
        seed: int,
        profile: MotionProfile | None = None,
    ) -> None:
        self.deliveries = deliveries
        self.lanes = lanes
        self.label = lanes[0].driver_id if lanes else str(index)
        self.driver = VirtualDriver(f"{seed}:eta:{index}", profile)
        self._clock = SimClock()
        self._stats = stats
        self._interval_ms = max(1, round(interval_s * 1000))
        self._phase = random.Random(f"{seed}:eta:{index}:beat").random()

    async def _each(self, act: Callable[[Lane], Awaitable[Any]]) -> list[Any]:
        return list(await asyncio.gather(*(act(lane) for lane in self.lanes)))

    async def open(self, d: Delivery) -> None:
        await self._each(lambda lane: lane.open(d))

    async def connect(self) -> bool:
        return all(await self._each(lambda lane: lane.connect()))

    async def abandon(self) -> None:
        await self._each(lambda lane: lane.abandon())

    async def run(self, clock: SimClock) -> None:
        """Drive every planned delivery on ``clock``, then stop; the drivers' sockets close on the way out."""
        self._clock = clock
        await self.connect()
        try:
            await self._work()
        finally:
            await self._each(lambda lane: lane.disconnect())

    async def _work(self) -> None:
        first = self.deliveries[0]
        t = first.created_ms + int(self._phase * self._interval_ms)
        previous: Delivery | None = None
        for d in self.deliveries:
            if previous is not None:
                t = await self._ping_until(t, d.created_ms)
                await self._stage(previous, "completed")
                await self.open(d)
            self.driver.take_trip(d.trip)
            t = await self._ping_until(t, d.trip.depart_ms)
            await self._clock.sleep_until(d.trip.depart_ms)
            await self._stage(d, "shipped", wait_live=True)
            t = await self._ping_until(t, d.trip.arrival_ms)
            await self._clock.sleep_until(d.trip.arrival_ms)
            # Every fix from the drive must be stored while the order is still live, or its ETA is lost.
            await self._each(lambda lane: lane.settled())
            if all(await self._stage(d, "delivered")):
                self._stats.deliveries += 1
            previous = d
        assert previous is not None
        t = await self._ping_until(t, previous.done_ms)
        await self._stage(previous, "completed")
        await self._each(lambda lane: lane.settled())

    async def _stage(self, d: Delivery, stage: str, *, wait_live: bool = False) -> list[bool]:
        """Move ``d`` to ``stage`` in every lane; with ``wait_live``, then until each lane's driver has it live."""

        async def one(lane: Lane) -> bool:
            done = await lane.stage(d, stage)
            if done and wait_live:
                await lane.until_live(d)
            return done

        return await self._each(one)

    async def _ping_until(self, t: int, until: int) -> int:
        """Send the same fix to every lane at every beat ``t`` before ``until``; the first beat at or after it."""
        while t < until:
            await self._clock.sleep_until(t)
            fix = self.driver.fix_at(t)
            for lane in self.lanes:
                lane.link.push(fix)
            t += self._interval_ms
        return t
