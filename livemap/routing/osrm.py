"""Car routes from an OSRM server, through its documented HTTP API (the route service, v1).

`GET {base}/route/v1/driving/{lon},{lat};{lon},{lat}?overview=full&geometries=geojson&steps=false`
answers `{"code": "Ok", "routes": [{"geometry": {"coordinates": [[lon, lat], ...]}, "distance": m,
"duration": s}, ...]}`, routes best first. An error is HTTP 400 with a `code`: `NoRoute` and
`NoSegment` (a point that snaps to no street) mean there is no route; any other code, any other
status, a reply that is not that shape, a timeout or a refused connection: `RouterUnavailable`.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from livemap.routing.base import LatLon, RoadRoute
from livemap.routing.remote import MAX_REPLY_BYTES, Endpoint, RouterClient

#: Codes of a well-formed "there is no route" answer (OSRM's route service and general codes).
NO_ROUTE_CODES = frozenset({"NoRoute", "NoSegment"})

_Lat = Annotated[float, msgspec.Meta(ge=-90, le=90)]
_Lon = Annotated[float, msgspec.Meta(ge=-180, le=180)]
_Amount = Annotated[float, msgspec.Meta(ge=0, le=1e9)]  # metres or seconds; inf is not a route


class _Geometry(msgspec.Struct):
    coordinates: list[tuple[_Lon, _Lat]]  # GeoJSON LineString: (lon, lat)


class _Route(msgspec.Struct):
    geometry: _Geometry
    distance: _Amount  # metres
    duration: _Amount  # seconds


class _Reply(msgspec.Struct):
    code: str
    message: str = ""
    routes: list[_Route] = msgspec.field(default_factory=list)


_decode = msgspec.json.Decoder(_Reply).decode


class OsrmRouter:
    """A `Router` over an OSRM server (`osrm-routed`, or anything that speaks its route service)."""

    name = "osrm"

    def __init__(
        self, url: str, timeout_s: float, *, profile: str = "driving", max_bytes: int = MAX_REPLY_BYTES
    ) -> None:
        # osrm-routed serves the one profile its data was built with and ignores this path part;
        # servers that hold several (hosted OSRM-compatible APIs) choose by it.
        self.profile = profile
        self._http = RouterClient(self.name, Endpoint.parse(url), timeout_s, max_bytes)

    @property
    def shown(self) -> str:
        """The server's URL as logs may show it: no credentials, no query string."""
        return self._http.endpoint.shown

    def __repr__(self) -> str:
        return f"OsrmRouter({self.shown!r})"

    async def route(self, start: LatLon, end: LatLon) -> RoadRoute | None:
        coordinates = ";".join(f"{lon:.6f},{lat:.6f}" for lat, lon in (start, end))
        reply = await self._http.request(
            "GET",
            f"/route/v1/{self.profile}/{coordinates}",
            params={"overview": "full", "geometries": "geojson", "steps": "false"},
        )
        if reply.status not in (200, 400):
            raise self._http.unavailable(f"HTTP {reply.status}")
        try:
            answer = _decode(reply.body)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            raise self._http.unavailable(f"HTTP {reply.status}, not an OSRM route reply: {exc}") from None
        if answer.code in NO_ROUTE_CODES:
            return None
        if answer.code != "Ok" or reply.status != 200:
            raise self._http.unavailable(f"HTTP {reply.status}, code {answer.code!r}: {answer.message[:200]}")
        if not answer.routes or len(answer.routes[0].geometry.coordinates) < 2:
            raise self._http.unavailable("an Ok reply without a route geometry")
        best = answer.routes[0]
        return RoadRoute(
            points=[(lat, lon) for lon, lat in best.geometry.coordinates],
            length_m=best.distance,
            duration_s=best.duration,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
