"""``python -m simulator eta-accuracy``: livemap's ETAs scored against the simulator's exact arrival times.

A day of deliveries on central Helsinki's streets is planned ahead (:mod:`.scenario`), so every
trip's true arrival is known. Drivers then drive it in fast simulated time, through the public API
only, into three livemap variants at once, each planned driver sending identical fixes to all
three (:mod:`.etalanes`):

- ``livemap``: a server routing on the same extract (``LIVEMAP_OSM_PBF``), fleet speeds on; its
  orders come without a route, as a shop's do;
- ``livemap_no_fleet``: a second server, the same but ``LIVEMAP_FLEET_SPEEDS=0``;
- ``livemap_store_route``: the first server, another store, whose orders carry the driven path.

Each order is shipped when the driver leaves and delivered on arrival, while a customer socket
per order records every ``location`` event. Each event's ``eta_at`` is scored against the truth,
next to a naive straight-line baseline and the floor (:mod:`.accuracy`, :mod:`.floor`). Simulated
time starts in the past, so that at any speedup no fix is ever dated ahead of the wall clock
(livemap refuses fixes more than 10 minutes in the future).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from .accuracy import BASELINE_MPS, VARIANTS, Sample, align, format_table, make_sample, summarize
from .client import ApiError
from .clock import SimClock
from .etalanes import Counters, ScheduledCourier, Seen
from .etasetup import Servers, setup_couriers
from .etashow import progress, worst, write_samples
from .floor import EVERY as FLOOR_EVERY
from .floor import FUTURES as FLOOR_FUTURES
from .floor import with_floor
from .osmworld import ExtractMissing, helsinki_pbf, measure_router
from .scenario import NAME, Scenario, ScenarioOptions, plan_scenario
from .server import LocalLivemap, ServerError
from .signals import on_stop_signals
from .stats import Stats

log = logging.getLogger(__name__)

#: How far behind the wall clock simulated time ends, beyond what the scenario's span needs.
_MARGIN_MS = 5 * 60_000
#: Cap on how far simulated time may ever lead the wall clock (livemap refuses > 10 min).
_MAX_LEAD_S = 540.0
#: livemap's settings in wall seconds that pace what it does with fixes, at their defaults: the bench
#: divides them by the speedup, so that in simulated time re-routing a driver who left its route (at
#: most once per 30 s) and sharing the fleet's street speeds (every 10 s) keep their real pace.
WALL_CLOCK_SETTINGS = {"LIVEMAP_REROUTE_INTERVAL_S": 30.0, "LIVEMAP_FLEET_REFRESH_S": 10.0}


@dataclass(frozen=True)
class EtaOptions:
    """Everything the benchmark needs; the CLI fills it from flags."""

    scenario: ScenarioOptions = field(default_factory=ScenarioOptions)
    speedup: float = 60.0
    interval_s: float = 5.0
    #: Running servers (and their admin token): ``url`` routing with fleet speeds, ``no_fleet_url``
    #: without them (both given, or neither: then two private servers are started).
    url: str | None = None
    no_fleet_url: str | None = None
    admin_token: str | None = None
    out: Path = Path("bench/results/eta.json")
    samples_csv: Path | None = None
    progress_every_s: float = 10.0
    #: Wall seconds to wait for a stage change to reach the driver's socket / fixes to be answered.
    settle_timeout_s: float = 5.0
    #: The floor (:mod:`.floor`): on one scored event in this many per delivery (0: none), this many futures each.
    floor_every: int = FLOOR_EVERY
    floor_futures: int = FLOOR_FUTURES
    #: Measure livemap's router on the extract (``python -m livemap.routing.measure``) for the report.
    measure_router: bool = True


async def run_eta_accuracy(options: EtaOptions, *, out: TextIO | None = None) -> int:
    """Run the benchmark; the process exit status (0 ok, 1 setup or server failure, 130 interrupted).

    SIGINT and SIGTERM stop it cleanly: sockets closed, the private servers stopped, their data removed.
    """
    out = out or sys.stdout
    started = time.monotonic()
    main = asyncio.current_task()
    assert main is not None
    try:
        pbf = helsinki_pbf()
    except ExtractMissing as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    with on_stop_signals(main.cancel):
        planning: asyncio.Task[Scenario] | None = None
        try:
            # Measured first, alone: its query times would suffer from anything running beside it.
            router = await _router_figures(options, pbf, out)
            # Planning is pure CPU: overlap it with the servers' start.
            planning = asyncio.create_task(asyncio.to_thread(plan_scenario, options.scenario))
            return await _run(options, pbf, planning, router, started, out)
        except asyncio.CancelledError:
            print("interrupted", file=sys.stderr, flush=True)
            return 130
        except ServerError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            if planning is not None and not planning.done():
                planning.cancel()
            print(f"wall time: {time.monotonic() - started:.1f} s", file=out, flush=True)


async def _router_figures(options: EtaOptions, pbf: Path, out: TextIO) -> dict[str, Any] | None:
    if not options.measure_router:
        return None
    print(f"router: measuring livemap's router on {pbf.name} (python -m livemap.routing.measure)...", file=out)
    figures = await asyncio.to_thread(measure_router, pbf)
    print(f"router: {json.dumps(figures)}", file=out, flush=True)
    return figures


def server_settings(pbf: Path, speedup: float, *, fleet: bool) -> dict[str, str]:
    """The private servers' settings: routing on the extract, at the pace of simulated time, fleet speeds or not."""
    settings = {"LIVEMAP_OSM_PBF": str(pbf)}
    settings |= {name: f"{seconds / speedup:g}" for name, seconds in WALL_CLOCK_SETTINGS.items()}
    if not fleet:
        settings["LIVEMAP_FLEET_SPEEDS"] = "0"
    return settings


