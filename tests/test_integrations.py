"""Orders in from shops: WooCommerce and Shopify webhooks in the platforms' own formats, really signed.

A real livemap server geocodes through a real local HTTP server that answers Nominatim's `/search`
(format=json) the way nominatim.openstreetmap.org does, so nothing here reaches the internet.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from geopy.exc import GeocoderNotFound
from geopy.geocoders import Nominatim, Photon

from conftest import RedisTarget, Server, Shop, driver_socket, fix, new_shop, now_ms, server_env, wait
from livemap.integrations.common import MAX_BODY
from livemap.integrations.geocode import make_geocoder
from livemap.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
WC_SECRET = "wc-" + secrets.token_urlsafe(24)
SHOPIFY_SECRET = "shpss_" + secrets.token_hex(16)


# --- a Nominatim that lives on 127.0.0.1 ---------------------------------------------------------

#: Query fragment -> (lat, lon, display_name), as Nominatim's /search?format=json returns them (strings).
PLACES = {
    "market": ("37.7825", "-122.4097", "969, Market Street, Tenderloin, San Francisco, California, 94103, USA"),
    "outage": ("-25.2867", "-57.6089", "Avenida Mariscal López, Villa Morra, Asunción, Paraguay"),
}


class FakeNominatim:
    """Answers `/search` like Nominatim (a JSON list of places, [] when nothing matches); records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, list[str]]] = []
        self.down = False  # queries naming "outage" get 503 while set
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                params = parse_qs(url.query)
                fake.requests.append(params)
                query = params.get("q", [""])[0].lower()
                if url.path != "/search" or params.get("format") != ["json"]:
                    self.send_error(400)
                    return
                if fake.down and "outage" in query:
                    self.send_error(503, "Service Unavailable")
                    return
                places = [
                    {
                        "place_id": 100000 + n,
                        "licence": "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright",
                        "osm_type": "node",
                        "osm_id": 2661934390 + n,
                        "lat": lat,
                        "lon": lon,
                        "class": "place",
                        "type": "house",
                        "place_rank": 30,
                        "importance": 0.00001,
                        "addresstype": "place",
                        "name": "",
                        "display_name": name,
                        "boundingbox": [lat, lat, lon, lon],
                    }
                    for n, (key, (lat, lon, name)) in enumerate(PLACES.items())
                    if key in query
                ][:1]
                body = json.dumps(places).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def queries(self) -> list[str]:
        return [r.get("q", [""])[0] for r in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(wait(5))


@pytest.fixture(scope="module")
def nominatim() -> Iterator[FakeNominatim]:
    fake = FakeNominatim()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def server(
    redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory, nominatim: FakeNominatim
) -> Iterator[Server]:
    """This module's livemap: its geocoder is the local Nominatim (overrides conftest's `server` here)."""
    env = server_env(
        redis_target,
        tmp_path_factory.mktemp("integrations"),
        LIVEMAP_GEOCODER_URL=nominatim.url,
        LIVEMAP_GEOCODER_MIN_INTERVAL_S="0",
        LIVEMAP_GEOCODER_TIMEOUT_S=str(wait(3)),
    )
    srv = Server(env, "I")
    yield srv
    srv.stop()


@pytest.fixture
async def store(shop: Shop) -> Shop:
    """A store with both integrations set up."""
    r = await shop.http.patch(
        f"{shop.server.url}/api/store",
        headers=shop.auth,
        json={"integrations": {"woocommerce": {"secret": WC_SECRET}, "shopify": {"secret": SHOPIFY_SECRET}}},
    )
    assert r.status_code == 200, r.text
    return shop


# --- deliveries as the platforms make them -------------------------------------------------------


def sign(body: bytes, secret: str) -> str:
    """Both platforms' signature: base64 of the HMAC-SHA256 of the raw body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def php_json(payload: Any) -> bytes:
    """The body as WooCommerce sends it: `trim(wp_json_encode($payload))`, i.e. PHP's json_encode (compact,
    `/` escaped as `\\/`, non-ASCII as `\\uXXXX`)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


def wc_order(**changes: Any) -> dict[str, Any]:
    """The WooCommerce REST API's order (tests/fixtures/woocommerce/order.json) with some fields changed."""
    return fixture("woocommerce/order.json") | changes


