"""`/api/drivers`: the store's drivers, their runs of stops and their tracker devices (store key)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livemap.domain.clock import now_ms
from livemap.domain.messages import CreateDriver, Devices, StopOrder
from livemap.domain.responses import DriverCreated, DriverList, DriverStatus, FixCounts
from livemap.domain.signin import driver_sign_in_url, qr_svg
from livemap.services import services
from livemap.web import auth, bodies, sessions
from livemap.web import presenters as views
from livemap.web.errors import ApiError, json_response, not_found


@sessions.allows_owner
async def list_drivers(request: Request) -> Response:
    """The store's drivers (the settings page's list): vehicle, tracker devices, newest fix time."""
    principal = await auth.require(request, "store")
    return json_response(DriverList(await services(request).repo.driver_list(principal.store_id)))


@sessions.allows_owner
async def create_driver(request: Request) -> Response:
    principal = await auth.require(request, "store")
    body = await bodies.json(request, CreateDriver)
    did, token = await services(request).repo.create_driver(principal.store_id, body.name, body.id, body.vehicle)
    return json_response(_credential(request, did, body.name, token), 201)


def _credential(request: Request, did: str, name: str, token: str) -> DriverCreated:
    """The new token with the link that signs the driver app in with it, and that link's QR code."""
    url = driver_sign_in_url(services(request).base_url(request), token)
    return DriverCreated(id=did, name=name, token=token, sign_in_url=url, sign_in_qr=qr_svg(url))


async def _known_driver(request: Request, store_id: str) -> str:
    """The path's driver id, or 404 unless it is one of this store's drivers."""
    did: str = request.path_params["driver_id"]
    if not await services(request).repo.driver_exists(store_id, did):
        raise not_found(f"driver {did} not found")
    return did


@sessions.allows_session
async def get_driver(request: Request) -> Response:
    principal = await auth.require(request, "store")
    svc, did = services(request), await _known_driver(request, principal.store_id)
    raw = await svc.repo.driver(principal.store_id, did)
    fixes = FixCounts(accepted=int(raw.get("accepted", 0)), ignored=int(raw.get("ignored", 0)))
    position = views.position(raw, now_ms(), svc.settings)
    return json_response(DriverStatus(did, raw.get("name", ""), position, fixes))


@sessions.allows_session
async def get_stops(request: Request) -> Response:
    principal = await auth.require(request, "store")
    did = await _known_driver(request, principal.store_id)
    store = services(request).repo
    return json_response(views.stops_view(did, await store.stops(principal.store_id, did)))


@sessions.allows_session
async def put_stops(request: Request) -> Response:
    principal = await auth.require(request, "store")
    body = await bodies.json(request, StopOrder)
    did = await _known_driver(request, principal.store_id)
    store = services(request).repo
    try:
        orders = await store.reorder_stops(principal.store_id, did, body.orders)
    except ValueError as exc:
        raise ApiError(409, "stops_mismatch", str(exc)) from None
    return json_response(views.stops_view(did, orders))


@sessions.allows_owner
async def get_devices(request: Request) -> Response:
    principal = await auth.require(request, "store")
    did = await _known_driver(request, principal.store_id)
    return json_response(Devices(await services(request).repo.devices(principal.store_id, did)))


@sessions.allows_owner
async def put_devices(request: Request) -> Response:
    """Register the tracker apps' device ids that send this driver's position (replaces the list)."""
    principal = await auth.require(request, "store")
    body = await bodies.json(request, Devices)
    did = await _known_driver(request, principal.store_id)
    store = services(request).repo
    await store.set_devices(principal.store_id, did, body.devices)
    return json_response(Devices(await store.devices(principal.store_id, did)))


@sessions.allows_owner
async def replace_token(request: Request) -> Response:
    """A new token for the driver; the old one is refused from now on and its open sockets close."""
    principal = await auth.require(request, "store")
    repo, did = services(request).repo, await _known_driver(request, principal.store_id)
    token = await repo.replace_driver_token(principal.store_id, did)
    return json_response(_credential(request, did, (await repo.driver(principal.store_id, did)).get("name", ""), token))


routes = [
    Route("/api/drivers", list_drivers, methods=["GET"]),
    Route("/api/drivers", create_driver, methods=["POST"]),
    Route("/api/drivers/{driver_id}", get_driver, methods=["GET"]),
    Route("/api/drivers/{driver_id}/token", replace_token, methods=["POST"]),
    Route("/api/drivers/{driver_id}/stops", get_stops, methods=["GET"]),
    Route("/api/drivers/{driver_id}/stops", put_stops, methods=["PUT"]),
    Route("/api/drivers/{driver_id}/devices", get_devices, methods=["GET"]),
    Route("/api/drivers/{driver_id}/devices", put_devices, methods=["PUT"]),
]