@contextlib.asynccontextmanager
async def _servers(options: EtaOptions, pbf: Path, out: TextIO) -> AsyncIterator[tuple[Servers, list[LocalLivemap]]]:
    if options.url is not None and options.no_fleet_url is not None:
        assert options.admin_token is not None
        yield Servers(options.url, options.no_fleet_url, options.admin_token, options.admin_token), []
        return
    fleet = LocalLivemap(settings=server_settings(pbf, options.speedup, fleet=True))
    no_fleet = LocalLivemap(settings=server_settings(pbf, options.speedup, fleet=False))
    async with fleet, no_fleet:
        print(f"started livemap at {fleet.url} (fleet speeds) and {no_fleet.url} (LIVEMAP_FLEET_SPEEDS=0)", file=out)
        yield Servers(fleet.url, no_fleet.url, fleet.admin_token, no_fleet.admin_token), [fleet, no_fleet]


async def _run(
    options: EtaOptions,
    pbf: Path,
    planning: asyncio.Task[Scenario],
    router: dict[str, Any] | None,
    started: float,
    out: TextIO,
) -> int:
    async with _servers(options, pbf, out) as (servers, local):
        bench = asyncio.create_task(_bench(options, servers, planning, router, started, out))
        died = [asyncio.create_task(server.exited()) for server in local]
        try:
            await asyncio.wait([bench, *died], return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Whichever ends first (or our own cancellation) ends the others.
            for task in (bench, *died):
                task.cancel()
            await asyncio.wait([bench, *died])
        if not bench.cancelled():
            return bench.result()
        code = next(t.result() for t in died if not t.cancelled())
        print(f"error: a livemap server exited with status {code} during the run", file=sys.stderr, flush=True)
        return 1


async def _bench(
    options: EtaOptions,
    servers: Servers,
    planning: asyncio.Task[Scenario],
    router: dict[str, Any] | None,
    started: float,
    out: TextIO,
) -> int:
    planned = await planning
    now = int(time.time() * 1000)
    # Start so far back that the whole day, run at any speedup, ends behind the wall clock; on a
    # five-minute boundary, so the shops' promises stay round times.
    start = (now - planned.span_ms - _MARGIN_MS) // 300_000 * 300_000
    scenario = planned.starting_at(start)
    _describe(options, scenario, out)
    stats = Stats(drivers=scenario.options.drivers * len(VARIANTS))
    counters = Counters()
    try:
        async with servers.clients() as variants:
            couriers = await setup_couriers(options, scenario, variants, stats, counters)
            await _drive(options, scenario, couriers, stats, counters, start, started, out)
    except ApiError as exc:
        print(f"error: setup failed: {exc}", file=sys.stderr, flush=True)
        return 1
    samples = _score(scenario, couriers)
    samples = await _floor(options, scenario, samples, out)
    report = summarize(
        samples,
        scenario=NAME,
        seed=scenario.options.seed,
        speedup=options.speedup,
        interval_s=options.interval_s,
        wall_time_s=round(time.monotonic() - started, 1),
    )
    report["router"] = router
    _print_report(report, scenario, samples, couriers, out)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {options.out}", file=out, flush=True)
    if options.samples_csv is not None:
        write_samples(options.samples_csv, scenario, samples)
        print(f"samples written to {options.samples_csv}", file=out, flush=True)
    return 0


def _print_report(
    report: dict[str, Any],
    scenario: Scenario,
    samples: dict[str, list[Sample]],
    couriers: list[ScheduledCourier],
    out: TextIO,
) -> None:
    print(file=out)
    print(format_table(report), file=out)
    if not report["buckets"]["gt30"]["n"]:
        print(
            "gt30 is empty: no trip on this extract (about 1.7 x 1.0 km of central Helsinki) has more than"
            " 30 minutes left",
            file=out,
        )
    print(worst(scenario, samples[VARIANTS[0]], _seen(couriers, VARIANTS[0])), file=out, flush=True)


def _describe(options: EtaOptions, scenario: Scenario, out: TextIO) -> None:
    sc = scenario.options
    km = sum(d.path.length_m for d in scenario.deliveries) / 1000
    met = sum(bool(d.trip.street.jams) for d in scenario.deliveries)
    print(
        f"scenario: {NAME}, seed {sc.seed}, {len(scenario.deliveries)} deliveries ({km:.0f} km driven,"
        f" {sum(d.detoured for d in scenario.deliveries)} off the navigation app's path, {met} crossing a jam's"
        f" stretch; {len(scenario.congestion.jams)} jams in the day) by {sc.drivers} drivers, each into"
        f" {len(VARIANTS)} variants ({', '.join(VARIANTS)}); {scenario.span_ms / 3_600_000:.1f} h of simulated time"
        f" at {options.speedup:g}x, a fix every {options.interval_s:g} s; baseline {BASELINE_MPS} m/s straight line",
        file=out,
        flush=True,
    )


async def _drive(
    options: EtaOptions,
    scenario: Scenario,
    couriers: list[ScheduledCourier],
    stats: Stats,
    counters: Counters,
    start: int,
    started: float,
    out: TextIO,
) -> None:
    now = int(time.time() * 1000)
    # Simulated time may lead the wall clock by at most _MAX_LEAD_S; SimClock counts its lead from
    # its start, which lies this far behind the wall clock.
    clock = SimClock(options.speedup, start_ms=start, max_lead_s=(now - start) / 1000 + _MAX_LEAD_S)
    total = len(scenario.deliveries)
    reporter = asyncio.create_task(_report(options, stats, counters, total, started, out))
    tasks = [asyncio.create_task(c.run(clock), name=f"courier {c.label}") for c in couriers]
    trackers = [t for c in couriers for lane in c.lanes for t in lane.tracker_tasks]
    try:
        done, _ = await asyncio.wait(tasks)
        for task in done:
            if task.exception() is not None:
                log.error("%s failed", task.get_name(), exc_info=task.exception())
        # Customer sockets end on the delivered event; give the last ones a moment to see it.
        trackers = [t for c in couriers for lane in c.lanes for t in lane.tracker_tasks]
        if trackers:
            await asyncio.wait(trackers, timeout=options.settle_timeout_s)
    finally:
        leftovers = [reporter, *tasks, *trackers]
        for task in leftovers:
            task.cancel()
        await asyncio.wait(leftovers)
    print(progress(stats, counters, total, started), file=out, flush=True)


async def _report(
    options: EtaOptions, stats: Stats, counters: Counters, total: int, started: float, out: TextIO
) -> None:
    while True:
        await asyncio.sleep(options.progress_every_s)
        print(progress(stats, counters, total, started), file=out, flush=True)


def _seen(couriers: list[ScheduledCourier], variant: str) -> dict[str, list[Seen]]:
    return {
        number: tracker.seen
        for c in couriers
        for lane in c.lanes
        if lane.variant.name == variant
        for number, tracker in lane.trackers.items()
    }


def _score(scenario: Scenario, couriers: list[ScheduledCourier]) -> dict[str, list[Sample]]:
    """Each variant's samples, on the moments all of them scored (:func:`.accuracy.align`)."""
    variants: dict[str, list[Sample]] = {}
    for name in VARIANTS:
        seen = _seen(couriers, name)
        samples: list[Sample] = []
        for d in scenario.deliveries:
            dest = (d.request.destination.lat, d.request.destination.lon)
            for ev in seen.get(d.number, []):
                s = make_sample(d.number, ev.ts, ev.eta_at, (ev.lat, ev.lon), dest, d.trip.arrival_ms)
                if s is not None:
                    samples.append(s)
        variants[name] = samples
    return align(variants)


async def _floor(
    options: EtaOptions, scenario: Scenario, samples: dict[str, list[Sample]], out: TextIO
) -> dict[str, list[Sample]]:
    """The floor on one scored moment in ``floor_every`` per delivery, the same moments for every variant."""
    first = samples[VARIANTS[0]]
    if not options.floor_every or not first:
        return samples
    print(
        f"floor: re-driving {options.floor_futures} futures from one scored moment in {options.floor_every}...",
        file=out,
        flush=True,
    )
    began = time.monotonic()
    floored = await asyncio.to_thread(
        with_floor,
        scenario.options,
        scenario.start_ms,
        first,
        every=options.floor_every,
        futures=options.floor_futures,
    )
    scored = sum(s.floor_ms is not None for s in floored)
    print(f"floor: {scored} moments in {time.monotonic() - began:.0f} s", file=out, flush=True)
    # Aligned: the i-th sample of every variant is the same moment.
    return {
        name: [
            replace(s, floor_ms=f.floor_ms, floor_present_ms=f.floor_present_ms)
            for s, f in zip(group, floored, strict=True)
        ]
        for name, group in samples.items()
    }
