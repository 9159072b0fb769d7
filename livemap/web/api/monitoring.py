"""`GET /metrics`: this process's counters in Prometheus's text format, and the outbox as Redis holds it."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livemap import metrics
from livemap.services import services
from livemap.web import auth

log = logging.getLogger("livemap.api")
#: A scrape must not hang on a frozen Redis: past this the outbox figures keep their last values.
_REDIS_TIMEOUT_S = 2.0


async def metrics_endpoint(request: Request) -> Response:
    auth.require_metrics(request)
    repo = services(request).repo
    try:
        depth, dead = await asyncio.wait_for(repo.outbox_figures(), _REDIS_TIMEOUT_S)
    except Exception as exc:  # Redis away: the counters are still worth scraping
        log.warning("metrics: outbox figures unavailable: %r", exc)
    else:
        metrics.OUTBOX_DEPTH.set(depth)
        metrics.DEAD_LETTERS.set(dead)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics_endpoint, methods=["GET"])]
