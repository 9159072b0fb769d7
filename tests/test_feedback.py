"""The customer's rating and update opt-ins (`/api/track/{tracking_id}/feedback`, `/subscriptions`) on a real server."""

from __future__ import annotations

from typing import Any

import httpx

from conftest import Server, Shop


def _track(server: Server, order: dict[str, Any], what: str) -> str:
    return f"{server.url}/api/track/{order['tracking_id']}/{what}"


async def _post(shop: Shop, server: Server, order: dict[str, Any], what: str, body: Any) -> httpx.Response:
    return await shop.http.post(_track(server, order, what), params={"t": order["tracking_token"]}, json=body)


async def _delivered(shop: Shop, oid: str, **extra: Any) -> dict[str, Any]:
    order = await shop.order(oid, **extra)
    assert (await shop.stage(oid, "delivered")).status_code == 200
    return order


async def test_both_endpoints_check_the_tracking_token_like_the_snapshot(shop: Shop, server: Server) -> None:
    """No token: 401; a wrong token, another order's token or an unknown id: one identical 404; nothing stored."""
    mine = await _delivered(shop, "F1", customer={"name": "Ana", "email": "ana@example.com", "phone": "+595 981 1"})
    other = await shop.order("F2")
    for what, body in (("feedback", {"rating": 5}), ("subscriptions", {"email": True, "sms": True})):
        url = _track(server, mine, what)
        r = await shop.http.post(url, json=body)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        answers = set()
        for tid, token in (
            (mine["tracking_id"], "nope"),
            (mine["tracking_id"], other["tracking_token"]),
            (mine["tracking_id"], mine["tracking_token"][:-1]),
            ("doesnotexist", mine["tracking_token"]),
        ):
            r = await shop.http.post(f"{server.url}/api/track/{tid}/{what}", params={"t": token}, json=body)
            assert r.status_code == 404
            answers.add(r.text)
        assert len(answers) == 1 and "F1" not in answers.pop()
    stored = (await shop.get("/api/orders/F1")).json()
    # Unchanged: email on by default (issue 18), SMS opt-in.
    assert stored["feedback"] is None and stored["subscriptions"] == {"email": True, "sms": False}
    # The right token also works as a bearer header, as for GET /api/track.
    r = await shop.http.post(
        _track(server, mine, "feedback"),
        json={"rating": 3},
        headers={"Authorization": f"Bearer {mine['tracking_token']}"},
    )
    assert r.status_code == 200 and r.json()["rating"] == 3


async def test_a_rating_before_delivery_is_refused(shop: Shop, server: Server) -> None:
    """Received, shipped and returned orders get 409 `not_delivered` naming the stage, and nothing is stored."""
    received = await shop.order("F3")
    shipped = await shop.live_order("F4", "f4")
    returned = await _delivered(shop, "F5")
    await shop.stage("F5", "returned")
    for order, stage in ((received, "received"), (shipped, "shipped"), (returned, "returned")):
        r = await _post(shop, server, order, "feedback", {"rating": 5, "comment": "fast"})
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "not_delivered" and r.json()["error"]["stage"] == stage
        assert (await shop.get(f"/api/orders/{order['id']}")).json()["feedback"] is None


