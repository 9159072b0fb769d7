"""Setting the ETA benchmark up: a store per variant, and every planned driver in each of them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .accuracy import VARIANTS
from .client import ApiError, LivemapClient, with_retries
from .etalanes import Counters, Lane, ScheduledCourier, Variant
from .fakes import fake_person_name
from .scenario import Delivery, Scenario
from .stats import Stats

if TYPE_CHECKING:
    from .etabench import EtaOptions

log = logging.getLogger(__name__)

_SETUP_CONCURRENCY = 16


@dataclass(frozen=True)
class Servers:
    """The two livemap servers of a run: with fleet speeds (two stores) and without (one)."""

    fleet_url: str
    no_fleet_url: str
    fleet_token: str
    no_fleet_token: str

    @contextlib.asynccontextmanager
    async def clients(self) -> AsyncIterator[list[Variant]]:
        """One store per variant, in :data:`.accuracy.VARIANTS` order, each with its own client."""
        router, no_fleet, store_route = VARIANTS
        async with (
            LivemapClient(self.fleet_url) as a,
            LivemapClient(self.no_fleet_url) as b,
            LivemapClient(self.fleet_url) as c,
        ):
            await _open_store(a, self.fleet_token, "ETA benchmark: router")
            await _open_store(b, self.no_fleet_token, "ETA benchmark: router, no fleet speeds")
            await _open_store(c, self.fleet_token, "ETA benchmark: store's route")
            yield [
                Variant(router, self.fleet_url, a, with_route=False),
                Variant(no_fleet, self.no_fleet_url, b, with_route=False),
                Variant(store_route, self.fleet_url, c, with_route=True),
            ]


async def _open_store(client: LivemapClient, admin_token: str, name: str) -> None:
    """Create a store; ``client`` then acts for it."""
    store = await with_retries(lambda: client.create_store(admin_token, name))
    client.api_key = store.api_key


class _Setup:
    """Makes the couriers: each planned driver in every variant's store, a few at a time."""

    def __init__(
        self, options: EtaOptions, scenario: Scenario, variants: list[Variant], stats: Stats, counters: Counters
    ) -> None:
        self.options = options
        self.scenario = scenario
        self.variants = variants
        self.stats = stats
        self.counters = counters
        self.made: list[ScheduledCourier] = []
        self._gate = asyncio.Semaphore(_SETUP_CONCURRENCY)
        self._width = len(str(scenario.options.drivers))

    async def _lane(self, variant: Variant, index: int) -> Lane:
        seed = self.scenario.options.seed
        name = fake_person_name(random.Random(f"{seed}:driver-name:{index}"))
        driver_id = f"driver-{index + 1:0{self._width}d}"
        created = await with_retries(lambda: variant.client.create_driver(name, driver_id, "car"))
        return Lane(variant, created.id, created.token, self.stats, self.counters, self.options.settle_timeout_s)

    async def start(self, index: int, deliveries: list[Delivery]) -> ScheduledCourier:
        async with self._gate:
            courier = ScheduledCourier(
                index=index,
                deliveries=deliveries,
                lanes=[await self._lane(v, index) for v in self.variants],
                stats=self.stats,
                interval_s=self.options.interval_s,
                seed=self.scenario.options.seed,
                profile=self.scenario.options.profile,
            )
            self.made.append(courier)
            await courier.open(deliveries[0])
            if not await courier.connect():
                log.warning("driver %s: no stops from livemap on its sockets yet", courier.label)
            return courier


async def setup_couriers(
    options: EtaOptions,
    scenario: Scenario,
    variants: list[Variant],
    stats: Stats,
    counters: Counters,
) -> list[ScheduledCourier]:
    """Every planned driver in every variant's store, its first order open and its sockets connected."""
    setup = _Setup(options, scenario, variants, stats, counters)
    try:
        # A TaskGroup: when one driver cannot be set up, the others are cancelled, not orphaned.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(setup.start(i, run)) for i, run in enumerate(scenario.by_driver())]
    except BaseException as failed:
        for courier in setup.made:
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
