"""The driver app's API: its own stops only, the store's stage machine, proof of delivery for the customer."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgspec

from conftest import Server, Shop, customer_socket, driver_socket, new_shop, png
from livemap.domain import responses as r

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def mark(shop: Shop, token: str, tid: str, stage: str, **extra: Any) -> httpx.Response:
    return await shop.http.post(
        f"{shop.server.url}/api/driver/stops/{tid}/stage", json={"stage": stage, **extra}, headers=bearer(token)
    )


async def upload(shop: Shop, token: str, tid: str, body: bytes, media_type: str) -> httpx.Response:
    headers = bearer(token) | {"Content-Type": media_type}
    return await shop.http.post(f"{shop.server.url}/api/driver/stops/{tid}/proof", content=body, headers=headers)


async def customer_proof(shop: Shop, order: dict[str, Any], token: str | None = None) -> httpx.Response:
    t = order["tracking_token"] if token is None else token
    return await shop.http.get(f"{shop.server.url}/api/track/{order['tracking_id']}/proof", params={"t": t})


async def test_driver_endpoints_take_only_a_driver_token(shop: Shop, server: Server) -> None:
    """`GET /api/driver` answers the driver its own name and stops; no token is 401, a store key 403."""
    token = await shop.driver("da1")
    order = await shop.order("A1")
    await shop.post("/api/orders/A1/assign", {"driver_id": "da1"})
    url = f"{server.url}/api/driver"
    assert (await shop.http.get(url)).status_code == 401
    assert (await shop.http.get(url, headers=bearer("lmd_not-a-token"))).status_code == 401
    assert (await shop.http.get(url, headers=shop.auth)).status_code == 403
    assert (await mark(shop, shop.key, order["tracking_id"], "shipped")).status_code == 403
    me = await shop.http.get(url, headers=bearer(token))
    assert me.status_code == 200
    run = msgspec.json.decode(me.content, type=r.DriverRun)
    assert (run.driver_id, run.name) == ("da1", "Driver da1")
    assert [(s.order_id, s.stage, s.actions, s.customer) for s in run.stops] == [("A1", "received", ["shipped"], "Ana")]


async def test_another_drivers_order_is_404_like_an_unknown_one(http: httpx.AsyncClient, server: Server) -> None:
    """A driver cannot touch an order that is not assigned to it (same store or not): the answer is an unknown id's."""
    shop, other_shop = await new_shop(http, server), await new_shop(http, server)
    mine = await shop.driver("db1")
    await shop.live_order("B1", "db2")  # the same store's other driver
    theirs = (await shop.get("/api/orders/B1")).json()
    await other_shop.live_order("B2", "db1")  # another store's driver with the same id
    foreign = (await other_shop.get("/api/orders/B2")).json()
    unassigned = await shop.order("B3")
    unknown = await mark(shop, mine, "nosuchtrackingid", "delivered")
    assert unknown.status_code == 404
    for tid in (theirs["tracking_id"], foreign["tracking_id"], unassigned["tracking_id"]):
        answer = await mark(shop, mine, tid, "delivered")
        assert (answer.status_code, answer.json()) == (404, unknown.json())
        photo = await upload(shop, mine, tid, png(), "image/png")
        assert (photo.status_code, photo.json()) == (404, unknown.json())
    assert (await shop.get("/api/orders/B1")).json()["stage"] == "shipped"  # untouched
    assert (await other_shop.get("/api/orders/B2")).json()["stage"] == "shipped"


async def test_driver_moves_its_stop_through_the_stores_stage_machine(shop: Shop, server: Server) -> None:
    """Picked up, failed, picked up, delivered: each reaches the customer and the history; 409 names what is allowed."""
    token = await shop.driver("dc1")
    order = await shop.order("C1")
    await shop.post("/api/orders/C1/assign", {"driver_id": "dc1"})
    tid = order["tracking_id"]
    customer = await customer_socket(server, order)
    assert (await customer.recv_type("snapshot"))["order"]["stage"] == "received"
    driver = await driver_socket(server, token)

    picked = await mark(shop, token, tid, "shipped")
    assert picked.status_code == 200, picked.text
    stop = msgspec.json.decode(picked.content, type=r.DriverStop)
    assert (stop.stage, stop.live, stop.actions) == ("shipped", True, ["delivered", "failed_attempt"])
    assert (await customer.recv_type("stage"))["stage"] == "shipped"
    pushed = await driver.recv_type("stops")  # the driver's socket hears of its own change too
    assert [(s["stage"], s["actions"]) for s in pushed["stops"]] == [("shipped", ["delivered", "failed_attempt"])]

    again = await mark(shop, token, tid, "shipped")
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "illegal_transition" and error["current"] == "shipped"
    assert "delivered" in error["allowed"] and "failed_attempt" in error["allowed"]
    assert (await mark(shop, token, tid, "cancelled")).status_code == 422  # not a driver's stage

    failed = await mark(shop, token, tid, "failed_attempt", note="nobody home")
    assert failed.status_code == 200 and failed.json()["actions"] == ["shipped"]
    event = await customer.recv_type("stage")
    assert (event["stage"], event["note"]) == ("failed_attempt", "nobody home")
    assert (await mark(shop, token, tid, "shipped")).status_code == 200
    delivered = await mark(shop, token, tid, "delivered", recipient="  Marta  ")
    assert delivered.status_code == 200 and delivered.json()["actions"] == []
    assert (await customer.recv_type("stage"))["stage"] == "shipped"
    assert (await customer.recv_type("stage"))["stage"] == "delivered"
    history = [h["stage"] for h in (await shop.get("/api/orders/C1")).json()["history"]]
    assert history == ["received", "shipped", "failed_attempt", "shipped", "delivered"]
    proof = await customer_proof(shop, order)
    assert proof.status_code == 200 and proof.json()["recipient"] == "Marta" and proof.json()["photo"] is False
    await asyncio.gather(customer.close(), driver.close())