async def test_ratings_are_validated_naming_the_field(shop: Shop, server: Server) -> None:
    """Rating outside 1..5, not an integer, missing; a comment over 2000 characters; not JSON: typed 4xx errors."""
    order = await _delivered(shop, "F6")
    for body, field in (
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": "5"}, "rating"),
        ({"rating": 4.5}, "rating"),
        ({"comment": "no rating"}, "rating"),
        ({"rating": 4, "comment": "x" * 2001}, "comment"),
        ({"rating": 4, "comment": 7}, "comment"),
    ):
        r = await _post(shop, server, order, "feedback", body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == "invalid_field" and field in r.json()["error"]["message"]
    r = await shop.http.post(
        _track(server, order, "feedback"), params={"t": order["tracking_token"]}, content=b"{rating: 5"
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    assert (await shop.get("/api/orders/F6")).json()["feedback"] is None
    r = await _post(shop, server, order, "feedback", {"rating": 1, "comment": "é" * 2000})  # characters, not bytes
    assert r.status_code == 200


async def test_a_rating_is_stored_shown_back_and_replaced_by_a_new_one(shop: Shop, server: Server) -> None:
    """The store's order and the customer's snapshot show the rating; a second rating replaces the first."""
    order = await _delivered(shop, "F9")
    r = await _post(shop, server, order, "feedback", {"rating": 4, "comment": "  Friendly driver \n"})
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["rating"] == 4 and first["comment"] == "Friendly driver" and first["at"] > 0
    assert (await shop.get("/api/orders/F9")).json()["feedback"] == first
    snap = await shop.http.get(f"{server.url}/api/track/{order['tracking_id']}", params={"t": order["tracking_token"]})
    assert snap.json()["order"]["feedback"] == first
    await shop.stage("F9", "completed")  # still rateable once completed
    r = await _post(shop, server, order, "feedback", {"rating": 2, "comment": "   "})
    assert r.status_code == 200
    stored = (await shop.get("/api/orders/F9")).json()["feedback"]
    assert stored["rating"] == 2 and stored["comment"] is None and stored["at"] >= first["at"]


async def test_a_custom_stage_after_delivery_can_be_rated(shop: Shop, server: Server) -> None:
    """A store's own stage after `delivered` counts as delivered; one before it does not."""
    r = await shop.http.patch(
        f"{server.url}/api/store",
        headers=shop.auth,
        json={"stages": {"custom": [{"id": "packed", "after": "processing"}, {"id": "signed", "after": "delivered"}]}},
    )
    assert r.status_code == 200, r.text
    order = await shop.order("F10")
    await shop.stage("F10", "packed")
    assert (await _post(shop, server, order, "feedback", {"rating": 5})).status_code == 409
    await shop.stage("F10", "delivered")
    await shop.stage("F10", "signed")
    assert (await _post(shop, server, order, "feedback", {"rating": 5})).status_code == 200


async def test_opt_ins_are_stored_per_channel_and_shown_back(shop: Shop, server: Server) -> None:
    """Opting in and out is stored per channel; a channel left out keeps its choice; snapshot and store see it."""
    order = await shop.order("F11", customer={"name": "Ana", "email": "ana@example.com", "phone": "+595 981 123456"})

    async def snapshot_order() -> dict[str, Any]:
        r = await shop.http.get(f"{server.url}/api/track/{order['tracking_id']}", params={"t": order["tracking_token"]})
        return dict(r.json()["order"])

    first = await snapshot_order()
    # The store's defaults: email on, SMS opt-in.
    assert first["subscriptions"] == {"email": True, "sms": False} and first["channels"] == ["email", "sms"]
    assert "ana@example.com" not in str(first) and "123456" not in str(first)  # the page learns no contact data
    r = await _post(shop, server, order, "subscriptions", {"email": True})
    assert r.status_code == 200 and r.json() == {"email": True, "sms": False}
    r = await _post(shop, server, order, "subscriptions", {"sms": True})
    assert r.json() == {"email": True, "sms": True}  # email kept
    r = await _post(shop, server, order, "subscriptions", {"email": False})
    assert r.json() == {"email": False, "sms": True}
    assert (await snapshot_order())["subscriptions"] == {"email": False, "sms": True}
    assert (await shop.get("/api/orders/F11")).json()["subscriptions"] == {"email": False, "sms": True}
    r = await _post(shop, server, order, "subscriptions", {})
    assert r.status_code == 200 and r.json() == {"email": False, "sms": True}  # nothing to change: the choices


async def test_opting_in_without_that_contact_is_refused(shop: Shop, server: Server) -> None:
    """SMS without a phone: 409 `no_phone`; email without an address: 409 `no_email`; opting out always works."""
    no_phone = await shop.order("F12")  # email only
    r = await _post(shop, server, no_phone, "subscriptions", {"email": False, "sms": True})
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_phone"
    assert "phone" in r.json()["error"]["message"]
    assert (await shop.get("/api/orders/F12")).json()["subscriptions"] == {"email": True, "sms": False}  # all or none
    assert (await _post(shop, server, no_phone, "subscriptions", {"sms": False})).status_code == 200
    no_email = await shop.order("F13", customer={"name": "Ana", "phone": "+595 981 123456"})
    r = await _post(shop, server, no_email, "subscriptions", {"email": True})
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_email"
    snap = await shop.http.get(
        f"{server.url}/api/track/{no_email['tracking_id']}", params={"t": no_email["tracking_token"]}
    )
    assert snap.json()["order"]["channels"] == ["sms"]


async def test_opt_ins_are_validated(shop: Shop, server: Server) -> None:
    """Anything but true/false for a channel is a 422 naming it."""
    order = await shop.order("F14")
    for body, field in (({"email": "yes"}, "email"), ({"sms": 1}, "sms"), ({"email": None}, "email")):
        r = await _post(shop, server, order, "subscriptions", body)
        assert r.status_code == 422 and field in r.json()["error"]["message"], r.text
    r = await _post(shop, server, order, "subscriptions", [True])
    assert r.status_code == 422
