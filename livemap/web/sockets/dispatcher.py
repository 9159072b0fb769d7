"""`/ws/dispatch`: every active delivery and online driver of one store, live.

The credential is the store key (`?token=` or a bearer header) or the dispatch page's session
cookie. Locations are coalesced (see `coalesce`): each driver's newest, at most once a second
per driver, and once the client sent a viewport only those inside it. Every other event goes out
as it comes. Locations carry no ETA, so every `ETA_REFRESH_S` the socket also sends the ETA of
each live order whose ETA changed.
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
import redis.asyncio as aioredis
from starlette.websockets import WebSocket

from livemap.domain.messages import Error, Viewport, describe
from livemap.realtime.coalesce import LatestLocations
from livemap.services import Services, services
from livemap.web import auth, sessions
from livemap.web.dispatchview import BBox, dispatch_snapshot, inside
from livemap.web.errors import ApiError
from livemap.web.sockets.common import Forwarder, deny, drain_client, run_until_disconnect, send_texts

log = logging.getLogger("livemap.dispatch")

#: Locations go out in one pass per this many seconds: at most one per driver per pass.
FLUSH_S = 1.0
ETA_REFRESH_S = 5.0

_encode = msgspec.json.Encoder().encode
_viewport = msgspec.json.Decoder(Viewport)


class _Desk:
    """One dispatcher's socket: its viewport and the senders that share the socket."""

    def __init__(self, ws: WebSocket, svc: Services, store_id: str, sub: LatestLocations) -> None:
        self.ws, self.svc, self.store_id, self.sub = ws, svc, store_id, sub
        self.bbox: BBox | None = None
        # A viewport's snapshot and the locations filtered by that viewport go out in that order.
        self._in_order = asyncio.Lock()
        self._etas: dict[str, int | None] = {}
        self._shown: set[str] = set()  # drivers the client last saw inside its viewport

    async def send_snapshot(self) -> None:
        snapshot = await dispatch_snapshot(self.svc.repo, self.store_id, self.svc.settings, self.bbox)
        await self.ws.send_text(_encode(snapshot).decode())
        self._etas |= {o.tracking_id: o.eta_at for o in snapshot.orders}
        self._shown = {d.driver_id for d in snapshot.drivers}

    async def on_message(self, data: str | bytes) -> None:
        try:
            bbox = _viewport.decode(data).bbox
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            await self.ws.send_text(_encode(Error("invalid_message", describe(exc))).decode())
            return
        async with self._in_order:
            self.bbox = bbox
            await self.send_snapshot()

    async def release_locations(self) -> None:
        """Once a second, each driver's newest location since the last pass: inside the viewport, or just left it."""
        while True:
            await asyncio.sleep(FLUSH_S)
            async with self._in_order:
                batch = []
                for where, data in self.sub.take_latest():
                    if inside(where.lat, where.lon, self.bbox):
                        self._shown.add(where.driver_id)
                    elif where.driver_id in self._shown:
                        self._shown.discard(where.driver_id)  # once more, so its marker does not freeze at the edge
                    else:
                        continue
                    batch.append(data)
                await send_texts(self.ws, batch)

    async def refresh_etas(self) -> None:
        while True:
            # On the wall clock's ticks: all of a process's dispatchers of a store share one read.
            await asyncio.sleep(ETA_REFRESH_S - time.time() % ETA_REFRESH_S)
            try:
                etas = await self.svc.etas.etas(self.store_id)
            except aioredis.RedisError as exc:
                # One refresh missed, not the dispatcher's socket: the next tick reads again.
                log.warning("refreshing dispatchers' ETAs failed: %s", exc)
                continue
            changed = []
            for tid, eta in etas.items():
                if self._etas.get(tid) != eta.event.eta_at:
                    self._etas[tid] = eta.event.eta_at
                    changed.append(eta.text)
            await send_texts(self.ws, changed)


@sessions.allows_session
async def dispatch_socket(ws: WebSocket) -> None:
    svc = services(ws)
    try:
        principal = await auth.require(ws, "store")
    except ApiError as err:
        await deny(ws, err)
        return
    await ws.accept()
    sub = LatestLocations(svc.settings.client_queue)
    desk = _Desk(ws, svc, principal.store_id, sub)
    async with svc.hub.subscribe(svc.repo.keys.store_channel(principal.store_id), sub=sub):
        await desk.send_snapshot()
        forwarder = Forwarder(ws, sub)
        try:
            await run_until_disconnect(
                ws, drain_client(ws, desk.on_message), desk.release_locations(), desk.refresh_etas()
            )
        finally:
            await forwarder.aclose()
