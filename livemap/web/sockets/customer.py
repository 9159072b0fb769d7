"""`/ws/track/{tracking_id}`: a customer's live view of one order.

Subscribe first, then read the snapshot, then replay: every event published after the snapshot's
read is either in the replay or in the subscription mailbox, and offsets (stream ids) drop the
duplicates, so a reconnecting client with `since` misses nothing and sees nothing twice.
"""

from __future__ import annotations

import re
from functools import lru_cache

import msgspec
from starlette.websockets import WebSocket

from livemap.services import Services, services
from livemap.web.auth import authorize_tracking
from livemap.web.errors import ApiError
from livemap.web.presenters import customer_snapshot
from livemap.web.sockets.common import Forwarder, deny, drain_client

_OFFSET = re.compile(r"^\d{1,20}-\d{1,20}$")
_OFFSET_PREFIX = '{"offset":"'
_LOCATION_PREFIX = '{"type":"location"'  # msgspec writes a struct's tag first


def offset_key(offset: str) -> tuple[int, int]:
    """Stream ids order as (milliseconds, sequence), not as strings."""
    ms, _, seq = offset.partition("-")
    return int(ms), int(seq)


@lru_cache(maxsize=1024)
def _key_of(message: str) -> tuple[int, int]:
    """A published event's offset key, read once for all the customers it goes to (the hub hands
    them the same str, so a hit is an identity compare). Every published event starts with its
    offset (spliced in by Redis): read without parsing."""
    return offset_key(message[len(_OFFSET_PREFIX) : message.index('"', len(_OFFSET_PREFIX))])


async def track_socket(ws: WebSocket) -> None:
    svc = services(ws)
    tid = ws.path_params["tracking_id"]
    since = ws.query_params.get("since")
    try:
        if since is not None and not _OFFSET.match(since):
            raise ApiError(400, "invalid_offset", "since must be an offset from a previous event, like 1763900000000-0")
        await authorize_tracking(ws, tid)
    except ApiError as err:
        await deny(ws, err)
        return
    await ws.accept()
    async with svc.hub.subscribe(svc.repo.keys.order_channel(tid)) as sub:
        last = await _catch_up(ws, svc, tid, since)

        def is_new(message: str) -> bool:
            nonlocal last
            key = _key_of(message)
            if key <= last:
                return False
            last = key
            return True

        forwarder = Forwarder(ws, sub, is_new)
        try:
            await drain_client(ws)
        finally:
            await forwarder.aclose()


async def _catch_up(ws: WebSocket, svc: Services, tid: str, since: str | None) -> tuple[int, int]:
    """Send the snapshot and the replay; returns the newest offset sent. A function of its own so
    that the snapshot is garbage once sent, not held for the hours a customer socket stays open."""
    snapshot = await customer_snapshot(svc.repo, tid, svc.settings)
    await ws.send_text(msgspec.json.encode(snapshot).decode())
    last = offset_key(snapshot.offset)
    if since is not None:
        live = snapshot.order.live
        for offset, data in await svc.repo.events_after(tid, since):
            # Old positions are replayed only while the driver is still on this order's leg.
            if not live and data.startswith(_LOCATION_PREFIX):
                continue
            await ws.send_text(f'{_OFFSET_PREFIX}{offset}",{data[1:]}')
            last = max(last, offset_key(offset))
    return last
