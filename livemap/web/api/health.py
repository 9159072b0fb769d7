"""`/healthz` (liveness) and `/readyz` (readiness: Redis answers)."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livemap.domain.responses import Health
from livemap.services import services
from livemap.web.errors import json_response

log = logging.getLogger("livemap.api")
_READY_TIMEOUT = 2.0


async def healthz(request: Request) -> Response:
    # Liveness of the unit livemap is: with the embedded Redis, that is this process *and* its
    # redis-server child. While the child is dead (between a crash and its restart, or if restarts keep
    # failing) the unit is not alive, and restarting it is what could heal it: 503. An external Redis
    # being down is not ours to heal: restarting livemap would not bring it back, only lose every open
    # socket, so liveness stays 200 and /readyz alone says 503 (the load balancer stops sending here).
    # A restarted child still loading its AOF is running: 200 here, 503 on /readyz until it answers.
    embedded = services(request).embedded
    if embedded is not None and not embedded.running:
        return json_response(Health("unavailable"), 503)
    return json_response(Health("ok"))


async def readyz(request: Request) -> Response:
    try:
        # Bounded: a frozen Redis must make the probe fail, not hang the load balancer's check.
        await asyncio.wait_for(services(request).repo.redis.ping(), _READY_TIMEOUT)
    except Exception as exc:  # any failure to reach Redis means "not ready", whatever its type
        log.warning("readiness probe: Redis unavailable: %r", exc)
        return json_response(Health("unavailable"), 503)
    return json_response(Health("ready"))


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
