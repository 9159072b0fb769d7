"""Routing by URL: livemap's OSRM and Valhalla providers against a real HTTP server.

The server is uvicorn on a free port running a small Starlette app that answers as the two routers
document their APIs; the reply shapes are taken from their documentation, not from livemap's code:

- OSRM, docs/http.md (route service v1): `GET /route/v1/{profile}/{lon},{lat};{lon},{lat}` answers
  `{"code": "Ok", "routes": [{"geometry", "legs", "distance", "duration", "weight_name", "weight"}],
  "waypoints": [...]}` (GeoJSON `[lon, lat]` coordinates with `geometries=geojson`); an error is HTTP
  400 with `{"code": "NoRoute" | "NoSegment" | "InvalidValue" | ..., "message": ...}`.
- Valhalla, docs/api/turn-by-turn/api-reference.md: `POST /route` answers `{"trip": {"locations",
  "legs": [{"maneuvers", "summary", "shape"}], "summary": {"length", "time", ...}, "status": 0,
  "status_message", "units", "language"}}`, `shape` an encoded polyline with 6 decimal digits; an
  error is HTTP 400 with `{"error_code": 442, "error": "No path could be found for input",
  "status_code": 400, "status": "Bad Request"}` (171: "No suitable edges near location").

The polyline encoder here is written from the algorithm's definition (Google's "Encoded Polyline
Algorithm Format"), independently of the decoder under test.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from streets import A, B, C, write_osm

from conftest import wait
from livemap.routing.base import LatLon, RoadRoute, Router, RouterUnavailable
from livemap.routing.embedded import EmbeddedRouter
from livemap.routing.osrm import OsrmRouter
from livemap.routing.providers import make_router, remote_router
from livemap.routing.remote import MAX_REPLY_BYTES
from livemap.routing.valhalla import ValhallaRouter, decode_polyline6
from livemap.settings import Settings

#: Short, so the "no answer" tests are quick; scaled on a slow machine.
TIMEOUT_S = wait(0.5)

#: A car route across Berlin (lat, lon), as a router would return it.
BERLIN: list[LatLon] = [
    (52.517037, 13.388860),
    (52.517320, 13.389520),
    (52.520150, 13.391410),
    (52.524930, 13.394870),
    (52.529407, 13.397634),
]
START, END = BERLIN[0], BERLIN[-1]

Answer = Callable[[Request], Awaitable[Response]]


def encode_polyline(points: list[LatLon], precision: int = 6) -> str:
    """Google's encoded polyline, from its definition: per point the difference from the previous one,
    latitude then longitude, each rounded to `precision` digits, left-shifted one bit (inverted if
    negative), cut into 5-bit chunks from the lowest (0x20 on all but the last), plus 63."""
    factor = 10**precision
    out: list[str] = []
    previous = (0, 0)
    for lat, lon in points:
        current = (round(lat * factor), round(lon * factor))
        for delta in (current[0] - previous[0], current[1] - previous[1]):
            value = ~(delta << 1) if delta < 0 else delta << 1
            while value >= 0x20:
                out.append(chr((0x20 | (value & 0x1F)) + 63))
                value >>= 5
            out.append(chr(value + 63))
        previous = current
    return "".join(out)


def osrm_ok(points: list[LatLon], distance: float = 1895.3, duration: float = 251.4) -> dict[str, Any]:
    """An OSRM route service reply as docs/http.md documents it (overview=full, geometries=geojson)."""
    coordinates = [[lon, lat] for lat, lon in points]
    return {
        "code": "Ok",
        "routes": [
            {
                "geometry": {"type": "LineString", "coordinates": coordinates},
                "legs": [{"steps": [], "summary": "", "weight": duration, "duration": duration, "distance": distance}],
                "weight_name": "routability",
                "weight": duration,
                "duration": duration,
                "distance": distance,
            }
        ],
        "waypoints": [
            {"hint": "KSoKADRYroqUBAEAEAAAABkAAAAGAAAAAAAAABhnCQCLtwAA_0vMAKlYIQM8TMwArVghAwEAAQH1a66g",
             "distance": 4.15, "name": "Friedrichstraße", "location": coordinates[0]},
            {"hint": "KioKgDbbDgCUBAEAAAAAABoAAAAAAAAAPAAAABlnCQCLtwAA50vMADJZIQM8TMwArVghAwAAAQH1a66g",
             "distance": 3.2, "name": "Torstraße", "location": coordinates[-1]},
        ],
    }  # fmt: skip


def valhalla_ok(shapes: list[str], length_km: float = 1.895, time_s: float = 251.4) -> dict[str, Any]:
    """A Valhalla `/route` reply as its API reference documents it (directions_type none: no maneuvers)."""
    summary = {
        "has_time_restrictions": False,
        "has_toll": False,
        "has_highway": False,
        "has_ferry": False,
        "min_lat": 52.517037,
        "min_lon": 13.38886,
        "max_lat": 52.529407,
        "max_lon": 13.397634,
        "time": time_s,
        "length": length_km,
        "cost": 300.2,
    }
    return {
        "trip": {
            "locations": [{"type": "break", "lat": START[0], "lon": START[1], "original_index": 0},
                          {"type": "break", "lat": END[0], "lon": END[1], "original_index": 1}],
            "legs": [{"summary": summary, "shape": shape} for shape in shapes],
            "summary": summary,
            "status_message": "Found route between points",
            "status": 0,
            "units": "kilometers",
            "language": "en-US",
        },
        "id": "livemap",
    }  # fmt: skip


def valhalla_error(code: int, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "error": message, "status_code": 400, "status": "Bad Request"}, 400)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class RouterServer:
    """uvicorn on a free port (its own thread and loop); every request is recorded, then `answer`ed."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.answer: Answer = self._not_scripted
        self.stop = threading.Event()  # ends held and trickling replies at teardown
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(app, lifespan="off", ws="none", log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)
        self._thread.start()
        for _ in range(int(wait(10) / 0.01)):
            if self._server.started:
                break
            time.sleep(0.01)
        else:
            raise RuntimeError("the test router server did not start")

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        self.seen.append(
            Seen(request.method, request.url.path, dict(request.query_params), dict(request.headers), body)
        )
        return await self.answer(request)

    async def _not_scripted(self, request: Request) -> Response:
        return Response("not scripted", 404)

    def reply(self, body: Any, status: int = 200) -> None:
        """Answer every request with this JSON body (bytes or str: as they are)."""

        async def answer(request: Request) -> Response:
            if isinstance(body, bytes | str):
                return Response(body, status, media_type="application/json")
            return JSONResponse(body, status)

        self.answer = answer

    async def held(self) -> None:
        """Until teardown: a reply that never comes."""
        await asyncio.to_thread(self.stop.wait, wait(60))  # set from the tests' thread at teardown

    def close(self) -> None:
        self.stop.set()
        self._server.should_exit = True
        self._thread.join(wait(10))
        self._socket.close()


