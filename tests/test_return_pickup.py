"""A return's pickup is a live leg like a delivery's: the collecting driver's fixes reach the customer with an
ETA, the dispatchers see the order live again, and the driver's "collected" ends the leg (the order returned)."""

from __future__ import annotations

import asyncio
from typing import Any

from conftest import Server, Shop, connect, customer_socket, driver_socket, fix, now_ms


async def _awaiting_pickup(shop: Shop, oid: str) -> dict[str, Any]:
    """An order delivered by driver `courier` and completed, promised an hour ago, with an approved return."""
    await shop.driver("courier")
    await shop.driver("collector")
    order = await shop.order(oid, promised_by=now_ms() - 3600_000)
    assert (await shop.post(f"/api/orders/{oid}/assign", {"driver_id": "courier"})).status_code == 200
    for stage in ("shipped", "delivered", "completed"):
        assert (await shop.stage(oid, stage)).status_code == 200
    url = f"{shop.server.url}/api/track/{order['tracking_id']}/return"
    r = await shop.http.post(url, params={"t": order["tracking_token"]}, json={"reason": "Damaged"})
    assert r.status_code == 201, r.text
    assert (await shop.post(f"/api/orders/{oid}/return", {"status": "approved"})).status_code == 200
    return order


async def test_the_pickup_leg_is_followed_live_and_ends_when_collected(shop: Shop, server: Server) -> None:
    order = await _awaiting_pickup(shop, "P1")
    tid = order["tracking_id"]
    customer = await customer_socket(server, order)
    snapshot = await customer.recv_type("snapshot")
    assert snapshot["order"]["return_status"] == "approved" and not snapshot["order"]["live"]
    collector = await driver_socket(server, shop.drivers["collector"])
    desk = await connect(f"{server.ws_url}/ws/dispatch?token={shop.key}")
    assert (await desk.recv_type("snapshot"))["orders"] == [], "a completed order is off the map"
    r = await shop.post("/api/orders/P1/return", {"status": "pickup", "driver_id": "collector", "note": "At 3pm"})
    assert r.status_code == 200, r.text
    step = await customer.recv_type("return")
    assert (step["status"], step["live"], step["note"]) == ("pickup", True, "At 3pm")
    stops = (await collector.recv_type("stops"))["stops"]
    assert [(s["order_id"], s["return_leg"], s["actions"]) for s in stops] == [("P1", True, ["returned"])]
    view = (await shop.get("/api/orders/P1")).json()
    assert view["stage"] == "completed" and view["live"] and view["return_leg"] and view["driver_id"] == "collector"
    moved = await desk.recv_type("stage")
    assert (moved["order_id"], moved["driver_id"], moved["live"], moved["return_leg"]) == (
        "P1",
        "collector",
        True,
        True,
    )

    t0 = now_ms() - 60_000
    for i in range(6):
        await collector.send(fix(0.2 + 0.1 * i, t0 + i * 10_000, seq=i))
        assert (await collector.recv_type("ack"))["accepted"] == 1
    seen = [await customer.recv_type("location") for _ in range(6)]
    assert [round(e["lat"], 6) for e in seen] == [round(fix(0.2 + 0.1 * i, 0)["lat"], 6) for i in range(6)]
    assert seen[-1]["eta_at"] is not None and seen[-1]["remaining_m"] > 0, "an ETA to the customer's door"
    assert seen[-1]["remaining_m"] < seen[0]["remaining_m"], "measured along the pickup's own leg"
    late = await connect(f"{server.ws_url}/ws/dispatch?token={shop.key}")
    snap = await late.recv_type("snapshot")
    assert [(o["order_id"], o["return_leg"]) for o in snap["orders"]] == [("P1", True)], "a dispatcher opening now"
    assert [(d["driver_id"], d["stops"]) for d in snap["drivers"]] == [("collector", ["P1"])]
    await late.close()
    wrong = await shop.http.post(
        f"{server.url}/api/driver/stops/{tid}/stage",
        headers={"Authorization": f"Bearer {shop.drivers['courier']}"},
        json={"stage": "returned"},
    )
    assert wrong.status_code == 404, "only the collecting driver marks it"
    r = await shop.http.post(
        f"{server.url}/api/driver/stops/{tid}/stage",
        headers={"Authorization": f"Bearer {shop.drivers['collector']}"},
        json={"stage": "delivered"},
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "illegal_transition", r.text
    r = await shop.http.post(
        f"{server.url}/api/driver/stops/{tid}/stage",
        headers={"Authorization": f"Bearer {shop.drivers['collector']}"},
        json={"stage": "returned", "note": "Box collected"},
    )
    assert r.status_code == 200 and r.json()["stage"] == "returned" and r.json()["actions"] == [], r.text

    step = await customer.recv_type("return")
    assert (step["status"], step["live"]) == ("received", False)
    assert (await customer.recv_type("stage"))["stage"] == "returned"
    assert (await collector.recv_type("stops"))["stops"] == [], "the stop leaves the collector's run"
    await collector.send(fix(0.9, t0 + 70_000, seq=6))
    await collector.recv_type("ack")
    await customer.nothing_within(1.0)  # no position once the leg is over
    view = (await shop.get("/api/orders/P1")).json()
    assert (view["stage"], view["live"], view["return_leg"]) == ("returned", False, False)
    ended = await desk.recv_type("stage")
    assert (ended["stage"], ended["live"], ended.get("return_leg", False)) == ("returned", False, False)
    assert (await shop.get("/api/returns")).json()["returns"][0]["status"] == "received"
    await asyncio.gather(customer.close(), collector.close(), desk.close())


async def test_a_pickup_is_not_late_against_the_delivery_promise(shop: Shop, server: Server) -> None:
    """The delivery's promise (an hour ago) is not the pickup's: a slow collector raises no "delayed"."""
    order = await _awaiting_pickup(shop, "P2")
    customer = await customer_socket(server, order)
    await customer.recv_type("snapshot")
    collector = await driver_socket(server, shop.drivers["collector"])
    assert (await shop.post("/api/orders/P2/return", {"status": "pickup", "driver_id": "collector"})).status_code == 200
    await collector.recv_type("stops")
    t0 = now_ms() - 30_000
    for i in range(3):
        await collector.send(fix(0.3 + 0.1 * i, t0 + i * 10_000, seq=i, speed=0.5))
        await collector.recv_type("ack")
    kinds: list[str] = []
    while kinds.count("location") < 3:
        kinds.append((await customer.recv(5))["type"])
    await customer.nothing_within(0.5)  # an event of the last fix would follow its location at once
    assert "delayed" not in kinds and kinds[0] == "return", kinds
    await asyncio.gather(customer.close(), collector.close())
