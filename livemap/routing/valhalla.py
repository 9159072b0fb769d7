"""Car routes from a Valhalla server, through its documented HTTP API (the turn-by-turn `/route`).

`POST {base}/route` with `{"locations": [{"lat", "lon"}, {"lat", "lon"}], "costing": "auto",
"units": "kilometers", "directions_type": "none"}` answers `{"trip": {"legs": [{"shape": ...}],
"summary": {"length": km, "time": s}, "units": "kilometers"}}`; each leg's `shape` is an encoded
polyline with 6 decimal digits (`decode_polyline6`). An error is HTTP 400 with an `error_code`:
442 (no path), 171 (no road near a location) and 170 (locations in unconnected regions) mean there
is no route; any other code or status, a reply that is not that shape, a timeout or a refused
connection: `RouterUnavailable`.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from livemap.routing.base import LatLon, RoadRoute
from livemap.routing.remote import MAX_REPLY_BYTES, Endpoint, RouterClient

#: Valhalla's error codes that say "there is no route between these points".
NO_ROUTE_CODES = frozenset({170, 171, 442})
#: Metres per unit of `trip.units` (kilometers is what is asked for and Valhalla's default).
_METRES_PER_UNIT = {"kilometers": 1000.0, "km": 1000.0, "miles": 1609.344, "mi": 1609.344}

_Amount = Annotated[float, msgspec.Meta(ge=0, le=1e9)]  # km, miles or seconds; inf is not a route


class _Leg(msgspec.Struct):
    shape: str


class _Summary(msgspec.Struct):
    length: _Amount
    time: _Amount  # seconds


class _Trip(msgspec.Struct):
    legs: Annotated[list[_Leg], msgspec.Meta(min_length=1)]
    summary: _Summary
    units: str = "kilometers"


class _Reply(msgspec.Struct):
    trip: _Trip


class _Error(msgspec.Struct):
    error_code: int
    error: str = ""


class _Location(msgspec.Struct):
    lat: float
    lon: float


class _Request(msgspec.Struct):
    locations: list[_Location]
    costing: str = "auto"
    units: str = "kilometers"
    directions_type: str = "none"  # the shape and summary only: no maneuvers, no narration


_decode_reply = msgspec.json.Decoder(_Reply).decode
_decode_error = msgspec.json.Decoder(_Error).decode
_encode = msgspec.json.Encoder().encode


def decode_polyline6(encoded: str) -> list[LatLon]:
    """(lat, lon) points of an encoded polyline with 6 decimal digits (Valhalla's `shape`).

    The encoding (Google's polyline algorithm): each point is the difference from the one before,
    latitude then longitude, each as round(value * 1e6) zigzagged (left shift one, all bits
    inverted if negative) and cut into 5-bit chunks from the lowest, each chunk but the last OR
    0x20, plus 63 to make it a printable character. ValueError when the text is not one.
    """
    points: list[LatLon] = []
    index, size = 0, len(encoded)
    lat = lon = 0
    while index < size:
        deltas = [0, 0]
        for axis in (0, 1):
            value = shift = 0
            while True:
                if index >= size:
                    raise ValueError("the polyline ends inside a point")
                chunk = ord(encoded[index]) - 63
                index += 1
                if not 0 <= chunk < 64:
                    raise ValueError(f"a character outside the polyline alphabet at {index - 1}")
                value |= (chunk & 0x1F) << shift
                shift += 5
                if chunk < 0x20:
                    break
                if shift > 35:  # 7 chunks hold any coordinate difference (< 2**31 after the zigzag)
                    raise ValueError("a polyline value longer than any coordinate")
            deltas[axis] = ~(value >> 1) if value & 1 else value >> 1
        lat += deltas[0]
        lon += deltas[1]
        points.append((lat / 1e6, lon / 1e6))
    return points


class ValhallaRouter:
    """A `Router` over a Valhalla server (`valhalla_service`, or anything that speaks its `/route`)."""

    name = "valhalla"

    def __init__(self, url: str, timeout_s: float, *, costing: str = "auto", max_bytes: int = MAX_REPLY_BYTES) -> None:
        self.costing = costing
        self._http = RouterClient(self.name, Endpoint.parse(url), timeout_s, max_bytes)

    @property
    def shown(self) -> str:
        """The server's URL as logs may show it: no credentials, no query string."""
        return self._http.endpoint.shown

    def __repr__(self) -> str:
        return f"ValhallaRouter({self.shown!r})"

    async def route(self, start: LatLon, end: LatLon) -> RoadRoute | None:
        body = _Request(locations=[_Location(lat, lon) for lat, lon in (start, end)], costing=self.costing)
        reply = await self._http.request("POST", "/route", json=_encode(body))
        if reply.status == 400:
            try:
                error = _decode_error(reply.body)
            except msgspec.DecodeError:
                raise self._http.unavailable("HTTP 400, not a Valhalla error reply") from None
            if error.error_code in NO_ROUTE_CODES:
                return None
            raise self._http.unavailable(f"HTTP 400, error_code {error.error_code}: {error.error[:200]}")
        if reply.status != 200:
            raise self._http.unavailable(f"HTTP {reply.status}")
        try:
            trip = _decode_reply(reply.body).trip
            points = _points(trip.legs)
        except (msgspec.DecodeError, ValueError) as exc:  # ValidationError is a DecodeError
            raise self._http.unavailable(f"not a Valhalla route reply: {exc}") from None
        metres = _METRES_PER_UNIT.get(trip.units)
        if metres is None:
            raise self._http.unavailable(f"a reply in unknown units {trip.units[:40]!r}")
        return RoadRoute(points=points, length_m=trip.summary.length * metres, duration_s=trip.summary.time)

    async def aclose(self) -> None:
        await self._http.aclose()


def _points(legs: list[_Leg]) -> list[LatLon]:
    """The legs' shapes end to end (a leg starts where the one before ended: that point once)."""
    points: list[LatLon] = []
    for leg in legs:
        shape = decode_polyline6(leg.shape)
        points.extend(shape[1:] if points and shape and shape[0] == points[-1] else shape)
    if len(points) < 2:
        raise ValueError("a route shape of fewer than two points")
    if any(not (-90 <= lat <= 90 and -180 <= lon <= 180) for lat, lon in points):
        raise ValueError("a route shape point off the globe")
    return points