@pytest.fixture(scope="module")
def router_server() -> Iterator[RouterServer]:
    server = RouterServer()
    yield server
    server.close()


@pytest.fixture
def server(router_server: RouterServer) -> RouterServer:
    router_server.seen.clear()
    router_server.answer = router_server._not_scripted
    return router_server


@pytest.fixture
async def osrm(server: RouterServer) -> AsyncIterator[OsrmRouter]:
    router = OsrmRouter(server.url, TIMEOUT_S)
    yield router
    await router.aclose()


@pytest.fixture
async def valhalla(server: RouterServer) -> AsyncIterator[ValhallaRouter]:
    router = ValhallaRouter(server.url, TIMEOUT_S)
    yield router
    await router.aclose()


Provider = type[OsrmRouter] | type[ValhallaRouter]


@pytest.fixture(params=[OsrmRouter, ValhallaRouter], ids=["osrm", "valhalla"])
def provider(request: pytest.FixtureRequest) -> Provider:
    """Each provider in turn, for the failures both must turn into RouterUnavailable."""
    kind: Provider = request.param
    return kind


@pytest.fixture
async def either(provider: Provider, server: RouterServer) -> AsyncIterator[Router]:
    router = provider(server.url, TIMEOUT_S)
    yield router
    await router.aclose()


