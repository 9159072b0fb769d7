"""The dispatcher's sign-in, sessions and accounts over real HTTP; its socket under a 2,000-driver load."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import websockets
from starlette.routing import Route, WebSocketRoute

from conftest import (
    ARTIFACTS,
    SECRET_KEY,
    RedisTarget,
    Server,
    Shop,
    Socket,
    connect,
    driver_socket,
    fix,
    new_shop,
    now_ms,
    server_env,
    sync_client,
    wait,
)
from livemap.settings import Settings
from livemap.storage.connection import open_db
from livemap.storage.keys import Keys
from livemap.storage.repository import Repository
from livemap.storage.secretbox import SecretBox
from livemap.tracking.etaboard import EtaBoard
from livemap.web import dispatchview
from livemap.web.sessions import COOKIE, session_allowed
from livemap.web.sockets.dispatcher import ETA_REFRESH_S

# --- helpers ---------------------------------------------------------------------------------------


@dataclass
class Desk:
    """A signed-in dispatcher as a browser would be: its session cookie and the page's CSRF token."""

    http: httpx.AsyncClient
    server: Server
    cookie: str
    csrf: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={self.cookie}", "X-CSRF-Token": self.csrf}

    async def call(self, method: str, path: str, body: Any = None, csrf: bool = True) -> httpx.Response:
        headers = self.headers if csrf else {"Cookie": f"{COOKIE}={self.cookie}"}
        return await self.http.request(method, self.server.url + path, json=body, headers=headers)


async def sign_in(http: httpx.AsyncClient, server: Server, form: dict[str, str], **headers: str) -> httpx.Response:
    """Post the sign-in form the way Chromium does: form-encoded, with our own Origin."""
    return await http.post(f"{server.url}/dispatch", data=form, headers={"Origin": server.url, **headers})


async def desk_for(http: httpx.AsyncClient, server: Server, form: dict[str, str]) -> Desk:
    r = await sign_in(http, server, form)
    assert r.status_code == 303 and r.headers["location"] == "/dispatch", r.text
    cookie = r.cookies[COOKIE]
    page = await http.get(f"{server.url}/dispatch", headers={"Cookie": f"{COOKIE}={cookie}"})
    config = re.search(r'<script type="application/json" id="dp-config">(.*?)</script>', page.text)
    assert page.status_code == 200 and config, page.text[:500]
    return Desk(http, server, cookie, json.loads(config.group(1))["csrf"])


async def locations_within(sock: Socket, seconds: float) -> list[dict[str, Any]]:
    """The location messages that arrive within `seconds` (other events skipped)."""
    got = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = json.loads(await asyncio.wait_for(sock.conn.recv(), left))
        except TimeoutError:
            break
        if msg["type"] == "location":
            got.append(msg)
    return got


async def refused(url: str, **kwargs: Any) -> int:
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(url, **kwargs)
    return info.value.response.status_code


async def shipped(shop: Shop, oid: str, did: str, **extra: Any) -> dict[str, Any]:
    if did not in shop.drivers:
        await shop.driver(did)
    order = await shop.order(oid, **extra)
    await shop.post(f"/api/orders/{oid}/assign", {"driver_id": did})
    await shop.stage(oid, "shipped")
    return order


# --- signing in ------------------------------------------------------------------------------------


async def test_key_sign_in_opens_a_strict_http_only_session(shop: Shop, server: Server) -> None:
    """The key is posted once; the session cookie is HttpOnly, SameSite=Strict, Secure behind https; no key in pages."""
    r = await sign_in(shop.http, server, {"key": shop.key})
    assert r.status_code == 303 and shop.key not in r.headers["location"]
    cookie = r.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here: a Secure cookie would never come back
    page = await shop.http.get(f"{server.url}/dispatch", headers={"Cookie": f"{COOKIE}={r.cookies[COOKIE]}"})
    assert page.status_code == 200 and 'id="dp-config"' in page.text and shop.key not in page.text
    assert "/static/vendor/leaflet.markercluster/leaflet.markercluster.js" in page.text
    behind_tls = await sign_in(shop.http, server, {"key": shop.key}, **{"X-Forwarded-Proto": "https"})
    assert "Secure" in behind_tls.headers["set-cookie"]


