"""What every routing provider answers, and how it fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

LatLon = tuple[float, float]


@dataclass(frozen=True, slots=True)
class RoadRoute:
    """A car route on the streets, from the start to the destination."""

    points: list[LatLon]  # (lat, lon), the first near the start, the last near the destination
    length_m: float
    duration_s: float  # at the speeds the router knows (maxspeed, road class, signals; learned speeds)
    #: The embedded router's street segments along the route, in order (fleet speeds are kept per
    #: segment); empty from a router by URL.
    segments: tuple[int, ...] = field(default=())
    #: The graph those ids belong to (`graphcache.graph_id`); empty without segments.
    graph: str = ""


class RouterUnavailable(Exception):
    """The router could not answer (down, too slow, a malformed reply): keep the route the leg has."""


class Router(Protocol):
    #: "osm" (embedded), "osrm" or "valhalla": for logs and the bench.
    name: str

    async def route(self, start: LatLon, end: LatLon) -> RoadRoute | None:
        """A car route from `start` to `end`; None when the map has none (unreachable, off the map).

        Raises RouterUnavailable when the router cannot answer in time.
        """
        ...

    async def aclose(self) -> None:
        """Release what the router holds (HTTP connections, worker threads)."""
        ...