def assert_close(points: list[LatLon], expected: list[LatLon], tolerance: float = 1e-6) -> None:
    assert len(points) == len(expected)
    for (lat, lon), (elat, elon) in zip(points, expected, strict=True):
        assert abs(lat - elat) <= tolerance and abs(lon - elon) <= tolerance, ((lat, lon), (elat, elon))


# --- OSRM ----------------------------------------------------------------------------------------


async def test_osrm_route_is_read_in_lat_lon_order(server: RouterServer, osrm: OsrmRouter) -> None:
    server.reply(osrm_ok(BERLIN, distance=1895.3, duration=251.4))
    route = await osrm.route(START, END)
    assert route == RoadRoute(points=BERLIN, length_m=1895.3, duration_s=251.4)
    [request] = server.seen
    assert request.method == "GET"
    # OSRM takes {longitude},{latitude} pairs joined by ";".
    assert request.path == "/route/v1/driving/13.388860,52.517037;13.397634,52.529407"
    assert request.query == {"overview": "full", "geometries": "geojson", "steps": "false"}


@pytest.mark.parametrize("code", ["NoRoute", "NoSegment"])
async def test_osrm_no_route_is_none(server: RouterServer, osrm: OsrmRouter, code: str) -> None:
    server.reply({"code": code, "message": "Impossible route between points"}, 400)
    assert await osrm.route(START, END) is None


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"code": "InvalidValue", "message": "Invalid coordinate value."}),
        (400, {"code": "TooBig", "message": "Too many trace coordinates"}),
        (200, {"code": "Ok", "routes": []}),  # Ok without a route
        (
            200,
            {"code": "Ok", "routes": [{"geometry": {"coordinates": [[13.38, 52.51]]}, "distance": 0, "duration": 0}]},
        ),
        (200, {"code": "Busy"}),
    ],
)
async def test_osrm_other_answers_are_unavailable(
    server: RouterServer, osrm: OsrmRouter, status: int, body: dict[str, Any]
) -> None:
    server.reply(body, status)
    with pytest.raises(RouterUnavailable):
        await osrm.route(START, END)


async def test_osrm_base_path_and_query_are_kept(server: RouterServer) -> None:
    """A server behind a reverse proxy prefix, with an API key in the query string."""
    server.reply(osrm_ok(BERLIN))
    router = OsrmRouter(f"{server.url}/osrm/?key=k3y", TIMEOUT_S)
    try:
        assert await router.route(START, END) is not None
        assert "k3y" not in repr(router) and "k3y" not in router.shown
    finally:
        await router.aclose()
    [request] = server.seen
    assert request.path.startswith("/osrm/route/v1/driving/")
    assert request.query["key"] == "k3y" and request.query["overview"] == "full"


# --- Valhalla ------------------------------------------------------------------------------------


async def test_valhalla_route_decodes_shape_length_and_time(server: RouterServer, valhalla: ValhallaRouter) -> None:
    server.reply(valhalla_ok([encode_polyline(BERLIN)], length_km=1.895, time_s=251.4))
    route = await valhalla.route(START, END)
    assert route is not None
    assert_close(route.points, BERLIN)
    assert route.length_m == pytest.approx(1895.0)
    assert route.duration_s == 251.4
    assert route.segments == ()
    [request] = server.seen
    assert (request.method, request.path) == ("POST", "/route")
    assert request.headers["content-type"] == "application/json"
    sent = json.loads(request.body)
    assert sent["locations"] == [{"lat": START[0], "lon": START[1]}, {"lat": END[0], "lon": END[1]}]
    assert sent["costing"] == "auto"
    assert sent["units"] == "kilometers"


