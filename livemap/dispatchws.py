"""`/ws/dispatch`: every active delivery and online driver of one store, live."""

from __future__ import annotations

import msgspec
from starlette.websockets import WebSocket

from livemap import auth
from livemap.errors import ApiError
from livemap.messages import DriverLocationEvent, Error, Viewport, describe
from livemap.services import services
from livemap.sockets import deny, drain_client, pump, run_until_disconnect
from livemap.views import dispatch_snapshot

_encode = msgspec.json.Encoder().encode
_viewport = msgspec.json.Decoder(Viewport)
_location = msgspec.json.Decoder(DriverLocationEvent)


async def dispatch_socket(ws: WebSocket) -> None:
    svc = services(ws)
    try:
        principal = await auth.require(ws, "store")
    except ApiError as err:
        await deny(ws, err)
        return
    sid = principal.store_id
    bbox: tuple[float, float, float, float] | None = None
    await ws.accept()

    async def on_message(data: str | bytes) -> None:
        nonlocal bbox
        try:
            bbox = _viewport.decode(data).bbox
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            await ws.send_text(_encode(Error("invalid_message", describe(exc))).decode())
            return
        await ws.send_text(_encode(await dispatch_snapshot(svc.store, sid, svc.settings, bbox)).decode())

    def in_view(message: str) -> bool:
        if bbox is None or '"type":"location"' not in message:
            return True
        loc = _location.decode(message)
        return bbox[0] <= loc.lon <= bbox[2] and bbox[1] <= loc.lat <= bbox[3]

    async with svc.hub.subscribe(svc.store.keys.store_channel(sid)) as sub:
        await ws.send_text(_encode(await dispatch_snapshot(svc.store, sid, svc.settings)).decode())
        await run_until_disconnect(ws, drain_client(ws, on_message), pump(ws, sub, in_view))
