"""Twelve-factor configuration: every knob is an environment variable with the `LIVEMAP_` prefix."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from starlette.config import Config
from starlette.datastructures import Secret


@dataclass(frozen=True, slots=True)
class Settings:
    """Server settings. `Settings.from_env()` reads them; tests build them directly."""

    #: External Redis (``redis://``, ``rediss://`` or ``unix://``), or a Redis Cluster by any node
    #: (``redis+cluster://``, ``rediss+cluster://``); empty means run the embedded one.
    redis_url: str = ""
    #: Where the embedded Redis keeps its AOF and where a generated admin token is stored.
    data_dir: Path = Path("var")
    #: First pause before restarting the embedded Redis after it died; doubled after each restart that
    #: fails or dies again within 30 s, up to 5 s.
    redis_restart_delay_s: float = 0.1
    #: Prefix of every Redis key and channel, so several deployments (or test runs) can share one Redis.
    key_prefix: str = "lm"
    #: Creates stores. Generated into the data dir and printed on first start when unset.
    admin_token: Secret = field(default_factory=lambda: Secret(""))
    #: How often each process deletes the orders past their store's retention (`retention_days`); 0: never.
    retention_sweep_s: float = 300.0
    #: Log one JSON object per line (ts, level, logger, message, exception) instead of uvicorn's text.
    json_logs: bool = False
    #: Bearer token for `GET /metrics` (Prometheus's `authorization` setting); empty: the admin token.
    metrics_token: Secret = field(default_factory=lambda: Secret(""))
    #: Seals the secrets livemap stores and must give back (stores' webhook/SMTP/shop secrets, customers'
    #: tracking tokens). Comma-separated to rotate: the first seals, every one opens. Generated into the
    #: data dir when unset: every process sharing a Redis must have the same.
    secret_key: Secret = field(default_factory=lambda: Secret(""))
    #: Base URL used in the links livemap hands out (tracking links); empty means "from the request".
    public_url: str = ""
    #: Map tiles for the pages (a store may set its own in its branding settings).
    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    #: Attribution shown on the map; keep the tile provider's required credit.
    tile_attribution: str = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
    #: A connection's request headers must be complete this long after it opens (or after the first byte of
    #: a next request on a kept-alive one); else 408 and closed. Never applies to an upgraded websocket.
    header_timeout_s: float = 10.0
    #: Longest gap between two parts of a request body; past it, 408 and closed...
    body_timeout_s: float = 10.0
    #: ... and after a first body timeout, the slowest average a body may arrive at (0: gaps only).
    body_min_bytes_per_s: float = 500.0
    #: An idle kept-alive connection is closed after this many seconds without a next request (uvicorn's).
    keep_alive_timeout_s: int = 5
    #: On SIGTERM, requests under way get this many seconds to finish, then are ended (a body still arriving
    #: gets a 503) and the process exits; websockets are closed at once with 1012 (clients reconnect).
    shutdown_timeout_s: int = 10
    #: Largest websocket frame the application answers with a typed error; larger ones close the socket.
    max_frame_bytes: int = 64 * 1024
    #: Most fixes in one batch message.
    max_batch: int = 1000
    #: Messages a driver socket may send per second on average (burst of twice that).
    driver_msgs_per_s: float = 50.0
    #: Events kept per order stream for `since` replay (approximate, `XADD MAXLEN ~`).
    stream_maxlen: int = 5000
    #: Longest a driver message's write may wait for Redis (frozen, partitioned): past it the driver is
    #: answered `unavailable` and resends (a write that lands later makes the resend `ignored`: stored once).
    redis_timeout_s: float = 3.0
    #: Pending messages per subscriber socket before it is treated as a slow consumer and closed.
    client_queue: int = 256
    #: Slowest speed the ETA model divides by, so a stop does not send the ETA to infinity.
    speed_floor_mps: float = 1.5
    #: Route length over straight-line distance, used when there is no route or the driver left it.
    detour_factor: float = 1.3
    #: A fix farther than this from the route (or twice its accuracy) counts as off the route...
    off_route_m: float = 50.0
    #: ... and this many such fixes in a row make the driver off-route (as many back on: rejoined).
    off_route_fixes: int = 3
    #: `arriving` fires once per approach when the driver is this close in metres...
    arriving_m: float = 150.0
    #: ... or in seconds of ETA.
    arriving_s: float = 180.0
    #: `arrived` fires when the driver stops within this radius of the destination.
    arrived_m: float = 40.0
    #: Time spent at each stop before the next one (multi-stop ETAs).
    dwell_s: float = 120.0
    #: `delayed` fires when the ETA passes the promised time by more than this.
    delay_grace_s: float = 60.0
    #: A driver with no fix for this long is stale (`stale` event; the customer page says "last seen").
    stale_after_s: float = 60.0
    #: A driver is online while its newest fix is younger than this (then an `offline` event).
    online_window_s: float = 600.0
    #: How often each process looks for drivers that went stale or offline.
    watchdog_interval_s: float = 5.0
    #: How long a dispatcher stays signed in to `/dispatch` (the session expires in Redis).
    session_ttl_s: float = 12 * 3600.0
    #: Above this many online drivers the dispatch page asks its socket for the map's area only.
    dispatch_viewport_drivers: int = 300
    #: Notifications worker: a delivery (one event, one channel) is tried this many times, then dead-lettered.
    worker_max_tries: int = 8
    #: ... waiting base x 2^(tries-1) seconds (plus up to 25% jitter) between tries...
    worker_backoff_base_s: float = 5.0
    #: ... but never longer than this.
    worker_backoff_cap_s: float = 900.0
    #: An outbox entry a worker read but did not finish for this long is taken over (its worker died).
    worker_claim_idle_ms: int = 60_000
    #: Longest one delivery attempt (HTTP request, SMTP session) may take; keep it well under the claim idle time.
    worker_timeout_s: float = 15.0
    #: Also run the notifications worker inside each server process (`livemap demo` does).
    worker_inline: bool = False
    #: Internal destinations a store's webhook, SMS gateway or SMTP server may still point at, which are
    #: otherwise refused (loopback, private, link-local, metadata...): comma-separated addresses,
    #: networks (CIDR) and host names, e.g. `10.0.5.0/24,smtp.internal.example`.
    outbound_allow: str = ""
    #: Geocoder for shop addresses that come without coordinates: a geopy service name, or `none`.
    geocoder: str = "nominatim"
    #: Its base URL, e.g. a self-hosted Nominatim (`http://nominatim.internal:8080`); empty: the service's own.
    geocoder_url: str = ""
    #: API key, for geocoding services that need one.
    geocoder_api_key: Secret = field(default_factory=lambda: Secret(""))
    #: Longest a webhook waits for the geocoder (shops expect an answer within seconds).
    geocoder_timeout_s: float = 3.0
    #: Least time between two geocoder requests from one process (the public Nominatim allows one a second).
    geocoder_min_interval_s: float = 1.0
    #: How long a geocoded address is cached in Redis (an address that was not found: at most a day).
    geocode_cache_ttl_s: float = 30 * 86400.0

    #: An OpenStreetMap extract (`.osm.pbf`) to route orders that come without a route: its car graph is
    #: built once and cached in the data dir (rebuilt when the file changes). Empty: no embedded router.
    osm_pbf: str = ""
    #: Or an OSRM (`osrm+http://host:5000`, or plain `http://...`) or Valhalla (`valhalla+http://host:8002`)
    #: server for whole countries; used instead of the extract when both are set.
    router_url: str = ""
    #: Longest a route request may take; past it the leg keeps its route or its straight line.
    router_timeout_s: float = 2.0
    #: Least time between two re-routes of one driver after it left its route.
    reroute_interval_s: float = 30.0
    #: Learn street speeds from the fleet's drives on routed legs and use them for ETAs and routing
    #: (needs the embedded router: `osm_pbf`); `0` turns it off.
    fleet_speeds: bool = True
    #: How often each process stores its drivers' street traversals and reads the fleet's speeds back.
    fleet_refresh_s: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every field from ``LIVEMAP_<FIELD>``; unset ones keep their defaults."""
        config = Config(environ=os.environ if environ is None else environ, env_prefix="LIVEMAP_")
        defaults = cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            default = getattr(defaults, f.name)
            # starlette casts defaults too, which would wrap a Secret in a Secret: pass None, keep ours.
            value = config(f.name.upper(), cast=type(default), default=None)
            values[f.name] = default if value is None else value
        return cls(**values)