def wc_shipping(**changes: Any) -> dict[str, Any]:
    return dict(fixture("woocommerce/order.json")["shipping"]) | changes


def at(minute: int) -> str:
    """A WooCommerce `date_modified_gmt`."""
    return f"2024-05-14T20:{minute:02d}:00"


async def wc_deliver(
    shop: Shop,
    payload: dict[str, Any] | None,
    topic: str = "order.updated",
    *,
    secret: str = WC_SECRET,
    body: bytes | None = None,
    signature: str | None = None,
    signed: bool = True,
) -> httpx.Response:
    """POST a delivery with the headers WooCommerce's WC_Webhook::deliver() sets."""
    body = php_json(payload) if body is None else body
    resource, _, event = topic.partition(".")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/8.9.1 Hookshot (WordPress/6.5.3)",
        "X-WC-Webhook-Source": "https://shop.example/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": secrets.token_hex(16),
    }
    if signed:
        headers["X-WC-Webhook-Signature"] = signature if signature is not None else sign(body, secret)
    return await shop.http.post(f"{shop.server.url}/integrations/woocommerce/{shop.id}", content=body, headers=headers)


async def shopify_deliver(
    shop: Shop,
    payload: dict[str, Any] | None,
    topic: str,
    *,
    secret: str = SHOPIFY_SECRET,
    body: bytes | None = None,
    signed: bool = True,
) -> httpx.Response:
    """POST a delivery as Shopify does: compact UTF-8 JSON, X-Shopify-* headers."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode() if body is None else body
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Shopify-Captain-Hook",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": "loja-exemplo.myshopify.com",
        "X-Shopify-Api-Version": "2024-04",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2024-05-14T18:40:02.120Z",
    }
    if signed:
        headers["X-Shopify-Hmac-Sha256"] = sign(body, secret)
    return await shop.http.post(f"{shop.server.url}/integrations/shopify/{shop.id}", content=body, headers=headers)


async def order_of(shop: Shop, oid: str) -> dict[str, Any]:
    r = await shop.get(f"/api/orders/{oid}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def stages(order: dict[str, Any]) -> list[str]:
    return [h["stage"] for h in order["history"]]


# --- WooCommerce ---------------------------------------------------------------------------------


async def test_woocommerce_ping_gets_200_and_unconfigured_store_409(http: httpx.AsyncClient, server: Server) -> None:
    """The creation ping (form body, unsigned) gets 200 even before a secret is set; deliveries then get 409."""
    shop = await new_shop(http, server)
    ping = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "WooCommerce/8.9.1 Hookshot"}
    r = await http.post(f"{server.url}/integrations/woocommerce/{shop.id}", content=b"webhook_id=12", headers=ping)
    assert r.status_code == 200 and r.json() == {"result": "ping"}
    r = await http.post(f"{server.url}/integrations/woocommerce/st_nosuchstore", content=b"webhook_id=12", headers=ping)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await wc_deliver(shop, wc_order(), "order.created")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_configured"
    r = await shopify_deliver(shop, fixture("shopify/order.json"), "orders/create")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_configured"
    assert (await shop.get("/api/orders/727")).status_code == 404
    assert (await shop.get("/api/orders/1001")).status_code == 404


async def test_woocommerce_order_created_with_shipping_address_and_contact(store: Shop) -> None:
    """order.created makes the order: number as id, mapped stage, shipping address geocoded, customer contact."""
    r = await wc_deliver(store, wc_order(), "order.created")
    assert r.status_code == 200, r.text
    assert r.json() == {"result": "created", "order_id": "727", "stage": "processing"}
    order = await order_of(store, "727")
    assert order["customer"] == {"name": "John Doe", "email": "john.doe@example.com", "phone": "(555) 555-5555"}
    assert order["address"] == "969 Market, Apt 2, San Francisco, CA 94103, US"
    assert order["destination"] == {"lat": 37.7825, "lon": -122.4097}
    assert (order["source"], order["flags"], order["geocode"]) == ("woocommerce", [], "geocoded")
    assert stages(order) == ["received", "processing"]
    # Received when the customer ordered (date_created_gmt): analytics count it on that day.
    assert order["created_at"] == order["history"][0]["at"] == 1715714882000
    # The customer's tracking link works for it like for any order.
    link = {"t": order["tracking_token"]}
    snap = await store.http.get(f"{store.server.url}/api/track/{order['tracking_id']}", params=link)
    assert snap.status_code == 200 and snap.json()["order"]["number"] == "727"


async def test_woocommerce_same_delivery_twice_changes_nothing(store: Shop) -> None:
    """A redelivered (or duplicated) webhook is acknowledged and changes nothing: no history, no event."""
    payload = wc_order(id=731, number="731")
    assert (await wc_deliver(store, payload, "order.created")).json()["result"] == "created"
    first = await order_of(store, "731")
    params = {"t": first["tracking_token"]}
    offset = (await store.http.get(f"{store.server.url}/api/track/{first['tracking_id']}", params=params)).json()
    for topic in ("order.created", "order.updated", "order.updated"):
        r = await wc_deliver(store, payload, topic)
        assert r.status_code == 200 and r.json() == {"result": "unchanged", "order_id": "731", "stage": "processing"}
    assert await order_of(store, "731") == first
    again = (await store.http.get(f"{store.server.url}/api/track/{first['tracking_id']}", params=params)).json()
    assert again["offset"] == offset["offset"]


async def test_woocommerce_created_and_updated_at_once_make_one_order(store: Shop) -> None:
    """order.created and order.updated for a new order arriving together make one order, in its newest stage."""
    created = wc_order(id=801, number="801", status="pending", date_modified_gmt=at(1))
    updated = wc_order(id=801, number="801", status="processing", date_modified_gmt=at(2))
    results = await asyncio.gather(wc_deliver(store, created, "order.created"), wc_deliver(store, updated))
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert sorted(r.json()["result"] for r in results) in (["created", "updated"], ["created", "ignored"])
    order = await order_of(store, "801")
    assert order["stage"] == "processing" and stages(order) == ["received", "processing"]


async def test_woocommerce_statuses_move_the_order_forward_only(store: Shop) -> None:
    """Statuses map to stages (defaults); backwards or stale updates are acknowledged and ignored."""
    oid, base = "811", {"id": 811, "number": "811"}
    steps = [
        ("on-hold", at(1), "created", "received"),
        ("processing", at(2), "updated", "processing"),
        ("completed", at(3), "updated", "shipped"),
        ("processing", at(4), "ignored", "shipped"),  # back to processing: not a legal move
        ("pending", at(0), "ignored", "shipped"),  # older than what was applied
        ("failed", at(5), "ignored", "shipped"),  # no stage for a failed payment
        ("refunded", at(6), "updated", "cancelled"),  # not delivered yet: returned is illegal, so cancelled
    ]
    for status, modified, result, stage in steps:
        r = await wc_deliver(store, wc_order(**base, status=status, date_modified_gmt=modified))
        assert r.status_code == 200, r.text
        assert (r.json()["result"], r.json()["stage"]) == (result, stage), (status, r.json())
        if result == "ignored":
            assert r.json()["detail"]
    order = await order_of(store, oid)
    assert stages(order) == ["received", "processing", "shipped", "cancelled"]


async def test_woocommerce_refund_after_delivery_is_a_return(store: Shop) -> None:
    """A refund of a delivered order moves it to returned."""
    assert (await wc_deliver(store, wc_order(id=812, number="812", status="completed"), "order.created")).is_success
    assert (await store.stage("812", "delivered")).status_code == 200
    r = await wc_deliver(store, wc_order(id=812, number="812", status="refunded", date_modified_gmt=at(9)))
    assert r.json()["stage"] == "returned"
    assert stages(await order_of(store, "812")) == ["received", "shipped", "delivered", "returned"]


async def test_status_map_and_custom_stages(store: Shop) -> None:
    """The store's status_map overrides the defaults; a plugin status named like a custom stage reaches it."""
    patch = {
        "stages": {"custom": [{"id": "out_for_delivery", "after": "shipped", "live": True}]},
        "integrations": {"woocommerce": {"status_map": {"on-hold": "processing", "completed": "ignore"}}},
    }
    r = await store.http.patch(f"{store.server.url}/api/store", headers=store.auth, json=patch)
    assert r.status_code == 200, r.text
    woo = r.json()["integrations"]["woocommerce"]
    assert woo == {
        "secret": "********",
        "status_map": {"on-hold": "processing", "completed": "ignore"},
        "write_back": None,  # off until the store sets it
    }
    r = await wc_deliver(store, wc_order(id=821, number="821", status="on-hold"), "order.created")
    assert r.json()["stage"] == "processing"
    r = await wc_deliver(store, wc_order(id=821, number="821", status="completed", date_modified_gmt=at(1)))
    assert (r.json()["result"], r.json()["stage"]) == ("ignored", "processing")
    r = await wc_deliver(store, wc_order(id=821, number="821", status="out-for-delivery", date_modified_gmt=at(2)))
    assert (r.json()["result"], r.json()["stage"]) == ("updated", "out_for_delivery")
    bad = {"integrations": {"woocommerce": {"status_map": {"completed": "teleported"}}}}
    r = await store.http.patch(f"{store.server.url}/api/store", headers=store.auth, json=bad)
    assert r.status_code == 422 and "teleported" in r.json()["error"]["message"]


