"""End to end over real sockets: driver pings -> Redis -> customer and dispatcher streams."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from conftest import (
    RedisTarget,
    Server,
    Shop,
    along,
    connect,
    customer_socket,
    driver_socket,
    fix,
    new_shop,
    now_ms,
    server_env,
    sync_client,
)
from livemap.storage.connection import cluster_url


async def test_pings_reach_customer_in_order_with_falling_eta(shop: Shop, server: Server) -> None:
    """A customer receives every ping of its driver, in fix order, with remaining distance and ETA falling."""
    order = await shop.live_order("1001", "d1")
    customer = await customer_socket(server, order)
    snapshot = await customer.recv()
    assert snapshot["type"] == "snapshot" and snapshot["order"]["stage"] == "shipped"
    assert snapshot["driver"] is None  # no fix yet
    driver = await driver_socket(server, shop.drivers["d1"])
    t0 = now_ms() - 60_000
    for i in range(8):
        await driver.send(fix(i * 0.1, t0 + i * 5000, seq=i))
        ack = await driver.recv_type("ack")
        assert ack == {"type": "ack", "seq": i, "accepted": 1, "ignored": 0}
    events = [await customer.recv_type("location") for _ in range(8)]
    assert [e["ts"] for e in events] == [t0 + i * 5000 for i in range(8)]
    remaining = [e["remaining_m"] for e in events]
    assert remaining == sorted(remaining, reverse=True) and remaining[0] > remaining[-1] + 2000
    eta_at = [e["eta_at"] for e in events]
    assert eta_at[-1] < eta_at[0]
    assert all(e["eta_s"] >= 0 for e in events)
    # The snapshot now carries the newest position and the ETA of the last event.
    r = await shop.http.get(f"{server.url}/api/track/{order['tracking_id']}", params={"t": order["tracking_token"]})
    snap = r.json()
    assert snap["driver"]["ts"] == t0 + 35_000 and snap["eta"]["remaining_m"] == remaining[-1]
    await driver.close()
    await customer.close()


async def test_stage_change_reaches_customer_and_dispatcher(shop: Shop, server: Server) -> None:
    """A stage change is pushed to the order's customer and to the store's dispatcher."""
    order = await shop.live_order("2001", "d2")
    customer = await customer_socket(server, order)
    await customer.recv_type("snapshot")
    dispatcher = await connect(f"{server.ws_url}/ws/dispatch?token={shop.key}")
    snap = await dispatcher.recv_type("snapshot")
    assert [o["order_id"] for o in snap["orders"]] == ["2001"]
    r = await shop.stage("2001", "delivered", note="left with the doorman")
    assert r.status_code == 200
    to_customer = await customer.recv_type("stage")
    assert to_customer["stage"] == "delivered" and to_customer["note"] == "left with the doorman"
    assert to_customer["live"] is False and "order_id" not in to_customer
    to_dispatch = await dispatcher.recv_type("stage")
    assert to_dispatch["stage"] == "delivered" and to_dispatch["order_id"] == "2001"
    assert to_dispatch["offset"] == to_customer["offset"]
    await customer.close()
    await dispatcher.close()


async def test_dispatcher_sees_driver_locations_and_viewport(shop: Shop, server: Server) -> None:
    """The dispatcher gets each driver's fixes with its id; a viewport narrows the snapshot and updates."""
    await shop.live_order("2101", "inside")
    await shop.live_order("2102", "outside")
    dispatcher = await connect(f"{server.ws_url}/ws/dispatch?token={shop.key}")
    await dispatcher.recv_type("snapshot")
    a = await driver_socket(server, shop.drivers["inside"])
    b = await driver_socket(server, shop.drivers["outside"])
    t = now_ms()
    await a.send({"lat": -25.29, "lon": -57.61, "ts": t})
    await b.send({"lat": -25.20, "lon": -57.50, "ts": t})
    await a.recv_type("ack")
    await b.recv_type("ack")
    seen = {(await dispatcher.recv_type("location"))["driver_id"] for _ in range(2)}
    assert seen == {"inside", "outside"}
    await dispatcher.send({"type": "viewport", "bbox": [-57.62, -25.30, -57.60, -25.28]})
    snap = await dispatcher.recv_type("snapshot")
    assert [d["driver_id"] for d in snap["drivers"]] == ["inside"]
    await b.send({"lat": -25.2001, "lon": -57.5001, "ts": t + 2000})
    await a.send({"lat": -25.2901, "lon": -57.6101, "ts": t + 2000})
    await a.recv_type("ack")
    await b.recv_type("ack")
    assert (await dispatcher.recv_type("location"))["driver_id"] == "inside"
    # No location of the driver outside the viewport; its order's ETA may come (the list shows every delivery).
    await dispatcher.nothing_within(0.5, "location")
    for s in (a, b, dispatcher):
        await s.close()


