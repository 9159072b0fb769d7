"""Tracking links written back to the shops: a WooCommerce customer note, a Shopify fulfillment's tracking URL.

The shops' APIs are a real HTTPS server on 127.0.0.1 (certificate from a test CA) that records every
request and answers with the shapes WooCommerce's REST API v3 and Shopify's Admin REST API document;
orders come in through the platforms' real, signed webhooks; a real server delivers with its inline
notifications worker, retries included (tiny backoff).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from test_integrations import SHOPIFY_SECRET, WC_SECRET, fixture, shopify_deliver, wc_deliver, wc_order

from conftest import RedisTarget, Server, Shop, server_env, sync_client, wait
from livemap.storage.keys import Keys
from receivers import HttpReceiver, served_by

PUBLIC = "https://track.example"
CONSUMER_KEY, CONSUMER_SECRET = "ck_" + uuid.uuid4().hex, "cs_" + uuid.uuid4().hex
ACCESS_TOKEN = "shpat_" + uuid.uuid4().hex
API = "/admin/api/2024-10"
MAX_TRIES = 3


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def shop_api(ca: trustme.CA) -> Iterator[HttpReceiver]:
    """The shops' API server, over HTTPS: livemap sends shop credentials over TLS only."""
    context = served_by(ca)
    receiver = HttpReceiver(context)
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def prefix(redis_target: RedisTarget) -> str:
    return f"{redis_target.prefix}:writeback"


