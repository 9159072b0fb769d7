"""Returns: the customer starts one after delivery (tracking token); the store lists them and moves
each on (store key or a dispatcher's session). See domain/returns.py for the workflow."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livemap.domain import returns as rt
from livemap.domain.records import Order
from livemap.domain.responses import ReturnList, ReturnView
from livemap.services import services
from livemap.web import auth, bodies, sessions
from livemap.web.errors import ApiError, json_response

_STATUSES = {*rt.ReturnStatus, "open", "closed"}


def _view(order: Order, record: rt.ReturnRecord) -> ReturnView:
    return ReturnView(
        order["id"], order.tracking_id, record.status, record.reason, record.note, record.requested_at,
        record.steps, record.driver_id, list(rt.NEXT.get(record.status, ())),
    )  # fmt: skip


async def start_return(request: Request) -> Response:
    """`POST /api/track/{tracking_id}/return`: the customer asks to return a delivered order."""
    tid = request.path_params["tracking_id"]
    await auth.authorize_tracking(request, tid)
    body = await bodies.json(request, rt.StartReturn)
    repo = services(request).repo
    record = await repo.start_return(tid, body)
    return json_response(_view(await repo.order(tid), record), 201)


@sessions.allows_session
async def change_return(request: Request) -> Response:
    principal = await auth.require(request, "store")
    body = await bodies.json(request, rt.ReturnChange)
    repo, oid = services(request).repo, request.path_params["order_id"]
    record = await repo.change_return(principal.store_id, oid, body)
    return json_response(_view(await repo.store_order(principal.store_id, oid), record))


@sessions.allows_session
async def list_returns(request: Request) -> Response:
    principal = await auth.require(request, "store")
    status = request.query_params.get("status") or None
    if status is not None and status not in _STATUSES:
        raise ApiError(422, "invalid_query", f"status must be one of: {', '.join(sorted(_STATUSES))}")
    try:
        limit = int(request.query_params.get("limit", "100"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 500:
        raise ApiError(422, "invalid_query", "limit must be a whole number from 1 to 500")
    found = await services(request).repo.list_returns(principal.store_id, status, limit)
    return json_response(ReturnList([_view(order, record) for order, record in found]))


routes = [
    Route("/api/track/{tracking_id}/return", start_return, methods=["POST"]),
    Route("/api/orders/{order_id}/return", change_return, methods=["POST"]),
    Route("/api/returns", list_returns, methods=["GET"]),
]
