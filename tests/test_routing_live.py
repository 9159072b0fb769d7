"""Issue 20 end to end: an order without a route gets a road route when it goes live, a driver who leaves
it gets a new one, and the customer's socket, the dispatcher and the REST API all see it.

A real server with the embedded router on a few streets written by the test (tests/streets.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from streets import A, B, C, E, F, near, write_osm

from conftest import (
    SECRET_KEY,
    RedisTarget,
    Server,
    Shop,
    connect,
    customer_socket,
    driver_socket,
    new_shop,
    now_ms,
    server_env,
)
from livemap.domain.events import RouteEvent
from livemap.storage.connection import open_db
from livemap.storage.keys import Keys
from livemap.storage.repository import Repository
from livemap.storage.secretbox import SecretBox


@pytest.fixture(scope="module")
def routed(redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("routed")
    streets = write_osm(data / "streets.osm")
    env = server_env(redis_target, data, LIVEMAP_OSM_PBF=str(streets), LIVEMAP_REROUTE_INTERVAL_S="0")
    srv = Server(env, "routed")
    yield srv
    srv.stop()


async def live_order_at_a(shop: Shop, oid: str, did: str) -> dict[str, Any]:
    """An order from A to C as a shop sends it (no route), assigned and shipped."""
    await shop.driver(did)
    order = await shop.order(oid, origin={"lat": A[0], "lon": A[1]}, destination={"lat": C[0], "lon": C[1]})
    assert order["route_source"] == "straight_line"
    assert (await shop.post(f"/api/orders/{oid}/assign", {"driver_id": did})).status_code == 200
    assert (await shop.stage(oid, "shipped")).json()["live"]
    return order


def through(points: list[list[float]], corner: tuple[float, float]) -> bool:
    return any(near((p[0], p[1]), corner) for p in points)


async def test_a_live_order_gets_a_road_route_and_a_new_one_off_route(http: httpx.AsyncClient, routed: Server) -> None:
    shop = await new_shop(http, routed)
    order = await live_order_at_a(shop, "R1", "r1")
    customer = await customer_socket(routed, order)
    assert (await customer.recv())["type"] == "snapshot"
    dispatch = await connect(f"{routed.ws_url}/ws/dispatch?token={shop.key}")
    assert (await dispatch.recv())["type"] == "snapshot"
    # The driver's app opens: its session routes the live leg from the order's origin (no fix yet).
    driver = await driver_socket(routed, shop.drivers["r1"])
    first = await customer.recv_type("route", timeout=20)
    assert first["source"] == "router" and first["reason"] == "live" and first["offset"]
    assert through(first["points"], B) and not through(first["points"], E)  # the short way, on the streets
    copy = await dispatch.recv_type("route")
    assert copy["order_id"] == "R1" and copy["points"] == first["points"]
    view = (await shop.get("/api/orders/R1")).json()
    assert view["route_source"] == "router" and view["route"] == first["points"]
    # The driver goes the other way, to E: off the route, so a new one from where it is.
    t0 = now_ms() - 30_000
    for i in range(5):
        await driver.send({"lat": E[0], "lon": E[1] + i * 0.00001, "ts": t0 + i * 2000, "accuracy": 5, "seq": i})
        await driver.recv_type("ack")
    off = await customer.recv_type("off_route", timeout=10)
    assert off["resolved"] is False
    second = await customer.recv_type("route", timeout=20)
    assert second["reason"] == "off_route" and through(second["points"], F) and not through(second["points"], B)
    assert near(tuple(second["points"][0]), E, 30)  # it starts where the driver is
    # The snapshot (a page opened now, a reconnecting socket) has the newest route.
    snap = (
        await http.get(f"{routed.url}/api/track/{order['tracking_id']}", params={"t": order["tracking_token"]})
    ).json()
    assert snap["order"]["route"] == second["points"]
    for sock in (driver, customer, dispatch):
        await sock.close()


async def test_a_store_route_wins_and_an_unreachable_door_keeps_the_straight_line(
    http: httpx.AsyncClient, routed: Server
) -> None:
    shop = await new_shop(http, routed)
    own = [[A[0], A[1]], [B[0], B[1]], [C[0], C[1]]]
    sent = await shop.order("R2", route=own, destination={"lat": C[0], "lon": C[1]})
    assert sent["route_source"] == "store"
    # 5 km east of every street: off the map, so no road route; the order says so.
    far = await shop.order("R3", origin={"lat": A[0], "lon": A[1]}, destination={"lat": 60.17, "lon": 25.03})
    for oid, did in (("R2", "r2"), ("R3", "r3")):
        await shop.driver(did)
        assert (await shop.post(f"/api/orders/{oid}/assign", {"driver_id": did})).status_code == 200
        assert (await shop.stage(oid, "shipped")).json()["live"]
    drivers = [await driver_socket(routed, shop.drivers[did]) for did in ("r2", "r3")]
    routed.wait_for_output(f"no road route for order {far['tracking_id']}", timeout=20)
    r2 = (await shop.get("/api/orders/R2")).json()
    assert r2["route_source"] == "store" and r2["route"] == own
    assert (await shop.get("/api/orders/R3")).json()["route_source"] == "straight_line"
    for sock in drivers:
        await sock.close()


async def test_a_queued_stop_never_gets_a_route_from_the_drivers_position(
    http: httpx.AsyncClient, routed: Server, redis_target: RedisTarget
) -> None:
    """Defence in depth for issue 25's rule: a route starts where the driver was, which only the active
    leg's customer may see; the order's script refuses it for a queued stop, whatever the caller asks."""
    shop = await new_shop(http, routed)
    await shop.driver("q1")
    for oid in ("Q1", "Q2"):
        await shop.order(oid, origin={"lat": A[0], "lon": A[1]}, destination={"lat": C[0], "lon": C[1]})
        assert (await shop.post(f"/api/orders/{oid}/assign", {"driver_id": "q1"})).status_code == 200
        assert (await shop.stage(oid, "shipped")).json()["live"]
    queued = (await shop.get("/api/orders/Q2")).json()
    customer = await customer_socket(routed, queued)
    assert (await customer.recv())["type"] == "snapshot"
    driver = await driver_socket(routed, shop.drivers["q1"])
    await driver.send({"lat": A[0], "lon": A[1], "ts": now_ms() - 1000, "seq": 1})  # marks Q1 active, Q2 queued
    await driver.recv_type("ack")
    db = await open_db(redis_target.url)
    repo = Repository(db, Keys(redis_target.prefix), stream_maxlen=10, box=SecretBox([SECRET_KEY]))
    event = RouteEvent(points=[A, B, C], source="router", reason="off_route", ts=now_ms())
    cum = [0.0, 200.0, 400.0]
    assert await repo.set_leg_route(shop.id, "Q2", queued["tracking_id"], "q1", cum, event, None) is None
    with contextlib.suppress(TimeoutError):  # its ETA events come; a route never does
        while True:
            assert (await customer.recv(timeout=1))["type"] != "route"
    assert (await shop.get("/api/orders/Q2")).json()["route_source"] == "straight_line"
    await db.client.aclose()
    await driver.close()
    await customer.close()


async def test_queued_stops_are_chained_by_road(http: httpx.AsyncClient, routed: Server) -> None:
    """The stop after C is A: 400 m by road (C-B-A), 581 m as the straight line times the detour factor."""
    shop = await new_shop(http, routed)
    await shop.driver("c1")
    for oid, door in (("K1", C), ("K2", A)):
        await shop.order(oid, origin={"lat": A[0], "lon": A[1]}, destination={"lat": door[0], "lon": door[1]})
        assert (await shop.post(f"/api/orders/{oid}/assign", {"driver_id": "c1"})).status_code == 200
        assert (await shop.stage(oid, "shipped")).json()["live"]
    driver = await driver_socket(routed, shop.drivers["c1"])
    t0, gap = now_ms() - 600_000, 0.0
    for i in range(40):  # a fix every 61 s of fix time: each one re-publishes the queued stop's ETA
        await driver.send({"lat": A[0], "lon": A[1], "ts": t0 + i * 61_000, "seq": i})
        await driver.recv_type("ack")
        first, second = [(await shop.get(f"/api/orders/{oid}")).json()["eta"] for oid in ("K1", "K2")]
        if first and second:
            gap = second["remaining_m"] - first["remaining_m"]
            if abs(gap - 400) < 25:
                break
        await asyncio.sleep(0.1)
    assert abs(gap - 400) < 25, gap  # not the 581 m of the straight line
    await driver.close()