async def test_a_refused_delivery_keeps_no_recipient(shop: Shop) -> None:
    """A delivery the stage machine refuses (from a failed attempt) keeps no recipient name."""
    token = await shop.driver("dd1")
    order = await shop.live_order("D1", "dd1")
    assert (await mark(shop, token, order["tracking_id"], "failed_attempt")).status_code == 200
    refused = await mark(shop, token, order["tracking_id"], "delivered", recipient="Nobody")
    assert refused.status_code == 409 and refused.json()["error"]["allowed"] == ["shipped", "cancelled", "returned"]
    await shop.stage("D1", "shipped")
    await shop.stage("D1", "delivered")
    assert (await customer_proof(shop, order)).json()["error"]["code"] == "no_proof"


async def test_proof_photo_type_and_size_are_checked(shop: Shop) -> None:
    """Only JPEG/PNG/WebP bodies whose first bytes match their type, up to 2 MiB; anything else is refused, not kept."""
    token = await shop.driver("de1")
    order = await shop.live_order("E1", "de1")
    tid = order["tracking_id"]
    assert (await upload(shop, token, tid, b"hello", "text/plain")).status_code == 415
    mismatch = await upload(shop, token, tid, png(), "image/jpeg")
    assert mismatch.status_code == 422 and mismatch.json()["error"]["code"] == "invalid_image"
    assert (await upload(shop, token, tid, b"<svg onload=alert(1)>", "image/png")).status_code == 422
    assert (await upload(shop, token, tid, b"", "image/webp")).status_code == 422
    huge = JPEG[:-2] + b"\x00" * (2 * 1024 * 1024) + b"\xff\xd9"
    too_large = await upload(shop, token, tid, huge, "image/jpeg")
    assert too_large.status_code == 413 and too_large.json()["error"]["code"] == "body_too_large"
    blank = await shop.http.post(
        f"{shop.server.url}/api/driver/stops/{tid}/proof", json={"recipient": "  "}, headers=bearer(token)
    )
    assert blank.status_code == 422
    await shop.stage("E1", "delivered")
    assert (await customer_proof(shop, order)).json()["error"]["code"] == "no_proof"  # nothing bad was kept

    webp = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24
    kept = await upload(shop, token, tid, webp, "image/webp")
    assert kept.status_code == 200 and kept.json()["photo"] is True and kept.json()["recipient"] is None
    kept = await upload(shop, token, tid, JPEG, "image/jpeg; charset=binary")  # a new photo replaces it
    assert kept.status_code == 200
    photo = await shop.http.get(f"{shop.server.url}/api/track/{tid}/proof/photo", params={"t": order["tracking_token"]})
    assert photo.content == JPEG and photo.headers["content-type"] == "image/jpeg"


async def test_customer_sees_the_proof_only_after_delivery(shop: Shop, server: Server) -> None:
    """Photo and name sent before delivery stay hidden (409) until the order is delivered; a wrong token gets 404."""
    token = await shop.driver("df1")
    order = await shop.live_order("F1", "df1")
    tid = order["tracking_id"]
    photo = png(64, 40)
    assert (await upload(shop, token, tid, photo, "image/png")).status_code == 200
    named = await shop.http.post(
        f"{server.url}/api/driver/stops/{tid}/proof", json={"recipient": "Joana"}, headers=bearer(token)
    )
    assert named.status_code == 200 and named.json() == {"recipient": "Joana", "photo": True, "at": named.json()["at"]}
    before = await customer_proof(shop, order)
    assert before.status_code == 409 and before.json()["error"] == {
        "code": "not_delivered",
        "message": before.json()["error"]["message"],
        "stage": "shipped",
    }
    photo_url = f"{server.url}/api/track/{tid}/proof/photo"
    assert (await shop.http.get(photo_url, params={"t": order["tracking_token"]})).status_code == 409
    assert (await customer_proof(shop, order, token="wrong")).status_code == 404
    assert (await shop.http.get(photo_url)).status_code == 401

    assert (await mark(shop, token, tid, "delivered")).status_code == 200
    after = await customer_proof(shop, order)
    assert after.status_code == 200
    proof = msgspec.json.decode(after.content, type=r.Proof)
    assert (proof.recipient, proof.photo) == ("Joana", True)
    assert "no-store" in after.headers["cache-control"]
    image = await shop.http.get(photo_url, params={"t": order["tracking_token"]})
    assert image.status_code == 200 and image.content == photo
    assert image.headers["content-type"] == "image/png" and image.headers["x-content-type-options"] == "nosniff"
    assert (await shop.http.get(photo_url, params={"t": "wrong"})).status_code == 404

    await shop.stage("F1", "completed")  # final: the proof is kept as it was
    closed = await upload(shop, token, tid, png(), "image/png")
    assert closed.status_code == 409 and closed.json()["error"]["code"] == "order_closed"
    assert (await customer_proof(shop, order)).json()["recipient"] == "Joana"


async def test_driver_page_is_served_without_credentials(shop: Shop, server: Server) -> None:
    """`/driver` is one static app for every driver, in the asked language, with no token in it."""
    page = await shop.http.get(f"{server.url}/driver", params={"lang": "es"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="es">' in page.text and "Iniciar turno" in page.text
    assert "/static/driver.js" in page.text and "lmd_" not in page.text
    assert (await shop.http.get(f"{server.url}/static/driver.js")).status_code == 200
