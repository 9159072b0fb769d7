"""Events on the customer and dispatcher sockets (and in order streams), as msgspec Structs.

Published events get their stream `offset` spliced in by Redis (Lua) once XADD has assigned it, so
these are encoded without it.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class FixView(msgspec.Struct):
    """A fix as clients see it: in location events and in snapshots' driver positions."""

    lat: float
    lon: float
    speed: float | None
    heading: float | None
    accuracy: float | None
    ts: int


class LocationEvent(FixView, tag="location", tag_field="type"):
    eta_s: int | None = None
    eta_at: int | None = None
    remaining_m: int | None = None


class DriverLocationEvent(msgspec.Struct, tag="location", tag_field="type"):
    """The dispatcher's view of a fix: which driver, where; no ETA (that is per order)."""

    driver_id: str
    lat: float
    lon: float
    speed: float | None
    heading: float | None
    accuracy: float | None
    battery: float | None
    ts: int


class ArrivingEvent(msgspec.Struct, tag="arriving", tag_field="type"):
    """The driver is within the arriving distance or time of this stop (once per approach)."""

    ts: int
    remaining_m: int
    eta_at: int


class ArrivedEvent(msgspec.Struct, tag="arrived", tag_field="type"):
    """The driver stopped within the arrival radius of this stop's destination."""

    ts: int
    lat: float
    lon: float


class DelayedEvent(msgspec.Struct, tag="delayed", tag_field="type"):
    """The ETA passed the promised time (`resolved` false), or came back before it (true)."""

    eta_at: int
    promised_by: int
    resolved: bool
    ts: int


class OffRouteEvent(msgspec.Struct, tag="off_route", tag_field="type"):
    """The driver left the route (`resolved` false; ETA falls back to straight line x detour) or rejoined."""

    distance_m: int
    resolved: bool
    ts: int


#: Where an order's route came from: sent by the store, computed by the router, or none (the straight
#: line to the destination, times the detour factor).
RouteSource = Literal["store", "router", "straight_line"]


class RouteEvent(msgspec.Struct, tag="route", tag_field="type"):
    """The active leg has a new road route: when it went live, or after the driver left the old one."""

    points: list[tuple[float, float]]
    source: RouteSource
    reason: Literal["live", "off_route"]
    ts: int


class EtaEvent(msgspec.Struct, tag="eta", tag_field="type"):
    """A new ETA for a stop later in the driver's run (no position: that leg is not active)."""

    eta_at: int
    remaining_m: int
    ts: int


class DispatchEtaEvent(msgspec.Struct, tag="eta", tag_field="type"):
    """A dispatcher's periodic refresh of one order's ETA (its locations carry none), sent when it changed."""

    order_id: str
    tracking_id: str
    driver_id: str | None
    eta_at: int
    remaining_m: int


class StaleEvent(msgspec.Struct, tag="stale", tag_field="type"):
    """No fix from the driver for LIVEMAP_STALE_AFTER_S: show "last seen", not a live-looking marker."""

    last_ts: int


class OfflineEvent(msgspec.Struct, tag="offline", tag_field="type"):
    """No fix for LIVEMAP_ONLINE_WINDOW_S: the driver is offline."""

    last_ts: int


class StageEvent(msgspec.Struct, tag="stage", tag_field="type", omit_defaults=True):
    """A stage change; `note` is always present, the ids only in the dispatcher's copy."""

    stage: str
    at: int
    live: bool
    note: str | None
    order_id: str | None = None  # for the dispatcher; customers already know their order
    tracking_id: str | None = None
    driver_id: str | None = None
    #: A driver is on the way to collect the order's return (live after delivery; dispatcher's copy).
    return_leg: bool = False


class ReturnEvent(msgspec.Struct, tag="return", tag_field="type"):
    """A step of the order's return (domain/returns.py), to its customer; `live`: a driver is on the way
    to collect it (its locations and ETA follow, as on a delivery)."""

    status: str
    at: int
    note: str | None
    live: bool


#: The type of `ShopWriteBackEvent`.
SHOP_WRITEBACK = "shop_writeback"


class ShopWriteBackEvent(msgspec.Struct, tag=SHOP_WRITEBACK, tag_field="type"):
    """In the outbox only, never on a socket: write a new shop order's tracking link back to its shop."""

    order_id: str
    tracking_id: str


def merge_json(head: bytes, body: bytes) -> bytes:
    """`{"a":1}` + `{"type":"x"}` -> `{"a":1,"type":"x"}`: add fields to an encoded object without re-encoding."""
    return head[:-1] + b"," + body[1:]
