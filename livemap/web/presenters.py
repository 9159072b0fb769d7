"""What customers, dispatchers and stores are shown: typed views built from stored records."""

from __future__ import annotations

from typing import Any

from livemap.domain.clock import now_ms
from livemap.domain.messages import Customer, Eta
from livemap.domain.records import Order, decode_hash, decode_history
from livemap.domain.responses import (
    CustomerOrder,
    DispatchOrder,
    DriverStop,
    HistoryEntry,
    LatLon,
    OrderView,
    Position,
    Proof,
    Snapshot,
    Stops,
    StopView,
    UpdateChannel,
)
from livemap.domain.stages import Stage, StageMachine
from livemap.settings import Settings
from livemap.storage.repository import Repository


def _point(value: Any) -> LatLon | None:
    return LatLon(value[0], value[1]) if value else None


def _float(raw: dict[str, str], field: str) -> float | None:
    value = raw.get(field)
    return float(value) if value else None


def position(raw: dict[str, str], now_ms: int, settings: Settings) -> Position | None:
    """A driver's newest fix as clients see it, or None if it never sent one."""
    if not raw.get("ts"):
        return None
    ts = int(raw["ts"])
    return Position(
        lat=float(raw["lat"]),
        lon=float(raw["lon"]),
        speed=_float(raw, "speed"),
        heading=_float(raw, "heading"),
        accuracy=_float(raw, "accuracy"),
        ts=ts,
        stale=now_ms - ts > settings.stale_after_s * 1000,
    )


def eta_of(order: Order, now_ms: int) -> Eta | None:
    """The order's current ETA while it is live and has one."""
    if not order.live or not order["eta_at"]:
        return None
    eta_at = int(order["eta_at"])
    eta_s = max(0, round((eta_at - now_ms) / 1000))
    return Eta(eta_s=eta_s, eta_at=eta_at, remaining_m=round(float(order["remaining"])))


def _channels(customer: Customer) -> list[UpdateChannel]:
    """The update channels an order can be opted in to: those its customer gave a contact for."""
    found: list[UpdateChannel] = []
    if customer.email:
        found.append("email")
    if customer.phone:
        found.append("sms")
    return found


def customer_order(order: Order, history: list[HistoryEntry]) -> CustomerOrder:
    return CustomerOrder(
        tracking_id=order.tracking_id,
        number=order["id"],
        stage=order.stage,
        live=order.live,
        history=history,
        destination=_point(order.json_field("destination")),
        address=order["address"] or None,
        route=order.json_field("route"),
        promised_by=order.optional_int("promised_by"),
        tracking_number=order["tracking_number"] or None,
        carrier=order["carrier"] or None,
        feedback=order.feedback,
        subscriptions=order.subscriptions,
        channels=_channels(order.customer),
        return_status=_return_status(order),
    )


def _return_status(order: Order) -> str | None:
    record = order.json_field("return")
    return record["status"] if record else None


def store_order(
    order: Order, history: list[HistoryEntry], base_url: str, token: str, proof: Proof | None = None
) -> OrderView:
    """The order as its store sees it through the REST API."""
    return OrderView(
        id=order["id"],
        tracking_id=order.tracking_id,
        tracking_token=token,
        tracking_url=f"{base_url}/track/{order.tracking_id}?t={token}",
        stage=order.stage,
        live=order.live,
        driver_id=order.driver or None,
        customer=order.customer,
        address=order["address"] or None,
        destination=_point(order.json_field("destination")),
        origin=_point(order.json_field("origin")),
        route=order.json_field("route"),
        promised_by=order.optional_int("promised_by"),
        tracking_number=order["tracking_number"] or None,
        carrier=order["carrier"] or None,
        created_at=int(order["created"]),
        history=history,
        eta=eta_of(order, now_ms()),
        feedback=order.feedback,
        subscriptions=order.subscriptions,
        source=order["source"] or None,
        route_source=order.route_source,
        flags=[] if order["destination"] else ["no_destination"],
        geocode=order["geocode"] or None,
        return_leg=order.on_return_leg,
        proof=proof,
    )


async def customer_snapshot(store: Repository, tid: str, settings: Settings) -> Snapshot:
    """The first message of a customer socket and the body of `GET /api/track/...`."""
    k = store.keys
    async with store.redis.pipeline(transaction=True) as pipe:  # one consistent read: order + offset
        pipe.hgetall(k.order(tid))
        pipe.lrange(k.order_history(tid), 0, -1)
        pipe.xrevrange(k.order_events(tid), count=1)
        raw, history, last = await pipe.execute()
    order = Order(decode_hash(raw))
    now = now_ms()
    driver = None
    if order.live and order["active"] == "1":  # only the active leg's customer sees the driver
        driver = position(await store.driver(order["store"], order.driver), now, settings)
    return Snapshot(
        offset=last[0][0].decode() if last else "0-0",
        order=customer_order(order, decode_history(history)),
        eta=eta_of(order, now),
        driver=driver,
    )


def stops_view(driver_id: str, orders: list[Order]) -> Stops:
    now = now_ms()
    stops = []
    for order in orders:
        eta = eta_of(order, now)
        stops.append(
            StopView(
                order_id=order["id"],
                tracking_id=order.tracking_id,
                stage=order.stage,
                live=order.live,
                active=order.live and order["active"] == "1",
                address=order["address"] or None,
                destination=_point(order.json_field("destination")),
                eta_at=eta.eta_at if eta else None,
                remaining_m=eta.remaining_m if eta else None,
            )
        )
    return Stops(driver_id=driver_id, stops=stops)


def dispatch_order(order: Order, now_ms: int) -> DispatchOrder:
    eta = eta_of(order, now_ms)
    return DispatchOrder(
        order_id=order["id"],
        tracking_id=order.tracking_id,
        stage=order.stage,
        live=order.live,
        driver_id=order.driver or None,
        customer=order.customer.name,
        address=order["address"] or None,
        destination=_point(order.json_field("destination")),
        promised_by=order.optional_int("promised_by"),
        eta_at=eta.eta_at if eta else None,
        remaining_m=eta.remaining_m if eta else None,
        return_leg=order.on_return_leg,
    )


def actions(order: Order, machine: StageMachine) -> list[str]:
    """What the driver's app offers for a stop: pick it up, or deliver it / report a failed attempt; on a
    return's pickup, mark it collected (`returned`)."""
    if order.on_return_leg:
        return [Stage.RETURNED]
    allowed = machine.allowed(order.stage)
    out: list[str] = []
    if Stage.SHIPPED in allowed:
        out.append(Stage.SHIPPED)
    if Stage.FAILED_ATTEMPT in allowed:  # between shipped and delivered: out for delivery
        out += [Stage.DELIVERED, Stage.FAILED_ATTEMPT]
    return out


def driver_stops(orders: list[Order], machine: StageMachine) -> list[DriverStop]:
    """The driver's orders as its app shows them, in delivery order."""
    stops = []
    for o in orders:
        dest = o.json_field("destination")
        stops.append(
            DriverStop(
                tracking_id=o.tracking_id,
                order_id=o["id"],
                stage=o.stage,
                live=o.live,
                address=o["address"] or None,
                destination=(dest[0], dest[1]) if dest else None,
                customer=(o.json_field("customer") or {}).get("name"),
                actions=actions(o, machine),
                return_leg=o.on_return_leg,
            )
        )
    return stops