async def test_valhalla_legs_are_joined_once_at_each_break(server: RouterServer, valhalla: ValhallaRouter) -> None:
    server.reply(valhalla_ok([encode_polyline(BERLIN[:3]), encode_polyline(BERLIN[2:])]))
    route = await valhalla.route(START, END)
    assert route is not None
    assert_close(route.points, BERLIN)


async def test_valhalla_miles_are_converted(server: RouterServer, valhalla: ValhallaRouter) -> None:
    reply = valhalla_ok([encode_polyline(BERLIN)], length_km=1.0)
    reply["trip"]["units"] = "miles"
    server.reply(reply)
    route = await valhalla.route(START, END)
    assert route is not None and route.length_m == pytest.approx(1609.344)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (442, "No path could be found for input"),
        (171, "No suitable edges near location"),
        (170, "Locations are in unconnected regions. Go check/edit the map at osm.org"),
    ],
)
async def test_valhalla_no_route_is_none(
    server: RouterServer, valhalla: ValhallaRouter, code: int, message: str
) -> None:
    server.answer = lambda request: _ready(valhalla_error(code, message))
    assert await valhalla.route(START, END) is None


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error_code": 154, "error": "Path distance exceeds the max distance limit", "status_code": 400}),
        (400, {"error_code": 125, "error": "No costing method found for 'auto'", "status_code": 400}),
        (400, b"<html>Bad Request</html>"),
        (200, valhalla_ok(["_p~iF~ps|U_ulLnnqC_mqNvxq`"])),  # a shape cut inside a point
        (200, valhalla_ok(["_p~iF~ps|U _ulLnnqC"])),  # a character outside the alphabet
        (200, valhalla_ok(["_p~iF~ps|U"])),  # one point is not a route
        (200, valhalla_ok([encode_polyline([(91.0, 13.0), (52.0, 13.0)])])),  # off the globe
        (200, {"trip": {"legs": [], "summary": {"length": 1, "time": 1}}}),
    ],
)
async def test_valhalla_other_answers_are_unavailable(
    server: RouterServer, valhalla: ValhallaRouter, status: int, body: Any
) -> None:
    server.reply(body, status)
    with pytest.raises(RouterUnavailable):
        await valhalla.route(START, END)


