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
from livemap.storage import proofs
from livemap.web import auth, bodies, sessions
from livemap.web.errors import ApiError, json_response, private_image

_STATUSES = {*rt.ReturnStatus, "open", "closed"}


def _view(order: Order, record: rt.ReturnRecord) -> ReturnView:
    return ReturnView(
        order["id"], order.tracking_id, record.status, record.reason, record.note, record.requested_at,
        record.steps, record.driver_id, list(rt.NEXT.get(record.status, ())), order["return_photo"] == "1",
    )  # fmt: skip


async def start_return(request: Request) -> Response:
    """`POST /api/track/{tracking_id}/return`: the customer asks to return a delivered order."""
    tid = request.path_params["tracking_id"]
    await auth.authorize_tracking(request, tid)
    body = await bodies.json(request, rt.StartReturn)
    repo = services(request).repo
    record = await repo.start_return(tid, body)
    return json_response(_view(await repo.order(tid), record), 201)


async def put_photo(request: Request) -> Response:
    """`PUT /api/track/{tracking_id}/return/photo`: the customer's photo of the return, until the store answers."""
    tid = request.path_params["tracking_id"]
    await auth.authorize_tracking(request, tid)
    media_type = bodies.media_type(request)
    if media_type not in proofs.IMAGE_TYPES:
        raise ApiError(415, "unsupported_media_type", f"send the photo as {', '.join(proofs.IMAGE_TYPES)}")
    repo = services(request).repo
    record = repo.return_of(await repo.order(tid))
    if record is None:
        raise ApiError(409, "no_return", "ask for the return first, then add its photo")
    if record.status != rt.ReturnStatus.REQUESTED:
        message = f"the store has answered this return ({record.status}); its photo can no longer change"
        raise ApiError(409, "return_answered", message, current=record.status)
    await proofs.set_return_photo(repo, tid, await bodies.image(request, media_type), media_type)
    return Response(status_code=204)


@sessions.allows_session
async def get_photo(request: Request) -> Response:
    """`GET /api/orders/{order_id}/return/photo`: the photo the customer sent with the return."""
    principal = await auth.require(request, "store")
    repo = services(request).repo
    order = await repo.store_order(principal.store_id, request.path_params["order_id"])
    photo = await proofs.return_photo(repo, order.tracking_id)
    return private_image(photo, "no_photo", "the customer sent no photo with this return")


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
    Route("/api/track/{tracking_id}/return/photo", put_photo, methods=["PUT"]),
    Route("/api/orders/{order_id}/return/photo", get_photo, methods=["GET"]),
    Route("/api/orders/{order_id}/return", change_return, methods=["POST"]),
    Route("/api/returns", list_returns, methods=["GET"]),
]
