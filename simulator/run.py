"""``python -m simulator run``: a demo store with N virtual drivers delivering order after order (:mod:`.worlds`)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

from livemap.domain.signin import driver_sign_in_url
from livemap.tasks import first_error

from .client import ApiError, LivemapClient, StoreCreated, with_retries
from .clock import SimClock
from .courier import Courier, DemoOrder
from .fakes import fake_person_name
from .link import DriverLink
from .signals import on_stop_signals
from .stats import Stats
from .worlds import World

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Order links printed on the console; the links file gets them all.
SHOWN_ORDERS = 3
FIRST_ORDER_NUMBER = 1001
# Setup requests in flight at once: enough to start hundreds of drivers quickly, few enough
# not to look like an attack to the server's flood protection.
_SETUP_CONCURRENCY = 16


@dataclass(frozen=True)
class RunOptions:
    """Everything ``run`` needs; the CLI fills it from flags."""

    admin_token: str
    world: World
    url: str = "http://127.0.0.1:8000"
    drivers: int = 5
    interval_s: float = 1.0
    speedup: float = 1.0
    seed: int = 1
    duration_s: float = 0.0
    links_file: Path | None = None
    store_name: str = "Demo store"
    progress_every_s: float = 30.0
    #: How far simulated time may run ahead of the wall clock (livemap refuses fixes > 10 min ahead).
    max_lead_s: float | None = 540.0


@dataclass(frozen=True)
class _SignIn:
    """A simulated driver the console offers to open in the driver app (`/driver#token=...`)."""

    id: str
    name: str
    token: str


@dataclass
class _Demo:
    store: StoreCreated
    couriers: list[Courier]
    first_orders: list[DemoOrder]
    #: The first driver, whose sign-in link is printed.
    driver: _SignIn


async def run(options: RunOptions, *, out: TextIO | None = None) -> int:
    """Run the demo until SIGINT/SIGTERM or ``duration_s``; the process exit status (0 ok, 1 setup failed)."""
    out = out or sys.stdout
    stop = asyncio.Event()
    stats = Stats(drivers=options.drivers)
    clock = SimClock(options.speedup, max_lead_s=options.max_lead_s)
    with on_stop_signals(stop.set):
        async with LivemapClient(options.url) as client:
            links = _LinksFile(options.links_file, client.absolute)
            try:
                demo = await _until(stop, _setup(options, client, clock, stats, links))
            except ApiError as exc:
                print(f"error: {_explain(exc, options.url)}", file=sys.stderr, flush=True)
                return 1
            if demo is None:
                return 0
            _announce(options, client, demo, out, links)
            await _drive(options, demo, clock, stats, stop, out)
        return 0


async def _open_store(options: RunOptions, client: LivemapClient) -> StoreCreated:
    """The demo store, in its world's time zone, once the server answers; the client then acts with its key."""
    warned = False

    def waiting(exc: ApiError) -> None:
        nonlocal warned
        if exc.status == 0 and not warned:
            warned = True
            print(f"waiting for livemap at {options.url} ...", file=sys.stderr, flush=True)

    store = await with_retries(lambda: client.create_store(options.admin_token, options.store_name), on_retry=waiting)
    client.api_key = store.api_key
    await with_retries(lambda: client.patch_store({"timezone": options.world.timezone}))
    return store


async def _setup(options: RunOptions, client: LivemapClient, clock: SimClock, stats: Stats, links: _LinksFile) -> _Demo:
    store = await _open_store(options, client)
    # First orders get 1001.. in driver order, the ones after them whatever number is next.
    numbers = itertools.count(FIRST_ORDER_NUMBER + options.drivers)
    gate = asyncio.Semaphore(_SETUP_CONCURRENCY)
    width = len(str(options.drivers))

    async def start(index: int) -> tuple[Courier, DemoOrder, _SignIn]:
        async with gate:
            name = fake_person_name(random.Random(f"{options.seed}:driver-name:{index}"))
            created = await with_retries(lambda: client.create_driver(name, f"driver-{index + 1:0{width}d}"))
            courier = Courier(
                driver_id=created.id,
                client=client,
                link=DriverLink(options.url, created.token, stats, label=created.id),
                world=options.world,
                clock=clock,
                stats=stats,
                numbers=numbers,
                seed=options.seed,
                interval_s=options.interval_s,
                on_order=links.add,
            )
            order = await courier.open_first_order(FIRST_ORDER_NUMBER + index)
            return courier, order, _SignIn(created.id, name, created.token)

    try:
        # A TaskGroup, not gather: when one driver cannot be set up, the others are cancelled, not orphaned.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(start(i)) for i in range(options.drivers)]
    except BaseExceptionGroup as failed:
        api_errors = failed.subgroup(ApiError)
        if api_errors is None:
            raise
        raise first_error(api_errors) from None
    started = [task.result() for task in tasks]
    return _Demo(store, [c for c, _, _ in started], [o for _, o, _ in started], started[0][2])


