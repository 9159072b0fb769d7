"""The shared resources one server process holds, created by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from livemap.outbound.policy import OutboundPolicy
from livemap.realtime.hub import Hub
from livemap.settings import Settings
from livemap.storage.connection import EmbeddedRedis
from livemap.storage.repository import Repository
from livemap.tracking.etaboard import EtaBoard
from livemap.tracking.positions import Positions
from livemap.tracking.ratelimit import RateLimits


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    repo: Repository
    positions: Positions
    hub: Hub
    redis_url: str
    etas: EtaBoard
    #: Each driver's message budget (LIVEMAP_DRIVER_MSGS_PER_S), across its sockets and tracker requests.
    driver_limits: RateLimits
    #: Where stores' webhooks, SMS gateways and SMTP servers may point (LIVEMAP_OUTBOUND_ALLOW).
    outbound: OutboundPolicy
    #: The redis-server child this process runs and supervises; None with an external Redis.
    embedded: EmbeddedRedis | None = None

    def base_url(self, conn: HTTPConnection) -> str:
        """Origin for links livemap hands out: LIVEMAP_PUBLIC_URL, else the request's own."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        return f"{conn.url.scheme.replace('ws', 'http')}://{conn.url.netloc}"


def services(conn: HTTPConnection) -> Services:
    svc: Services = conn.app.state.services
    return svc
