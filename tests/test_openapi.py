"""The OpenAPI document matches the app's routes, and real responses decode as the documented types."""

from __future__ import annotations

import msgspec
from starlette.routing import Route, WebSocketRoute

from conftest import Server, Shop, customer_socket
from livemap.app import create_app
from livemap.domain import responses as r
from livemap.web.openapi.document import build
from livemap.web.openapi.operations import OPERATIONS


def test_every_route_is_documented_and_nothing_else() -> None:
    """Each HTTP route and websocket of the app appears in the document with its methods, and vice versa."""
    app_ops = set()
    for route in create_app().routes:
        if isinstance(route, Route):
            app_ops |= {(m.lower(), route.path) for m in route.methods or () if m != "HEAD"}
        elif isinstance(route, WebSocketRoute):
            app_ops.add(("get", route.path))
    documented = {(op.method, op.path) for op in OPERATIONS}
    assert app_ops == documented
    doc = build()
    assert doc["openapi"] == "3.1.0"
    assert {(m, p) for p, ops in doc["paths"].items() for m in ops} == documented


def test_every_reference_resolves() -> None:
    """Every $ref in the document names a schema in its components."""
    doc = build()
    encoded = msgspec.json.encode(doc).decode()
    names = set(doc["components"]["schemas"])
    refs = {part.split('"')[0] for part in encoded.split('"$ref":"#/components/schemas/')[1:]}
    assert refs and refs <= names


def test_the_drivers_list_and_sign_in_link_are_described() -> None:
    """`GET /api/drivers` answers a DriverList; every field of it and of DriverCreated (the sign-in link, its QR
    code) says what it holds."""
    doc = build()
    listed = doc["paths"]["/api/drivers"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed == {"$ref": "#/components/schemas/DriverList"}
    schemas = doc["components"]["schemas"]
    assert {"sign_in_url", "sign_in_qr"} <= schemas["DriverCreated"]["properties"].keys()
    for name in ("DriverList", "DriverRow", "DriverCreated"):
        assert schemas[name].get("description"), name
        for field, schema in schemas[name]["properties"].items():
            assert schema.get("description"), f"{name}.{field}"


async def test_served_document_and_real_responses_match_their_types(shop: Shop, server: Server) -> None:
    """/openapi.json is served; real REST and socket payloads decode strictly as the documented types."""
    served = await shop.http.get(f"{server.url}/openapi.json")
    assert served.status_code == 200 and served.json()["paths"].keys() == build()["paths"].keys()
    created = await shop.order("O1")
    order = msgspec.json.decode((await shop.get("/api/orders/O1")).content, type=r.OrderView)
    assert order.tracking_id == created["tracking_id"]
    await shop.driver("od")
    msgspec.json.decode((await shop.get("/api/drivers/od")).content, type=r.DriverStatus)
    snap = await shop.http.get(f"{server.url}/api/track/{order.tracking_id}", params={"t": order.tracking_token})
    assert msgspec.json.decode(snap.content, type=r.Snapshot).order.number == "O1"
    bad = await shop.stage("O1", "nowhere")
    assert msgspec.json.decode(bad.content, type=r.ErrorBody).error.code == "unknown_stage"
    sock = await customer_socket(server, created)
    raw = await sock.conn.recv()
    assert msgspec.json.decode(raw, type=r.Snapshot).order.stage == "received"
    await sock.close()
