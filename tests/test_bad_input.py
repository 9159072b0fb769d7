"""Bad input gets a clear, typed error; the connection keeps working; nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from conftest import (
    RedisTarget,
    Server,
    Shop,
    connect,
    customer_socket,
    driver_socket,
    fix,
    now_ms,
    sync_client,
)
from livemap.storage.keys import Keys


async def test_driver_socket_survives_bad_messages_and_keeps_acked_fixes(shop: Shop, server: Server) -> None:
    """Each bad message gets its typed error on the same socket; every acked fix reaches the customer."""
    order = await shop.live_order("B1", "db1")
    customer = await customer_socket(server, order)
    await customer.recv_type("snapshot")
    driver = await driver_socket(server, shop.drivers["db1"])
    t = now_ms() - 60_000
    acked: list[int] = []

    async def good(i: int) -> None:
        await driver.send(fix(i / 20, t + i * 1000, seq=i))
        ack = await driver.recv_type("ack")
        assert ack["accepted"] == 1
        acked.append(t + i * 1000)

    bad_cases = [
        ('{"lat": 1, "lon":', "invalid_json", None),
        ("not json at all", "invalid_json", None),
        (json.dumps({"lat": 91, "lon": 1, "ts": t, "seq": 90}), "invalid_fix", 90),
        ('{"lat": 1, "lon": NaN, "ts": ' + str(t) + ', "seq": 91}', "invalid_json", None),
        (json.dumps({"lat": 1, "lon": 1e999, "ts": t, "seq": 92}).replace("Infinity", "1e999"), "invalid_fix", None),
        (json.dumps({"lat": "-25.3", "lon": -57.6, "ts": t, "seq": 93}), "invalid_fix", 93),
        (json.dumps({"lat": -25.3, "lon": -57.6, "ts": t // 1000, "seq": 94}), "invalid_fix", 94),
        (json.dumps({"lon": -57.6, "ts": t, "seq": 95}), "invalid_fix", 95),
        (json.dumps(42), "invalid_fix", None),
        (json.dumps({"lat": 1, "lon": 1, "ts": t, "seq": 96}) + " " * (70 * 1024), "frame_too_large", None),
    ]
    await good(0)
    for i, (raw, code, seq) in enumerate(bad_cases, start=1):
        await driver.send(raw)
        reply = await driver.recv_type("error")
        assert reply["code"] == code, (raw[:60], reply)
        assert reply["seq"] == seq and reply["message"]
        await good(i)  # the socket keeps working after every bad message
    # A 1 MB frame: refused with a typed error, the socket stays open.
    await driver.send(json.dumps([fix(0.9, t + 99_000)]) + " " * (1024 * 1024))
    assert (await driver.recv_type("error"))["code"] == "frame_too_large"
    await good(len(bad_cases) + 1)
    got = [(await customer.recv_type("location"))["ts"] for _ in acked]
    assert got == acked
    stats = (await shop.get("/api/drivers/db1")).json()["fixes"]
    assert stats == {"accepted": len(acked), "ignored": 0}
    await driver.close()
    await customer.close()


async def test_batch_judges_each_fix_alone(shop: Shop, server: Server) -> None:
    """In a batch the good fixes are stored and the bad ones listed by index with their code."""
    order = await shop.live_order("B2", "db2")
    customer = await customer_socket(server, order)
    await customer.recv_type("snapshot")
    driver = await driver_socket(server, shop.drivers["db2"])
    t = now_ms() - 10_000
    batch = [
        fix(0.1, t, 1),
        {"lat": 200, "lon": 0, "ts": t + 500, "seq": 2},
        fix(0.2, t + 1000, 3),
        {"lat": "x"},
        fix(0.3, t + 2000, 4),
    ]
    await driver.send(batch)
    ack = await driver.recv_type("ack")
    assert ack["seq"] == 4 and ack["accepted"] == 3 and ack["ignored"] == 0
    assert [(r["index"], r["code"]) for r in ack["rejected"]] == [(1, "invalid_fix"), (3, "invalid_fix")]
    assert "lat" in ack["rejected"][0]["message"]
    assert [(await customer.recv_type("location"))["ts"] for _ in range(3)] == [t, t + 1000, t + 2000]
    await driver.close()
    await customer.close()


async def test_oversized_batch_and_floods_are_refused(shop: Shop, server: Server) -> None:
    """A batch over the limit is refused whole; a flood is rate limited; both with one reply per message."""
    await shop.driver("db3")
    driver = await driver_socket(server, shop.drivers["db3"])
    t = now_ms() - 3_600_000
    compact = [{"lat": 1, "lon": 1, "ts": t + i} for i in range(1001)]
    await driver.send(compact)
    reply = await driver.recv_type("error")
    assert reply["code"] in ("batch_too_large", "frame_too_large")
    replies = []
    for i in range(150):  # well over the 50/s average and its burst of 100
        await driver.send({"lat": 1, "lon": 1, "ts": t + 10_000 + i, "seq": i})
    for _ in range(150):
        msg = await driver.recv()
        if msg["type"] != "stops":
            replies.append(msg)
    assert len(replies) == 150
    codes = [r.get("code", "ack") for r in replies]
    assert "rate_limited" in codes and codes.count("ack") >= 50
    await driver.close()


async def test_frame_over_transport_limit_closes_only_that_socket(shop: Shop, server: Server) -> None:
    """A frame over the transport limit (2 MiB) closes that socket with 1009; the server keeps serving."""
    token = await shop.driver("db4")
    driver = await driver_socket(server, token)
    with pytest.raises(websockets.ConnectionClosed) as info:
        await driver.send("x" * (3 * 1024 * 1024))
        await driver.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    again = await driver_socket(server, token)
    await again.send(fix(0.1, now_ms(), 1))
    assert (await again.recv_type("ack"))["accepted"] == 1
    await again.close()


async def test_rest_errors_are_typed(shop: Shop, server: Server) -> None:
    """REST answers bad bodies, unknown orders and illegal transitions with a typed JSON error."""
    r = await shop.http.post(f"{server.url}/api/orders", content=b"{nope", headers=shop.auth)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = await shop.post("/api/orders", {"id": "X1", "customer": {"name": "A"}, "destination": {"lat": 91, "lon": 0}})
    assert r.status_code == 422 and "lat" in r.json()["error"]["message"]
    r = await shop.post("/api/orders", {"id": "X1", "customer": {"name": "A"}})
    assert r.status_code == 422 and "destination" in r.json()["error"]["message"]
    r = await shop.post(
        "/api/orders",
        {"id": "X1", "customer": {"name": "A", "email": "not-an-email"}, "destination": {"lat": 1, "lon": 1}},
    )
    assert r.status_code == 422 and "customer.email" in r.json()["error"]["message"]
    await shop.order("X2")
    r = await shop.post("/api/orders", {"id": "X2", "customer": {"name": "A"}, "destination": {"lat": 1, "lon": 1}})
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    r = await shop.stage("nope", "shipped")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await shop.stage("X2", "teleported")
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_stage"
    assert "shipped" in r.json()["error"]["known"]
    assert (await shop.stage("X2", "delivered")).status_code == 200
    r = await shop.stage("X2", "processing")
    body = r.json()["error"]
    assert r.status_code == 409 and body["code"] == "illegal_transition"
    assert body["allowed"] == ["completed", "returned"] and "completed, returned" in body["message"]
    r = await shop.post("/api/orders/X2/assign", {"driver_id": "ghost"})
    assert r.status_code == 404
    r = await shop.http.get(f"{server.url}/api/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await shop.http.delete(f"{server.url}/api/orders")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


async def test_invalid_since_and_viewport_get_typed_errors(shop: Shop, server: Server) -> None:
    """A malformed `since` is refused at the handshake; a bad viewport gets an error and the socket lives on."""
    order = await shop.order("X3")
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(
            f"{server.ws_url}/ws/track/{order['tracking_id']}?t={order['tracking_token']}&since=abc"
        )
    assert info.value.response.status_code == 400
    dispatcher = await connect(f"{server.ws_url}/ws/dispatch?token={shop.key}")
    await dispatcher.recv_type("snapshot")
    await dispatcher.send({"type": "viewport", "bbox": [10, 10, 0, 0]})
    assert (await dispatcher.recv_type("error"))["code"] == "invalid_message"
    await dispatcher.send({"type": "viewport", "bbox": [-58, -26, -57, -25]})
    assert (await dispatcher.recv_type("snapshot"))["type"] == "snapshot"
    await dispatcher.close()


# --- numbers, depth and coordinates that validation must catch before anything is written ----------


async def test_out_of_range_numbers_are_refused_and_store_nothing(shop: Shop, server: Server) -> None:
    """Integers too large for their field get a 422 naming it, and the refused order does not exist afterwards."""
    huge = "9" * 400
    body = '{"id":"N1","customer":{"name":"A"},"destination":{"lat":1,"lon":1},"promised_by":' + huge + "}"
    r = await shop.http.post(f"{server.url}/api/orders", content=body, headers=shop.auth)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_field"
    assert "promised_by" in r.json()["error"]["message"]
    assert (await shop.get("/api/orders/N1")).status_code == 404
    assert (await shop.stage("N1", "shipped")).status_code == 404
    year_2200 = 7_258_118_400_000
    r = await shop.post(
        "/api/orders",
        {"id": "N1", "customer": {"name": "A"}, "destination": {"lat": 1, "lon": 1}, "promised_by": year_2200},
    )
    assert r.status_code == 422 and "promised_by" in r.json()["error"]["message"]
    r = await shop.http.patch(
        f"{server.url}/api/store", json={"notifications": {"email": {"port": 10**30}}}, headers=shop.auth
    )
    assert r.status_code == 422 and "port" in r.json()["error"]["message"]
    driver = await driver_socket(server, await shop.driver("n1"))
    await driver.send('{"lat":1,"lon":1,"ts":' + str(now_ms()) + ',"seq":' + huge + "}")
    reply = await driver.recv_type("error")
    assert reply["code"] == "invalid_fix" and "seq" in reply["message"] and reply["seq"] is None
    await driver.close()
    assert (await shop.get("/api/drivers/n1")).json()["fixes"] == {"accepted": 0, "ignored": 0}


async def test_deeply_nested_json_is_a_typed_400_and_changes_nothing(shop: Shop, server: Server) -> None:
    """JSON nested thousands of levels deep (a RecursionError in the decoder) is a 400; settings stay as they were."""
    before = (await shop.get("/api/store")).json()
    deep = '{"name":' + "[" * 5000 + "]" * 5000 + "}"
    r = await shop.http.patch(f"{server.url}/api/store", content=deep, headers=shop.auth)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    nested = '{"branding":' + '{"x":' * 100 + "1" + "}" * 101  # decodable, but deeper than any setting
    r = await shop.http.patch(f"{server.url}/api/store", content=nested, headers=shop.auth)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_field"
    assert (await shop.get("/api/store")).json() == before
    token = await shop.driver("n2")
    r = await shop.http.post(f"{server.url}/ingest/owntracks?token={token}", content="[" * 5000 + "]" * 5000)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = await shop.http.post(f"{server.url}/api/orders", content="[" * 5000 + "]" * 5000, headers=shop.auth)
    assert r.status_code == 422


async def test_positions_beyond_what_redis_geo_indexes_are_invalid(shop: Shop, server: Server) -> None:
    """A fix at a latitude Redis GEO cannot index is `invalid_fix` naming lat; the driver's acked fixes stay."""
    order = await shop.live_order("N3", "n3")
    driver = await driver_socket(server, shop.drivers["n3"])
    t = now_ms() - 5000
    await driver.send(fix(0.1, t, seq=1))
    assert (await driver.recv_type("ack"))["accepted"] == 1
    await driver.send({"lat": 85.1, "lon": 10, "ts": t + 1000, "seq": 2})
    reply = await driver.recv_type("error")
    assert reply["code"] == "invalid_fix" and reply["message"].startswith("lat") and reply["seq"] == 2
    await driver.send([fix(0.2, t + 2000, seq=3), {"lat": -89, "lon": 10, "ts": t + 3000, "seq": 4}])
    ack = await driver.recv_type("ack")
    assert ack["accepted"] == 1 and [(x["index"], x["code"]) for x in ack["rejected"]] == [(1, "invalid_fix")]
    await driver.close()
    customer = await customer_socket(server, order)
    snapshot = await customer.recv_type("snapshot")
    assert snapshot["driver"]["ts"] == t + 2000
    await customer.close()
    r = await shop.post("/api/orders", {"id": "N4", "customer": {"name": "A"}, "destination": {"lat": 86, "lon": 0}})
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("destination: lat")
    assert (await shop.get("/api/orders/N4")).status_code == 404
    r = await shop.http.get(f"{server.url}/ingest/osmand?token={shop.drivers['n3']}&id=n3&lat=88&lon=1")
    assert r.status_code == 400 and "lat" in r.json()["error"]["message"]


