"""``python -m simulator eta-accuracy``: livemap's ETAs scored against the simulator's exact arrival times.

A day of deliveries is planned ahead (:mod:`.scenario`), so every trip's true arrival is known.
Drivers then drive it against livemap in fast simulated time, through the public API only:
each order is created with its planned route, shipped when the driver leaves and delivered on
arrival, while a customer socket per order records every ``location`` event. Each event's
``eta_at`` is scored against the truth, next to a naive straight-line baseline
(:mod:`.accuracy`). Simulated time starts in the past, so that at any speedup no fix is ever
dated ahead of the wall clock (livemap refuses fixes more than 10 minutes in the future).
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode, urlsplit, urlunsplit

import msgspec
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from .accuracy import BASELINE_MPS, Sample, by_delivery, format_table, make_sample, summarize
from .client import ApiError, LivemapClient, OrderCreated, with_retries
from .clock import SimClock
from .driver import VirtualDriver
from .fakes import fake_person_name
from .floor import EVERY as FLOOR_EVERY
from .floor import FUTURES as FLOOR_FUTURES
from .floor import with_floor
from .link import DriverLink
from .scenario import Delivery, Scenario, ScenarioOptions, plan_scenario
from .server import LocalLivemap, ServerError
from .signals import on_stop_signals
from .stats import Stats

log = logging.getLogger(__name__)

#: How far behind the wall clock simulated time ends, beyond what the scenario's span needs.
_MARGIN_MS = 5 * 60_000
#: Cap on how far simulated time may ever lead the wall clock (livemap refuses > 10 min).
_MAX_LEAD_S = 540.0
_SETUP_CONCURRENCY = 16
_FINAL_STAGES = frozenset({"delivered", "completed", "cancelled", "returned"})


@dataclass(frozen=True)
class EtaOptions:
    """Everything the benchmark needs; the CLI fills it from flags."""

    scenario: ScenarioOptions = field(default_factory=ScenarioOptions)
    speedup: float = 60.0
    interval_s: float = 5.0
    #: An existing server (and its admin token); None starts a private one.
    url: str | None = None
    admin_token: str | None = None
    out: Path = Path("bench/results/eta.json")
    samples_csv: Path | None = None
    progress_every_s: float = 10.0
    #: Wall seconds to wait for a stage change to reach the driver's socket / fixes to be answered.
    settle_timeout_s: float = 5.0
    #: The floor (:mod:`.floor`): on one scored event in this many per delivery (0: none), this many futures each.
    floor_every: int = FLOOR_EVERY
    floor_futures: int = FLOOR_FUTURES


@dataclass(frozen=True, slots=True)
class Seen:
    """A location event as the customer's socket delivered it."""

    ts: int
    eta_at: int
    lat: float
    lon: float
    remaining_m: int | None


@dataclass
class _Counters:
    location_events: int = 0
    socket_drops: int = 0
    stage_waits_timed_out: int = 0


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

    def __init__(self, url: str, created: OrderCreated, counters: _Counters) -> None:
        self._uri = f"{_ws_base(url)}/ws/track/{created.tracking_id}"
        self._token = created.tracking_token
        self._counters = counters
        self.seen: list[Seen] = []
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
        return msg.type == "stage" and msg.stage in _FINAL_STAGES