@pytest.fixture(scope="module")
def server(
    redis_target: RedisTarget, prefix: str, ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server that delivers its own outbox (overrides conftest's `server` here), trusting the test CA."""
    data = tmp_path_factory.mktemp("writeback")
    ca.cert_pem.write_to_path(str(data / "ca.pem"))
    env = server_env(
        redis_target,
        data,
        LIVEMAP_KEY_PREFIX=prefix,
        LIVEMAP_WORKER_INLINE="1",
        LIVEMAP_PUBLIC_URL=PUBLIC,
        LIVEMAP_WORKER_BACKOFF_BASE_S="0.2",
        LIVEMAP_WORKER_MAX_TRIES=str(MAX_TRIES),
        LIVEMAP_GEOCODER="none",
        SSL_CERT_FILE=str(data / "ca.pem"),
    )
    srv = Server(env, "WB")
    yield srv
    srv.stop()


@pytest.fixture
def base(shop_api: HttpReceiver) -> str:
    """This test's shop on the API server: its own path, so requests of other tests never mix in."""
    return f"/shop-{uuid.uuid4().hex[:8]}"


# --- helpers -------------------------------------------------------------------------------------


async def integrations(shop: Shop, doc: dict[str, Any], **settings: Any) -> dict[str, Any]:
    r = await shop.http.patch(f"{shop.server.url}/api/store", headers=shop.auth, json={"integrations": doc, **settings})
    assert r.status_code == 200, r.text
    return dict(r.json())


def woocommerce(shop_api: HttpReceiver, base: str) -> dict[str, Any]:
    write_back = {"url": shop_api.url + base, "consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET}
    return {"secret": WC_SECRET, "write_back": write_back}


def shopify(shop_api: HttpReceiver, base: str) -> dict[str, Any]:
    return {"secret": SHOPIFY_SECRET, "write_back": {"url": shop_api.url + base, "access_token": ACCESS_TOKEN}}


async def link(shop: Shop, oid: str, lang: str) -> str:
    """The tracking link the worker hands out for order `oid`."""
    order = (await shop.get(f"/api/orders/{oid}")).json()
    return f"{PUBLIC}/track/{order['tracking_id']}?t={order['tracking_token']}&lang={lang}"


def under(shop_api: HttpReceiver, base: str) -> list[tuple[str, str]]:
    """(method, path below `base`) of every request this test's shop got, in order."""
    return [(r.method, r.path.removeprefix(base)) for r in shop_api.requests if r.path.startswith(base + "/")]


async def delivered(shop: Shop, what: str, count: int) -> None:
    """Wait until the server's worker logged `count` write-backs of `what` to this store's shop as done."""
    line = f"{what} (store {shop.id}) by shop: delivered"
    deadline = time.monotonic() + wait(10)
    while sum(line in out for out in list(shop.server.output)) < count:
        assert time.monotonic() < deadline, f"{line!r} not logged {count} times"
        await asyncio.sleep(0.05)


def shopify_order(**changes: Any) -> dict[str, Any]:
    return copy.deepcopy(fixture("shopify/order.json")) | changes


def outbox_of(redis_target: RedisTarget, key: str, tid: str) -> list[dict[str, str]]:
    """The fields of the entries of order `tid` in the outbox stream `key`."""
    with sync_client(redis_target.url) as admin:
        entries = admin.xrange(key)
    out = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]
    return [f for f in out if f["tracking_id"] == tid]


# --- WooCommerce ---------------------------------------------------------------------------------


async def test_woocommerce_order_gets_a_customer_note_with_its_link_retried_after_a_500(
    shop: Shop, shop_api: HttpReceiver, base: str
) -> None:
    """A WooCommerce order imported by its webhook gets the documented `POST .../orders/{id}/notes` (Basic auth,
    a customer note with the link, in the store's language); the note answered 500 is sent again, once."""
    notes = f"{base}/wp-json/wc/v3/orders/727/notes"
    shop_api.script(notes, [200, 500])  # attempt 1: the look for an earlier note, then the note fails
    shop_api.reply(notes, [])  # no customer notes yet
    await integrations(shop, {"woocommerce": woocommerce(shop_api, base)}, locale="es")
    r = await wc_deliver(shop, wc_order(), "order.created")
    assert r.status_code == 200 and r.json()["result"] == "created", r.text

    requests = await shop_api.wait_for(notes, 4)
    assert [(q.method, q.status) for q in requests] == [("GET", 200), ("POST", 500), ("GET", 200), ("POST", 200)]
    expected = "Basic " + base64.b64encode(f"{CONSUMER_KEY}:{CONSUMER_SECRET}".encode()).decode()
    assert all(q.headers["authorization"] == expected for q in requests)
    assert requests[0].query == "type=customer"
    url = await link(shop, "727", "es")
    for note in (requests[1], requests[3]):
        assert note.headers["content-type"] == "application/json"
        assert note.json() == {"note": f"Sigue tu pedido en vivo: {url}", "customer_note": True}
    assert requests[2].at - requests[1].at >= 0.2  # the worker's backoff, not an immediate resend
    assert under(shop_api, base) == [(q.method, notes.removeprefix(base)) for q in requests]


async def test_shop_that_keeps_refusing_is_dead_lettered_after_the_workers_tries(
    shop: Shop, shop_api: HttpReceiver, base: str, redis_target: RedisTarget, prefix: str
) -> None:
    """A shop answering 401 (a revoked key) is tried LIVEMAP_WORKER_MAX_TRIES times, then dead-lettered with why."""
    notes = f"{base}/wp-json/wc/v3/orders/727/notes"
    shop_api.fail_always(notes, 401)
    await integrations(shop, {"woocommerce": woocommerce(shop_api, base)})
    assert (await wc_deliver(shop, wc_order(), "order.created")).status_code == 200
    await shop_api.wait_for(notes, MAX_TRIES)
    tid = (await shop.get("/api/orders/727")).json()["tracking_id"]
    deadline = time.monotonic() + wait(10)
    while not (dead := outbox_of(redis_target, Keys(prefix).outbox_dead(), tid)):
        assert time.monotonic() < deadline, "no dead letter"
        await asyncio.sleep(0.05)
    (letter,) = dead
    assert letter["channel"] == "shop" and letter["attempt"] == str(MAX_TRIES)
    assert letter["error"] == "WooCommerce answered HTTP 401"
    assert CONSUMER_SECRET not in json.dumps(letter)
    assert len(shop_api.on(notes)) == MAX_TRIES


# --- Shopify -------------------------------------------------------------------------------------


async def test_shopify_order_shipped_by_livemap_gets_a_fulfillment_with_its_link_retried_after_a_500(
    shop: Shop, shop_api: HttpReceiver, base: str
) -> None:
    """Nothing goes to Shopify while the order is being prepared; when it ships, livemap reads the order's
    fulfillments (none) and fulfillment orders, then creates the fulfillment with the link and the access token,
    once more after a 500."""
    order = shopify_order()
    sid = order["id"]
    fulfillments, fulfillment_orders, create = (
        f"{base}{API}/orders/{sid}/fulfillments.json",
        f"{base}{API}/orders/{sid}/fulfillment_orders.json",
        f"{base}{API}/fulfillments.json",
    )
    shop_api.reply(fulfillments, {"fulfillments": []})
    shop_api.reply(fulfillment_orders, {"fulfillment_orders": [
        {"id": 6117286052022, "shop_id": 60192522331, "order_id": sid, "assigned_location_id": 64818135131,
         "request_status": "unsubmitted", "status": "open", "supported_actions": ["create_fulfillment", "hold"],
         "line_items": [{"id": 12736038731958, "fulfillment_order_id": 6117286052022, "quantity": 1}]},
        {"id": 6117286052023, "shop_id": 60192522331, "order_id": sid, "assigned_location_id": 64818135131,
         "request_status": "unsubmitted", "status": "closed", "supported_actions": [], "line_items": []},
    ]})  # fmt: skip
    shop_api.script(create, [500])
    await integrations(shop, {"shopify": shopify(shop_api, base)})
    r = await shopify_deliver(shop, order, "orders/create")
    assert r.status_code == 200 and r.json()["stage"] == "processing", r.text
    r = await shop.stage("1001", "shipped")
    assert r.status_code == 200, r.text

    posts = await shop_api.wait_for(create, 2)
    assert [p.status for p in posts] == [500, 200]
    steps = [("GET", fulfillments), ("GET", fulfillment_orders), ("POST", create)]
    assert under(shop_api, base) == [(m, p.removeprefix(base)) for m, p in steps * 2]
    assert all(
        q.headers["x-shopify-access-token"] == ACCESS_TOKEN for q in shop_api.requests if q.path.startswith(base)
    )
    url = await link(shop, "1001", "en")
    expected = {
        "fulfillment": {
            "line_items_by_fulfillment_order": [{"fulfillment_order_id": 6117286052022}],
            "tracking_info": {"url": url, "company": "Test shop"},
            "notify_customer": True,
        }
    }
    assert posts[0].json() == expected and posts[1].json() == expected

    # Shipped again after a failed attempt: the fulfillment made above carries the link, so nothing more is sent.
    shop_api.reply(fulfillments, {"fulfillments": [{"id": 4451236578396, "status": "success", "tracking_urls": [url]}]})
    for again in ("failed_attempt", "shipped"):
        assert (await shop.stage("1001", again)).status_code == 200
    await delivered(shop, "shipped of order 1001", 2)
    assert under(shop_api, base)[6:] == [("GET", fulfillments.removeprefix(base))]


async def test_shopify_fulfillment_made_by_the_shop_gets_the_link_keeping_its_tracking_number(
    shop: Shop, shop_api: HttpReceiver, base: str
) -> None:
    """An order the shop already fulfilled (it arrives shipped) gets `update_tracking` on that fulfillment: the link,
    the carrier and number it had; no new fulfillment."""
    fulfillment = fixture("shopify/fulfillment.json")
    order = shopify_order(fulfillment_status="fulfilled", fulfillments=[fulfillment])
    fulfillments = f"{base}{API}/orders/{order['id']}/fulfillments.json"
    update = f"{base}{API}/fulfillments/{fulfillment['id']}/update_tracking.json"
    cancelled = fulfillment | {"id": 1, "status": "cancelled"}
    shop_api.reply(fulfillments, {"fulfillments": [cancelled, fulfillment]})
    await integrations(shop, {"shopify": shopify(shop_api, base)}, locale="pt-BR")
    r = await shopify_deliver(shop, order, "orders/create")
    assert r.status_code == 200 and r.json()["stage"] == "shipped", r.text

    (sent,) = await shop_api.wait_for(update, 1)
    assert sent.headers["x-shopify-access-token"] == ACCESS_TOKEN
    url = await link(shop, "1001", "pt-BR")
    tracking = {"url": url, "company": "Correios", "number": "QB123456789BR"}
    assert sent.json() == {"fulfillment": {"tracking_info": tracking, "notify_customer": True}}
    assert under(shop_api, base) == [("GET", fulfillments.removeprefix(base)), ("POST", update.removeprefix(base))]


# --- off by default, secrets ---------------------------------------------------------------------


async def test_without_write_back_nothing_goes_to_the_shops(
    shop: Shop, shop_api: HttpReceiver, base: str, redis_target: RedisTarget, prefix: str
) -> None:
    """Stores with the integrations but no `write_back` queue no write-back and send nothing to the shops,
    while their configured notifications still go out."""
    hook = f"{base}/hooks/livemap"
    await integrations(shop, {"woocommerce": {"secret": WC_SECRET}, "shopify": {"secret": SHOPIFY_SECRET}})
    r = await shop.http.patch(
        f"{shop.server.url}/api/store",
        headers=shop.auth,
        json={
            "notifications": {
                "events": {"shipped": ["webhook"]},
                "webhook": {"url": shop_api.url + hook, "secret": "s"},
            }
        },
    )
    assert r.status_code == 200, r.text
    assert (await wc_deliver(shop, wc_order(), "order.created")).json()["result"] == "created"
    order = shopify_order(fulfillment_status="fulfilled", fulfillments=[fixture("shopify/fulfillment.json")])
    assert (await shopify_deliver(shop, order, "orders/create")).json()["stage"] == "shipped"

    (shipped,) = await shop_api.wait_for(hook, 1)  # the worker went through the Shopify order's shipped event
    assert shipped.json()["order_id"] == "1001"
    assert under(shop_api, base) == [("POST", "/hooks/livemap")]
    woo = (await shop.get("/api/orders/727")).json()["tracking_id"]
    queued = [json.loads(f["data"])["type"] for f in outbox_of(redis_target, Keys(prefix).outbox(), woo)]
    assert queued == ["stage"]  # processing, as WooCommerce said; no write-back


async def test_write_back_credentials_are_masked_and_sealed(
    shop: Shop, shop_api: HttpReceiver, base: str, redis_target: RedisTarget, prefix: str
) -> None:
    """GET /api/store shows the shops' keys and tokens as `********` (URLs as they are), Redis holds them sealed,
    a PATCH of what was read keeps them, and a plain-http or internal shop URL is refused."""
    doc = {"woocommerce": woocommerce(shop_api, base), "shopify": shopify(shop_api, base)}
    await integrations(shop, doc)
    read = (await shop.get("/api/store")).json()["integrations"]
    assert read["woocommerce"]["write_back"] == {
        "url": shop_api.url + base, "consumer_key": "********", "consumer_secret": "********"
    }  # fmt: skip
    assert read["shopify"]["write_back"] == {"url": shop_api.url + base, "access_token": "********"}
    with sync_client(redis_target.url) as admin:
        stored = admin.hget(Keys(prefix).store(shop.id), "settings").decode()
    assert not any(plain in stored for plain in (CONSUMER_KEY, CONSUMER_SECRET, ACCESS_TOKEN))
    await integrations(shop, read)
    with sync_client(redis_target.url) as admin:
        again = admin.hget(Keys(prefix).store(shop.id), "settings").decode()
    assert stored.count('"sealed:') == again.count('"sealed:') == 5  # both webhook secrets too

    for url, code in (("http://127.0.0.1:1", "invalid_field"), ("https://10.1.2.3", "outbound_refused")):
        patch = {"integrations": {"shopify": {"write_back": {"url": url}}}}
        r = await shop.http.patch(f"{shop.server.url}/api/store", headers=shop.auth, json=patch)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, r.text