async def test_empty_stop_list_of_a_driver_without_stops(shop: Shop, server: Server) -> None:
    """`PUT .../stops {"orders": []}` on a driver with no stops is that (empty) run, not a 500."""
    await shop.driver("n5")
    r = await shop.http.put(f"{server.url}/api/drivers/n5/stops", json={"orders": []}, headers=shop.auth)
    assert r.status_code == 200 and r.json() == {"driver_id": "n5", "stops": []}


async def test_an_unexpected_error_is_a_typed_500_with_an_id_in_the_log(
    shop: Shop, server: Server, redis_target: RedisTarget
) -> None:
    """An error no endpoint expects (Redis answers WRONGTYPE) is a JSON 500 with an error id, no traceback;
    the server's log has the traceback under that id."""
    await shop.driver("n6")
    with sync_client(redis_target.url) as admin:
        admin.delete(Keys(redis_target.prefix).driver(shop.id, "n6"))
        admin.set(Keys(redis_target.prefix).driver(shop.id, "n6"), "not a hash")
    r = await shop.get("/api/drivers/n6")
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert error["code"] == "internal_error" and error["error_id"] in error["message"]
    assert "Traceback" not in r.text and "WRONGTYPE" not in r.text
    logged = await asyncio.to_thread(server.wait_for_output, f"internal error {error['error_id']}", 5)
    assert "GET /api/drivers/n6" in logged.splitlines()[0] and "WRONGTYPE" in logged