class ScheduledCourier:
    """One driver working through its planned deliveries: stages over REST, a fix every interval."""

    def __init__(
        self,
        *,
        index: int,
        driver_id: str,
        token: str,
        deliveries: list[Delivery],
        url: str,
        client: LivemapClient,
        stats: Stats,
        counters: _Counters,
        interval_s: float,
        seed: int,
        settle_timeout_s: float,
    ) -> None:
        self.driver_id = driver_id
        self.deliveries = deliveries
        self.driver = VirtualDriver(f"{seed}:eta:{index}")
        self.link = DriverLink(url, token, stats, label=driver_id, on_push=self._on_push)
        self.trackers: dict[str, Tracker] = {}
        self.tracker_tasks: list[asyncio.Task[None]] = []
        self._url = url
        self._client = client
        self._clock = SimClock()
        self._stats = stats
        self._counters = counters
        self._interval_ms = max(1, round(interval_s * 1000))
        self._phase = random.Random(f"{seed}:eta:{index}:beat").random()
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
            log.warning("driver %s: %s failed: %s", self.driver_id, label, exc)
            return False

    async def open(self, d: Delivery) -> None:
        """Create the order (received), move it to processing, assign it, and open its customer socket."""
        try:
            created = await with_retries(lambda: self._client.create_order(d.request))
        except ApiError as exc:
            self._stats.api_errors += 1
            log.warning("driver %s: creating order %s failed: %s", self.driver_id, d.number, exc)
            return
        self._stats.orders_created += 1
        self._created[d.number] = created
        tracker = Tracker(self._url, created, self._counters)
        self.trackers[d.number] = tracker
        self.tracker_tasks.append(asyncio.create_task(tracker.run(), name=f"track {d.number}"))
        await self._call(f"process {d.number}", lambda: self._client.set_stage(d.number, "processing"))
        await self._call(f"assign {d.number}", lambda: self._client.assign(d.number, self.driver_id))

    async def connect(self) -> bool:
        """Open the driver's socket and wait for livemap's first ``stops`` push; False if it did not come in time.

        A driver's app is connected before the day starts. It also matters: livemap reads the
        driver's orders when the socket opens and only then subscribes to their changes, so an order
        shipped in that gap stays unknown to the socket's session (no location events for it).
        """
        if self._link_task is None:
            self._link_task = asyncio.create_task(self.link.run(), name=f"link {self.driver_id}")
        try:
            async with asyncio.timeout(self._settle_timeout_s):
                while not self._stops_seen:
                    self._stops_changed.clear()
                    await self._stops_changed.wait()
        except TimeoutError:
            return False
        return True

    async def run(self, clock: SimClock) -> None:
        """Drive every planned delivery on ``clock``, then stop; the driver's socket closes on the way out."""
        self._clock = clock
        await self.connect()
        try:
            await self._work()
        finally:
            await self._disconnect()

    async def _disconnect(self) -> None:
        if self._link_task is not None:
            self._link_task.cancel()
            await asyncio.wait([self._link_task])

    async def abandon(self) -> None:
        """Close the driver's socket and every customer socket it opened (setup failed)."""
        await self._disconnect()
        for task in self.tracker_tasks:
            task.cancel()
        if self.tracker_tasks:
            await asyncio.wait(self.tracker_tasks)

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
            if await self._stage(d, "shipped"):
                await self._until_live(d)
            t = await self._ping_until(t, d.trip.arrival_ms)
            await self._clock.sleep_until(d.trip.arrival_ms)
            # Every fix from the drive must be stored while the order is still live, or its ETA is lost.
            await self._settled()
            if await self._stage(d, "delivered"):
                self._stats.deliveries += 1
            previous = d
        assert previous is not None
        t = await self._ping_until(t, previous.done_ms)
        await self._stage(previous, "completed")
        await self._settled()

    async def _ping_until(self, t: int, until: int) -> int:
        """Send a fix at every beat ``t`` before ``until``; the first beat at or after it."""
        while t < until:
            await self._clock.sleep_until(t)
            self.link.push(self.driver.fix_at(t))
            t += self._interval_ms
        return t

    async def _stage(self, d: Delivery, stage: str) -> bool:
        if d.number not in self._created:
            return False
        return await self._call(f"{stage} {d.number}", lambda: self._client.set_stage(d.number, stage))

    async def _until_live(self, d: Delivery) -> None:
        """Wait until livemap has pushed the driver's stops with ``d`` live: later fixes count for it."""
        tid = self._created[d.number].tracking_id
        try:
            async with asyncio.timeout(self._settle_timeout_s):
                while tid not in self._live:
                    self._stops_changed.clear()
                    await self._stops_changed.wait()
        except TimeoutError:
            self._counters.stage_waits_timed_out += 1
            log.info("driver %s: order %s not live on the driver's socket yet", self.driver_id, d.number)

    async def _settled(self) -> None:
        try:
            async with asyncio.timeout(self._settle_timeout_s):
                await self.link.wait_settled(self.link.pushed_seq)
        except TimeoutError:
            self._counters.stage_waits_timed_out += 1
            log.info("driver %s: fixes still unanswered after %g s", self.driver_id, self._settle_timeout_s)