async def test_woocommerce_bad_signature_is_401_and_changes_nothing(store: Shop) -> None:
    """A wrong key, a tampered body or no signature: 401 `bad_signature`, no order created or changed."""
    new = wc_order(id=901, number="901")
    for response in (
        await wc_deliver(store, new, "order.created", secret="not-the-secret"),
        await wc_deliver(store, new, "order.created", signed=False),
        await wc_deliver(store, new, "order.created", signature=sign(b"webhook_id=12", WC_SECRET)),  # another body's
    ):
        assert response.status_code == 401 and response.json()["error"]["code"] == "bad_signature"
    assert (await store.get("/api/orders/901")).status_code == 404
    assert (await wc_deliver(store, wc_order(id=902, number="902"), "order.created")).status_code == 200
    before = await order_of(store, "902")
    genuine = php_json(wc_order(id=902, number="902", status="cancelled", date_modified_gmt=at(30)))
    tampered = genuine.replace(b'"status":"cancelled"', b'"status":"completed"')
    assert tampered != genuine
    for response in (
        await wc_deliver(store, None, body=tampered, signature=sign(genuine, WC_SECRET)),
        await wc_deliver(store, None, body=genuine, secret=SHOPIFY_SECRET),
        await wc_deliver(store, None, body=genuine, signed=False),
    ):
        assert response.status_code == 401 and response.json()["error"]["code"] == "bad_signature"
    assert await order_of(store, "902") == before


