"""Returns as a workflow through the public API: the customer asks after delivery, within the store's window
and with one of its reasons; the store walks it to refunded, every step in the order's history."""

from __future__ import annotations

from typing import Any

import httpx

from conftest import Shop, new_shop, now_ms, png

DAY = 86_400_000


async def _delivered(shop: Shop, oid: str, delivered_at: int | None = None) -> dict[str, Any]:
    """An order taken to delivered (at `delivered_at`, default now)."""
    at = delivered_at or now_ms()
    order = await shop.order(oid, placed_at=at - 3 * 3600_000)
    for stage, back in (("processing", 2), ("shipped", 1), ("delivered", 0)):
        r = await shop.post(f"/api/orders/{oid}/stage", {"stage": stage, "at": at - back * 3600_000})
        assert r.status_code == 200, r.text
    return order


async def _ask(shop: Shop, order: dict[str, Any], reason: str = "Damaged", note: str | None = None) -> httpx.Response:
    url = f"{shop.server.url}/api/track/{order['tracking_id']}/return"
    return await shop.http.post(url, params={"t": order["tracking_token"]}, json={"reason": reason, "note": note})


async def _step(shop: Shop, oid: str, status: str, **extra: Any) -> httpx.Response:
    return await shop.post(f"/api/orders/{oid}/return", {"status": status, **extra})


async def test_a_return_walks_every_step_to_refunded(shop: Shop) -> None:
    order = await _delivered(shop, "R1")
    await shop.driver("collector")
    r = await _ask(shop, order, "Damaged", "  The box was crushed  ")
    assert r.status_code == 201, r.text
    assert r.json() | {"steps": None} == {
        "order_id": "R1", "tracking_id": order["tracking_id"], "status": "requested", "reason": "Damaged",
        "note": "The box was crushed", "requested_at": r.json()["requested_at"], "steps": None, "driver_id": None,
        "allowed": ["approved", "rejected"], "photo": False,
    }  # fmt: skip
    listed = (await shop.get("/api/returns?status=open")).json()["returns"]
    assert [x["order_id"] for x in listed] == ["R1"]
    bad = await _step(shop, "R1", "refunded")
    assert bad.status_code == 409 and bad.json()["error"]["code"] == "illegal_return_step"
    assert bad.json()["error"]["allowed"] == ["approved", "rejected"]
    assert (await _step(shop, "R1", "approved", note="Send it back")).status_code == 200
    r = await _step(shop, "R1", "pickup")
    assert r.status_code == 409 and r.json()["error"]["code"] == "driver_required"
    r = await _step(shop, "R1", "pickup", driver_id="collector")
    assert r.status_code == 200 and r.json()["driver_id"] == "collector" and r.json()["allowed"] == ["received"]
    assert (await _step(shop, "R1", "received")).status_code == 200
    assert (await shop.get("/api/orders/R1")).json()["stage"] == "returned", "the parcel is back: returned"
    assert (await shop.get("/api/analytics")).json()["returns"]["returned"] == 1
    r = await _step(shop, "R1", "refunded", note="Refunded in full")
    assert r.status_code == 200 and r.json()["allowed"] == []
    assert [s["status"] for s in r.json()["steps"]] == ["requested", "approved", "pickup", "received", "refunded"]
    history = (await shop.get("/api/orders/R1")).json()["history"]
    steps = ["requested", "approved", "pickup", "received"]
    assert [h["stage"] for h in history][-6:] == [*(f"return_{s}" for s in steps), "returned", "return_refunded"]
    assert history[-1]["note"] == "Refunded in full"
    assert (await shop.get("/api/returns?status=open")).json()["returns"] == []
    assert [x["status"] for x in (await shop.get("/api/returns?status=closed")).json()["returns"]] == ["refunded"]


async def test_a_return_is_refused_with_the_reason(shop: Shop, http: httpx.AsyncClient) -> None:
    fresh = await shop.order("R2")
    r = await _ask(shop, fresh)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_delivered", "before delivery"
    order = await _delivered(shop, "R3")
    r = await _ask(shop, order, "I changed my mind")
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_reason"
    assert "Damaged" in r.json()["error"]["known"]
    assert (await _ask(shop, order)).status_code == 201
    r = await _ask(shop, order)
    assert r.status_code == 409 and r.json()["error"]["code"] == "return_exists"
    delivered_at = now_ms() - 31 * DAY
    late = await _delivered(shop, "R4", delivered_at)
    r = await _ask(shop, late)
    assert r.status_code == 409 and r.json()["error"]["code"] == "return_window_closed"
    assert r.json()["error"]["closed_at"] == delivered_at + 30 * DAY
    patched = await http.patch(shop.server.url + "/api/store", headers=shop.auth,
                               json={"returns": {"window_days": 60, "reasons": ["Too small", "Too big"]}})  # fmt: skip
    assert patched.status_code == 200
    assert (await _ask(shop, late, "Too big")).status_code == 201, "a longer window, the store's own reasons"
    other = await new_shop(http, shop.server)
    r = await _step(other, "R3", "approved")
    assert r.status_code == 404, "another store cannot touch it"
    assert (await other.get("/api/returns")).json()["returns"] == []
    r = await _step(shop, "R2", "approved")
    assert r.status_code == 404 and "no return" in r.json()["error"]["message"]
    r = await shop.get("/api/returns?status=lost")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_query"


async def test_the_customer_adds_a_photo_until_the_store_answers(shop: Shop, http: httpx.AsyncClient) -> None:
    order = await _delivered(shop, "R5")
    url = f"{shop.server.url}/api/track/{order['tracking_id']}/return/photo"
    token = {"t": order["tracking_token"]}

    async def put(body: bytes, media_type: str = "image/png", params: dict[str, str] = token) -> httpx.Response:
        return await http.put(url, params=params, content=body, headers={"Content-Type": media_type})

    r = await put(png())
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_return", "a photo goes with a return"
    assert (await _ask(shop, order)).status_code == 201
    assert (await put(png(), params={"t": "forged"})).status_code == 404
    r = await put(b"<svg onload=alert(1)>", "image/svg+xml")
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = await put(b"GIF89a" + bytes(64))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_image", "the type is read from the bytes"
    r = await put(b"\x89PNG\r\n\x1a\n" + bytes(2 * 1024 * 1024))
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    assert (await put(png(rgb=(1, 2, 3)))).status_code == 204
    assert (await put(png(rgb=(9, 9, 9)))).status_code == 204, "a second one replaces it"
    listed = (await shop.get("/api/returns")).json()["returns"]
    assert [(x["order_id"], x["photo"]) for x in listed] == [("R5", True)]
    got = await shop.get("/api/orders/R5/return/photo")
    assert got.status_code == 200 and got.content == png(rgb=(9, 9, 9))
    assert got.headers["content-type"] == "image/png" and got.headers["x-content-type-options"] == "nosniff"
    other = await new_shop(http, shop.server)
    assert (await other.get("/api/orders/R5/return/photo")).status_code == 404, "another store's photo"
    assert (await _step(shop, "R5", "approved")).status_code == 200
    r = await put(png())
    assert r.status_code == 409 and r.json()["error"]["code"] == "return_answered"
    assert r.json()["error"]["current"] == "approved"
    assert (await shop.get("/api/orders/R5/return/photo")).content == png(rgb=(9, 9, 9)), "kept as it was"
    await _delivered(shop, "R6")
    r = await shop.get("/api/orders/R6/return/photo")
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_photo"
