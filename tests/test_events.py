"""ETA events over real sockets: each reaches the customer and the dispatcher exactly once per occurrence."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import (
    DEST,
    ORIGIN,
    RedisTarget,
    Server,
    Shop,
    Socket,
    along,
    connect,
    customer_socket,
    driver_socket,
    new_shop,
    now_ms,
    server_env,
    wait,
)

ROUTE_M = 3705  # ORIGIN -> DEST, straight (geodesic), for orientation


async def drain(sock: Socket, seconds: float = 0.5) -> list[dict[str, Any]]:
    """Every message that arrives within `seconds` of quiet."""
    out = []
    while True:
        try:
            out.append(await sock.recv(seconds))
        except TimeoutError:
            return out


def kinds(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("type") == kind]


async def drive(driver: Socket, points: list[tuple[float, float, float]], t0: int, step_s: float = 5.0) -> None:
    """Send fixes at (lat, lon, speed) every `step_s` of fix time from `t0`, each acked before the next."""
    for i, (lat, lon, speed) in enumerate(points):
        await driver.send({"lat": lat, "lon": lon, "ts": t0 + int(i * step_s * 1000), "speed": speed, "accuracy": 5})
        ack = await driver.recv_type("ack")
        assert ack["accepted"] == 1, ack


async def dispatcher(server: Server, shop: Shop) -> Socket:
    sock = await connect(f"{server.ws_url}/ws/dispatch?token={shop.key}")
    await sock.recv_type("snapshot")
    return sock


async def test_arriving_and_arrived_once_each(shop: Shop, server: Server) -> None:
    """Approaching the door fires `arriving` once; stopping there fires `arrived` once; lingering fires nothing."""
    order = await shop.live_order("E1", "e1")
    customer = await customer_socket(server, order)
    await customer.recv_type("snapshot")
    desk = await dispatcher(server, shop)
    driver = await driver_socket(server, shop.drivers["e1"])
    t0 = now_ms() - 30 * 60_000
    # 10 m/s along the route: 50 m per 5 s fix, from 3 km out to the door.
    path = [(*along(f), 10.0) for f in [i * 50 / ROUTE_M for i in range(60, 75)]]
    path += [(*DEST, 0.0)] * 4
    await drive(driver, path, t0)
    got = await drain(customer)
    assert len(kinds(got, "arriving")) == 1 and len(kinds(got, "arrived")) == 1
    arriving, arrived = kinds(got, "arriving")[0], kinds(got, "arrived")[0]
    assert arriving["remaining_m"] <= 150 or arriving["eta_at"] - arriving["ts"] <= 180_000
    assert arrived["ts"] >= arriving["ts"] and abs(arrived["lat"] - DEST[0]) < 1e-6
    assert kinds(got, "location")[-1]["remaining_m"] == 0  # once arrived, nothing remains
    desk_got = await drain(desk)
    assert [(e["type"], e["order_id"]) for e in desk_got if e["type"] in ("arriving", "arrived")] == [
        ("arriving", "E1"),
        ("arrived", "E1"),
    ]
    # Lingering at the door: no repeats.
    await drive(driver, [(*DEST, 0.0)] * 3, t0 + 200_000)
    assert not [m for m in await drain(customer) if m["type"] in ("arriving", "arrived")]
    for s in (driver, customer, desk):
        await s.close()


async def test_delayed_once_then_recovered_once(shop: Shop, server: Server) -> None:
    """An ETA past the promise fires `delayed` once; catching up fires one recovery (`resolved`)."""
    t0 = now_ms() - 30 * 60_000
    await shop.driver("e2")
    order = await shop.order("E2", promised_by=t0 + 240_000)
    await shop.post("/api/orders/E2/assign", {"driver_id": "e2"})
    await shop.stage("E2", "shipped")
    customer = await customer_socket(server, order)
    await customer.recv_type("snapshot")
    desk = await dispatcher(server, shop)
    driver = await driver_socket(server, shop.drivers["e2"])
    await drive(driver, [(*ORIGIN, 0.0), (*ORIGIN, 0.0)], t0)  # ~3.7 km at a car's prior: well past 4 min
    # Then very fast (a motorway): 30 m/s.
    await drive(driver, [(*along(i * 150 / ROUTE_M), 30.0) for i in range(1, 25)], t0 + 10_000)
    got = kinds(await drain(customer), "delayed")
    assert [d["resolved"] for d in got] == [False, True]
    assert got[0]["eta_at"] > got[0]["promised_by"] + 60_000 > got[1]["eta_at"] + 120_000
    desk_got = [(e["order_id"], e["resolved"]) for e in await drain(desk) if e["type"] == "delayed"]
    assert desk_got == [("E2", False), ("E2", True)]
    for s in (driver, customer, desk):
        await s.close()


async def test_off_route_and_back(shop: Shop, server: Server) -> None:
    """Three fixes far from the route fire `off_route` once; three back on it fire one `resolved`."""
    order = await shop.live_order("E3", "e3")
    customer = await customer_socket(server, order)
    await customer.recv_type("snapshot")
    driver = await driver_socket(server, shop.drivers["e3"])
    t0 = now_ms() - 30 * 60_000
    on = [(*along(i * 0.02), 10.0) for i in range(5)]
    lat, lon = along(0.1)
    away = [(lat + 0.004 + i * 0.0002, lon, 10.0) for i in range(4)]  # ~450 m north of the route
    back = [(*along(0.12 + i * 0.02), 10.0) for i in range(4)]
    await drive(driver, on + away + back, t0)
    got = await drain(customer)
    flips = kinds(got, "off_route")
    assert [f["resolved"] for f in flips] == [False, True]
    assert flips[0]["distance_m"] > 300
    locations = kinds(got, "location")
    # While off the route: straight-line distance to the door x the detour factor.
    off_fix = locations[len(on) + 3]
    assert off_fix["remaining_m"] > 0
    await driver.close()
    await customer.close()


async def test_queued_stop_gets_etas_but_no_position_until_it_is_the_active_leg(shop: Shop, server: Server) -> None:
    """A queued stop gets `eta` events (after the first stop), no position; re-ordering swaps them."""
    first = await shop.live_order("M1", "m1")
    second = await shop.live_order("M2", "m1")
    stops = (await shop.get("/api/drivers/m1/stops")).json()["stops"]
    assert [s["order_id"] for s in stops] == ["M1", "M2"]
    c1, c2 = await customer_socket(server, first), await customer_socket(server, second)
    await c1.recv_type("snapshot")
    await c2.recv_type("snapshot")
    driver = await driver_socket(server, shop.drivers["m1"])
    t0 = now_ms() - 30 * 60_000
    await drive(driver, [(*along(i * 0.01), 10.0) for i in range(3)], t0)
    got1, got2 = await drain(c1), await drain(c2)
    assert len(kinds(got1, "location")) == 3 and not kinds(got2, "location")
    eta2 = kinds(got2, "eta")
    assert len(eta2) == 1  # not one per fix: only when it moved > 1 min or a minute passed
    # Stop 2 is after stop 1's arrival, its dwell, and the leg between them.
    assert eta2[0]["eta_at"] > kinds(got1, "location")[-1]["eta_at"] + 120_000
    snap2 = (
        await shop.http.get(f"{server.url}/api/track/{second['tracking_id']}", params={"t": second["tracking_token"]})
    ).json()
    # The snapshot has the newest ETA; events are re-sent only when it moves by more than a minute.
    assert snap2["driver"] is None and abs(snap2["eta"]["eta_at"] - eta2[0]["eta_at"]) <= 60_000
    # Re-order: M2 first. Its customer now sees the driver; M1's does not.
    r = await shop.http.put(f"{server.url}/api/drivers/m1/stops", json={"orders": ["M2", "M1"]}, headers=shop.auth)
    assert r.status_code == 200 and [s["order_id"] for s in r.json()["stops"]] == ["M2", "M1"]
    await driver.recv_type("stops")  # the session reloaded its run
    await drive(driver, [(*along(0.05), 10.0)], t0 + 20_000)
    assert len(kinds(await drain(c2), "location")) == 1
    assert not kinds(await drain(c1), "location")
    r = await shop.http.put(f"{server.url}/api/drivers/m1/stops", json={"orders": ["M2"]}, headers=shop.auth)
    assert r.status_code == 409 and r.json()["error"]["code"] == "stops_mismatch"
    for s in (driver, c1, c2):
        await s.close()


async def test_reconnected_driver_keeps_its_learned_state(shop: Shop, server: Server) -> None:
    """After a reconnect the session reloads the stored speed and progress: fixes keep flowing, ETA continuous."""
    order = await shop.live_order("R1", "r1")
    customer = await customer_socket(server, order)
    await customer.recv_type("snapshot")
    t0 = now_ms() - 30 * 60_000
    driver = await driver_socket(server, shop.drivers["r1"])
    await drive(driver, [(*along(i * 0.02), 10.0) for i in range(6)], t0)
    await driver.close()
    driver = await driver_socket(server, shop.drivers["r1"])
    await drive(driver, [(*along(0.12 + i * 0.02), 10.0) for i in range(3)], t0 + 30_000)
    locations = kinds(await drain(customer), "location")
    assert len(locations) == 9
    remaining = [m["remaining_m"] for m in locations]
    assert remaining == sorted(remaining, reverse=True)
    await driver.close()
    await customer.close()


# --- stale and offline: two processes with short thresholds, one announcement each ----------------


@pytest.fixture(scope="module")
def quick_servers(redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    fast = {"LIVEMAP_STALE_AFTER_S": "1", "LIVEMAP_ONLINE_WINDOW_S": "3", "LIVEMAP_WATCHDOG_INTERVAL_S": "0.2"}
    # Their own key prefix: a watchdog this quick would otherwise sweep every driver the suite left behind.
    fast["LIVEMAP_KEY_PREFIX"] = f"{redis_target.prefix}:quick"
    servers = [Server(server_env(redis_target, tmp_path_factory.mktemp(f"q{i}"), **fast), f"Q{i}") for i in range(2)]
    yield servers
    for s in servers:
        s.stop()


async def test_a_late_sweep_still_announces_stale_before_offline(
    redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A process frozen past the offline line (a stalled host) wakes and still says `stale`, then `offline`."""
    fast = {"LIVEMAP_STALE_AFTER_S": "1", "LIVEMAP_ONLINE_WINDOW_S": "2", "LIVEMAP_WATCHDOG_INTERVAL_S": "0.2"}
    fast["LIVEMAP_KEY_PREFIX"] = f"{redis_target.prefix}:late"  # sweeps only this test's drivers
    srv = Server(server_env(redis_target, tmp_path_factory.mktemp("late"), **fast), "late")
    try:
        async with httpx.AsyncClient(timeout=wait(20)) as http:
            shop = await new_shop(http, srv)
            order = await shop.live_order("L1", "l1")
            customer = await customer_socket(srv, order)
            await customer.recv_type("snapshot")
            driver = await driver_socket(srv, shop.drivers["l1"])
            await drive(driver, [(*along(0.1), 10.0)], now_ms())
            srv.proc.send_signal(signal.SIGSTOP)  # no sweep runs until the driver is past both lines
            try:
                await asyncio.sleep(3)
            finally:
                srv.proc.send_signal(signal.SIGCONT)
            # Both arrive, stale first (an offline before it would make the second wait time out) ...
            quiet = ("stale", "offline")
            first = await customer.recv(15)
            while first["type"] not in quiet:
                first = await customer.recv(15)
            assert first["type"] == "stale"
            await customer.recv_type("offline", 15)
            # ... and once each.
            assert not [m for m in await drain(customer, 1) if m["type"] in quiet]
            for s in (driver, customer):
                await s.close()
    finally:
        srv.stop()