async def test_woocommerce_oversized_or_unreadable_bodies(store: Shop) -> None:
    """A body over the limit gets 413 before anything else; a signed body that is not an order gets 422."""
    huge = b'{"id":1,"pad":"' + b"x" * MAX_BODY + b'"}'
    r = await wc_deliver(store, None, "order.created", body=huge)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    legacy = php_json({"order": {"id": 1, "status": "processing"}})  # the legacy v3 API's wrapped form
    r = await wc_deliver(store, None, "order.created", body=legacy)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_payload"
    r = await wc_deliver(store, None, "product.updated", body=php_json({"id": 93, "name": "Woo Single #1"}))
    assert r.status_code == 200 and r.json()["result"] == "ignored"


# --- Shopify -------------------------------------------------------------------------------------


async def test_shopify_order_then_fulfillments_to_delivered(store: Shop, nominatim: FakeNominatim) -> None:
    """orders/create makes the order (Shopify's own coordinates, no geocoding); fulfillments move it on."""
    requests = len(nominatim.requests)
    order = fixture("shopify/order.json")
    r = await shopify_deliver(store, order, "orders/create")
    assert r.status_code == 200, r.text
    assert r.json() == {"result": "created", "order_id": "1001", "stage": "processing"}
    view = await order_of(store, "1001")
    assert view["customer"] == {"name": "Ana Souza", "email": "ana.souza@example.com", "phone": "+55 11 91234-5678"}
    assert view["address"] == "Avenida Paulista, 1578, Bela Vista, São Paulo, SP 01310-200, BR"
    assert view["destination"] == {"lat": -23.5614, "lon": -46.6559}
    assert (view["source"], view["geocode"], view["flags"]) == ("shopify", "platform", [])
    assert view["created_at"] == 1715692351000  # created_at, 2024-05-14T10:12:31-03:00
    assert len(nominatim.requests) == requests
    fulfillment = fixture("shopify/fulfillment.json")
    r = await shopify_deliver(store, fulfillment, "fulfillments/create")
    assert (r.json()["result"], r.json()["stage"]) == ("updated", "shipped")
    view = await order_of(store, "1001")
    assert (view["tracking_number"], view["carrier"]) == ("QB123456789BR", "Correios")
    r = await shopify_deliver(store, fulfillment | {"shipment_status": "in_transit"}, "fulfillments/update")
    assert (r.json()["result"], r.json()["stage"]) == ("unchanged", "shipped")
    delivered = fulfillment | {"shipment_status": "delivered", "updated_at": "2024-05-15T11:02:40-03:00"}
    r = await shopify_deliver(store, delivered, "fulfillments/update")
    assert (r.json()["result"], r.json()["stage"]) == ("updated", "delivered")
    r = await shopify_deliver(store, delivered, "fulfillments/update")  # Shopify's retry of the same delivery
    assert r.json()["result"] == "unchanged"
    # orders/updated about the fulfillment comes late: "fulfilled" (shipped) is behind delivered.
    late = order | {"fulfillment_status": "fulfilled", "fulfillments": [fulfillment]}
    late["updated_at"] = "2024-05-14T15:40:03-03:00"
    r = await shopify_deliver(store, late, "orders/updated")
    assert (r.json()["result"], r.json()["stage"]) == ("ignored", "delivered")
    assert stages(await order_of(store, "1001")) == ["received", "processing", "shipped", "delivered"]