async def test_wrong_credentials_get_the_sign_in_form_and_no_session(shop: Shop, server: Server) -> None:
    """A wrong key, a driver token, a wrong password or unknown account: 401 and the form again; no cookie."""
    driver_token = await shop.driver("dw")
    await shop.post("/api/dispatchers", {"name": "ana", "password": "correct horse battery"})
    for form in (
        {"key": "lmk_wrong"},
        {"key": driver_token},
        {"store": shop.id, "name": "ana", "password": "wrong password!"},
        {"store": shop.id, "name": "nobody", "password": "correct horse battery"},
        {"store": "st_other", "name": "ana", "password": "correct horse battery"},
    ):
        r = await sign_in(shop.http, server, form)
        assert r.status_code == 401 and "set-cookie" not in r.headers, form
        assert "not right" in r.text and 'id="dp-key-form"' in r.text
    page = await shop.http.get(f"{server.url}/dispatch")
    assert page.status_code == 200 and 'id="dp-key-form"' in page.text and 'id="dp-config"' not in page.text


async def test_sign_in_from_another_site_is_refused(shop: Shop, server: Server) -> None:
    """A form on another site cannot sign a browser in (login CSRF), even with a right key."""
    r = await shop.http.post(
        f"{server.url}/dispatch", data={"key": shop.key}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403 and "set-cookie" not in r.headers


async def test_failed_sign_ins_are_rate_limited_per_address(shop: Shop, server: Server) -> None:
    """After 20 failures from one address, even the right key gets 429 there; other addresses are unaffected."""
    address = {"X-Forwarded-For": f"203.0.113.{random.randint(1, 254)}"}
    for _ in range(20):
        assert (await sign_in(shop.http, server, {"key": "lmk_guess"}, **address)).status_code == 401
    limited = await sign_in(shop.http, server, {"key": shop.key}, **address)
    assert limited.status_code == 429 and "set-cookie" not in limited.headers
    assert (await sign_in(shop.http, server, {"key": shop.key})).status_code == 303


# --- the session on the REST API -------------------------------------------------------------------


async def test_session_uses_the_same_endpoints_with_csrf_and_the_same_validation(shop: Shop, server: Server) -> None:
    """With the cookie: reads work; writes need X-CSRF-Token; the store key's validation answers the same."""
    await shipped(shop, "D1", "dd1")
    await shop.order("D2")
    await shop.post("/api/orders/D2/assign", {"driver_id": "dd1"})
    desk = await desk_for(shop.http, server, {"key": shop.key})
    assert (await desk.call("GET", "/api/orders/D1")).json()["stage"] == "shipped"
    no_token = await desk.call("POST", "/api/orders/D1/stage", {"stage": "delivered"}, csrf=False)
    assert no_token.status_code == 403 and no_token.json()["error"]["code"] == "csrf_failed"
    wrong = desk.csrf[:-1] + ("y" if desk.csrf.endswith("x") else "x")  # never the real token
    desk_wrong = Desk(desk.http, server, desk.cookie, wrong)
    assert (await desk_wrong.call("POST", "/api/orders/D1/stage", {"stage": "delivered"})).status_code == 403
    assert (await shop.get("/api/orders/D1")).json()["stage"] == "shipped"  # nothing changed
    back = await desk.call("POST", "/api/orders/D1/stage", {"stage": "processing"})
    assert back.status_code == 409 and back.json()["error"]["code"] == "illegal_transition"
    assert "delivered" in back.json()["error"]["allowed"]
    unknown = await desk.call("POST", "/api/orders/D1/stage", {"stage": "teleported"})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_stage"
    assert (await desk.call("POST", "/api/orders/D1/assign", {"driver_id": "ghost"})).status_code == 404
    mismatch = await desk.call("PUT", "/api/drivers/dd1/stops", {"orders": ["D1"]})
    assert mismatch.status_code == 409 and mismatch.json()["error"]["code"] == "stops_mismatch"
    reordered = await desk.call("PUT", "/api/drivers/dd1/stops", {"orders": ["D2", "D1"]})
    assert [s["order_id"] for s in reordered.json()["stops"]] == ["D2", "D1"]
    done = await desk.call("POST", "/api/orders/D1/stage", {"stage": "delivered", "note": "by dispatch"})
    assert done.status_code == 200 and done.json()["history"][-1]["note"] == "by dispatch"


async def test_an_account_session_cannot_administer_the_store(shop: Shop, server: Server) -> None:
    """A dispatcher account runs deliveries: store settings, drivers' credentials and accounts stay out of reach."""
    await shop.post("/api/dispatchers", {"name": "desk", "password": "0123456789ab"})
    desk = await desk_for(shop.http, server, {"store": shop.id, "name": "desk", "password": "0123456789ab"})
    for method, path, body in ADMINISTRATION:
        r = await desk.call(method, path, body)
        assert r.status_code == 403 and r.json()["error"]["code"] == "key_required", (method, path, r.text)
    assert (await shop.get("/api/store")).json()["name"] == "Test shop"


async def test_a_key_session_is_the_owner_of_the_settings_page(shop: Shop, server: Server) -> None:
    """Signed in with the store key, the settings page's endpoints answer; replacing the key still needs the key."""
    desk = await desk_for(shop.http, server, {"key": shop.key})
    for method, path, body in ADMINISTRATION:
        r = await desk.call(method, path, body)
        assert r.status_code in (200, 201), (method, path, r.text)
    assert (await shop.get("/api/store")).json()["name"] == "Mine now"
    r = await desk.call("POST", "/api/store/key", None)
    assert r.status_code == 403 and r.json()["error"]["code"] == "key_required"
    r = await desk.call(
        "POST", "/api/orders", {"id": "X1", "customer": {"name": "A"}, "destination": {"lat": 0, "lon": 0}}
    )
    assert r.status_code == 403, "creating orders is the shop's integration's job, not the settings page's"


ADMINISTRATION: list[tuple[str, str, Any]] = [
    ("GET", "/api/store", None),
    ("PATCH", "/api/store", {"name": "Mine now"}),
    ("POST", "/api/drivers", {"name": "Eve"}),
    ("POST", "/api/dispatchers", {"name": "eve", "password": "0123456789ab"}),
    ("GET", "/api/dispatchers", None),
]


def test_a_session_may_call_exactly_the_dashboards_routes() -> None:
    """The routes marked for dispatcher sessions are the dashboard's socket and its actions, no more."""
    from livemap.app import create_app

    marked = {
        (r.path, method)
        for r in create_app().routes
        if isinstance(r, Route | WebSocketRoute) and session_allowed(r.endpoint)
        for method in (r.methods - {"HEAD"} if isinstance(r, Route) and r.methods else {"WS"})
    }
    assert marked == {
        ("/ws/dispatch", "WS"),
        ("/api/orders", "GET"),  # the orders page
        ("/api/orders/{order_id}", "GET"),
        ("/api/orders/{order_id}/proof/photo", "GET"),  # the order's card on the orders page
        ("/api/orders/{order_id}/assign", "POST"),
        ("/api/orders/{order_id}/stage", "POST"),
        ("/api/drivers/{driver_id}", "GET"),
        ("/api/drivers/{driver_id}/stops", "GET"),
        ("/api/drivers/{driver_id}/stops", "PUT"),
        ("/api/analytics", "GET"),  # the analytics page
        ("/api/orders.csv", "GET"),  # its download
        ("/api/returns.csv", "GET"),  # the returns' download
        ("/api/returns", "GET"),  # the returns page
        ("/api/orders/{order_id}/return", "POST"),  # its buttons
        ("/api/orders/{order_id}/return/photo", "GET"),  # the customer's photo on it
    }


async def test_session_sees_only_its_own_store(http: httpx.AsyncClient, server: Server) -> None:
    """A's session gets 404 for B's orders and drivers, whatever the id."""
    a, b = await new_shop(http, server), await new_shop(http, server)
    await shipped(b, "B1", "db1")
    desk = await desk_for(http, server, {"key": a.key})
    assert (await desk.call("GET", "/api/orders/B1")).status_code == 404
    assert (await desk.call("POST", "/api/orders/B1/stage", {"stage": "delivered"})).status_code == 404
    assert (await desk.call("GET", "/api/drivers/db1/stops")).status_code == 404
    assert (await b.get("/api/orders/B1")).json()["stage"] == "shipped"


async def test_sign_out_ends_the_session_only_with_the_csrf_token(shop: Shop, server: Server) -> None:
    """Signing out needs the page's token; then the cookie is cleared and the session is dead everywhere."""
    desk = await desk_for(shop.http, server, {"key": shop.key})
    cookie = {"Cookie": f"{COOKIE}={desk.cookie}", "Origin": server.url}
    forged = await shop.http.post(f"{server.url}/dispatch/signout", data={"csrf": "nope"}, headers=cookie)
    assert forged.status_code == 303 and "set-cookie" not in forged.headers
    assert (await desk.call("GET", "/api/drivers/none")).status_code == 404  # still signed in
    out = await shop.http.post(f"{server.url}/dispatch/signout", data={"csrf": desk.csrf}, headers=cookie)
    assert out.status_code == 303 and f'{COOKIE}="";' in out.headers["set-cookie"]
    assert (await desk.call("GET", "/api/drivers/none")).status_code == 401
    assert 'id="dp-key-form"' in (await shop.http.get(f"{server.url}/dispatch", headers=cookie)).text


async def test_dispatcher_accounts(shop: Shop, server: Server) -> None:
    """The key creates accounts (hashed, listed without passwords); an account signs in; removing it ends it."""
    r = await shop.post("/api/dispatchers", {"name": "maria", "password": "a long passphrase"})
    assert r.status_code == 201 and r.json()["name"] == "maria" and "password" not in r.json()
    assert (await shop.post("/api/dispatchers", {"name": "maria", "password": "another passphrase"})).status_code == 409
    short = await shop.post("/api/dispatchers", {"name": "pedro", "password": "short"})
    assert short.status_code == 422 and "password" in short.json()["error"]["message"]
    listed = (await shop.get("/api/dispatchers")).json()["dispatchers"]
    assert [d["name"] for d in listed] == ["maria"] and "a long passphrase" not in json.dumps(listed)
    desk = await desk_for(shop.http, server, {"store": shop.id, "name": "maria", "password": "a long passphrase"})
    page = await shop.http.get(f"{server.url}/dispatch", headers={"Cookie": f"{COOKIE}={desk.cookie}"})
    assert "maria" in page.text and shop.key not in page.text
    assert (await desk.call("GET", "/api/drivers/nobody")).status_code == 404  # signed in: a real answer
    removed = await shop.http.delete(f"{server.url}/api/dispatchers/maria", headers=shop.auth)
    assert removed.status_code == 200 and removed.json()["name"] == "maria"
    assert (await desk.call("GET", "/api/drivers/nobody")).status_code == 401
    again = await sign_in(shop.http, server, {"store": shop.id, "name": "maria", "password": "a long passphrase"})
    assert again.status_code == 401
    assert (await shop.http.delete(f"{server.url}/api/dispatchers/maria", headers=shop.auth)).status_code == 404


# --- the socket ------------------------------------------------------------------------------------


async def test_socket_takes_the_session_cookie_only_from_its_own_origin(shop: Shop, server: Server) -> None:
    """The page's socket opens with the cookie and our Origin; another site's page, or no cookie, is refused."""
    await shipped(shop, "W1", "dw1")
    desk = await desk_for(shop.http, server, {"key": shop.key})
    url = f"{server.ws_url}/ws/dispatch"
    cookie = {"Cookie": f"{COOKIE}={desk.cookie}"}
    sock = Socket(await websockets.connect(url, additional_headers=cookie, origin=server.url))  # type: ignore[arg-type]
    snap = await sock.recv_type("snapshot")
    assert [o["order_id"] for o in snap["orders"]] == ["W1"]
    await sock.close()
    assert await refused(url, additional_headers=cookie, origin="https://evil.example") == 403
    assert await refused(url, origin=server.url) == 401
    stale = {"Cookie": f"{COOKIE}=forged-session"}
    assert await refused(url, additional_headers=stale, origin=server.url) == 401


async def test_a_burst_of_buffered_fixes_reaches_the_dispatcher_as_its_newest(shop: Shop, server: Server) -> None:
    """A phone uploading 30 buffered fixes: the dispatcher gets at most two of them, the newest last."""
    await shipped(shop, "B1", "burst")
    desk = await connect(f"{server.ws_url}/ws/dispatch?token={shop.key}")
    snap = await desk.recv_type("snapshot")
    assert snap["drivers"] == []
    driver = await driver_socket(server, shop.drivers["burst"])
    t = now_ms() - 60_000
    await driver.send([fix(i / 40, t + i * 1000, battery=50) for i in range(30)])
    assert (await driver.recv_type("ack"))["accepted"] == 30
    got = [await desk.recv_type("location")]
    while got[-1]["ts"] != t + 29_000:
        got.append(await desk.recv_type("location"))
    assert len(got) <= 2 and got[-1]["driver_id"] == "burst" and got[-1]["battery"] == 50
    assert await locations_within(desk, 1.5) == []  # nothing older trails behind it
    await driver.close()
    await desk.close()


async def test_snapshot_lists_driver_runs_and_eta_refreshes(shop: Shop, server: Server) -> None:
    """Each online driver comes with its run (stops in order); a live order's ETA is refreshed with `eta` events."""
    await shipped(shop, "R1", "runner", promised_by=now_ms() + 3_600_000)
    await shop.order("R2")
    await shop.post("/api/orders/R2/assign", {"driver_id": "runner"})
    driver = await driver_socket(server, shop.drivers["runner"])
    await driver.send(fix(0.1, now_ms() - 2000))
    await driver.recv_type("ack")
    desk = await connect(f"{server.ws_url}/ws/dispatch?token={shop.key}")
    snap = await desk.recv_type("snapshot")
    (runner,) = snap["drivers"]
    assert runner["driver_id"] == "runner" and runner["stops"] == ["R1", "R2"]
    first = {o["order_id"]: o["eta_at"] for o in snap["orders"]}
    assert first["R1"] is not None and first["R2"] is None  # only the live leg has an ETA
    await driver.send(fix(0.6, now_ms()))  # much nearer: a new ETA
    await driver.recv_type("ack")
    eta = await desk.recv_type("eta", timeout=ETA_REFRESH_S + 5)
    while eta.get("order_id") != "R1" or "offset" in eta:  # the refresh, not a queued stop's event
        eta = await desk.recv_type("eta", timeout=ETA_REFRESH_S + 5)
    assert eta["tracking_id"] and eta["eta_at"] != first["R1"] and eta["driver_id"] == "runner"
    await driver.close()
    await desk.close()


async def test_an_eta_refresh_redis_refuses_is_missed_not_the_dispatchers_socket(
    shop: Shop, server: Server, redis_target: RedisTarget
) -> None:
    """A refresh whose read fails (here Redis answers WRONGTYPE for an order key that is not a hash)
    sends nothing; the dispatcher's socket stays open and the refresh after it sends the new ETA."""
    await shipped(shop, "W1", "wrongtype", promised_by=now_ms() + 3_600_000)
    driver = await driver_socket(server, shop.drivers["wrongtype"])
    await driver.send(fix(0.1, now_ms() - 2000))
    await driver.recv_type("ack")
    desk = await connect(f"{server.ws_url}/ws/dispatch?token={shop.key}")
    first = {o["order_id"]: o["eta_at"] for o in (await desk.recv_type("snapshot"))["orders"]}
    keys = Keys(redis_target.prefix)
    with sync_client(redis_target.url) as admin:
        admin.sadd(keys.store_active(shop.id), "not-a-hash")
        admin.set(keys.order("not-a-hash"), "x")
        await driver.send(fix(0.6, now_ms()))  # much nearer: a new ETA, for the refresh to send
        await driver.recv_type("ack")
        await asyncio.sleep(ETA_REFRESH_S - time.time() % ETA_REFRESH_S + 1.0)  # past one failed refresh
        admin.srem(keys.store_active(shop.id), "not-a-hash")
        admin.delete(keys.order("not-a-hash"))
    eta = await desk.recv_type("eta", timeout=ETA_REFRESH_S + 5)
    while eta.get("order_id") != "W1" or "offset" in eta:
        eta = await desk.recv_type("eta", timeout=ETA_REFRESH_S + 5)
    assert eta["eta_at"] != first["W1"]
    await driver.close()
    await desk.close()


# --- 2,000 drivers at 1 Hz -------------------------------------------------------------------------

DRIVERS = 2000
COLS = 50  # homes on a 40 x 50 grid
LAT0, DLAT = -25.95, 0.025  # -25.95 .. -24.975: across the -25 cell boundary
LON0, DLON = -58.45, 0.02  # -58.45 .. -57.47: across the -58 cell boundary
DRIVE_S = 6  # fixes per driver at 1 Hz, after its backlog
BACKLOG = 60  # every tenth phone first uploads the minute of fixes it buffered while offline
# The viewport: edges midway between grid lines (jitter never crosses them), four geo cells.
BBOX = (-58.16, -25.2125, -57.76, -24.9875)


def _home(i: int) -> tuple[float, float]:
    return LAT0 + (i // COLS) * DLAT, LON0 + (i % COLS) * DLON


def _in_bbox(lat: float, lon: float) -> bool:
    return BBOX[0] <= lon <= BBOX[2] and BBOX[1] <= lat <= BBOX[3]


@pytest.fixture(scope="module")
def load_server(redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Its own process: 2,000 drivers going quiet afterwards must not load the other tests' server."""
    srv = Server(server_env(redis_target, tmp_path_factory.mktemp("load")), "load")
    yield srv
    srv.stop()


@dataclass
class Recorder:
    """A dispatcher socket's location messages per driver, after its latest snapshot."""

    sock: Socket
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    locations: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    close_code: int | None = None

    async def record(self) -> None:
        try:
            async for raw in self.sock.conn:
                msg = json.loads(raw)
                if msg["type"] == "snapshot":
                    self.snapshots.append(msg)
                    self.locations.clear()
                elif msg["type"] == "location":
                    self.locations[msg["driver_id"]].append(msg)
        except websockets.ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd else None

    def newest(self, did: str) -> int:
        """The newest fix time this dispatcher knows for `did` (its latest snapshot or a later location)."""
        known = [d["ts"] for d in self.snapshots[-1]["drivers"] if d["driver_id"] == did]
        return max([*known, *(m["ts"] for m in self.locations.get(did, []))], default=0)


async def _create_drivers(shop: Shop) -> list[str]:
    gate = asyncio.Semaphore(16)

    async def create(i: int) -> str:
        async with gate:
            r = await shop.post("/api/drivers", {"id": f"d{i}", "name": f"Driver {i}"})
            assert r.status_code == 201, r.text
            return str(r.json()["token"])

    return await asyncio.gather(*(create(i) for i in range(DRIVERS)))


async def test_two_thousand_drivers_at_1_hz(load_server: Server, redis_target: RedisTarget) -> None:
    """2,000 drivers at 1 Hz (200 uploading a minute's backlog first): each dispatcher gets at most one location
    per driver per second, each driver's newest fix last; a viewport's snapshot holds exactly the drivers inside."""
    srv, rng = load_server, random.Random(5)
    async with httpx.AsyncClient(timeout=wait(30), limits=httpx.Limits(max_connections=16)) as http:
        shop = await new_shop(http, srv)
        tokens = await _create_drivers(shop)
    gate = asyncio.Semaphore(64)

    async def open_driver(token: str) -> Socket:
        async with gate:
            return await connect(f"{srv.ws_url}/ws/driver?token={token}")

    phones = await asyncio.gather(*(open_driver(t) for t in tokens))  # each driver authenticates as itself
    started = time.monotonic()
    whole = Recorder(await connect(f"{srv.ws_url}/ws/dispatch?token={shop.key}"))
    area = Recorder(await connect(f"{srv.ws_url}/ws/dispatch?token={shop.key}"))
    recorders = [asyncio.create_task(r.record()) for r in (whole, area)]
    last_ts: dict[str, int] = {}
    all_started = asyncio.Event()
    first_acks = 0

    def near_home(i: int) -> dict[str, float]:
        lat, lon = _home(i)
        return {"lat": lat + rng.uniform(-5e-4, 5e-4), "lon": lon + rng.uniform(-5e-4, 5e-4), "battery": 80}

    async def drive(i: int) -> None:
        nonlocal first_acks
        sock = phones[i]
        await sock.recv_type("stops")
        if i % 10 == 0:
            t0 = now_ms()
            await sock.send([{**near_home(i), "ts": t0 - (BACKLOG - k) * 1000} for k in range(BACKLOG)])
            assert (await sock.recv_type("ack", 30))["accepted"] == BACKLOG
        await asyncio.sleep(rng.random())  # phones are not in step
        ts = now_ms()
        for n in range(DRIVE_S):
            await sock.send({**near_home(i), "ts": ts})
            assert (await sock.recv_type("ack", 30))["accepted"] == 1
            last_ts[f"d{i}"] = ts
            if n == 0:
                first_acks += 1
                if first_acks == DRIVERS:
                    all_started.set()
            await asyncio.sleep(1)
            ts = max(now_ms(), ts + 1000)  # a new second of fix time every time

    async def narrow() -> None:
        await all_started.wait()  # every driver has a position now
        await area.sock.send({"type": "viewport", "bbox": list(BBOX)})

    await asyncio.gather(narrow(), *(drive(i) for i in range(DRIVERS)))
    # The last fixes go out with the next pass: wait for them (the newest of each driver must arrive).
    inside = {f"d{i}" for i in range(DRIVERS) if _in_bbox(*_home(i))}

    def caught_up() -> bool:
        return all(whole.newest(d) == ts for d, ts in last_ts.items()) and all(
            area.newest(d) == last_ts[d] for d in inside
        )

    for _ in range(int(wait(15) / 0.2)):
        if caught_up():
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.5)  # and nothing after them
    elapsed = time.monotonic() - started
    for task in recorders:
        task.cancel()
    bound = int(elapsed) + 1  # one pass per second at most, since before either socket connected

    assert whole.close_code is None and area.close_code is None  # no slow-consumer close
    assert len(whole.snapshots) == 1 and set(whole.locations) == set(last_ts)
    for did, got in whole.locations.items():
        stamps = [m["ts"] for m in got]
        assert len(got) <= bound, (did, len(got), bound)
        assert stamps == sorted(set(stamps)), did  # newer every time, never a repeat
        assert stamps[-1] == last_ts[did], did  # the newest fix is the one that stays
    assert len(inside) == 180 and len(area.snapshots) == 2
    assert {d["driver_id"] for d in area.snapshots[-1]["drivers"]} == inside
    assert set(area.locations) <= inside  # after the viewport: nothing from outside it
    assert all(area.newest(d) == last_ts[d] for d in inside)
    assert all(len(got) <= bound for got in area.locations.values())
    # The viewport was read from the geo index: the cells' GEOSEARCH found only drivers inside it.
    db = await open_db(redis_target.url)
    store = Repository(db, Keys(redis_target.prefix), stream_maxlen=10, box=SecretBox([SECRET_KEY]))
    assert set(await dispatchview._candidates(store, shop.id, Settings(), BBOX)) == inside
    await db.client.aclose()

    counts = [len(v) for v in whole.locations.values()]
    backlog = [len(whole.locations[f"d{i}"]) for i in range(0, DRIVERS, 10)]
    report = {
        "drivers": DRIVERS,
        "fixes_sent": DRIVERS * DRIVE_S + DRIVERS // 10 * BACKLOG,
        "seconds": round(elapsed, 1),
        "bound_per_driver": bound,
        "whole_store_locations": sum(counts),
        "max_per_driver": max(counts),
        "max_per_backlog_driver": max(backlog),
        "viewport_drivers": len(inside),
        "viewport_locations": sum(len(v) for v in area.locations.values()),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "dispatch-load.json").write_text(json.dumps(report, indent=2) + "\n")
    await asyncio.gather(*(p.close() for p in phones), whole.sock.close(), area.sock.close())


async def test_a_stores_dispatchers_share_one_eta_read(shop: Shop, server: Server, redis_target: RedisTarget) -> None:
    """Dispatchers refreshing together get one read's answer; a later tick reads again; one leaving
    (cancelled) does not cancel the read the others wait for."""
    order = await shop.live_order("eta-share", "es1")
    driver = await driver_socket(server, shop.drivers["es1"])
    await driver.send(fix(0.2, now_ms()))
    await driver.recv_type("ack")
    db = await open_db(redis_target.url)
    board = EtaBoard(
        Repository(db, Keys(redis_target.prefix), stream_maxlen=10, box=SecretBox([SECRET_KEY])), max_age_s=0.5
    )
    leaving = asyncio.create_task(board.etas(shop.id))
    await asyncio.sleep(0)
    first, second = await asyncio.gather(board.etas(shop.id), board.etas(shop.id))
    leaving.cancel()
    assert first is second  # one read
    assert first[order["tracking_id"]].event.order_id == "eta-share"
    await asyncio.sleep(0.6)
    assert await board.etas(shop.id) is not first  # past max_age: read again
    await driver.close()
    await db.client.aclose()
