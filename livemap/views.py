"""What customers and dispatchers are shown: snapshots built from the stored order and driver."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from livemap.messages import DispatchSnapshot, Eta, Snapshot
from livemap.settings import Settings
from livemap.store import Order, Store, decode_hash


def _point(value: Any) -> dict[str, float] | None:
    return {"lat": value[0], "lon": value[1]} if value else None


def _float(raw: dict[str, str], field: str) -> float | None:
    value = raw.get(field)
    return float(value) if value else None


def driver_view(raw: dict[str, str], now_ms: int, settings: Settings) -> dict[str, Any] | None:
    """A driver's last fix as clients see it, or None if it never sent one."""
    if not raw.get("ts"):
        return None
    ts = int(raw["ts"])
    return {
        "lat": float(raw["lat"]),
        "lon": float(raw["lon"]),
        "speed": _float(raw, "speed"),
        "heading": _float(raw, "heading"),
        "accuracy": _float(raw, "accuracy"),
        "ts": ts,
        "stale": now_ms - ts > settings.stale_after_s * 1000,
    }


def eta_of(order: Order, now_ms: int) -> Eta | None:
    """The order's current ETA while it is live and has one."""
    if not order.live or not order["eta_at"]:
        return None
    eta_at = int(order["eta_at"])
    return Eta(
        eta_s=max(0, round((eta_at - now_ms) / 1000)), eta_at=eta_at, remaining_m=round(float(order["remaining"]))
    )


def customer_order(order: Order, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The order as its customer sees it: no store ids, no other customer's data."""
    return {
        "tracking_id": order.tracking_id,
        "number": order["id"],
        "stage": order.stage,
        "live": order.live,
        "history": history,
        "destination": _point(order.json_field("destination")),
        "address": order["address"] or None,
        "route": order.json_field("route"),
        "promised_by": order.optional_int("promised_by"),
        "tracking_number": order["tracking_number"] or None,
        "carrier": order["carrier"] or None,
    }


def store_order(order: Order, history: list[dict[str, Any]], base_url: str, now_ms: int) -> dict[str, Any]:
    """The order as its store sees it through the REST API."""
    eta = eta_of(order, now_ms)
    return {
        "id": order["id"],
        "tracking_id": order.tracking_id,
        "tracking_token": order["token"],
        "tracking_url": f"{base_url}/track/{order.tracking_id}?t={order['token']}",
        "stage": order.stage,
        "live": order.live,
        "driver_id": order.driver or None,
        "customer": order.json_field("customer"),
        "address": order["address"] or None,
        "destination": _point(order.json_field("destination")),
        "origin": _point(order.json_field("origin")),
        "route": order.json_field("route"),
        "promised_by": order.optional_int("promised_by"),
        "tracking_number": order["tracking_number"] or None,
        "carrier": order["carrier"] or None,
        "created_at": int(order["created"]),
        "history": history,
        "eta": None if eta is None else {"eta_s": eta.eta_s, "eta_at": eta.eta_at, "remaining_m": eta.remaining_m},
    }


async def customer_snapshot(store: Store, tid: str, settings: Settings) -> Snapshot:
    """The first message of a customer socket and the body of `GET /api/track/...`."""
    k = store.keys
    async with store.redis.pipeline(transaction=True) as pipe:  # one consistent read: order + offset
        pipe.hgetall(k.order(tid))
        pipe.lrange(k.order_history(tid), 0, -1)
        pipe.xrevrange(k.order_events(tid), count=1)
        raw, history, last = await pipe.execute()
    order = Order(decode_hash(raw))
    now = int(time.time() * 1000)
    driver = None
    if order.live:
        driver = driver_view(await store.driver(order["store"], order.driver), now, settings)
    return Snapshot(
        offset=last[0][0].decode() if last else "0-0",
        order=customer_order(order, [msgspec.json.decode(h) for h in history]),
        eta=eta_of(order, now),
        driver=driver,
    )


def dispatch_order(order: Order, now_ms: int) -> dict[str, Any]:
    customer = order.json_field("customer") or {}
    eta = eta_of(order, now_ms)
    return {
        "order_id": order["id"],
        "tracking_id": order.tracking_id,
        "stage": order.stage,
        "live": order.live,
        "driver_id": order.driver or None,
        "customer": customer.get("name"),
        "address": order["address"] or None,
        "destination": _point(order.json_field("destination")),
        "promised_by": order.optional_int("promised_by"),
        "eta_at": eta.eta_at if eta else None,
        "remaining_m": eta.remaining_m if eta else None,
    }


def _inside(lat: float, lon: float, bbox: tuple[float, float, float, float] | None) -> bool:
    return bbox is None or (bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3])


async def dispatch_snapshot(
    store: Store, sid: str, settings: Settings, bbox: tuple[float, float, float, float] | None = None
) -> DispatchSnapshot:
    """Every active order and online driver of store `sid` (inside `bbox` when given)."""
    k = store.keys
    now = int(time.time() * 1000)
    async with store.redis.pipeline(transaction=False) as pipe:
        pipe.smembers(k.store_active(sid))
        pipe.zrangebyscore(k.store_seen(sid), now - int(settings.online_window_s * 1000), "+inf")
        pipe.hgetall(k.store_drivers(sid))
        tids, dids, names = await pipe.execute()
    orders = await store.orders(sorted(t.decode() for t in tids))
    async with store.redis.pipeline(transaction=False) as pipe:
        for did in dids:
            pipe.hgetall(k.driver(sid, did.decode()))
        raws = await pipe.execute()
    drivers = []
    for did, raw in zip(dids, raws, strict=True):
        view = driver_view(decode_hash(raw), now, settings)
        if view is not None and _inside(view["lat"], view["lon"], bbox):
            name = names.get(did, b"").decode()
            drivers.append(
                {"driver_id": did.decode(), "name": name, "battery": _float(decode_hash(raw), "battery"), **view}
            )
    visible = {d["driver_id"] for d in drivers}
    out = []
    for order in orders:
        dest = order.json_field("destination")
        if bbox is None or order.driver in visible or (dest and _inside(dest[0], dest[1], bbox)):
            out.append(dispatch_order(order, now))
    return DispatchSnapshot(orders=out, drivers=drivers)
