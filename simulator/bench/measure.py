"""The measurements, each on fresh server processes (and a reset Redis): ingest, fan-out, idle memory.

Each returns a JSON-ready dict with its figure, the load it was measured at, CPU% of the server,
Redis and load generators over the window, and anything that casts doubt on the figure
(connection errors, server-closed sockets, error lines in the server's log).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from ..client import Customer, LivemapClient, NewOrder, Point
from .fleet import DriverSpec, Fleet, plan_route
from .hist import merged
from .loadgens import CONNECT_TIMEOUT_S, Window, loadgen_errors, run_window, started
from .meters import rss_bytes
from .plan import DRIVER_MSGS_PER_S, BenchOptions, FanoutLoad, Plan
from .procs import Child, ChildError, start_bare, start_livemap, uses_uvloop
from .protocol import Connect, Connected, FanoutResult, IngestResult, LoadSpec, Ready, Stop
from .provision import provision, stand_in
from .redisdb import BenchRedis

#: Drivers and orders `make bench` sets up in one bulk call each (a fleet of 2,000).
BULK_ITEMS = 2000

#: Settings every livemap under test gets: the per-driver rate limit out of the closed loop's way,
#: and no geocoder (nothing here has an address without coordinates).
LIVEMAP_ENV = {"LIVEMAP_DRIVER_MSGS_PER_S": str(DRIVER_MSGS_PER_S), "LIVEMAP_GEOCODER": "none"}
#: Fleets this large are also created through a second, temporary livemap process.
_HELPER_FROM = 300


@dataclass(frozen=True)
class Servers:
    children: list[Child]
    urls: list[str]
    admin_token: str

    @property
    def pids(self) -> list[int]:
        return [c.pid for c in self.children]


def _errors(children: list[Child]) -> dict[str, Any]:
    lines = [line for c in children for line in c.errors()]
    dead = [c.name for c in children if not c.alive()]
    out: dict[str, Any] = {"server_errors": len(lines)}
    if lines:
        out["server_error_lines"] = lines[:3]
    if dead:
        out["server_died"] = dead
    return out


def _connects(readies: list[Ready]) -> dict[str, Any]:
    out: dict[str, Any] = {"connected": sum(r.connected for r in readies)}
    errors = sum(r.connect_errors for r in readies)
    if out["connected"] == 0:
        raise ChildError(f"no socket connected: {[e for r in readies for e in r.first_errors][:3]}")
    if errors:
        out["connect_errors"] = errors
        out["first_connect_errors"] = [e for r in readies for e in r.first_errors][:5]
    return out


class Bench:
    """Runs measurements one after another on fresh servers; `say` reports progress."""

    def __init__(
        self, options: BenchOptions, plan: Plan, redis: BenchRedis, work_dir: Path, say: Callable[[str], None]
    ) -> None:
        self.options, self.plan, self.redis, self.say = options, plan, redis, say
        self.work_dir = work_dir
        self.log_dir = work_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.window = Window(plan.warmup_s, plan.window_s, plan.drain_s)
        self._count = 0
        self._prefix = "bench-none"

    def _meter(self, servers: list[int]) -> dict[str, list[int]]:
        return {"server": servers, "redis": [] if self.redis.pid is None else [self.redis.pid]}

    def _parts(self, fleet: Fleet) -> list[list[DriverSpec]]:
        n = max(1, min(self.options.loadgens, len(fleet.drivers)))
        return [fleet.drivers[p::n] for p in range(n)]

    @property
    def prefix(self) -> str:
        """The current measurement's key prefix (its servers' data)."""
        return self._prefix

    async def reset(self) -> None:
        """Forget the previous measurement's data (also after the last one, on a given Redis)."""
        await self.redis.reset(self._prefix)

    @contextlib.asynccontextmanager
    async def livemap(self, processes: int = 1) -> AsyncIterator[Servers]:
        """`processes` fresh livemap servers on a reset Redis with a fresh key prefix."""
        await self.reset()
        self._count += 1
        self._prefix = f"bench{self._count}-{secrets.token_hex(3)}"
        async with contextlib.AsyncExitStack() as stack:
            children, urls, token = [], [], ""
            for p in range(processes):
                name = f"livemap-{self._count}-{p}"
                child, url, token_p = await start_livemap(
                    self.log_dir, self.work_dir / name, self.redis.url, self._prefix, LIVEMAP_ENV, name
                )
                children.append(await stack.enter_async_context(child))
                urls.append(url)
                token = token or token_p  # the first server creates the store
            yield Servers(children, urls, token)

    async def fleet(self, servers: Servers, drivers: int) -> Fleet:
        """Create the measurement's fleet; a large one also through a helper process (setup is not
        what is measured, and one process handles the REST calls on one core only)."""
        t = time.monotonic()
        async with contextlib.AsyncExitStack() as stack:
            urls = list(servers.urls)
            if drivers >= _HELPER_FROM and len(urls) == 1:
                name = f"livemap-{self._count}-setup"
                helper, url, _ = await start_livemap(
                    self.log_dir, self.work_dir / name, self.redis.url, self._prefix, LIVEMAP_ENV, name
                )
                await stack.enter_async_context(helper)
                urls.append(url)
            fleet = await provision(urls, servers.admin_token, drivers, self.options.seed)
        self.say(f"  {drivers} drivers with live orders created in {time.monotonic() - t:.1f} s")
        return fleet

    async def _ingest(self, name: str, urls: list[str], fleet: Fleet, servers: list[int]) -> dict[str, Any]:
        specs = [LoadSpec("ingest", urls, part, fleet.store_key, len(fleet.drivers)) for part in self._parts(fleet)]
        async with started(specs, self.work_dir, self.log_dir, name) as gens:
            readies, results, cpu = await run_window(gens, IngestResult, self.window, self._meter(servers), self.say)
            trouble = loadgen_errors(gens)
        acked = sum(r.acked for r in results)
        errors: dict[str, int] = {}
        for r in results:
            for code, count in r.errors.items():
                errors[code] = errors.get(code, 0) + count
        return {
            "pps": round(acked / self.plan.window_s),
            "drivers": len(fleet.drivers),
            "processes": len(urls),
            "acked": acked,
            "window_s": self.plan.window_s,
            "active_drivers": sum(r.active for r in results),
            "error_replies": errors,
            "ignored": sum(r.ignored for r in results),
            "ack_rtt": merged(r.rtt for r in results).summary(),
            "disconnects": sum(r.disconnects for r in results),
            "cpu_pct": cpu,
            "loadgens": len(specs),
            **_connects(readies),
            **trouble,
        }

    async def bare_ingest(self, loop: str = "auto") -> dict[str, Any]:
        """The transport ceiling: the same closed loop against a server that only decodes and acks."""
        child, url = await start_bare(self.log_dir, loop)
        async with child:
            fleet = stand_in(self.plan.ingest_drivers, self.options.seed)
            result = await self._ingest(f"bare-{loop}", [url], fleet, [child.pid])
            result["loop"] = _loop(child)
            return result | _errors([child])

    async def livemap_ingest(self, processes: int = 1) -> dict[str, Any]:
        async with self.livemap(processes) as servers:
            fleet = await self.fleet(servers, self.plan.ingest_drivers)
            result = await self._ingest(f"ingest{processes}", servers.urls, fleet, servers.pids)
            result["loop"] = _loop(servers.children[0])
            return result | _errors(servers.children)

    async def fanout(self, load: FanoutLoad, name: str) -> dict[str, Any]:
        """Latency from a driver's send to its customers' receive, at `load`."""
        async with self.livemap() as servers:
            fleet = await self.fleet(servers, load.drivers)
            parts = self._parts(fleet)
            specs = [
                LoadSpec(
                    "fanout",
                    servers.urls,
                    part,
                    fleet.store_key,
                    load.drivers,
                    customers_total=load.customers,
                    dispatchers=len(range(p, load.dispatchers, len(parts))),
                    hz=load.hz,
                    seed=self.options.seed,
                    drain_s=self.plan.drain_s,
                )
                for p, part in enumerate(parts)
            ]
            async with started(specs, self.work_dir, self.log_dir, name) as gens:
                readies, results, cpu = await run_window(
                    gens, FanoutResult, self.window, self._meter(servers.pids), self.say
                )
                trouble = loadgen_errors(gens)
            return _fanout_result(load, results, cpu) | _connects(readies) | trouble | _errors(servers.children)

    async def bulk(self, items: int = BULK_ITEMS) -> dict[str, Any]:
        """A fleet's set-up: `items` drivers and `items` orders (with routes) in one bulk call each,
        next to the same orders created one REST call at a time, 32 in flight (the baseline)."""
        async with self.livemap() as servers, LivemapClient(servers.urls[0], timeout_s=600.0) as client:
            store = await client.create_store(servers.admin_token, "bulk")
            client.api_key = store.api_key
            rng = random.Random(self.options.seed)
            orders = [_bench_order(f"b{i}", plan_route(rng)) for i in range(items)]
            t = time.monotonic()
            drivers = await client.bulk_drivers([{"id": f"d{i}", "name": f"Bulk driver {i}"} for i in range(items)])
            drivers_s = time.monotonic() - t
            t = time.monotonic()
            made = await client.bulk_orders(orders)
            bulk_s = time.monotonic() - t
            gate = asyncio.Semaphore(32)

            async def single(order: NewOrder) -> None:
                async with gate:
                    await client.create_order(msgspec.structs.replace(order, id="s" + order.id))

            t = time.monotonic()
            await asyncio.gather(*(single(o) for o in orders))
            single_s = time.monotonic() - t
        if made["created"] != items or drivers["created"] != items:
            raise ChildError(f"bulk created {made['created']} orders and {drivers['created']} drivers of {items}")
        return {
            "items": items,
            "drivers_bulk_s": round(drivers_s, 2),
            "orders_bulk_s": round(bulk_s, 2),
            "orders_single_s": round(single_s, 2),
            "speedup": round(single_s / bulk_s, 2) if bulk_s > 0 else None,
        }

    async def idle(self) -> dict[str, Any]:
        """Server memory per idle customer socket: RSS before and after `plan.idle` more connect."""
        plan = self.plan
        async with self.livemap() as servers:
            fleet = await self.fleet(servers, max(1, plan.idle // 10))  # 10 customers per order, as the peers
            spec = LoadSpec(
                "idle",
                servers.urls,
                fleet.drivers,
                fleet.store_key,
                len(fleet.drivers),
                warm=plan.idle_warm,
                idle=plan.idle,
            )
            pid = servers.pids[0]
            async with started([spec], self.work_dir, self.log_dir, "idle") as (gen,):
                ready = await gen.receive(Ready, CONNECT_TIMEOUT_S)
                await asyncio.sleep(plan.drain_s)  # let the warm-up's allocations settle
                before = rss_bytes(pid)
                await gen.send(Connect())
                connected = await gen.receive(Connected, CONNECT_TIMEOUT_S)
                await asyncio.sleep(plan.drain_s)
                after = rss_bytes(pid)
                await gen.send(Stop())
            if connected.connected == 0:
                raise ChildError(f"no idle customer connected: {connected.first_errors}")
            result: dict[str, Any] = {
                "bytes_per_conn": round((after - before) / connected.connected),
                "connections": connected.connected,
                "warm": ready.connected,
                "rss_before": before,
                "rss_after": after,
            }
            if connected.connect_errors or ready.connect_errors:
                result["connect_errors"] = connected.connect_errors + ready.connect_errors
                result["first_connect_errors"] = (ready.first_errors + connected.first_errors)[:5]
            return result | _errors(servers.children)


def _loop(child: Child) -> str:
    """The event loop a server runs on (uvloop's extension loaded or not)."""
    return "uvloop" if uses_uvloop(child.pid) else "asyncio"


def _fanout_result(load: FanoutLoad, results: list[FanoutResult], cpu: dict[str, int]) -> dict[str, Any]:
    latency = merged(r.latency for r in results).summary()
    expected, received = sum(r.expected for r in results), sum(r.received for r in results)
    expected_ok, received_ok = sum(r.expected_non_slow for r in results), sum(r.received_non_slow for r in results)
    ack_errors: dict[str, int] = {}
    for r in results:
        for code, count in r.ack_errors.items():
            ack_errors[code] = ack_errors.get(code, 0) + count
    return {
        "drivers": load.drivers,
        "hz": load.hz,
        "customers": load.customers,
        "dispatchers": load.dispatchers,
        "p50_ms": latency["p50_ms"],
        "p99_ms": latency["p99_ms"],
        "max_ms": latency["max_ms"],
        "sent": sum(r.sent for r in results),
        "sent_new_seconds": sum(r.sent_new_seconds for r in results),
        "acked": sum(r.acked for r in results),
        "ack_errors": ack_errors,
        "customers_connected": sum(r.customers for r in results),
        "expected": expected,
        "received": received,
        "lost": expected - received,
        "slow_consumer_closes": sum(r.slow_closed for r in results),
        "lost_non_slow": expected_ok - received_ok,
        "disconnects": sum(r.disconnects for r in results),
        "ack_latency": merged(r.ack_latency for r in results).summary(),
        "send_lag": merged(r.send_lag for r in results).summary(),
        "dispatch": {
            "sockets": sum(r.dispatchers for r in results),
            "locations_received": sum(r.dispatch_received for r in results),
            "latency": merged(r.dispatch_latency for r in results).summary(),
        },
        "cpu_pct": cpu,
    }


def _bench_order(oid: str, route: list[tuple[float, float]]) -> NewOrder:
    return NewOrder(
        id=oid,
        customer=Customer(name=f"Bulk customer {oid}"),
        destination=Point(*route[-1]),
        origin=Point(*route[0]),
        route=[list(p) for p in route],
    )
