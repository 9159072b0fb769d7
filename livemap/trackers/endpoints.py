"""HTTP endpoints for tracker apps: authenticate the device, bind it to its driver, store its fixes.

The device proves itself with its driver's token: `token` in the query string (the apps keep the
query of the server URL typed into them), else the HTTP Basic password, else a bearer header. The
identifier the app sends must be the driver's id or one of the device ids the store registered
for that driver (`PUT /api/drivers/{id}/devices`). Unknown devices get what the reference server
answers (400 for the query form, 404 for JSON), so apps show their usual error.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import parse_qsl

import msgspec
import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from livemap.domain.records import Principal
from livemap.services import Services, services
from livemap.trackers import osmand, owntracks
from livemap.trackers.device import DeviceFix
from livemap.trackers.fields import KNOT_MPS, BadField
from livemap.web import bodies
from livemap.web.errors import ApiError, json_response

log = logging.getLogger("livemap.ingest")
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
_MAX_BODY = 256 * 1024

# One ingest at a time per driver in this process: an app retrying while its previous request is
# still being stored must not interleave two updates of the same legs.
_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = weakref.WeakValueDictionary()


def _credentials(request: Request) -> tuple[str, str | None]:
    """(token, Basic user name): the token from the query, else Basic password, else a bearer header."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    user: str | None = None
    basic_password = ""
    if scheme.lower() == "basic":
        try:
            user, _, basic_password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(400, "invalid_auth", "the Basic credentials are not base64 of user:password") from None
    token = request.query_params.get("token") or basic_password
    if not token and scheme.lower() == "bearer":
        token = value.strip()
    return token, user


async def _driver(svc: Services, token: str) -> Principal:
    principal = await svc.repo.principal(token)
    if principal is None or principal.kind != "driver":
        # Basic, so OwnTracks (and a browser) know a password is what is missing.
        raise ApiError(401, "unauthorized", "a driver token is required (token=... or the Basic password)")
    if not svc.driver_limits.allow((principal.store_id, principal.driver_id)):  # the budget its sockets share
        rate = svc.settings.driver_msgs_per_s
        raise ApiError(429, "rate_limited", f"more than {rate:g} messages a second for this driver; slow down")
    return principal


async def _bound(svc: Services, principal: Principal, candidates: Iterable[str]) -> bool:
    """Whether any identifier the app sent is this driver's id or one of its registered devices."""
    names = {c for c in candidates if c}
    if principal.driver_id in names:
        return True
    return bool(names & set(await svc.repo.devices(principal.store_id, principal.driver_id)))


async def _store(svc: Services, principal: Principal, fixes: list[DeviceFix]) -> tuple[int, int]:
    key = (principal.store_id, principal.driver_id)
    lock = _locks.get(key)
    if lock is None:
        lock = _locks[key] = asyncio.Lock()
    async with lock:
        session = svc.positions.session(*key)
        await session.load()
        fixes = sorted(fixes, key=lambda f: f.fix.ts)  # batches may come newest first
        accepted, ignored = await session.ingest([f.fix for f in fixes])
        attributes = {k: v for f in fixes for k, v in f.attributes.items()}
        if attributes and accepted:
            await svc.repo.set_device_attributes(principal.store_id, principal.driver_id, _encode(attributes))
    return accepted, ignored


def _bad(exc: BadField | msgspec.DecodeError | RecursionError) -> ApiError:
    if isinstance(exc, RecursionError):  # untyped JSON: msgspec stops at Python's recursion limit
        return ApiError(400, "invalid_json", "JSON nested too deeply")
    return ApiError(400, "invalid_fix", str(exc))


async def _ingest_or_unavailable(svc: Services, principal: Principal, fixes: list[DeviceFix]) -> Response | None:
    try:
        await _store(svc, principal, fixes)
    except aioredis.RedisError as exc:
        # Not acknowledged: the app keeps the fixes in its queue and sends them again.
        log.warning("storing device fixes failed: %s", exc)
        return json_response(ApiError(503, "unavailable", "storage is unavailable; send again").body(), 503)
    return None


def _params_endpoint(speed_unit_mps: float) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        svc = services(request)
        token, _ = _credentials(request)
        principal = await _driver(svc, token)
        body = await bodies.read(request, _MAX_BODY)
        try:
            if request.headers.get("content-type", "").startswith("application/json"):
                fixes, unknown_status = osmand.parse_json(_decode(body)), 404
            else:
                params = dict(request.query_params)
                if set(params) <= {"token"} and body:  # the reference server reads the body only without a query
                    params = dict(_form(body))
                fixes, unknown_status = [osmand.parse_params(params, speed_unit_mps=speed_unit_mps)], 400
        except (BadField, msgspec.DecodeError, RecursionError) as exc:
            raise _bad(exc) from None
        for f in fixes:
            if not await _bound(svc, principal, (f.device_id,)):
                raise ApiError(unknown_status, "unknown_device", f"device {f.device_id!r} is not this driver's")
        failed = await _ingest_or_unavailable(svc, principal, fixes)
        return failed or Response(status_code=200)

    return endpoint


def _form(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode("latin-1"), keep_blank_values=True)


async def owntracks_endpoint(request: Request) -> Response:
    """`POST /ingest/owntracks`: replies `[]` (no friends' positions to hand back) once stored or ignored."""
    svc = services(request)
    token, user = _credentials(request)
    principal = await _driver(svc, token)
    body = await bodies.read(request, _MAX_BODY)
    if not body.strip():
        return json_response([])  # the app's connection test and keep-alives
    user = user or request.headers.get("x-limit-u")
    device = request.headers.get("x-limit-d")
    try:
        message = _decode(body)
        topic = message.get("topic") if isinstance(message, dict) else None
        names = [user, device, f"{user}/{device}" if user and device else None, topic]
        fix = owntracks.parse(message, next((n for n in names if n), "") or "")
    except (BadField, msgspec.DecodeError, RecursionError) as exc:
        raise _bad(exc) from None
    if fix is None:
        return json_response([])
    if not await _bound(svc, principal, [n for n in names if n]):
        raise ApiError(400, "unknown_device", "neither the user nor the device is this driver's")
    failed = await _ingest_or_unavailable(svc, principal, [fix])
    return failed or json_response([])


class OsmandPort:
    """ASGI wrapper for `livemap serve --osmand-port`: on that port the apps post to `/`, their default.

    Only `/` (as `/ingest/osmand`) and `/ingest/...` answer there; the rest of livemap stays on the main port.
    """

    def __init__(self, app: ASGIApp, port: int) -> None:
        self.app, self.port = app, port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        if scope["type"] == "lifespan" or not server or server[1] != self.port:
            await self.app(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] in ("", "/"):
            await self.app({**scope, "path": "/ingest/osmand", "raw_path": b"/ingest/osmand"}, receive, send)
        elif scope["type"] == "http" and scope["path"].startswith("/ingest/"):
            await self.app(scope, receive, send)
        else:
            await Response("not found on the OsmAnd port\n", status_code=404)(scope, receive, send)


routes = [
    Route("/ingest/osmand", _params_endpoint(KNOT_MPS), methods=["GET", "POST"]),
    # GPSLogger's custom URL uses the OsmAnd names (see the README's template) but sends m/s.
    Route("/ingest/gpslogger", _params_endpoint(1.0), methods=["GET", "POST"]),
    Route("/ingest/owntracks", owntracks_endpoint, methods=["POST"]),
]
