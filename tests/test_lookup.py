"""Guest order lookup (`/track?store=`): the right number + email lead to the order; nothing else tells anything."""

from __future__ import annotations

import re

import httpx

from conftest import Server, Shop, new_shop


async def test_right_details_redirect_to_the_tracking_page(shop: Shop, server: Server) -> None:
    """Order number + the order's email (any case) -> 303 to that order's tracking link."""
    order = await shop.order("G1")
    form = await shop.http.get(f"{server.url}/track", params={"store": shop.id})
    assert form.status_code == 200 and 'name="number"' in form.text and "Test shop" in form.text
    r = await shop.http.post(
        f"{server.url}/track", params={"store": shop.id}, data={"number": "G1", "contact": "ANA@example.com"}
    )
    assert r.status_code == 303 and r.headers["location"] == order["tracking_url"]


async def test_every_wrong_combination_gets_one_generic_answer(http: httpx.AsyncClient, server: Server) -> None:
    """Wrong email, unknown number, another store's order, unknown store: the same page, no order data."""
    a, b = await new_shop(http, server), await new_shop(http, server)
    await a.order("G2")
    answers = []
    for store, number, contact in [
        (a.id, "G2", "someone@example.com"),
        (a.id, "NOPE", "ana@example.com"),
        (b.id, "G2", "ana@example.com"),
    ]:
        r = await http.post(f"{server.url}/track", params={"store": store}, data={"number": number, "contact": contact})
        assert r.status_code == 200 and "tracking" not in r.headers.get("location", "")
        # Each page has its own script nonce (random, so it tells nothing): the rest must be the same.
        answers.append(re.sub(r'nonce="[^"]*"', "", r.text).replace(number, "").replace(store, ""))
    assert answers[0] == answers[1] == answers[2]
    assert "We could not find an order with those details" in answers[0]
    r = await http.get(f"{server.url}/track", params={"store": "st_unknown"})
    assert r.status_code == 200 and 'name="number"' in r.text


async def test_lookups_are_rate_limited(shop: Shop, server: Server) -> None:
    """After 10 attempts from one address for one store, further attempts get 429, even right ones."""
    await shop.order("G3")
    for _ in range(10):
        r = await shop.http.post(
            f"{server.url}/track", params={"store": shop.id}, data={"number": "G3", "contact": "x@example.com"}
        )
        assert r.status_code == 200
    r = await shop.http.post(
        f"{server.url}/track", params={"store": shop.id}, data={"number": "G3", "contact": "ana@example.com"}
    )
    assert r.status_code == 429 and "Too many attempts" in r.text