async def test_shopify_cancellation_unknown_orders_and_topics(store: Shop) -> None:
    """orders/cancelled cancels; a fulfillment of an order never seen and other topics are acknowledged, ignored."""
    order = fixture("shopify/order.json") | {"id": 5627392999, "order_number": 1002, "name": "#1002"}
    assert (await shopify_deliver(store, order, "orders/create")).json()["stage"] == "processing"
    cancelled = order | {
        "cancelled_at": "2024-05-14T11:00:00-03:00",
        "cancel_reason": "customer",
        "financial_status": "refunded",
        "updated_at": "2024-05-14T11:00:01-03:00",
    }
    r = await shopify_deliver(store, cancelled, "orders/cancelled")
    assert (r.json()["result"], r.json()["stage"]) == ("updated", "cancelled")
    stray = fixture("shopify/fulfillment.json") | {"order_id": 5999999999}
    r = await shopify_deliver(store, stray, "fulfillments/create")
    assert r.status_code == 200 and r.json()["result"] == "ignored"
    assert (await store.get("/api/orders/shopify-5999999999")).status_code == 404
    r = await shopify_deliver(store, {"id": 632910392, "title": "IPod Nano - 8GB"}, "products/update")
    assert r.status_code == 200 and r.json()["result"] == "ignored"


async def test_shopify_bad_hmac_is_401_and_changes_nothing(store: Shop) -> None:
    """A Shopify delivery signed with another key, tampered with or unsigned: 401, nothing changes."""
    order = fixture("shopify/order.json") | {"id": 5627393000, "order_number": 1003, "name": "#1003"}
    for response in (
        await shopify_deliver(store, order, "orders/create", secret=WC_SECRET),
        await shopify_deliver(store, order, "orders/create", signed=False),
    ):
        assert response.status_code == 401 and response.json()["error"]["code"] == "bad_signature"
    assert (await store.get("/api/orders/1003")).status_code == 404
    assert (await shopify_deliver(store, order, "orders/create")).status_code == 200
    before = await order_of(store, "1003")
    genuine = json.dumps(order | {"cancelled_at": "2024-05-14T11:00:00-03:00"}, ensure_ascii=False).encode()
    r = await store.http.post(
        f"{store.server.url}/integrations/shopify/{store.id}",
        content=genuine.replace(b"S\xc3\xa3o Paulo", b"Sao Paulo"),
        headers={"X-Shopify-Topic": "orders/cancelled", "X-Shopify-Hmac-Sha256": sign(genuine, SHOPIFY_SECRET)},
    )
    assert r.status_code == 401
    assert await order_of(store, "1003") == before