async def test_reconnect_with_since_receives_every_missed_stage(shop: Shop, server: Server) -> None:
    """A customer that reconnects with `since` gets every stage change made while away, once each."""
    order = await shop.order("3001")
    customer = await customer_socket(server, order)
    snap = await customer.recv_type("snapshot")
    offset = snap["offset"]
    await customer.close()
    for stage in ("processing", "shipped", "delivered", "completed"):
        assert (await shop.stage("3001", stage)).status_code == 200
    again = await customer_socket(server, order, since=offset)
    snap2 = await again.recv_type("snapshot")
    assert snap2["order"]["stage"] == "completed"
    replayed = [await again.recv_type("stage") for _ in range(4)]
    assert [e["stage"] for e in replayed] == ["processing", "shipped", "delivered", "completed"]
    assert [e["offset"] for e in replayed] == sorted(e["offset"] for e in replayed)
    await again.nothing_within(0.5)  # no duplicates from the live subscription
    # New events still arrive live after the replay.
    assert (await shop.stage("3001", "returned")).status_code == 200
    assert (await again.recv_type("stage"))["stage"] == "returned"
    await again.close()


async def test_since_replays_locations_only_while_live(shop: Shop, server: Server) -> None:
    """Replay includes past positions while the order is live, and none once the leg is over."""
    order = await shop.live_order("3101", "d31")
    customer = await customer_socket(server, order)
    offset = (await customer.recv_type("snapshot"))["offset"]
    await customer.close()
    driver = await driver_socket(server, shop.drivers["d31"])
    t = now_ms() - 10_000
    await driver.send([fix(0.1, t, 1), fix(0.2, t + 1000, 2), fix(0.3, t + 2000, 3)])
    assert (await driver.recv_type("ack"))["accepted"] == 3
    live = await customer_socket(server, order, since=offset)
    await live.recv_type("snapshot")
    assert [(await live.recv_type("location"))["ts"] for _ in range(3)] == [t, t + 1000, t + 2000]
    await live.close()
    assert (await shop.stage("3101", "delivered")).status_code == 200
    after = await customer_socket(server, order, since=offset)
    snap = await after.recv()
    assert snap["driver"] is None and snap["eta"] is None
    assert (await after.recv())["type"] == "stage"
    await after.nothing_within(0.5)
    await driver.close()
    await after.close()


async def test_driver_on_process_a_reaches_customer_on_process_b(shop: Shop, server: Server, server_b: Server) -> None:
    """Two server processes share only Redis: a driver on A reaches a customer on B."""
    order = await shop.live_order("4001", "d4")
    customer = await customer_socket(server_b, order)
    await customer.recv_type("snapshot")
    dispatcher_b = await connect(f"{server_b.ws_url}/ws/dispatch?token={shop.key}")
    await dispatcher_b.recv_type("snapshot")
    driver = await driver_socket(server, shop.drivers["d4"])
    t = now_ms()
    await driver.send(fix(0.5, t, seq=7))
    assert (await driver.recv_type("ack"))["seq"] == 7
    event = await customer.recv_type("location")
    assert event["ts"] == t
    assert (await dispatcher_b.recv_type("location"))["driver_id"] == "d4"
    # And a stage change made through process A's REST API reaches B's customer.
    await shop.stage("4001", "delivered")
    assert (await customer.recv_type("stage"))["stage"] == "delivered"
    for s in (driver, customer, dispatcher_b):
        await s.close()


