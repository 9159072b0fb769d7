"""REST endpoints: stores, drivers, orders, the customer's snapshot, rating and opt-ins, health."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livemap.domain import security
from livemap.domain.clock import now_ms
from livemap.domain.messages import (
    Assign,
    CreateDriver,
    CreateOrder,
    CreateStore,
    Devices,
    RateDelivery,
    StageChange,
    StopOrder,
    Subscribe,
    describe,
)
from livemap.domain.records import NotFound
from livemap.domain.responses import DriverCreated, DriverStatus, FixCounts, Health, StoreCreated
from livemap.domain.storesettings import MAX_PATCH_DEPTH, too_deep
from livemap.services import services
from livemap.web import auth, bodies, sessions
from livemap.web import presenters as views
from livemap.web.errors import ApiError, json_response, not_found

log = logging.getLogger("livemap.api")
_READY_TIMEOUT = 2.0


async def create_store(request: Request) -> Response:
    auth.require_admin(request)
    body = await bodies.json(request, CreateStore)
    sid, api_key = await services(request).store.create_store(body.name)
    return json_response(StoreCreated(sid, body.name, api_key), 201)


async def get_store(request: Request) -> Response:
    principal = await auth.require(request, "store")
    settings = await services(request).store.settings_view(principal.store_id)
    return json_response({"id": principal.store_id, **settings})


async def patch_store(request: Request) -> Response:
    principal = await auth.require(request, "store")
    patch = await bodies.json(request, dict[str, Any])
    if too_deep(patch):
        raise ApiError(422, "invalid_field", f"settings nest at most {MAX_PATCH_DEPTH} levels deep")
    try:
        settings = await services(request).store.patch_settings(principal.store_id, patch)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "invalid_field", describe(exc)) from None
    return json_response({"id": principal.store_id, **settings})


async def create_driver(request: Request) -> Response:
    principal = await auth.require(request, "store")
    body = await bodies.json(request, CreateDriver)
    did, token = await services(request).store.create_driver(principal.store_id, body.name, body.id, body.vehicle)
    return json_response(DriverCreated(did, body.name, token), 201)


async def _known_driver(request: Request, store_id: str) -> str:
    """The path's driver id, or 404 unless it is one of this store's drivers."""
    did: str = request.path_params["driver_id"]
    if not await services(request).store.driver_exists(store_id, did):
        raise not_found(f"driver {did} not found")
    return did


@sessions.allows_session
async def get_driver(request: Request) -> Response:
    principal = await auth.require(request, "store")
    svc, did = services(request), await _known_driver(request, principal.store_id)
    raw = await svc.store.driver(principal.store_id, did)
    fixes = FixCounts(accepted=int(raw.get("accepted", 0)), ignored=int(raw.get("ignored", 0)))
    position = views.position(raw, now_ms(), svc.settings)
    return json_response(DriverStatus(did, raw.get("name", ""), position, fixes))


@sessions.allows_session
async def get_stops(request: Request) -> Response:
    principal = await auth.require(request, "store")
    did = await _known_driver(request, principal.store_id)
    store = services(request).store
    return json_response(views.stops_view(did, await store.stops(principal.store_id, did)))


@sessions.allows_session
async def put_stops(request: Request) -> Response:
    principal = await auth.require(request, "store")
    body = await bodies.json(request, StopOrder)
    did = await _known_driver(request, principal.store_id)
    store = services(request).store
    try:
        orders = await store.reorder_stops(principal.store_id, did, body.orders)
    except ValueError as exc:
        raise ApiError(409, "stops_mismatch", str(exc)) from None
    return json_response(views.stops_view(did, orders))


async def get_devices(request: Request) -> Response:
    principal = await auth.require(request, "store")
    did = await _known_driver(request, principal.store_id)
    return json_response(Devices(await services(request).store.devices(principal.store_id, did)))


async def put_devices(request: Request) -> Response:
    """Register the tracker apps' device ids that send this driver's position (replaces the list)."""
    principal = await auth.require(request, "store")
    body = await bodies.json(request, Devices)
    did = await _known_driver(request, principal.store_id)
    store = services(request).store
    await store.set_devices(principal.store_id, did, body.devices)
    return json_response(Devices(await store.devices(principal.store_id, did)))


async def _order_response(request: Request, store_id: str, oid: str, status: int = 200) -> Response:
    store = services(request).store
    order = await store.store_order(store_id, oid)
    history = await store.history(order.tracking_id)
    base_url = services(request).base_url(request)
    return json_response(views.store_order(order, history, base_url, store.tracking_token(order)), status)


async def create_order(request: Request) -> Response:
    principal = await auth.require(request, "store")
    body = await bodies.json(request, CreateOrder)
    order = await services(request).store.create_order(principal.store_id, body)
    return await _order_response(request, principal.store_id, order["id"], 201)


@sessions.allows_session
async def get_order(request: Request) -> Response:
    principal = await auth.require(request, "store")
    return await _order_response(request, principal.store_id, request.path_params["order_id"])


@sessions.allows_session
async def assign_order(request: Request) -> Response:
    principal = await auth.require(request, "store")
    body = await bodies.json(request, Assign)
    oid = request.path_params["order_id"]
    try:
        await services(request).store.assign(principal.store_id, oid, body.driver_id)
    except ValueError as exc:
        raise ApiError(409, "illegal_assignment", str(exc)) from None
    return await _order_response(request, principal.store_id, oid)


@sessions.allows_session
async def change_stage(request: Request) -> Response:
    principal = await auth.require(request, "store")
    body = await bodies.json(request, StageChange)
    oid = request.path_params["order_id"]
    await services(request).store.change_stage(principal.store_id, oid, body.stage, body.note)
    return await _order_response(request, principal.store_id, oid)


async def authorize_tracking(request_or_ws: Any, tid: str) -> None:
    """Raise unless `t` (query) or a bearer header is this order's tracking token."""
    token = auth.credential(request_or_ws, "t")
    if not token:
        raise ApiError(401, "unauthorized", "tracking token `t` required")
    try:
        order = await services(request_or_ws).store.order(tid)
    except NotFound:
        order = None
    # The same answer for an unknown order and a wrong token: a link either works or it does not.
    if order is None or not security.matches(token, order.token_digest):
        raise not_found("no order matches this tracking link")