async def run_eta_accuracy(options: EtaOptions, *, out: TextIO | None = None) -> int:
    """Run the benchmark; the process exit status (0 ok, 1 setup or server failure, 130 interrupted).

    SIGINT and SIGTERM stop it cleanly: sockets closed, the private server stopped, its data removed.
    """
    out = out or sys.stdout
    started = time.monotonic()
    main = asyncio.current_task()
    assert main is not None
    # Planning is pure CPU: overlap it with the server's start.
    planning = asyncio.create_task(asyncio.to_thread(plan_scenario, options.scenario))
    with on_stop_signals(main.cancel):
        try:
            return await _run(options, planning, started, out)
        except asyncio.CancelledError:
            print("interrupted", file=sys.stderr, flush=True)
            return 130
        except ServerError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            if not planning.done():
                planning.cancel()
            print(f"wall time: {time.monotonic() - started:.1f} s", file=out, flush=True)


async def _run(options: EtaOptions, planning: asyncio.Task[Scenario], started: float, out: TextIO) -> int:
    if options.url is not None:
        assert options.admin_token is not None
        return await _bench(options, options.url, options.admin_token, planning, started, out)
    async with LocalLivemap() as server:
        print(f"started livemap at {server.url}", file=out, flush=True)
        bench = asyncio.create_task(_bench(options, server.url, server.admin_token, planning, started, out))
        died = asyncio.create_task(server.exited())
        try:
            await asyncio.wait([bench, died], return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Whichever ends first (or our own cancellation) ends the other.
            bench.cancel()
            died.cancel()
            await asyncio.wait([bench, died])
        if not bench.cancelled():
            return bench.result()
        print(f"error: livemap exited with status {died.result()} during the run", file=sys.stderr, flush=True)
        return 1


async def _bench(
    options: EtaOptions,
    url: str,
    admin_token: str,
    planning: asyncio.Task[Scenario],
    started: float,
    out: TextIO,
) -> int:
    planned = await planning
    now = int(time.time() * 1000)
    # Start so far back that the whole day, run at any speedup, ends behind the wall clock; on a
    # five-minute boundary, so the shops' promises stay round times.
    start = (now - planned.span_ms - _MARGIN_MS) // 300_000 * 300_000
    scenario = planned.starting_at(start)
    sc = scenario.options
    km = sum(d.route.length_m for d in scenario.deliveries) / 1000
    print(
        f"scenario: seed {sc.seed}, {len(scenario.deliveries)} deliveries ({km:.0f} km planned,"
        f" {sum(d.detoured for d in scenario.deliveries)} with a detour) by {sc.drivers} drivers;"
        f" {scenario.span_ms / 3_600_000:.1f} h of simulated time at {options.speedup:g}x,"
        f" a fix every {options.interval_s:g} s; baseline {BASELINE_MPS} m/s straight line",
        file=out,
        flush=True,
    )
    stats = Stats(drivers=sc.drivers)
    counters = _Counters()
    async with LivemapClient(url) as client:
        try:
            couriers = await _setup(options, scenario, url, admin_token, client, stats, counters)
        except ApiError as exc:
            print(f"error: setup failed: {exc}", file=sys.stderr, flush=True)
            return 1
        now = int(time.time() * 1000)
        # Simulated time may lead the wall clock by at most _MAX_LEAD_S; SimClock counts its lead from
        # its start, which lies this far behind the wall clock.
        clock = SimClock(options.speedup, start_ms=start, max_lead_s=(now - start) / 1000 + _MAX_LEAD_S)
        total = len(scenario.deliveries)
        reporter = asyncio.create_task(_report(options, stats, counters, total, started, out))
        tasks = [asyncio.create_task(c.run(clock), name=f"courier {c.driver_id}") for c in couriers]
        try:
            done, _ = await asyncio.wait(tasks)
            for task in done:
                if task.exception() is not None:
                    log.error("%s failed", task.get_name(), exc_info=task.exception())
            # Customer sockets end on the delivered event; give the last ones a moment to see it.
            trackers = [t for c in couriers for t in c.tracker_tasks]
            if trackers:
                await asyncio.wait(trackers, timeout=options.settle_timeout_s)
        finally:
            leftovers = [reporter, *tasks, *(t for c in couriers for t in c.tracker_tasks)]
            for task in leftovers:
                task.cancel()
            await asyncio.wait(leftovers)
        print(_progress(stats, counters, total, started), file=out, flush=True)
    samples, seen = _score(scenario, couriers)
    if options.floor_every and samples:
        print(
            f"floor: re-driving {options.floor_futures} futures from one scored moment in {options.floor_every}...",
            file=out,
            flush=True,
        )
        began = time.monotonic()
        samples = await asyncio.to_thread(
            with_floor, sc, scenario.start_ms, samples, every=options.floor_every, futures=options.floor_futures
        )
        scored = sum(s.floor_ms is not None for s in samples)
        print(f"floor: {scored} moments in {time.monotonic() - began:.0f} s", file=out, flush=True)
    report = summarize(
        samples,
        deliveries=total,
        seed=sc.seed,
        speedup=options.speedup,
        interval_s=options.interval_s,
    )
    print(file=out)
    print(format_table(report), file=out)
    print(_worst(scenario, samples, seen), file=out, flush=True)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {options.out}", file=out, flush=True)
    if options.samples_csv is not None:
        _write_samples(options.samples_csv, scenario, samples)
        print(f"samples written to {options.samples_csv}", file=out, flush=True)
    return 0


async def _setup(
    options: EtaOptions,
    scenario: Scenario,
    url: str,
    admin_token: str,
    client: LivemapClient,
    stats: Stats,
    counters: _Counters,
) -> list[ScheduledCourier]:
    sc = scenario.options
    store = await with_retries(lambda: client.create_store(admin_token, "ETA benchmark"))
    client.api_key = store.api_key
    gate = asyncio.Semaphore(_SETUP_CONCURRENCY)
    width = len(str(sc.drivers))
    made: list[ScheduledCourier] = []

    async def start(index: int, deliveries: list[Delivery]) -> ScheduledCourier:
        async with gate:
            name = fake_person_name(random.Random(f"{sc.seed}:driver-name:{index}"))
            created = await with_retries(lambda: client.create_driver(name, f"driver-{index + 1:0{width}d}", "car"))
            courier = ScheduledCourier(
                index=index,
                driver_id=created.id,
                token=created.token,
                deliveries=deliveries,
                url=url,
                client=client,
                stats=stats,
                counters=counters,
                interval_s=options.interval_s,
                seed=sc.seed,
                settle_timeout_s=options.settle_timeout_s,
            )
            made.append(courier)
            await courier.open(deliveries[0])
            if not await courier.connect():
                log.warning("driver %s: no stops from livemap on its socket yet", courier.driver_id)
            return courier

    try:
        # A TaskGroup: when one driver cannot be set up, the others are cancelled, not orphaned.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(start(i, run)) for i, run in enumerate(scenario.by_driver())]
    except BaseException as failed:
        for courier in made:
            await courier.abandon()
        api_errors = failed.subgroup(ApiError) if isinstance(failed, BaseExceptionGroup) else None
        if api_errors is None:
            raise
        raise _first_leaf(api_errors) from None
    # Each socket subscribes to its driver's changes just after its first push: give that a moment.
    await asyncio.sleep(0.5)
    return [t.result() for t in tasks]


def _first_leaf(group: BaseExceptionGroup[ApiError]) -> ApiError:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


async def _report(
    options: EtaOptions, stats: Stats, counters: _Counters, total: int, started: float, out: TextIO
) -> None:
    while True:
        await asyncio.sleep(options.progress_every_s)
        print(_progress(stats, counters, total, started), file=out, flush=True)


def _progress(stats: Stats, counters: _Counters, total: int, started: float) -> str:
    errors = stats.fixes_rejected + stats.reply_timeouts + stats.api_errors
    elapsed = int(time.monotonic() - started)
    return (
        f"[{elapsed // 60:02d}:{elapsed % 60:02d}] deliveries {stats.deliveries}/{total},"
        f" pings {stats.fixes_sent} (acked {stats.fixes_acked}), ETA events {counters.location_events},"
        f" errors {errors}"
        + (f", resent after rate limit {stats.fixes_deferred}" if stats.fixes_deferred else "")
        + (f", socket drops {counters.socket_drops}" if counters.socket_drops else "")
        + (f", waits timed out {counters.stage_waits_timed_out}" if counters.stage_waits_timed_out else "")
    )


def _score(scenario: Scenario, couriers: list[ScheduledCourier]) -> tuple[list[Sample], dict[str, list[Seen]]]:
    seen: dict[str, list[Seen]] = {}
    for c in couriers:
        for number, tracker in c.trackers.items():
            seen[number] = tracker.seen
    samples: list[Sample] = []
    for d in scenario.deliveries:
        dest = (d.request.destination.lat, d.request.destination.lon)
        for ev in seen.get(d.number, []):
            s = make_sample(d.number, ev.ts, ev.eta_at, (ev.lat, ev.lon), dest, d.trip.arrival_ms)
            if s is not None:
                samples.append(s)
    return samples, seen


def _worst(scenario: Scenario, samples: list[Sample], seen: dict[str, list[Seen]], count: int = 5) -> str:
    """The deliveries with the largest single livemap errors, with what might explain them."""
    groups = by_delivery(samples)
    by_number = {d.number: d for d in scenario.deliveries}
    missing = [d.number for d in scenario.deliveries if d.number not in groups]
    ranked = sorted(groups.items(), key=lambda kv: max(s.error_s for s in kv[1]), reverse=True)[:count]
    lines = [f"\nlargest livemap errors ({len(groups)} deliveries scored):"]
    for number, group in ranked:
        d = by_number[number]
        worst = max(group, key=lambda s: s.error_s)
        events = {ev.ts: ev for ev in seen.get(number, [])}
        ev = events.get(worst.ts)
        truth_left_m = d.trip.state_at(worst.ts).remaining_m
        lines.append(
            f"  order {number} ({d.kind}, planned {d.route.length_m / 1000:.1f} km, driven {d.path.length_m / 1000:.1f}"
            f" km, {'detour' if d.detoured else 'no detour'}, {len(d.trip.jams)} jams,"
            f" trip {d.trip.duration_s / 60:.1f} min): median error {_median(group):.0f} s,"
            f" worst {worst.error_s:.0f} s with {worst.remaining_s / 60:.1f} min truly left:"
            f" livemap said {(worst.eta_ms - worst.ts) / 60_000:.1f} min"
            + (f" / {ev.remaining_m} m" if ev is not None and ev.remaining_m is not None else "")
            + f" (truth {truth_left_m:.0f} m), baseline {(worst.baseline_ms - worst.ts) / 60_000:.1f} min"
        )
    if missing:
        lines.append(f"  no location events at all for {len(missing)} deliveries: {', '.join(missing[:10])}")
    return "\n".join(lines)


def _median(group: list[Sample]) -> float:
    errors = sorted(s.error_s for s in group)
    mid = len(errors) // 2
    return errors[mid] if len(errors) % 2 else (errors[mid - 1] + errors[mid]) / 2


def _write_samples(path: Path, scenario: Scenario, samples: list[Sample]) -> None:
    by_number = {d.number: d for d in scenario.deliveries}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["order", "kind", "detoured", "ts", "truth_left_s", "livemap_left_s", "baseline_left_s"])
        for s in samples:
            d = by_number[s.delivery]
            w.writerow(
                [
                    s.delivery,
                    d.kind,
                    int(d.detoured),
                    s.ts,
                    round(s.remaining_s, 1),
                    round((s.eta_ms - s.ts) / 1000, 1),
                    round((s.baseline_ms - s.ts) / 1000, 1),
                ]
            )