def test_polyline6_decoding_matches_an_independent_encoder() -> None:
    rng = random.Random(20)
    edge_cases: list[LatLon] = [(0.0, 0.0), (0.0, 0.0), (-89.999999, 179.999999), (89.999999, -179.999999),
                                (-0.000001, 0.000001), (1e-6, -1e-6), (52.5, 13.4)]  # fmt: skip
    walks = [[(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(200)]]
    lat, lon = 48.137154, 11.576124
    walk: list[LatLon] = []
    for _ in range(2000):  # a street route: many small steps
        lat, lon = lat + rng.uniform(-0.002, 0.002), lon + rng.uniform(-0.002, 0.002)
        walk.append((lat, lon))
    walks += [walk, edge_cases, []]
    for points in walks:
        assert_close(decode_polyline6(encode_polyline(points)), points, tolerance=0.5e-6 + 1e-12)


def test_polyline_decoder_reads_the_documented_example() -> None:
    """Google's documented example, encoded with 5 digits: read with 6, every value is a tenth."""
    decoded = decode_polyline6("_p~iF~ps|U_ulLnnqC_mqNvxq`@")
    assert_close(decoded, [(3.85, -12.02), (4.07, -12.095), (4.3252, -12.6453)], tolerance=1e-9)


# --- Failures both providers turn into RouterUnavailable -----------------------------------------


async def test_http_500_is_unavailable(server: RouterServer, either: Router) -> None:
    server.reply(b"Internal Server Error", 500)
    with pytest.raises(RouterUnavailable, match="HTTP 500"):
        await either.route(START, END)


@pytest.mark.parametrize("body", [b"", b"not json", b'{"code": "Ok", "routes": [', b"[1, 2, 3]", b'{"trip": "x"}'])
async def test_malformed_body_is_unavailable(server: RouterServer, either: Router, body: bytes) -> None:
    server.reply(body)
    with pytest.raises(RouterUnavailable):
        await either.route(START, END)


async def test_wrong_types_are_unavailable(server: RouterServer, either: Router) -> None:
    bad_osrm = osrm_ok(BERLIN)
    bad_osrm["routes"][0]["distance"] = "1895"
    bad_valhalla = valhalla_ok([encode_polyline(BERLIN)])
    bad_valhalla["trip"]["summary"]["time"] = -5
    server.reply(bad_osrm if isinstance(either, OsrmRouter) else bad_valhalla)
    with pytest.raises(RouterUnavailable):
        await either.route(START, END)


async def test_server_that_never_answers_is_unavailable(provider: Provider) -> None:
    """A listening socket nobody accepts from: the connection opens, no reply ever comes."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        router = provider(url, TIMEOUT_S)
        try:
            with pytest.raises(RouterUnavailable, match="no reply within"):
                await router.route(START, END)
        finally:
            await router.aclose()


async def test_reply_held_open_is_unavailable(server: RouterServer, either: Router) -> None:
    async def held(request: Request) -> Response:
        await server.held()
        return Response("too late", 200)

    server.answer = held
    with pytest.raises(RouterUnavailable, match="no reply within"):
        await either.route(START, END)


async def test_trickling_reply_is_cut_at_the_timeout(server: RouterServer, either: Router) -> None:
    """A byte every 50 ms never trips a per-read timeout: the whole request is bounded."""

    async def trickle() -> AsyncIterator[bytes]:
        yield b"{"
        while not server.stop.is_set():
            await asyncio.sleep(0.05)
            yield b" "

    async def answer(request: Request) -> Response:
        return StreamingResponse(trickle(), media_type="application/json")

    server.answer = answer
    with pytest.raises(RouterUnavailable, match="no reply within"):
        await either.route(START, END)


async def test_refused_connection_is_unavailable(provider: Provider) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, not listening: refused
        router = provider(url, TIMEOUT_S)
        try:
            with pytest.raises(RouterUnavailable):
                await router.route(START, END)
        finally:
            await router.aclose()


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_reply_over_the_size_cap_is_unavailable(server: RouterServer, either: Router, declared: bool) -> None:
    chunk = b" " * (1024 * 1024)
    count = MAX_REPLY_BYTES // len(chunk) + 1

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"code": "Ok", "routes": []'
        for _ in range(count):
            yield chunk
        yield b"}"

    async def answer(request: Request) -> Response:
        if declared:
            return Response(b"".join([c async for c in chunks()]), 200, media_type="application/json")
        return StreamingResponse(chunks(), media_type="application/json")

    server.answer = answer
    with pytest.raises(RouterUnavailable, match="byte cap"):
        await either.route(START, END)


async def test_a_reply_just_under_the_cap_is_read(server: RouterServer) -> None:
    reply = json.dumps(osrm_ok(BERLIN)).encode()
    server.reply(reply + b" " * (4096 - len(reply)))
    router = OsrmRouter(server.url, TIMEOUT_S, max_bytes=4096)
    try:
        assert await router.route(START, END) is not None
        server.reply(reply + b" " * (4097 - len(reply)))
        with pytest.raises(RouterUnavailable, match="byte cap"):
            await router.route(START, END)
    finally:
        await router.aclose()


async def test_redirects_are_not_followed(server: RouterServer, either: Router) -> None:
    async def answer(request: Request) -> Response:
        if request.url.path.startswith("/elsewhere"):
            return JSONResponse(osrm_ok(BERLIN))
        return Response(status_code=307, headers={"Location": f"{server.url}/elsewhere{request.url.path}"})

    server.answer = answer
    with pytest.raises(RouterUnavailable, match="HTTP 307"):
        await either.route(START, END)
    assert [s.path for s in server.seen if s.path.startswith("/elsewhere")] == []


async def test_credentials_are_sent_as_basic_auth_and_never_shown(
    server: RouterServer, caplog: pytest.LogCaptureFixture
) -> None:
    host = server.url.removeprefix("http://")
    for scheme, reply in (("osrm+http", osrm_ok(BERLIN)), ("valhalla+http", valhalla_ok([encode_polyline(BERLIN)]))):
        server.seen.clear()
        with caplog.at_level(logging.INFO, logger="livemap"):
            router = await make_router(
                Settings(router_url=f"{scheme}://fleet%40shop:s3cr%2Ft@{host}/?api_key=k3y", router_timeout_s=TIMEOUT_S)
            )
        assert router is not None
        try:
            server.reply(b"nope", 503)
            with pytest.raises(RouterUnavailable) as failure:
                await router.route(START, END)
            server.reply(reply)
            assert await router.route(START, END) is not None
        finally:
            await router.aclose()
        shown = [str(failure.value), repr(router), caplog.text]
        assert all("s3cr" not in text and "k3y" not in text and "fleet" not in text for text in shown), shown
        assert host in str(failure.value)
        expected = "Basic " + base64.b64encode(b"fleet@shop:s3cr/t").decode()
        assert [s.headers["authorization"] for s in server.seen] == [expected, expected]
        assert all(s.query["api_key"] == "k3y" for s in server.seen)


async def test_a_closed_router_is_unavailable(server: RouterServer, osrm: OsrmRouter) -> None:
    server.reply(osrm_ok(BERLIN))
    await osrm.aclose()
    with pytest.raises(RouterUnavailable):
        await osrm.route(START, END)


# --- The factory ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "provider", "shown"),
    [
        ("osrm+http://osrm.internal:5000", OsrmRouter, "http://osrm.internal:5000"),
        ("OSRM+HTTPS://osrm.example.com/eu", OsrmRouter, "https://osrm.example.com/eu"),
        ("http://127.0.0.1:5000", OsrmRouter, "http://127.0.0.1:5000"),
        ("https://router.example.com", OsrmRouter, "https://router.example.com"),
        ("valhalla+http://valhalla:8002", ValhallaRouter, "http://valhalla:8002"),
        ("valhalla+https://u:p@maps.example.com/valhalla/?key=x", ValhallaRouter, "https://maps.example.com/valhalla"),
    ],
)
async def test_factory_picks_the_provider_by_scheme(url: str, provider: type[Router], shown: str) -> None:
    router = await make_router(Settings(router_url=url))
    assert type(router) is provider
    assert isinstance(router, OsrmRouter | ValhallaRouter)
    try:
        assert router.shown == shown
        assert router.name == ("osrm" if provider is OsrmRouter else "valhalla")
    finally:
        await router.aclose()


async def test_factory_without_configuration_is_none() -> None:
    assert await make_router(Settings()) is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://u:s3cr3t@router-host",
        "valhalla+ftp://router-host",
        "osrm://router-host:5000",
        "u:s3cr3t@router-host:5000",
        "http://",
        "osrm+http://u:s3cr3t@:5000",
    ],
)
def test_factory_refuses_an_unknown_url_without_showing_it(url: str) -> None:
    with pytest.raises(ValueError, match="LIVEMAP_ROUTER_URL") as refused:
        remote_router(url, 1.0)
    assert "s3cr3t" not in str(refused.value) and "router-host" not in str(refused.value)


async def test_factory_opens_the_embedded_router_for_an_extract(tmp_path: Path) -> None:
    """An extract opens the embedded router (on a few streets the test writes); a router URL wins over it."""
    streets = write_osm(tmp_path / "streets.osm")
    router = await make_router(Settings(osm_pbf=str(streets), data_dir=tmp_path, router_timeout_s=1.5))
    assert isinstance(router, EmbeddedRouter) and router.name == "osm"
    road = await router.route(A, C)
    assert road is not None and road.points[1] == B
    await router.aclose()
    remote = await make_router(Settings(osm_pbf=str(streets), router_url="valhalla+http://valhalla:8002"))
    assert isinstance(remote, ValhallaRouter)
    await remote.aclose()


async def _ready(response: Response) -> Response:
    return response
