"""The router the settings ask for: an OSRM or Valhalla server by URL, the embedded one, or none.

`LIVEMAP_ROUTER_URL` wins over `LIVEMAP_OSM_PBF` when both are set. Its scheme names the API:

- `osrm+http://host:5000`, `osrm+https://...`, or plain `http://...` / `https://...`: OSRM;
- `valhalla+http://host:8002`, `valhalla+https://...`: Valhalla.

A path after the host is a prefix (a server behind a reverse proxy), a query string is sent with
every request (a hosted API's key), `user:password@` is sent as HTTP Basic auth; none of the three
is ever logged.
"""

from __future__ import annotations

import logging
from pathlib import Path

from livemap.routing.base import Router
from livemap.routing.osrm import OsrmRouter
from livemap.routing.valhalla import ValhallaRouter
from livemap.settings import Settings

log = logging.getLogger("livemap.routing")

#: URL scheme -> (provider, the scheme it is requested with).
SCHEMES: dict[str, tuple[type[OsrmRouter] | type[ValhallaRouter], str]] = {
    "http": (OsrmRouter, "http"),
    "https": (OsrmRouter, "https"),
    "osrm+http": (OsrmRouter, "http"),
    "osrm+https": (OsrmRouter, "https"),
    "valhalla+http": (ValhallaRouter, "http"),
    "valhalla+https": (ValhallaRouter, "https"),
}


def remote_router(url: str, timeout_s: float) -> OsrmRouter | ValhallaRouter:
    """The provider `url`'s scheme names; ValueError (naming no part of the URL but its scheme) otherwise."""
    scheme, sep, rest = url.strip().partition("://")
    known = ", ".join(f"{s}://" for s in SCHEMES)
    if not sep:  # no scheme: what there is may be `user:password@host`, so none of it is shown
        raise ValueError(f"LIVEMAP_ROUTER_URL: no scheme, expected one of {known}")
    if scheme.lower() not in SCHEMES:
        raise ValueError(f"LIVEMAP_ROUTER_URL: unknown scheme {scheme[:20]!r}, expected one of {known}")
    provider, wire_scheme = SCHEMES[scheme.lower()]
    try:
        return provider(f"{wire_scheme}://{rest}", timeout_s)
    except ValueError as exc:
        raise ValueError(f"LIVEMAP_ROUTER_URL: {exc}") from None


async def make_router(settings: Settings) -> Router | None:
    """The configured router, or None when neither `router_url` nor `osm_pbf` is set.

    Async because opening the embedded router may build or load its street graph. The caller
    owns the router and calls `aclose()` on shutdown.
    """
    if settings.router_url:
        remote = remote_router(settings.router_url, settings.router_timeout_s)
        log.info("routing: %s at %s", remote.name, remote.shown)
        return remote
    if settings.osm_pbf:
        return await _open_embedded(settings)
    return None


async def _open_embedded(settings: Settings) -> Router:
    # Imported only when an extract is configured: a server routing by URL never loads the graph code.
    from livemap.routing.embedded import EmbeddedRouter

    router = await EmbeddedRouter.open(settings.osm_pbf, Path(settings.data_dir), settings.router_timeout_s)
    log.info("routing: embedded, %s (%s nodes)", settings.osm_pbf, f"{router.graph.nodes:,}")
    return router
