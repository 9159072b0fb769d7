"""The dashboard's list of a store's orders (`GET /api/orders`): newest first, every filter, search, periods and
paging, through the public API on a real server; another store sees nothing of it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from conftest import RedisTarget, Shop, new_shop, now_ms, png, sync_client
from livemap.storage.keys import Keys

HOUR = 3_600_000


async def _list(shop: Shop, **params: Any) -> dict[str, Any]:
    r = await shop.http.get(f"{shop.server.url}/api/orders", params=params, headers=shop.auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _ids(page: dict[str, Any]) -> list[str]:
    return [o["order_id"] for o in page["orders"]]


async def _seed(shop: Shop) -> None:
    """Six orders placed an hour apart (L6 newest), one of each kind the filters tell apart."""
    t0 = now_ms() - 10 * HOUR
    await shop.driver("d1")
    for i in range(1, 7):
        extra: dict[str, Any] = {"placed_at": t0 + i * HOUR}
        if i == 2:
            extra["promised_by"] = t0  # promised before it was even placed: late
        if i == 5:
            extra["customer"] = {"name": "Zoë Martínez", "phone": "+595 981 123456"}
            extra["tracking_number"] = "PY-778899"
        await shop.order(f"L{i}", **extra)
    assert (await shop.post("/api/orders/L3/assign", {"driver_id": "d1"})).status_code == 200
    assert (await shop.stage("L3", "shipped")).json()["live"]
    for stage in ("shipped", "delivered", "completed"):
        assert (await shop.stage("L4", stage)).status_code == 200
    assert (await shop.stage("L6", "cancelled")).status_code == 200


async def test_filters_and_search_keep_the_right_orders(shop: Shop) -> None:
    await _seed(shop)
    assert _ids(await _list(shop)) == ["L6", "L5", "L4", "L3", "L2", "L1"], "newest placed first"
    expected = {
        "open": ["L5", "L3", "L2", "L1"],
        "unassigned": ["L5", "L2", "L1"],
        "live": ["L3"],
        "late": ["L2"],
        "finished": ["L6", "L4"],
        "imported": [],
    }
    for show, ids in expected.items():
        assert _ids(await _list(shop, show=show)) == ids, show
    (late,) = (await _list(shop, show="late"))["orders"]
    assert late["late"] is True and late["driver_id"] is None and late["stage"] == "received"
    (live,) = (await _list(shop, show="live"))["orders"]
    assert (live["driver_id"], live["live"], live["customer"]) == ("d1", True, "Ana")
    assert _ids(await _list(shop, q="zoë")) == ["L5"], "by customer name, any case"
    assert _ids(await _list(shop, q="981 123")) == ["L5"], "by phone"
    assert _ids(await _list(shop, q="py-7788")) == ["L5"], "by tracking number"
    assert _ids(await _list(shop, q="l3")) == ["L3"], "by order id"
    assert _ids(await _list(shop, q="L5", show="finished")) == [], "search within the filter"


async def test_pages_follow_each_other_without_gaps_or_repeats(shop: Shop) -> None:
    """25 orders, 10 of them placed in the same millisecond: pages of 4 walk them all exactly once."""
    same = now_ms() - HOUR
    for i in range(25):
        await shop.order(f"P{i:02d}", placed_at=same if i < 10 else same - (i + 1) * 1000)
    seen: list[str] = []
    page = await _list(shop, limit=4)
    while True:
        seen += _ids(page)
        if page["next"] is None:
            break
        page = await _list(shop, limit=4, cursor=page["next"])
    assert sorted(seen) == sorted(f"P{i:02d}" for i in range(25)) and len(seen) == 25
    assert seen[10:] == [f"P{i:02d}" for i in range(10, 25)], "older ones in order after the same-ms ten"
    unassigned = await _list(shop, show="unassigned", limit=200)
    assert len(unassigned["orders"]) == 25 and unassigned["next"] is None


async def test_a_period_and_bad_queries(shop: Shop, http: httpx.AsyncClient) -> None:
    await shop.order("old", placed_at=now_ms() - 40 * 24 * HOUR)
    await shop.order("new")
    assert _ids(await _list(shop)) == ["new", "old"]
    today = dt.datetime.now(dt.UTC).date()  # the store's zone: UTC by default
    assert _ids(await _list(shop, **{"from": str(today - dt.timedelta(days=45))})) == ["new", "old"]
    assert _ids(await _list(shop, **{"from": str(today - dt.timedelta(days=10))})) == ["new"]
    recent = await shop.http.get(f"{shop.server.url}/api/orders?to=2000-01-31", headers=shop.auth)
    assert recent.status_code == 200 and recent.json()["orders"] == []
    for bad in ({"show": "everything"}, {"limit": "0"}, {"limit": "x"}, {"cursor": "abc"}, {"from": "yesterday"}):
        r = await shop.http.get(f"{shop.server.url}/api/orders", params=bad, headers=shop.auth)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_query", (bad, r.text)
    assert (await http.get(f"{shop.server.url}/api/orders")).status_code == 401
    other = await new_shop(http, shop.server)
    assert _ids(await _list(other)) == [], "another store's orders are not listed"


async def test_orders_made_before_the_list_existed_are_listed(shop: Shop, redis_target: RedisTarget) -> None:
    """A store from before the `placed` index: its orders are indexed the first time the list is read."""
    for i in range(3):
        await shop.order(f"B{i}", placed_at=now_ms() - (3 - i) * HOUR)
    with sync_client(redis_target.url) as client:
        assert client.delete(Keys(redis_target.prefix).store_placed(shop.id)) == 1
    assert _ids(await _list(shop)) == ["B2", "B1", "B0"]
    await shop.order("B3")
    assert _ids(await _list(shop, limit=2)) == ["B3", "B2"]


async def test_the_store_reads_the_proof_of_delivery(shop: Shop, http: httpx.AsyncClient) -> None:
    order = await shop.live_order("PD1", "d1")
    assert (await shop.get("/api/orders/PD1")).json()["proof"] is None
    url = f"{shop.server.url}/api/driver/stops/{order['tracking_id']}"
    driver = {"Authorization": f"Bearer {shop.drivers['d1']}"}
    photo = png(rgb=(4, 5, 6))
    assert (await http.post(f"{url}/proof", content=photo, headers=driver | {"Content-Type": "image/png"})).is_success
    r = await http.post(f"{url}/stage", headers=driver, json={"stage": "delivered", "recipient": "Porteiro"})
    assert r.status_code == 200, r.text
    proof = (await shop.get("/api/orders/PD1")).json()["proof"]
    assert (proof["recipient"], proof["photo"]) == ("Porteiro", True)
    got = await shop.get("/api/orders/PD1/proof/photo")
    assert got.status_code == 200 and got.content == photo and got.headers["cache-control"] == "private, no-store"
    other = await new_shop(http, shop.server)
    assert (await other.get("/api/orders/PD1/proof/photo")).status_code == 404
    await shop.order("PD2")
    r = await shop.get("/api/orders/PD2/proof/photo")
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_proof"