# --- geocoding -----------------------------------------------------------------------------------


async def test_geocoding_is_cached(store: Shop, nominatim: FakeNominatim) -> None:
    """Two orders to one address: one request to the geocoder (query and country as Nominatim wants them)."""
    street = f"{secrets.randbelow(10**6)} Market Street"
    requests = len(nominatim.requests)
    for n, name in ((1101, "Ann"), (1102, "Bob")):
        shipping = wc_shipping(address_1=street, address_2="", first_name=name)
        r = await wc_deliver(store, wc_order(id=n, number=str(n), shipping=shipping), "order.created")
        assert r.json()["result"] == "created", r.text
    assert nominatim.queries()[requests:] == [f"{street}, San Francisco, CA 94103"]
    assert nominatim.requests[-1]["countrycodes"] == ["us"]
    a, b = await order_of(store, "1101"), await order_of(store, "1102")
    assert a["destination"] == b["destination"] == {"lat": 37.7825, "lon": -122.4097}


async def test_unresolvable_address_makes_a_flagged_order_that_still_works(store: Shop, server: Server) -> None:
    """An address the geocoder does not know: the order is created without destination and flagged, and can
    still be assigned, shipped and driven (it just gets no ETA)."""
    shipping = wc_shipping(address_1="1 Nowhere Lane", address_2="", city="Atlantis", state="", postcode="")
    r = await wc_deliver(store, wc_order(id=1201, number="1201", shipping=shipping), "order.created")
    assert r.status_code == 200 and r.json()["result"] == "created", r.text
    order = await order_of(store, "1201")
    assert order["destination"] is None and order["flags"] == ["no_destination"]
    assert order["geocode"] == "not_found" and order["address"] == "1 Nowhere Lane, Atlantis, US"
    token = await store.driver("d1201")
    assert (await store.post("/api/orders/1201/assign", {"driver_id": "d1201"})).status_code == 200
    assert (await store.stage("1201", "shipped")).status_code == 200
    sock = await driver_socket(server, token)
    await sock.send(fix(0.1, now_ms(), seq=1))
    ack = await sock.recv_type("ack")
    assert ack["accepted"] == 1, ack
    await sock.close()
    order = await order_of(store, "1201")
    assert order["live"] and order["eta"] is None
    link = {"t": order["tracking_token"]}
    snap = await store.http.get(f"{server.url}/api/track/{order['tracking_id']}", params=link)
    assert snap.status_code == 200 and snap.json()["order"]["destination"] is None
    page = await store.http.get(f"{server.url}/track/{order['tracking_id']}", params=link)
    assert page.status_code == 200


async def test_geocoder_outage_is_retried_on_the_next_update(store: Shop, nominatim: FakeNominatim) -> None:
    """A geocoder that fails makes a flagged order (`unavailable`, not cached); the next delivery geocodes it."""
    shipping = wc_shipping(address_1=f"{secrets.randbelow(10**6)} Outage Road", address_2="")
    nominatim.down = True
    try:
        r = await wc_deliver(store, wc_order(id=1301, number="1301", shipping=shipping), "order.created")
    finally:
        nominatim.down = False
    assert r.json()["result"] == "created", r.text
    order = await order_of(store, "1301")
    assert (order["destination"], order["flags"], order["geocode"]) == (None, ["no_destination"], "unavailable")
    payload = wc_order(id=1301, number="1301", shipping=shipping, date_modified_gmt=at(40))
    r = await wc_deliver(store, payload)
    assert r.json()["result"] == "updated", r.text
    order = await order_of(store, "1301")
    assert order["destination"] == {"lat": -25.2867, "lon": -57.6089}
    assert (order["flags"], order["geocode"]) == ([], "geocoded")


