"""Typed REST responses and snapshot parts (encoded by msgspec, described in the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from livemap.domain.events import FixView, RouteSource
from livemap.domain.messages import Customer, Eta
from livemap.domain.returns import ReturnStep

UpdateChannel = Literal["email", "sms"]


class LatLon(msgspec.Struct):
    lat: float
    lon: float


class HistoryEntry(msgspec.Struct):
    stage: str
    at: int
    note: str | None = None


class Feedback(msgspec.Struct):
    """The customer's rating of a delivered order; a new one replaces it."""

    rating: int
    comment: str | None
    at: int


class Subscriptions(msgspec.Struct):
    """Whether the customer asked for updates on this order by email and by SMS."""

    email: bool = False
    sms: bool = False


class Position(FixView):
    """A driver's newest fix; `stale` when it is older than LIVEMAP_STALE_AFTER_S."""

    stale: bool


class CustomerOrder(msgspec.Struct):
    """The order as its customer sees it: no store ids, no customer contact data."""

    tracking_id: str
    number: str
    stage: str
    live: bool
    history: list[HistoryEntry]
    destination: LatLon | None
    address: str | None
    route: list[tuple[float, float]] | None
    promised_by: int | None
    tracking_number: str | None
    carrier: str | None
    feedback: Feedback | None
    subscriptions: Subscriptions
    #: The update channels the order has a contact for (the page offers only these; never the contact itself).
    channels: list[UpdateChannel]
    #: Where the order's return stands (domain/returns.py); None without one.
    return_status: str | None = None


class OrderView(msgspec.Struct):
    """The order as its store sees it through the REST API."""

    id: str
    tracking_id: str
    tracking_token: str
    tracking_url: str
    stage: str
    live: bool
    driver_id: str | None
    customer: Customer
    address: str | None
    destination: LatLon | None
    origin: LatLon | None
    route: list[tuple[float, float]] | None
    promised_by: int | None
    tracking_number: str | None
    carrier: str | None
    created_at: int
    history: list[HistoryEntry]
    eta: Eta | None
    feedback: Feedback | None
    subscriptions: Subscriptions
    #: The shop platform that sent the order (`woocommerce`, `shopify`); null for orders made through this API.
    source: str | None = None
    #: Where `route` came from: `store` (sent with the order), `router` (livemap's router, on real streets)
    #: or `straight_line` (no route: the ETA uses the straight line times `LIVEMAP_DETOUR_FACTOR`).
    route_source: RouteSource = "straight_line"
    #: What needs the store's attention: `no_destination` (an imported address that could not be geocoded).
    flags: list[str] = []
    #: How an imported order got its destination (`platform`, `geocoded`) or why not (`not_found`,
    #: `no_address`, `unavailable`: retried on the platform's next update, `disabled`).
    geocode: str | None = None
    #: A driver is on the way to collect the order's return: it is live again although delivered.
    return_leg: bool = False
    #: Proof of delivery the driver left (who took the parcel, a photo: `GET /api/orders/{id}/proof/photo`).
    proof: Proof | None = None


class StoreCreated(msgspec.Struct):
    id: str
    name: str
    api_key: str


class DriverCreated(msgspec.Struct):
    """A driver's new credential, shown once (livemap keeps only its digest), with the link that signs the driver
    app in with it."""

    id: Annotated[str, msgspec.Meta(description="the driver's id")]
    name: Annotated[str, msgspec.Meta(description="the driver's name")]
    token: Annotated[str, msgspec.Meta(description="the driver token (`lmd_...`); the previous one is refused")]
    sign_in_url: Annotated[
        str,
        msgspec.Meta(
            description="the driver app signed in with `token`: `<public URL>/driver#token=<token>` (the URL:"
            " LIVEMAP_PUBLIC_URL, else the request's origin); the token sits in the fragment, which browsers never"
            " send to a server"
        ),
    ]
    sign_in_qr: Annotated[
        str,
        msgspec.Meta(
            description="`sign_in_url` as a QR code: an SVG document (black on white, quiet zone included) sized by its"
            " viewBox only, so it scales to the box it is shown in"
        ),
    ]


class DriverRow(msgspec.Struct):
    """One of the store's drivers in `GET /api/drivers`."""

    id: Annotated[str, msgspec.Meta(description="the driver's id")]
    name: Annotated[str, msgspec.Meta(description="the driver's name")]
    vehicle: Annotated[
        str | None,
        msgspec.Meta(description="car, motorbike, van, bicycle or foot (the ETA's speed prior); null if unset"),
    ]
    devices: Annotated[list[str], msgspec.Meta(description="the tracker apps' device ids that send as this driver")]
    last_seen: Annotated[
        int | None,
        msgspec.Meta(description="epoch ms of the driver's newest accepted fix (its own time); null if none"),
    ]


class DriverList(msgspec.Struct):
    """`GET /api/drivers`: the store's drivers (the settings page's list)."""

    drivers: Annotated[list[DriverRow], msgspec.Meta(description="every driver of the store, by name, then id")]


class FixCounts(msgspec.Struct):
    accepted: int
    ignored: int


