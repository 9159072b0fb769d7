"""Create a measurement's fleet through livemap's public REST API (or a stand-in for the bare server).

Every driver gets one order of its own, created with its route, assigned to it and shipped, so
the order is live: each fix then runs the whole hot path (route projection, ETA, events, the
ingest script's stream appends and publishes).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..client import Customer, LivemapClient, NewOrder, Point, with_retries
from .fleet import DriverSpec, Fleet, plan_route

T = TypeVar("T")

#: REST calls in flight while provisioning: setup speed is not what is measured.
_CONCURRENCY = 32


async def provision(urls: list[str], admin_token: str, drivers: int, seed: int) -> Fleet:
    """A new store with `drivers` drivers, each with one live order, created through the livemap
    processes at `urls` (all on one Redis; the store is created on the first, whose admin token this is)."""
    rng = random.Random(seed)
    routes = [plan_route(rng) for _ in range(drivers)]
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(LivemapClient(url, timeout_s=60.0)) for url in urls]
        store = await with_retries(lambda: clients[0].create_store(admin_token, f"bench {seed}"))
        for client in clients:
            client.api_key = store.api_key
        gate = asyncio.Semaphore(_CONCURRENCY)

        async def call(make: Callable[[], Awaitable[T]]) -> T:
            async with gate:
                return await with_retries(make)

        async def one(i: int) -> DriverSpec:
            client, did, route = clients[i % len(clients)], f"d{i}", routes[i]
            driver = await call(lambda: client.create_driver(f"Bench driver {i}", did))
            order = NewOrder(
                id=f"o{i}",
                customer=Customer(name=f"Bench customer {i}"),
                destination=Point(*route[-1]),
                origin=Point(*route[0]),
                route=[list(p) for p in route],
            )
            created = await call(lambda: client.create_order(order))
            await call(lambda: client.assign(order.id, did))
            await call(lambda: client.set_stage(order.id, "shipped"))
            return DriverSpec(i, did, driver.token, route, created.tracking_id, created.tracking_token)

        specs = await asyncio.gather(*(one(i) for i in range(drivers)))
    return Fleet(store.api_key, list(specs))


def stand_in(drivers: int, seed: int) -> Fleet:
    """The same shape of fleet for the bare server, which checks no credential and stores nothing."""
    rng = random.Random(seed)
    return Fleet(
        "bare",
        [DriverSpec(i, f"d{i}", f"bare-{i}", plan_route(rng), f"t{i}", "bare") for i in range(drivers)],
    )