async def test_out_of_order_and_replayed_pings_are_ignored_and_counted(shop: Shop, server: Server) -> None:
    """A fix older than the driver's newest is acked as ignored, never shown, and counted."""
    order = await shop.live_order("5001", "d5")
    customer = await customer_socket(server, order)
    await customer.recv_type("snapshot")
    driver = await driver_socket(server, shop.drivers["d5"])
    t = now_ms()
    await driver.send(fix(0.2, t, 1))
    assert (await driver.recv_type("ack"))["accepted"] == 1
    await driver.send(fix(0.1, t - 5000, 2))  # older
    assert await driver.recv_type("ack") == {"type": "ack", "seq": 2, "accepted": 0, "ignored": 1}
    await driver.send(fix(0.2, t, 3))  # exact replay
    assert (await driver.recv_type("ack"))["ignored"] == 1
    await driver.send([fix(0.3, t + 2000, 4), fix(0.25, t + 1000, 5), fix(0.4, t + 3000, 6)])
    assert await driver.recv_type("ack") == {"type": "ack", "seq": 6, "accepted": 2, "ignored": 1}
    got = [(await customer.recv_type("location"))["ts"] for _ in range(3)]
    assert got == [t, t + 2000, t + 3000]
    await customer.nothing_within(0.3)
    stats = (await shop.get("/api/drivers/d5")).json()
    assert stats["fixes"] == {"accepted": 3, "ignored": 3}
    assert stats["position"]["ts"] == t + 3000
    await driver.close()
    await customer.close()


async def test_location_only_on_active_leg(shop: Shop, server: Server) -> None:
    """Before shipping and after delivery the customer gets no driver position; a driver's other orders neither."""
    await shop.driver("d6")
    order = await shop.order("6001")
    other = await shop.live_order("6002", "d6")
    assert (await shop.post("/api/orders/6001/assign", {"driver_id": "d6"})).status_code == 200
    customer = await customer_socket(server, order)  # assigned, but still "received": not live
    assert (await customer.recv_type("snapshot"))["driver"] is None
    other_customer = await customer_socket(server, other)
    await other_customer.recv_type("snapshot")
    driver = await driver_socket(server, shop.drivers["d6"])
    await driver.send(fix(0.1, now_ms(), 1))
    await driver.recv_type("ack")
    assert (await other_customer.recv_type("location"))["lat"] == fix(0.1, 0)["lat"]
    await customer.nothing_within(0.5)
    r = await shop.http.get(f"{server.url}/api/track/{order['tracking_id']}", params={"t": order["tracking_token"]})
    assert r.json()["driver"] is None and r.json()["eta"] is None
    await asyncio.gather(driver.close(), customer.close(), other_customer.close())


async def test_driver_gets_its_stops_pushed(shop: Shop, server: Server) -> None:
    """The driver's socket lists its stops and is told when the store assigns another."""
    await shop.live_order("7001", "d7")
    driver = await driver_socket(server, shop.drivers["d7"])
    await shop.order("7002")
    await shop.post("/api/orders/7002/assign", {"driver_id": "d7"})
    stops = await driver.recv_type("stops")
    assert sorted(s["order_id"] for s in stops["stops"]) == ["7001", "7002"]
    await driver.close()