async def test_address_changes_apply_until_a_driver_is_assigned(store: Shop, nominatim: FakeNominatim) -> None:
    """A new shipping address is geocoded again while the order waits; once a driver has it, it stays."""
    lost = wc_shipping(address_1="1 Nowhere Lane", address_2="", city="Atlantis", state="", postcode="")
    r = await wc_deliver(store, wc_order(id=1401, number="1401", shipping=lost, date_modified_gmt=at(1)))
    assert r.json()["result"] == "created"
    assert (await order_of(store, "1401"))["flags"] == ["no_destination"]
    found = wc_shipping(address_1=f"{secrets.randbelow(10**6)} Market Street", address_2="")
    r = await wc_deliver(store, wc_order(id=1401, number="1401", shipping=found, date_modified_gmt=at(2)))
    assert r.json()["result"] == "updated", r.text
    order = await order_of(store, "1401")
    assert order["destination"] == {"lat": 37.7825, "lon": -122.4097} and order["flags"] == []
    assert order["address"] == f"{found['address_1']}, San Francisco, CA 94103, US"
    await store.driver("d1401")
    assert (await store.post("/api/orders/1401/assign", {"driver_id": "d1401"})).status_code == 200
    elsewhere = wc_shipping(address_1=f"{secrets.randbelow(10**6)} Outage Road", address_2="")
    requests = len(nominatim.requests)
    r = await wc_deliver(store, wc_order(id=1401, number="1401", shipping=elsewhere, date_modified_gmt=at(3)))
    assert r.json()["result"] == "ignored" and "driver" in r.json()["detail"]
    after = await order_of(store, "1401")
    assert (after["address"], after["destination"]) == (order["address"], order["destination"])
    assert len(nominatim.requests) == requests


async def test_an_order_the_store_created_is_taken_over(store: Shop) -> None:
    """A shop order whose number the store already created through the API updates that order, keeping its
    destination (the store's own coordinates beat a geocoded guess)."""
    created = await store.order("1501")
    r = await wc_deliver(store, wc_order(id=77, number="1501", status="completed"))
    assert (r.json()["result"], r.json()["stage"]) == ("updated", "shipped"), r.text
    order = await order_of(store, "1501")
    assert order["tracking_id"] == created["tracking_id"] and order["destination"] == created["destination"]
    assert (order["source"], order["customer"]["name"]) == ("woocommerce", "John Doe")
    r = await wc_deliver(store, wc_order(id=77, number="1501", status="completed"))
    assert r.json()["result"] == "unchanged"


def test_geocoder_is_configurable() -> None:
    """LIVEMAP_GEOCODER names any geopy service (or none); LIVEMAP_GEOCODER_URL points it elsewhere."""
    assert make_geocoder(Settings(geocoder="none")) is None
    default = make_geocoder(Settings())
    assert isinstance(default, Nominatim) and default.domain == "nominatim.openstreetmap.org"
    own = make_geocoder(Settings(geocoder_url="http://10.0.0.5:8080/nominatim"))
    assert isinstance(own, Nominatim) and (own.scheme, own.domain) == ("http", "10.0.0.5:8080/nominatim")
    assert isinstance(make_geocoder(Settings(geocoder="photon")), Photon)
    with pytest.raises(GeocoderNotFound):
        make_geocoder(Settings(geocoder="atlantis"))


async def test_shopify_checkout_consent_becomes_the_orders_subscriptions(store: Shop) -> None:
    """A Shopify customer subscribed to SMS marketing at checkout gets SMS updates without opting in again;
    one who declined marketing keeps the store's default for email (on: shipping notices are transactional)."""
    order = fixture("shopify/order.json") | {"id": 820982911946154600, "order_number": 1101}
    order["customer"] = order["customer"] | {"sms_marketing_consent": {"state": "subscribed"}}
    order["buyer_accepts_marketing"] = False
    assert (await shopify_deliver(store, order, "orders/create")).json()["result"] == "created"
    assert (await order_of(store, "1101"))["subscriptions"] == {"email": True, "sms": True}
    declined = fixture("shopify/order.json") | {"id": 820982911946154601, "order_number": 1102}
    declined["customer"] = declined["customer"] | {"sms_marketing_consent": {"state": "unsubscribed"}}
    assert (await shopify_deliver(store, declined, "orders/create")).json()["result"] == "created"
    assert (await order_of(store, "1102"))["subscriptions"] == {"email": True, "sms": False}
