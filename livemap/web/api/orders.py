"""`/api/orders`: the store creates orders, reads them, assigns drivers and changes stages (store key)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livemap.domain.messages import Assign, CreateOrder, StageChange
from livemap.services import services
from livemap.storage import proofs
from livemap.web import auth, bodies, sessions
from livemap.web import presenters as views
from livemap.web.errors import ApiError, json_response, private_image


async def _order_response(request: Request, store_id: str, oid: str, status: int = 200) -> Response:
    store = services(request).repo
    order = await store.store_order(store_id, oid)
    history = await store.history(order.tracking_id)
    proof = await proofs.proof(store, order.tracking_id)
    base_url = services(request).base_url(request)
    return json_response(views.store_order(order, history, base_url, store.tracking_token(order), proof), status)


async def create_order(request: Request) -> Response:
    principal = await auth.require(request, "store")
    body = await bodies.json(request, CreateOrder)
    order = await services(request).repo.create_order(principal.store_id, body)
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
        await services(request).repo.assign(principal.store_id, oid, body.driver_id)
    except ValueError as exc:
        raise ApiError(409, "illegal_assignment", str(exc)) from None
    return await _order_response(request, principal.store_id, oid)


@sessions.allows_session
async def change_stage(request: Request) -> Response:
    principal = await auth.require(request, "store")
    body = await bodies.json(request, StageChange)
    oid = request.path_params["order_id"]
    await services(request).repo.change_stage(principal.store_id, oid, body.stage, body.note, body.at)
    return await _order_response(request, principal.store_id, oid)


@sessions.allows_session
async def proof_photo(request: Request) -> Response:
    """`GET /api/orders/{order_id}/proof/photo`: the delivery photo the driver took."""
    principal = await auth.require(request, "store")
    store = services(request).repo
    order = await store.store_order(principal.store_id, request.path_params["order_id"])
    return private_image(await proofs.photo(store, order.tracking_id), "no_proof", "the driver took no photo")


routes = [
    Route("/api/orders", create_order, methods=["POST"]),
    Route("/api/orders/{order_id}", get_order, methods=["GET"]),
    Route("/api/orders/{order_id}/assign", assign_order, methods=["POST"]),
    Route("/api/orders/{order_id}/stage", change_stage, methods=["POST"]),
    Route("/api/orders/{order_id}/proof/photo", proof_photo, methods=["GET"]),
]