async def test_dispatcher_of_another_store_sees_nothing(http: httpx.AsyncClient, server: Server) -> None:
    """Store B's dispatcher never receives store A's orders or drivers."""
    a, b = await new_shop(http, server), await new_shop(http, server)
    await a.live_order("8001", "d8")
    dispatcher_b = await connect(f"{server.ws_url}/ws/dispatch?token={b.key}")
    snap = await dispatcher_b.recv_type("snapshot")
    assert snap["orders"] == [] and snap["drivers"] == []
    driver = await driver_socket(server, a.drivers["d8"])
    await driver.send(fix(0.1, now_ms()))
    await driver.recv_type("ack")
    await a.stage("8001", "delivered")
    await dispatcher_b.nothing_within(0.5)
    await driver.close()
    await dispatcher_b.close()


async def test_a_full_batch_is_stored_and_reaches_the_customer(shop: Shop, server: Server) -> None:
    """A batch of LIVEMAP_MAX_BATCH (1,000) fixes is stored from one message, each fix reaching the customer."""
    order = await shop.live_order("9001", "d9")
    customer = await customer_socket(server, order)
    offset = (await customer.recv_type("snapshot"))["offset"]
    driver = await driver_socket(server, shop.drivers["d9"])
    t0 = now_ms() - 1_200_000
    batch = []
    for i in range(1000):
        lat, lon = along(i / 1000)
        batch.append({"lat": round(lat, 6), "lon": round(lon, 6), "ts": t0 + i * 1000})
    await driver.send(batch)
    assert await driver.recv_type("ack", timeout=30) == {"type": "ack", "seq": None, "accepted": 1000, "ignored": 0}
    got: list[int] = []
    while len(got) < 1000:
        try:
            event = await customer.recv_type("location", timeout=30)
        except ConnectionClosed as closed:  # the burst outran its queue: a slow consumer replays with `since`
            assert closed.rcvd is not None and closed.rcvd.code == 1013
            customer = await customer_socket(server, order, since=offset)
            await customer.recv_type("snapshot")
            continue
        got.append(event["ts"])
        offset = event["offset"]
    assert got == [t0 + i * 1000 for i in range(1000)]
    assert (await shop.get("/api/drivers/d9")).json()["position"]["ts"] == t0 + 999_000
    await driver.close()
    await customer.close()


