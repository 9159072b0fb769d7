"""What a dispatcher is shown: the store's active orders and online drivers, optionally inside a box.

A box is answered from the geo index: `GEOSEARCH ... BYBOX` on each 1-degree cell it touches,
then an exact check of each candidate's stored position, so a dashboard zoomed on one district
of a 2,000-driver fleet reads only the drivers there.
"""

from __future__ import annotations

import math
from typing import cast

import msgspec

from livemap.domain.clock import now_ms
from livemap.domain.records import Order, decode_hash, is_active, is_stop_of, text
from livemap.domain.responses import DispatchDriver, DispatchSnapshot
from livemap.settings import Settings
from livemap.storage.keys import cell_of
from livemap.storage.repository import Repository
from livemap.web.presenters import dispatch_order, position

_encode = msgspec.json.Encoder().encode

BBox = tuple[float, float, float, float]  # min_lon, min_lat, max_lon, max_lat

#: The earth radius Redis measures with (geohash_helper.c), so its box and ours agree.
_EARTH_M = 6372797.560856
#: Slack around each searched box: geohash rounding (< 1 m) and the haversine vs flat-width gap.
_PAD_M, _PAD_RATIO = 10.0, 1.01
#: A box touching more cells than this reads the store's online drivers instead (a zoomed-out map).
_MAX_CELLS = 64


def inside(lat: float, lon: float, bbox: BBox | None) -> bool:
    return bbox is None or (bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3])


def cell_boxes(bbox: BBox) -> list[tuple[str, BBox]] | None:
    """Each geo cell the box touches with the part of the box inside it; None for too many cells."""
    min_lon, min_lat, max_lon, max_lat = bbox
    lats = range(math.floor(min_lat), math.floor(max_lat) + 1)
    lons = range(math.floor(min_lon), math.floor(max_lon) + 1)
    if len(lats) * len(lons) > _MAX_CELLS:
        return None
    return [
        (
            cell_of(lat, lon),
            (max(min_lon, lon), max(min_lat, lat), min(max_lon, lon + 1), min(max_lat, lat + 1)),
        )
        for lat in lats
        for lon in lons
    ]


def _search_box(part: BBox) -> tuple[float, float, float, float]:
    """(lon, lat, width_m, height_m) of a GEOSEARCH BYBOX that covers `part`.

    Redis measures a point's east-west distance along the point's own parallel, so the width must
    cover the part at its latitude nearest the equator, where a degree of longitude is widest.
    """
    min_lon, min_lat, max_lon, max_lat = part
    widest = 0.0 if min_lat <= 0 <= max_lat else min(abs(min_lat), abs(max_lat))
    width = _EARTH_M * math.radians(max_lon - min_lon) * math.cos(math.radians(widest))
    height = _EARTH_M * math.radians(max_lat - min_lat)
    return (
        (min_lon + max_lon) / 2,
        (min_lat + max_lat) / 2,
        width * _PAD_RATIO + 2 * _PAD_M,
        height * _PAD_RATIO + 2 * _PAD_M,
    )


async def _candidates(store: Repository, sid: str, settings: Settings, bbox: BBox | None) -> list[str]:
    """Driver ids that may be online inside `bbox`: from the geo cells, else every recently seen driver."""
    k = store.keys
    parts = cell_boxes(bbox) if bbox is not None else None
    if parts is None:
        since = now_ms() - int(settings.online_window_s * 1000)
        seen = cast(list[bytes], await store.redis.zrangebyscore(k.store_seen(sid), since, "+inf"))
        return [text(d) for d in seen]
    async with store.redis.pipeline(transaction=False) as pipe:
        for cell, part in parts:
            lon, lat, width, height = _search_box(part)
            pipe.geosearch(k.geo(sid, cell), longitude=lon, latitude=lat, width=width, height=height, unit="m")
        found = await pipe.execute()
    return sorted({text(d) for ids in found for d in ids})


async def dispatch_snapshot(
    store: Repository, sid: str, settings: Settings, bbox: BBox | None = None
) -> DispatchSnapshot:
    """Every active order and online driver of store `sid` (inside `bbox` when given)."""
    k = store.keys
    now = now_ms()
    online_since = now - int(settings.online_window_s * 1000)
    dids = await _candidates(store, sid, settings, bbox)
    async with store.redis.pipeline(transaction=False) as pipe:
        pipe.smembers(k.store_active(sid))
        pipe.hgetall(k.store_drivers(sid))
        for did in dids:
            pipe.hgetall(k.driver(sid, did))
            pipe.zrange(k.driver_orders(sid, did), 0, -1)
        tids, names, *per_driver = await pipe.execute()
    # The active set may name an order an interrupted change left behind (see store): check each.
    orders = [o for o in await store.orders(sorted(text(t) for t in tids)) if is_active(o)]
    by_tid = {o.tracking_id: o for o in orders}
    drivers = []
    for did, raw, run in zip(dids, per_driver[::2], per_driver[1::2], strict=True):
        fields = decode_hash(raw)
        pos = position(fields, now, settings)
        if pos is None or pos.ts < online_since or not inside(pos.lat, pos.lon, bbox):
            continue
        battery = fields.get("battery")
        drivers.append(
            DispatchDriver(
                **msgspec.structs.asdict(pos),
                driver_id=did,
                name=text(names.get(did.encode(), b"")),
                battery=float(battery) if battery else None,
                stops=[by_tid[t]["id"] for t in map(text, run) if t in by_tid and is_stop_of(by_tid[t], did)],
            )
        )
    visible = {d.driver_id for d in drivers}
    return DispatchSnapshot(
        orders=[dispatch_order(o, now) for o in orders if bbox is None or _order_in_view(o, visible, bbox)],
        drivers=drivers,
    )


def _order_in_view(order: Order, visible: set[str], bbox: BBox) -> bool:
    dest = cast(list[float] | None, order.json_field("destination"))
    return order.driver in visible or (dest is not None and inside(dest[0], dest[1], bbox))