class DriverStatus(msgspec.Struct):
    id: str
    name: str
    position: Position | None
    fixes: FixCounts


class StopView(msgspec.Struct):
    """One stop of a driver's run; `eta_at` counts the stops before it and their dwell times."""

    order_id: str
    tracking_id: str
    stage: str
    live: bool
    active: bool
    address: str | None
    destination: LatLon | None
    eta_at: int | None
    remaining_m: int | None


class DriverStop(msgspec.Struct):
    """One stop as the driver's app shows it (the `stops` push of /ws/driver and `GET /api/driver`)."""

    tracking_id: str
    order_id: str
    stage: str
    live: bool
    address: str | None
    destination: tuple[float, float] | None
    customer: str | None
    #: What the driver may do now: `shipped` (picked up), `delivered`, `failed_attempt`; on a return's
    #: pickup leg, `returned` (collected from the customer).
    actions: list[str]
    #: The stop is a return's pickup: the driver collects the parcel at the destination.
    return_leg: bool = False


class StopsPush(msgspec.Struct, tag="stops", tag_field="type"):
    """Pushed on /ws/driver on connect and whenever the driver's stops change."""

    stops: list[DriverStop]


class DriverRun(msgspec.Struct):
    """`GET /api/driver`: who the driver token belongs to and its stops in delivery order."""

    driver_id: str
    name: str
    stops: list[DriverStop]


class Proof(msgspec.Struct):
    """Proof of delivery: who took the parcel and whether there is a photo (`.../proof/photo`)."""

    recipient: str | None
    photo: bool
    at: int


class Stops(msgspec.Struct):
    driver_id: str
    stops: list[StopView]


class ErrorDetail(msgspec.Struct):
    code: str
    message: str


class ErrorBody(msgspec.Struct):
    """Every error: a stable machine-readable `code` and a sentence for people (plus context fields)."""

    error: ErrorDetail


class BulkItem(msgspec.Struct, omit_defaults=True):
    """One item of a bulk call, answered on its own: `created`, `duplicate` (the id exists) or `invalid`."""

    index: int
    status: Literal["created", "duplicate", "invalid"]
    id: str | None = None
    #: Orders: what a single create answers with, to hand to the customer.
    tracking_id: str | None = None
    tracking_url: str | None = None
    #: Drivers: the new driver's token (shown once, as on a single create).
    token: str | None = None
    error: ErrorDetail | None = None


class BulkReply(msgspec.Struct):
    """Every item's answer, in the order sent, and how many ended each way."""

    created: int
    duplicate: int
    invalid: int
    items: list[BulkItem]


class Health(msgspec.Struct):
    status: Literal["ok", "ready", "unavailable"]


class Snapshot(msgspec.Struct, tag="snapshot", tag_field="type"):
    """First message of a customer socket, and the body of `GET /api/track/{tracking_id}`."""

    offset: str
    order: CustomerOrder
    eta: Eta | None
    driver: Position | None


class DispatchOrder(msgspec.Struct):
    order_id: str
    tracking_id: str
    stage: str
    live: bool
    driver_id: str | None
    customer: str | None
    address: str | None
    destination: LatLon | None
    promised_by: int | None
    eta_at: int | None
    remaining_m: int | None
    #: A driver is on the way to collect the order's return (it is live although delivered).
    return_leg: bool = False


class DispatchDriver(Position):
    """An online driver: its newest fix plus who it is."""

    driver_id: str
    name: str
    battery: float | None
    #: The driver's run: its assigned, not yet final orders (store order ids) in delivery order.
    stops: list[str]


class DispatchSnapshot(msgspec.Struct, tag="snapshot", tag_field="type"):
    """First message of a dispatcher socket (and its answer to a viewport)."""

    orders: list[DispatchOrder]
    drivers: list[DispatchDriver]


class Dispatcher(msgspec.Struct):
    """A dispatcher account (never its password)."""

    name: str
    created_at: int


class Dispatchers(msgspec.Struct):
    dispatchers: list[Dispatcher]


class ReturnView(msgspec.Struct):
    """An order's return as the store and its customer read it; `allowed`: the steps it may take next."""

    order_id: str
    tracking_id: str
    status: str
    reason: str
    note: str | None
    requested_at: int
    steps: list[ReturnStep]
    driver_id: str | None
    allowed: list[str]
    #: The customer sent a photo with it (`GET /api/orders/{id}/return/photo`).
    photo: bool = False


class ReturnList(msgspec.Struct):
    returns: list[ReturnView]


class OrderRow(msgspec.Struct):
    """One order in the dashboard's list (`GET /api/orders`)."""

    order_id: str
    tracking_id: str
    stage: str
    live: bool
    driver_id: str | None
    customer: str | None
    address: str | None
    placed_at: int
    promised_by: int | None
    eta_at: int | None
    #: The shop platform that sent it (`woocommerce`, `shopify`); null for orders made through this API.
    source: str | None
    #: Not delivered by its promise, or its driver's ETA past it.
    late: bool
    #: A driver is on the way to collect its return.
    return_leg: bool


class OrderList(msgspec.Struct):
    orders: list[OrderRow]
    #: Pass as `cursor` for the next page; null when there is no more.
    next: str | None