def _announce(options: RunOptions, client: LivemapClient, demo: _Demo, out: TextIO, links: _LinksFile) -> None:
    url, store, driver = client.base_url, demo.store, demo.driver
    first = demo.first_orders[0]
    assert first.created is not None
    # What a new store owner opens first: each of the four audiences' pages, signed in where it takes a secret.
    rows = [
        ("Store id:", store.id),
        ("Dispatcher:", f"{url}/dispatch   (store key: {store.api_key})"),
        ("Guest form:", f"{url}/track?store={store.id}   (order {first.number} + {first.request.customer.email})"),
        ("Driver app:", driver_sign_in_url(url, driver.token)),
        ("", f"signs in as {driver.id} ({driver.name}), a simulated driver: the simulator sends its fixes"),
    ]
    orders = [
        (f"Track order {o.number}:", client.absolute(o.created.tracking_url)) for o in demo.first_orders if o.created
    ]
    api = f"{url}/api/track/{first.created.tracking_id}?t={first.created.tracking_token}"
    snapshot = ("Snapshot API:", f"{api}   (the first order's, as JSON)")
    shown = orders[:SHOWN_ORDERS]
    if len(orders) > SHOWN_ORDERS:
        more = f"{len(orders) - SHOWN_ORDERS} more"
        shown.append(("", f"... and {more}" + (f" in {options.links_file}" if options.links_file else "")))
    speed = f", {options.speedup:g}x speed" if options.speedup != 1 else ""
    where = {
        "helsinki": "on central Helsinki's streets; livemap routes every order",
        "grid": "on a made-up street grid; orders carry their routes",
    }[options.world.name]
    tail = f"  {options.drivers} drivers {where}, a fix every {options.interval_s:g} s{speed}. Ctrl-C stops."
    width = max(len(label) for label, _ in [*rows, *orders, snapshot])

    def aligned(table: list[tuple[str, str]]) -> list[str]:
        return [f"  {label:<{width}} {value}" for label, value in table]

    print("\n".join(["livemap demo is running", *aligned([*rows, *shown, snapshot]), tail]), file=out, flush=True)
    links.write_header(["livemap demo is running", *aligned([*rows, *orders, snapshot])])


async def _drive(
    options: RunOptions, demo: _Demo, clock: SimClock, stats: Stats, stop: asyncio.Event, out: TextIO
) -> None:
    started = time.monotonic()
    tasks = [asyncio.create_task(c.run(), name=f"courier {c.driver_id}") for c in demo.couriers]

    def finished(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            # A bug, not a network problem (those are retried): say which driver and why, keep the rest going.
            log.error("%s stopped", task.get_name(), exc_info=task.exception())
        if all(t.done() for t in tasks):
            stop.set()

    for task in tasks:
        task.add_done_callback(finished)

    async def report() -> None:
        said_capped = False
        while True:
            await asyncio.sleep(options.progress_every_s)
            if clock.capped and not said_capped:
                said_capped = True
                lead = (clock.now_ms() - time.time() * 1000) / 60_000
                print(f"simulated time is {lead:.0f} min ahead of the clock: from now on it runs at 1x", file=out)
            print(stats.progress_line(time.monotonic() - started), file=out, flush=True)

    reporter = asyncio.create_task(report())
    try:
        if options.duration_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), options.duration_s)
        else:
            await stop.wait()
    finally:
        reporter.cancel()
        for task in tasks:
            task.cancel()
        # Sockets close with a 2 s handshake timeout; do not hang on a dead server beyond that.
        await asyncio.wait([reporter, *tasks], timeout=5.0)
        print("stopped. " + stats.progress_line(time.monotonic() - started), file=out, flush=True)


async def _until(stop: asyncio.Event, work: Coroutine[Any, Any, T]) -> T | None:
    """Await ``work`` unless ``stop`` is set first, in which case cancel it and return None."""
    task = asyncio.create_task(work)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait([task])
    return None if task.cancelled() else task.result()


def _explain(exc: ApiError, url: str) -> str:
    if exc.status == 0:
        return f"cannot reach livemap at {url}: is the server running? ({exc.message})"
    if exc.path == "/api/stores" and exc.status in (401, 403):
        return (
            f"the server refused the admin token ({exc.status} {exc.code}): check --admin-token or LIVEMAP_ADMIN_TOKEN"
        )
    return f"setup failed: {exc}"


class _LinksFile:
    """The printed links, also written to a file (and each new order's link appended as it opens)."""

    def __init__(self, path: Path | None, absolute: Callable[[str], str]) -> None:
        self.path = path
        self._absolute = absolute
        self._ready = False

    def write_header(self, lines: list[str]) -> None:
        if self.path is None:
            return
        try:
            self.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            self._ready = True
        except OSError as exc:
            log.warning("cannot write the links file %s: %s", self.path, exc)

    def add(self, order: DemoOrder) -> None:
        # Orders created during setup are in the header; later ones are appended as they open.
        if self.path is None or not self._ready or order.created is None:
            return
        try:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(f"  Track order {order.number}: {self._absolute(order.created.tracking_url)}\n")
        except OSError as exc:
            log.warning("cannot append to %s: %s", self.path, exc)
