"""The ASGI application: `create_app(settings)` with one lifespan that owns every resource."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import Secret
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware

from livemap import integrations
from livemap.domain import security
from livemap.domain.eta import EtaModel
from livemap.notify import Worker
from livemap.outbound.policy import OutboundPolicy
from livemap.realtime.hub import Hub
from livemap.routing.providers import make_router
from livemap.services import Services
from livemap.settings import Settings
from livemap.storage import layout
from livemap.storage.connection import open_redis
from livemap.storage.keys import Keys
from livemap.storage.repository import Repository
from livemap.storage.secretbox import SecretBox
from livemap.tracking.etaboard import EtaBoard
from livemap.tracking.fleet import FleetSpeeds
from livemap.tracking.legroutes import LegRoutes
from livemap.tracking.positions import Positions
from livemap.tracking.ratelimit import RateLimits
from livemap.tracking.sweeper import RetentionSweep
from livemap.tracking.watchdog import Watchdog
from livemap.web.errors import DOMAIN_ERRORS, ApiError, handle_api_error, handle_domain_error, handle_http_error
from livemap.web.failsafe import CatchAll
from livemap.web.routes import all_routes

log = logging.getLogger("livemap")
#: Allocations (minus frees) between first-generation collections; the default of 700 means a
#: collection every few hundred messages under load.
_GC_GEN0_THRESHOLD = 50_000


def admin_token(settings: Settings) -> str:
    """LIVEMAP_ADMIN_TOKEN, else the one generated into the data dir on first start."""
    if str(settings.admin_token):
        return str(settings.admin_token)
    path = Path(settings.data_dir) / "admin_token"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = security.new_token("lma")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    # Printed once, on the console only (not through logging), so the operator can create stores.
    print(f"livemap: generated admin token {token} (kept in {path}; set LIVEMAP_ADMIN_TOKEN to choose your own)")
    return token


def settle_garbage_collector() -> None:
    """Keep the cyclic garbage collector's pauses off the live path.

    Every full collection walks every tracked object; with the libraries' own objects (about a
    quarter of a million) and thousands of open sockets, a walk stalled the event loop for
    hundreds of milliseconds, and every driver's ack and every customer's location with it.
    What exists once the app has started (modules, settings, the Redis pool) lives as long as the
    process: frozen, it is never walked again. A larger first generation makes collections rarer;
    what a socket allocates per message is freed by reference counting, not by the collector.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_GEN0_THRESHOLD, 20, 100)


def create_app(settings: Settings | None = None) -> Starlette:
    """The livemap server. Settings default to the environment (`LIVEMAP_*`)."""
    settings = settings or Settings.from_env()
    return Starlette(
        routes=all_routes(),
        lifespan=functools.partial(_lifespan, settings=settings),
        middleware=[Middleware(CatchAll), Middleware(GZipMiddleware, minimum_size=1024)],
        exception_handlers={
            ApiError: handle_api_error,
            HTTPException: handle_http_error,
            **dict.fromkeys(DOMAIN_ERRORS, handle_domain_error),
        },
    )


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette, settings: Settings) -> AsyncIterator[None]:
    """Every resource the process holds, opened in order and closed in reverse when the server stops."""
    resolved = settings
    outbound = OutboundPolicy.parse(settings.outbound_allow)  # a bad entry stops the start, before anything opens
    token = admin_token(settings)
    if token != str(settings.admin_token):
        resolved = replace(settings, admin_token=Secret(token))
    redis = open_redis(settings.redis_url, Path(settings.data_dir), restart_delay=settings.redis_restart_delay_s)
    async with redis as (db, url, embedded):
        keys = Keys(settings.key_prefix)
        try:
            await layout.check(db.client, keys)
        except layout.LayoutMismatch as exc:
            log.error("%s", exc)  # the one line an operator needs, before uvicorn's traceback
            raise
        box = SecretBox.from_settings(str(settings.secret_key), Path(settings.data_dir), bool(settings.redis_url))
        repo = Repository(db, keys, stream_maxlen=settings.stream_maxlen, box=box)
        # LIVEMAP_WORKER_INLINE (`livemap demo`): this process sends notifications too.
        worker = Worker(repo, resolved) if settings.worker_inline else contextlib.nullcontext()
        router = await make_router(settings)
        legs = LegRoutes(router, repo, settings.reroute_interval_s)
        fleet = FleetSpeeds(repo, router, settings.fleet_speeds, settings.fleet_refresh_s)
        hub = Hub(db, keys.hub_channel(), settings.client_queue)
        sweep = RetentionSweep(repo, settings.retention_sweep_s)
        async with hub, Watchdog(repo, settings), worker, legs, fleet, sweep:
            positions = Positions(repo, EtaModel(settings), legs, fleet)
            limits = RateLimits(settings.driver_msgs_per_s)
            app.state.services = Services(
                resolved, repo, positions, hub, url, EtaBoard(repo), limits, outbound, embedded
            )
            app.state.geocoding = integrations.Geocoding.from_settings(db.client, keys, resolved)
            settle_garbage_collector()
            kind = "cluster, sharded pub/sub" if db.sharded else "cluster" if db.cluster else "single"
            log.info("livemap ready (redis %s, %s)", url, kind)
            yield
