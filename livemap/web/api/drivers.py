"""The driver's endpoints (driver token): its run, marking stops, proof of delivery; the customer's view of it.

A driver sees and acts on its own stops only: any other order, of its store or another, answers
the same 404 as an id that does not exist. Stage changes go through the store's own code path
(`Repository.change_stage`), so the stage machine, events, history and notifications are the ones the
store API produces.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livemap.domain.messages import DriverStageChange, ProofRecipient
from livemap.domain.records import NotFound, Order, Principal
from livemap.domain.responses import DriverRun
from livemap.domain.returns import ReturnChange, ReturnStatus
from livemap.domain.stages import FINAL, StageMachine
from livemap.services import services
from livemap.storage import proofs
from livemap.storage.repository import Repository
from livemap.web import auth, bodies
from livemap.web.auth import authorize_tracking
from livemap.web.errors import PRIVATE, ApiError, json_response, not_found, private_image
from livemap.web.presenters import driver_stops


async def _machine(store: Repository, sid: str) -> StageMachine:
    return (await store.settings(sid)).machine()


async def _own_order(request: Request, principal: Principal) -> Order:
    """The path's order if it is assigned to the calling driver; else the same 404 as an unknown id."""
    tid: str = request.path_params["tracking_id"]
    try:
        order: Order | None = await services(request).repo.order(tid)
    except NotFound:
        order = None
    if order is None or order["store"] != principal.store_id or order.driver != principal.driver_id:
        raise not_found("no such stop among this driver's orders")
    return order


async def driver_run(request: Request) -> Response:
    """`GET /api/driver`: who the token belongs to, and its stops (the app's sign-in check)."""
    principal = await auth.require(request, "driver")
    store = services(request).repo
    sid, did = principal.store_id, principal.driver_id
    name = (await store.driver(sid, did)).get("name", "")
    stops = driver_stops(await store.stops(sid, did), await _machine(store, sid))
    return json_response(DriverRun(did, name, stops))


async def mark_stop(request: Request) -> Response:
    """`POST /api/driver/stops/{tracking_id}/stage`: picked up (`shipped`), `delivered` or `failed_attempt`; on a
    return's pickup, `returned`."""
    principal = await auth.require(request, "driver")
    body = await bodies.json(request, DriverStageChange)
    store = services(request).repo
    order = await _own_order(request, principal)
    machine = await _machine(store, principal.store_id)
    if order.on_return_leg or body.stage == "returned":
        return await _collect(store, principal, order, body)
    recipient = (body.recipient or "").strip()
    try:
        if recipient and body.stage == "delivered":
            # Checked first so a refused delivery keeps no name; kept before the stage event, so a
            # customer page that reads the proof on seeing "delivered" finds it.
            machine.check(order.stage, body.stage)
            await proofs.set_recipient(store, order.tracking_id, recipient)
        await store.change_stage(principal.store_id, order["id"], body.stage, body.note)
    except NotFound:
        raise not_found("no such stop among this driver's orders") from None
    updated = await store.order(order.tracking_id)
    return json_response(driver_stops([updated], machine)[0])


async def _collect(store: Repository, principal: Principal, order: Order, body: DriverStageChange) -> Response:
    """A return's pickup stop: `returned` once the driver has the parcel (the return is received, the order
    returned); the delivery's stages do not apply to it."""
    if not order.on_return_leg or body.stage != "returned":
        expected = "returned (collected)" if order.on_return_leg else "shipped, delivered or failed_attempt"
        raise ApiError(409, "illegal_transition", f"this stop takes {expected}, not {body.stage!r}")
    await store.change_return(principal.store_id, order["id"], ReturnChange(ReturnStatus.RECEIVED, body.note))
    updated = await store.order(order.tracking_id)
    return json_response(driver_stops([updated], await _machine(store, principal.store_id))[0])


async def upload_proof(request: Request) -> Response:
    """`POST /api/driver/stops/{tracking_id}/proof`: a photo (raw JPEG/PNG/WebP body) or `{"recipient"}`."""
    principal = await auth.require(request, "driver")
    store = services(request).repo
    order = await _own_order(request, principal)
    if order.stage in FINAL:
        raise ApiError(409, "order_closed", f"the order is {order.stage}; its proof can no longer change")
    media_type = bodies.media_type(request)
    if media_type in proofs.IMAGE_TYPES:
        await proofs.set_photo(store, order.tracking_id, await bodies.image(request, media_type), media_type)
    elif media_type == "application/json":
        recipient = (await bodies.json(request, ProofRecipient)).recipient.strip()
        if not recipient:
            raise ApiError(422, "invalid_field", "recipient: must not be blank")
        await proofs.set_recipient(store, order.tracking_id, recipient)
    else:
        allowed = ", ".join((*proofs.IMAGE_TYPES, "application/json"))
        raise ApiError(415, "unsupported_media_type", f"send a photo as {allowed}")
    return json_response(await proofs.proof(store, order.tracking_id))


async def _delivered(request: Request) -> str:
    """The tracking id of the path, once its customer is authorized and the order delivered (409 before)."""
    tid: str = request.path_params["tracking_id"]
    await authorize_tracking(request, tid)
    store = services(request).repo
    order = await store.order(tid)
    if order.stage not in (await _machine(store, order["store"])).delivered:
        message = f"the order is {order.stage}; its proof is shown once it is delivered"
        raise ApiError(409, "not_delivered", message, stage=order.stage)
    return tid


async def customer_proof(request: Request) -> Response:
    """`GET /api/track/{tracking_id}/proof`: who took the parcel and whether there is a photo."""
    tid = await _delivered(request)
    proof = await proofs.proof(services(request).repo, tid)
    if proof is None:
        raise ApiError(404, "no_proof", "the driver left no proof of delivery")
    response = json_response(proof)
    response.headers.update(PRIVATE)
    return response


async def customer_photo(request: Request) -> Response:
    """`GET /api/track/{tracking_id}/proof/photo`: the delivery photo itself."""
    tid = await _delivered(request)
    return private_image(await proofs.photo(services(request).repo, tid), "no_proof", "the driver took no photo")


routes = [
    Route("/api/driver", driver_run, methods=["GET"]),
    Route("/api/driver/stops/{tracking_id}/stage", mark_stop, methods=["POST"]),
    Route("/api/driver/stops/{tracking_id}/proof", upload_proof, methods=["POST"]),
    Route("/api/track/{tracking_id}/proof", customer_proof, methods=["GET"]),
    Route("/api/track/{tracking_id}/proof/photo", customer_photo, methods=["GET"]),
]