async def test_stale_then_offline_once_each_across_processes(quick_servers: list[Server]) -> None:
    """A silent driver is announced `stale` then `offline`, once each, though two processes sweep; a fix re-arms it."""
    a, b = quick_servers
    async with httpx.AsyncClient(timeout=wait(20)) as http:
        shop = await new_shop(http, a)
        order = await shop.live_order("S1", "s1")
        customer = await customer_socket(b, order)
        await customer.recv_type("snapshot")
        desk = await dispatcher(b, shop)
        driver = await driver_socket(a, shop.drivers["s1"])
        t = now_ms()
        await drive(driver, [(*along(0.1), 10.0)], t)
        started = time.monotonic()
        got = await drain(customer, wait(5))
        elapsed = time.monotonic() - started
        assert [m["type"] for m in got if m["type"] in ("stale", "offline")] == ["stale", "offline"]
        assert all(m["last_ts"] == t for m in got if m["type"] in ("stale", "offline"))
        desk_got = [(m["type"], m["driver_id"]) for m in await drain(desk) if m["type"] in ("stale", "offline")]
        assert desk_got == [("stale", "s1"), ("offline", "s1")]
        assert elapsed >= 3  # offline waited for the online window
        snap = (
            await http.get(f"{a.url}/api/track/{order['tracking_id']}", params={"t": order["tracking_token"]})
        ).json()
        assert snap["driver"]["stale"] is True
        # A new fix, then silence again: announced again, once.
        await drive(driver, [(*along(0.11), 10.0)], now_ms())
        # Between the stale line (1 s) and the offline one (3 s): not scaled, it is a moment, not a timeout.
        await asyncio.sleep(2)
        again = [m["type"] for m in await drain(customer, 0.3) if m["type"] in ("stale", "offline")]
        assert again == ["stale"]
        await customer.recv_type("offline", 5)
        for s in (driver, customer, desk):
            await s.close()
