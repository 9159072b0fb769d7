"""One courier's working day: a virtual driver, its socket, and its orders' stages over the API.

Per order: create it (received; with its route only where livemap cannot route it itself, see
:mod:`.worlds`), move it to processing, assign the driver; ship it when the driver leaves;
deliver it on arrival; after a short handover complete it and open the next order, which
starts where the last one ended. Fixes go out on a fixed simulated-time beat the
whole time. Stage changes run in their own queue, so a slow or restarting server delays them
without stopping the pings.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from .client import ApiError, LivemapClient, NewOrder, OrderCreated, Point, with_retries
from .clock import SimClock
from .drivable import Drivable
from .driver import VirtualDriver
from .fakes import fake_customer, fake_tracking_number
from .link import DriverLink
from .stats import Stats
from .worlds import World

log = logging.getLogger(__name__)


class Phase(enum.Enum):
    """Where a courier is in its current order."""

    WAITING = "waiting"  # loaded and assigned, not yet left
    DRIVING = "driving"  # shipped: the customer sees the driver
    HANDOVER = "handover"  # at the door, delivered


@dataclass(frozen=True)
class Timing:
    """Simulated-second ranges of the pauses between a courier's moves."""

    first_departure_s: tuple[float, float] = (3.0, 20.0)
    departure_s: tuple[float, float] = (10.0, 40.0)
    handover_s: tuple[float, float] = (30.0, 90.0)
    #: Promise = now + route length at this average speed (stops included) + a random slack.
    promise_speed_mps: float = 5.5
    promise_slack_min: tuple[float, float] = (-3.0, 12.0)

    def promised_by(self, length_m: float, now_ms: int, rng: random.Random) -> int:
        """A shop's promise for a route of ``length_m`` ordered at ``now_ms``: rounded up to five minutes."""
        estimate_s = length_m / self.promise_speed_mps + max(self.departure_s)
        promised = now_ms + (estimate_s + rng.uniform(*self.promise_slack_min) * 60) * 1000
        return math.ceil(promised / 300_000) * 300_000


@dataclass
class DemoOrder:
    """An order this courier carries; ``created`` is the server's reply once it exists."""

    number: str
    route: Drivable
    request: NewOrder
    created: OrderCreated | None = None


@dataclass
class _Action:
    label: str
    call: Callable[[], Awaitable[None]]
    delay_s: float = field(default=0.5)


