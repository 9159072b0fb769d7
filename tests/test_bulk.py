"""Bulk set-up: 2,000 orders and a fleet of drivers in one call each, every item answered on its own."""

from __future__ import annotations

import json
from typing import Any

import httpx

from conftest import DEST, ORIGIN, Shop, driver_socket, fix, now_ms


def _order(oid: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": oid,
        "customer": {"name": f"Customer {oid}", "email": f"c{oid}@example.com"},
        "destination": {"lat": DEST[0], "lon": DEST[1]},
        "origin": {"lat": ORIGIN[0], "lon": ORIGIN[1]},
    } | extra


async def test_two_thousand_orders_in_one_call_each_answered_on_its_own(shop: Shop) -> None:
    await shop.order("B-existing")
    items = [_order(f"B{i}") for i in range(2000)]
    items[10] = _order("B-existing")  # already there
    items[20] = _order("B0")  # the same id twice in one call: the second is the duplicate
    items[30] = {k: v for k, v in _order("B30").items() if k != "destination"}
    items[40] = _order("B40", destination={"lat": 91.0, "lon": 0.0})
    items[50] = "not an object"
    r = await shop.http.post(f"{shop.server.url}/api/orders:bulk", json=items, headers=shop.auth, timeout=120)
    assert r.status_code == 200, r.text
    reply = r.json()
    answers = reply["items"]
    assert [a["index"] for a in answers] == list(range(2000))
    assert (reply["created"], reply["duplicate"], reply["invalid"]) == (1995, 2, 3)
    assert answers[10]["status"] == answers[20]["status"] == "duplicate"
    assert answers[10]["id"] == "B-existing" and answers[20]["error"]["code"] == "conflict"
    for i, field in ((30, "destination"), (40, "lat"), (50, "")):
        assert answers[i]["status"] == "invalid" and answers[i]["error"]["code"] == "invalid_field", answers[i]
        assert field in answers[i]["error"]["message"]
    created = [a for a in answers if a["status"] == "created"]
    assert {a["id"] for a in created} == {f"B{i}" for i in range(2000)} - {"B10", "B20", "B30", "B40", "B50"}
    # Every link works, and each order is the one that was sent.
    for a in created[::400]:
        order = (await shop.http.get(a["tracking_url"].replace("/track/", "/api/track/"))).json()["order"]
        assert order["number"] == a["id"] and order["stage"] == "received"
    stored = (await shop.get("/api/orders/B1999")).json()
    assert stored["customer"]["name"] == "Customer B1999" and stored["tracking_id"] == answers[1999]["tracking_id"]
    # Sent again whole (a client that lost the answer): nothing new, nothing lost.
    again = (
        await shop.http.post(f"{shop.server.url}/api/orders:bulk", json=items, headers=shop.auth, timeout=120)
    ).json()
    assert (again["created"], again["duplicate"], again["invalid"]) == (0, 1997, 3)


async def test_a_fleet_of_drivers_in_one_call_with_working_tokens(shop: Shop) -> None:
    drivers: list[Any] = [{"id": f"bd{i}", "name": f"Driver {i}", "vehicle": "motorbike"} for i in range(60)]
    drivers.append({"id": "bd0", "name": "Twin"})
    drivers.append({"id": "bd-bad", "name": "Rocket", "vehicle": "rocket"})
    r = await shop.http.put(f"{shop.server.url}/api/drivers:bulk", json=drivers, headers=shop.auth)
    assert r.status_code == 200, r.text
    reply = r.json()
    assert (reply["created"], reply["duplicate"], reply["invalid"]) == (60, 1, 1)
    assert (
        reply["items"][61]["error"]["code"] == "invalid_field" and "vehicle" in reply["items"][61]["error"]["message"]
    )
    token = reply["items"][59]["token"]
    sock = await driver_socket(shop.server, token)
    try:
        await sock.send(json.dumps(fix(0.1, now_ms(), seq=1)))
        assert (await sock.recv())["accepted"] == 1
    finally:
        await sock.close()
    assert (await shop.get("/api/drivers/bd59")).json()["name"] == "Driver 59"


async def test_bulk_calls_refuse_what_is_not_a_list_of_items(shop: Shop, http: httpx.AsyncClient) -> None:
    url = f"{shop.server.url}/api/orders:bulk"
    r = await http.post(url, json={"id": "x"}, headers=shop.auth)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_field"
    r = await http.post(url, json=[{}] * 5001, headers=shop.auth)
    assert r.status_code == 422 and r.json()["error"]["code"] == "too_many_items"
    r = await http.post(url, content=b"[{", headers=shop.auth | {"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    assert (await http.post(url, json=[])).status_code == 401