async def track_snapshot(request: Request) -> Response:
    tid = request.path_params["tracking_id"]
    await authorize_tracking(request, tid)
    svc = services(request)
    snapshot = await views.customer_snapshot(svc.store, tid, svc.settings)
    return Response(msgspec.json.encode(snapshot), media_type="application/json", headers={"Cache-Control": "no-store"})


async def rate_delivery(request: Request) -> Response:
    """`POST /api/track/{tracking_id}/feedback`: the customer rates a delivered order (a new rating replaces it)."""
    tid = request.path_params["tracking_id"]
    await authorize_tracking(request, tid)
    body = await bodies.json(request, RateDelivery)
    feedback = await services(request).store.rate(tid, body.rating, body.comment)
    return json_response(feedback)


async def subscribe(request: Request) -> Response:
    """`POST /api/track/{tracking_id}/subscriptions`: the customer opts in to or out of updates per channel."""
    tid = request.path_params["tracking_id"]
    await authorize_tracking(request, tid)
    body = await bodies.json(request, Subscribe)
    subscriptions = await services(request).store.subscribe(tid, body)
    return json_response(subscriptions)


async def healthz(request: Request) -> Response:
    # Liveness of the unit livemap is: with the embedded Redis, that is this process *and* its
    # redis-server child. While the child is dead (between a crash and its restart, or if restarts keep
    # failing) the unit is not alive, and restarting it is what could heal it: 503. An external Redis
    # being down is not ours to heal: restarting livemap would not bring it back, only lose every open
    # socket, so liveness stays 200 and /readyz alone says 503 (the load balancer stops sending here).
    # A restarted child still loading its AOF is running: 200 here, 503 on /readyz until it answers.
    embedded = services(request).embedded
    if embedded is not None and not embedded.running:
        return json_response(Health("unavailable"), 503)
    return json_response(Health("ok"))


async def readyz(request: Request) -> Response:
    try:
        # Bounded: a frozen Redis must make the probe fail, not hang the load balancer's check.
        await asyncio.wait_for(services(request).store.redis.ping(), _READY_TIMEOUT)
    except Exception as exc:  # any failure to reach Redis means "not ready", whatever its type
        log.warning("readiness probe: Redis unavailable: %r", exc)
        return json_response(Health("unavailable"), 503)
    return json_response(Health("ready"))


routes = [
    Route("/api/stores", create_store, methods=["POST"]),
    Route("/api/store", get_store, methods=["GET"]),
    Route("/api/store", patch_store, methods=["PATCH"]),
    Route("/api/drivers", create_driver, methods=["POST"]),
    Route("/api/drivers/{driver_id}", get_driver, methods=["GET"]),
    Route("/api/drivers/{driver_id}/stops", get_stops, methods=["GET"]),
    Route("/api/drivers/{driver_id}/stops", put_stops, methods=["PUT"]),
    Route("/api/drivers/{driver_id}/devices", get_devices, methods=["GET"]),
    Route("/api/drivers/{driver_id}/devices", put_devices, methods=["PUT"]),
    Route("/api/orders", create_order, methods=["POST"]),
    Route("/api/orders/{order_id}", get_order, methods=["GET"]),
    Route("/api/orders/{order_id}/assign", assign_order, methods=["POST"]),
    Route("/api/orders/{order_id}/stage", change_stage, methods=["POST"]),
    Route("/api/track/{tracking_id}", track_snapshot, methods=["GET"]),
    Route("/api/track/{tracking_id}/feedback", rate_delivery, methods=["POST"]),
    Route("/api/track/{tracking_id}/subscriptions", subscribe, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