class Courier:
    """Drives one virtual driver through order after order against a livemap server."""

    def __init__(
        self,
        *,
        driver_id: str,
        client: LivemapClient,
        link: DriverLink,
        world: World,
        clock: SimClock,
        stats: Stats,
        numbers: Iterator[int],
        seed: int,
        interval_s: float,
        carrier: str = "livemap demo",
        timing: Timing | None = None,
        on_order: Callable[[DemoOrder], None] | None = None,
    ) -> None:
        self.driver_id = driver_id
        self.driver = VirtualDriver(f"{seed}:{driver_id}")
        self._client = client
        self._link = link
        self._world = world
        self._clock = clock
        self._stats = stats
        self._numbers = numbers
        self._interval_ms = max(1, round(interval_s * 1000))
        self._carrier = carrier
        self._timing = timing or Timing()
        self._on_order = on_order
        # Separate streams, so routes and customers do not depend on the ping interval or on timing.
        self._rng = random.Random(f"{seed}:{driver_id}:orders")
        self._phase_offset = random.Random(f"{seed}:{driver_id}:beat").random()
        self._actions: asyncio.Queue[_Action] = asyncio.Queue()
        self.order: DemoOrder | None = None
        self.phase = Phase.WAITING
        self._depart_ms = 0
        self._next_ms = 0

    async def open_first_order(self, number: int) -> DemoOrder:
        """Create, process and assign the first order now (retrying transient errors); raises ApiError."""
        order = self._new_order(str(number), after=None, now_ms=self._clock.now_ms())
        await with_retries(lambda: self._create(order))
        await with_retries(lambda: self._stage(order, "processing"))
        await with_retries(lambda: self._assign(order))
        self.order = order
        return order

    async def run(self) -> None:
        """Ping, drive and deliver until cancelled; the socket closes on the way out."""
        if self.order is None:
            raise RuntimeError("open_first_order() must succeed before run()")
        now = self._clock.now_ms()
        self._depart_ms = now + self._ms(self._timing.first_departure_s)
        self.driver.begin_trip(self.order.route, self._depart_ms, self._world.trip)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._link.run(), name=f"link {self.driver_id}")
            tasks.create_task(self._work(), name=f"api {self.driver_id}")
            tasks.create_task(self._beat(now), name=f"beat {self.driver_id}")

    def _ms(self, span_s: tuple[float, float]) -> int:
        return round(self._rng.uniform(*span_s) * 1000)

    async def _beat(self, start_ms: int) -> None:
        # Spread drivers over the interval so N drivers do not all ping in the same millisecond.
        t = start_ms + int(self._phase_offset * self._interval_ms)
        while True:
            await self._clock.sleep_until(t)
            self._advance(t)
            self._link.push(self.driver.fix_at(t))
            t += self._interval_ms

    def _advance(self, t: int) -> None:
        """Move the order along when simulated time ``t`` has passed the next milestone."""
        order, trip = self.order, self.driver.trip
        assert order is not None and trip is not None
        if self.phase is Phase.WAITING and t >= self._depart_ms:
            self.phase = Phase.DRIVING
            self._enqueue(f"ship {order.number}", lambda: self._stage(order, "shipped"))
        elif self.phase is Phase.DRIVING and t >= trip.arrival_ms:
            self.phase = Phase.HANDOVER
            self._next_ms = trip.arrival_ms + self._ms(self._timing.handover_s)
            self._enqueue(f"deliver {order.number}", lambda: self._stage(order, "delivered"))
        elif self.phase is Phase.HANDOVER and t >= self._next_ms:
            # Completed is final, so the dispatcher's map stops listing the delivered order.
            self._enqueue(f"complete {order.number}", lambda: self._stage(order, "completed"))
            nxt = self._new_order(str(next(self._numbers)), after=order.route, now_ms=t)
            self._enqueue(f"create {nxt.number}", lambda: self._create(nxt))
            self._enqueue(f"process {nxt.number}", lambda: self._stage(nxt, "processing"))
            self._enqueue(f"assign {nxt.number}", lambda: self._assign(nxt))
            self.order = nxt
            self._depart_ms = t + self._ms(self._timing.departure_s)
            self.driver.begin_trip(nxt.route, self._depart_ms, self._world.trip)
            self.phase = Phase.WAITING

    def _new_order(self, number: str, *, after: Drivable | None, now_ms: int) -> DemoOrder:
        rng, timing = self._rng, self._timing
        route = self._world.plan(rng, after)
        promised_by = timing.promised_by(route.length_m, now_ms, rng)
        dest, origin = route.destination, route.origin
        request = NewOrder(
            id=number,
            customer=fake_customer(rng),
            address=self._world.address(route, rng),
            destination=Point(lat=round(dest[0], 6), lon=round(dest[1], 6)),
            origin=Point(lat=round(origin[0], 6), lon=round(origin[1], 6)),
            route=route.to_wire() if self._world.sends_route else None,
            promised_by=promised_by,
            tracking_number=fake_tracking_number(rng),
            carrier=self._carrier,
        )
        return DemoOrder(number=number, route=route, request=request)

    def _enqueue(self, label: str, call: Callable[[], Awaitable[None]]) -> None:
        self._actions.put_nowait(_Action(label, call))

    async def _work(self) -> None:
        """Run API actions in order; retry transient failures with backoff, skip permanent ones."""
        while True:
            action = await self._actions.get()
            while True:
                try:
                    await action.call()
                    break
                except ApiError as exc:
                    if not exc.transient:
                        self._stats.api_errors += 1
                        log.warning("driver %s: %s failed: %s", self.driver_id, action.label, exc)
                        break
                    log.info("driver %s: %s failed (%s); retrying", self.driver_id, action.label, exc)
                    await asyncio.sleep(action.delay_s)
                    action.delay_s = min(action.delay_s * 2, 30.0)

    async def _create(self, order: DemoOrder) -> None:
        order.created = await self._client.create_order(order.request)
        self._stats.orders_created += 1
        if self._on_order is not None:
            self._on_order(order)

    async def _assign(self, order: DemoOrder) -> None:
        if order.created is not None:  # None: creating it failed for good, already reported
            await self._client.assign(order.number, self.driver_id)

    async def _stage(self, order: DemoOrder, stage: str) -> None:
        if order.created is None:
            return
        await self._client.set_stage(order.number, stage)
        if stage == "delivered":
            self._stats.deliveries += 1