@pytest.fixture(scope="module")
def deep_server(redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Streams long enough to replay a whole burst; small per-socket queues, so overflow comes soon."""
    env = server_env(redis_target, tmp_path_factory.mktemp("deep"), LIVEMAP_STREAM_MAXLEN="60000")
    srv = Server(env | {"LIVEMAP_CLIENT_QUEUE": "16"}, "deep")
    yield srv
    srv.stop()


async def test_a_customer_who_stops_reading_is_dropped_then_replays_everything(
    http: httpx.AsyncClient, deep_server: Server
) -> None:
    """A customer whose app stops reading: the server's socket stops being writable, messages wait in
    its queue, the queue overflows, the socket is closed with 1013 (never stalling anyone else), and a
    reconnect with `since` gets every location after the last one it had, in order."""
    shop = await new_shop(http, deep_server)
    order = await shop.live_order("slow-1", "slow-d")
    host, port = deep_server.ws_url.removeprefix("ws://").split(":")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the phone's buffers fill at once
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, (host, int(port)))
    url = f"{deep_server.ws_url}/ws/track/{order['tracking_id']}?t={order['tracking_token']}"
    customer = await connect(url, sock=raw, max_queue=1)
    offset = (await customer.recv_type("snapshot"))["offset"]
    driver = await driver_socket(deep_server, shop.drivers["slow-d"])
    t0 = now_ms() - 13 * 3600_000
    stamps = [t0 + i * 1000 for i in range(40_000)]  # ~10 MB of locations, past every buffer on the way
    for start in range(0, len(stamps), 500):  # 500 fixes: a message under the 64 KiB frame limit
        chunk = stamps[start : start + 500]
        await driver.send([fix(0.5, ts) for ts in chunk])
        assert (await driver.recv_type("ack", timeout=60))["accepted"] == len(chunk)
    got: list[int] = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            event = await customer.recv_type("location", timeout=30)
            got.append(event["ts"])
            offset = event["offset"]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    assert len(got) < len(stamps)
    customer = await customer_socket(deep_server, order, since=offset)
    await customer.recv_type("snapshot")
    while len(got) < len(stamps):
        got.append((await customer.recv_type("location", timeout=30))["ts"])
    assert got == stamps
    await driver.close()
    await customer.close()


async def test_fixes_sent_while_redis_drops_the_servers_connections_are_stored_or_refused(
    shop: Shop, server: Server, redis_target: RedisTarget
) -> None:
    """Redis closes every client connection (a restart, a proxy failover): each fix sent meanwhile is
    either acked as stored or refused as `unavailable` and stored on resend; none is acked and lost;
    REST requests go on working."""
    if cluster_url(redis_target.url):
        pytest.skip("one server's connections: a Cluster's nodes are killed one by one in test_cluster")
    order = await shop.live_order("kill-1", "kill-d")
    customer = await customer_socket(server, order)
    await customer.recv_type("snapshot")
    driver = await driver_socket(server, shop.drivers["kill-d"])
    t0 = now_ms() - 60_000
    stamps = [t0 + i * 1000 for i in range(30)]
    refused = killed = 0
    with sync_client(redis_target.url) as admin:
        for i, ts in enumerate(stamps):
            if i % 5 == 2:
                killed += int(admin.client_kill_filter(_type="normal", skipme=True))
            while True:
                await driver.send(fix(i / 40, ts, seq=i))
                reply = await driver.recv(10)
                if reply["type"] == "ack":
                    assert reply == {"type": "ack", "seq": i, "accepted": 1, "ignored": 0}
                    break
                assert reply["type"] == "error" and reply["code"] == "unavailable", reply
                refused += 1
                assert refused < 30, "the server never got its connection back"
        killed += int(admin.client_kill_filter(_type="normal", skipme=True))
        for _ in range(5):  # REST calls on the pool's closed connections: retried, never a 500
            assert (await shop.get("/api/orders/kill-1")).status_code == 200
    assert killed >= 7  # the server's connections, each time
    got = [(await customer.recv_type("location", timeout=10))["ts"] for _ in stamps]
    assert got == stamps
    await driver.close()
    await customer.close()


async def test_a_broken_pub_sub_connection_drops_its_customers_who_replay(
    shop: Shop, server: Server, redis_target: RedisTarget
) -> None:
    """One Redis closing the hub's connection closes the customer's socket with 1013; the hub
    reconnects, `since` recovers what was published meanwhile and live messages flow again. Twice:
    the reconnected connection is read like the first. (Drivers' sockets, which follow their stops on
    the same connection, are closed alike; a new one is opened after each break.)"""
    if cluster_url(redis_target.url):
        pytest.skip("a Cluster's pub/sub connections: test_cluster")
    order = await shop.live_order("ps-1", "ps-d")
    t0 = now_ms() - 60_000
    customer = await customer_socket(server, order)
    offset = (await customer.recv_type("snapshot"))["offset"]
    for n in range(2):
        with sync_client(redis_target.url) as admin:
            assert admin.client_kill_filter(_type="pubsub", skipme=True) >= 1
        with pytest.raises(ConnectionClosed) as closed:
            await customer.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        driver = await driver_socket(server, shop.drivers["ps-d"])
        missed, live = t0 + n * 10_000, t0 + n * 10_000 + 2000
        await driver.send(fix(0.1 + n / 10, missed, seq=2 * n))
        await driver.recv_type("ack")
        customer = await customer_socket(server, order, since=offset)
        await customer.recv_type("snapshot")
        assert (await customer.recv_type("location"))["ts"] == missed  # published while away: replayed
        await driver.send(fix(0.15 + n / 10, live, seq=2 * n + 1))
        await driver.recv_type("ack")
        event = await customer.recv_type("location")
        assert event["ts"] == live  # and live again
        offset = event["offset"]
        await driver.close()
    await customer.close()
