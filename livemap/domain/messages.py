"""Wire messages: every JSON shape livemap reads or writes, as msgspec Structs.

msgspec validates while it parses, so decoding a fix and checking its types is one C pass on the
hot path. Range checks that msgspec cannot express with the message we want live in
``__post_init__``; msgspec reports the ValueError with the path of the offending field.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

import msgspec

from livemap.domain.clock import now_ms
from livemap.domain.i18n import Lang
from livemap.domain.i18n_notify import check_text
from livemap.domain.storesettings import Texts

# Device clocks drift and phones buffer fixes offline, but a fix from the future or from before
# 2001 is a unit bug (seconds instead of milliseconds) or garbage.
#: The earliest time livemap takes (2001-01-01).
MIN_TS_MS = 978_307_200_000
#: How far ahead of the server a device's or a shop's clock may be.
MAX_FUTURE_MS = 10 * 60 * 1000
# A promised delivery time is epoch ms before 2100: later is a unit bug, and the ETA does arithmetic on it.
_MAX_PROMISE_MS = 4_102_444_800_000  # 2100-01-01
#: Redis GEO indexes latitudes within Web Mercator's square only: a fix beyond it would pass a -90..90
#: check and then fail to store. Every coordinate livemap stores is held to it (a query's bbox is not).
MAX_LAT = 85.05112878
#: Sequence numbers are echoed in replies: integers a JavaScript client reads exactly.
MAX_SAFE_INT = 2**53 - 1

# Bounds msgspec shows in the OpenAPI document; `__post_init__` checks them (with a sentence naming
# the field), so structs built in Python, not only decoded ones, are held to them as well.
Lat = Annotated[float, msgspec.Meta(extra_json_schema={"minimum": -MAX_LAT, "maximum": MAX_LAT})]
Lon = Annotated[float, msgspec.Meta(extra_json_schema={"minimum": -180, "maximum": 180})]
Seq = Annotated[int, msgspec.Meta(ge=-MAX_SAFE_INT, le=MAX_SAFE_INT)]
EpochMs = Annotated[int, msgspec.Meta(extra_json_schema={"minimum": MIN_TS_MS, "maximum": _MAX_PROMISE_MS})]

# Patterns end in \Z, not $: msgspec matches with re.search, where $ also matches before a final "\n".
Str200 = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*\Z")]


def _finite(name: str, value: float | None, lo: float, hi: float) -> None:
    if value is not None and not (lo <= value <= hi):  # NaN fails every comparison, so it lands here
        raise ValueError(f"{name} must be within {lo:.10g}..{hi:.10g}")


def _check_lat_lon(lat: float, lon: float, max_lat: float = MAX_LAT) -> None:
    _finite("lat", lat, -max_lat, max_lat)
    _finite("lon", lon, -180, 180)


# --- driver socket: in ---------------------------------------------------------------------------


class Fix(msgspec.Struct, forbid_unknown_fields=False):
    """One GPS fix from a driver's device. `ts` is the fix time in epoch milliseconds."""

    lat: Lat
    lon: Lon
    ts: int
    speed: float | None = None
    heading: float | None = None
    accuracy: float | None = None
    battery: float | None = None
    seq: Seq | None = None

    def __post_init__(self) -> None:
        _check_lat_lon(self.lat, self.lon)
        if self.ts < MIN_TS_MS:
            raise ValueError("ts must be epoch milliseconds (after 2001-01-01)")
        if self.ts > now_ms() + MAX_FUTURE_MS:
            raise ValueError("ts is more than 10 minutes in the future")
        _finite("speed", self.speed, 0, 150)
        if self.heading is not None and not math.isfinite(self.heading):
            raise ValueError("heading must be a finite number of degrees")
        if self.heading is not None:
            self.heading %= 360
            if self.heading >= 360:  # -1e-20 % 360 rounds to 360.0
                self.heading = 0.0
        _finite("accuracy", self.accuracy, 0, 100_000)
        _finite("battery", self.battery, 0, 100)


# --- driver socket: out --------------------------------------------------------------------------


class Rejected(msgspec.Struct):
    index: int
    code: str
    message: str


class Ack(msgspec.Struct, tag="ack", tag_field="type", omit_defaults=True):
    """Reply to a fix or a batch after Redis accepted the write."""

    seq: int | None
    accepted: int
    ignored: int
    rejected: list[Rejected] = []


class Error(msgspec.Struct, tag="error", tag_field="type"):
    """Typed error reply; `seq` echoes the message's seq when it could be read."""

    code: str
    message: str
    seq: int | None = None


# --- REST bodies ---------------------------------------------------------------------------------


class Point(msgspec.Struct):
    lat: Lat
    lon: Lon

    def __post_init__(self) -> None:
        _check_lat_lon(self.lat, self.lon)


class Customer(msgspec.Struct, omit_defaults=True):
    name: Str200
    email: Annotated[str, msgspec.Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\Z")] | None = None
    phone: Annotated[str, msgspec.Meta(max_length=32, pattern=r"^\+?[0-9 ()./-]{4,31}\Z")] | None = None


class CreateStore(msgspec.Struct):
    name: Str200


class CreateDriver(msgspec.Struct):
    name: Str200
    id: Ident | None = None
    #: Sets the speed prior of the ETA model until the driver's own speed is learned.
    vehicle: Literal["car", "motorbike", "van", "bicycle", "foot"] = "car"


class Consents(msgspec.Struct, omit_defaults=True):
    """Per order: what the customer agreed to at checkout; a channel left out follows the store's default
    (`notifications.email.default`: on; `notifications.sms.default`: opt_in)."""

    email: bool | None = None
    sms: bool | None = None


class NewOrder(msgspec.Struct):
    """An order to create. Through the REST API it is a `CreateOrder` (destination required); an order
    imported from a shop (WooCommerce, Shopify) whose address could not be geocoded has no destination."""

    # Shops send order numbers as JSON numbers or strings; both name the same order.
    id: Ident | Annotated[int, msgspec.Meta(ge=0, lt=10**18)]
    customer: Customer
    destination: Point | None = None
    address: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    origin: Point | None = None
    route: Annotated[list[tuple[Lat, Lon]], msgspec.Meta(min_length=2, max_length=5000)] | None = None
    promised_by: EpochMs | None = None
    #: When the customer placed it, if not now (a shop's own order time; not in the future): the order's
    #: `received` time and the day analytics count it on.
    placed_at: EpochMs | None = None
    tracking_number: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    carrier: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    #: The customer's language for notifications (default: the store's `locale`).
    locale: Lang | None = None
    #: Updates by email / SMS for this order, when the store knows the customer's choice (checkout consent);
    #: otherwise the store's `notifications.email.default` (on) and `notifications.sms.default` (opt_in) apply.
    subscriptions: Consents | None = None

    def __post_init__(self) -> None:
        for i, (lat, lon) in enumerate(self.route or ()):
            try:
                _check_lat_lon(lat, lon)
            except ValueError as exc:
                raise ValueError(f"route[{i}]: {exc}") from None
        if self.subscriptions and self.subscriptions.email and not self.customer.email:
            raise ValueError("subscriptions.email: the customer has no email address")
        if self.subscriptions and self.subscriptions.sms and not self.customer.phone:
            raise ValueError("subscriptions.sms: the customer has no phone number")
        if self.promised_by is not None and not MIN_TS_MS <= self.promised_by < _MAX_PROMISE_MS:
            raise ValueError("promised_by must be epoch milliseconds between 2001 and 2100")
        if self.placed_at is not None and not MIN_TS_MS <= self.placed_at <= now_ms() + MAX_FUTURE_MS:
            raise ValueError("placed_at must be epoch milliseconds since 2001, not in the future")


class CreateOrder(NewOrder):
    """`POST /api/orders`: the destination is required."""

    destination: Point


class Assign(msgspec.Struct):
    driver_id: Ident


#: A tracker app's device identifier (an IMEI, an OwnTracks "user/device"...): any text without spaces.
DeviceId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^\S+\Z")]


class Devices(msgspec.Struct):
    """The tracker apps' device ids that stand for a driver (`PUT /api/drivers/{id}/devices`)."""

    devices: Annotated[list[DeviceId], msgspec.Meta(max_length=20)]


class StopOrder(msgspec.Struct):
    """The driver's stops in delivery order, by the store's order ids."""

    orders: Annotated[list[Ident], msgspec.Meta(max_length=500)]


class StageChange(msgspec.Struct):
    stage: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    note: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    #: When it happened, if not now (a shop reporting its own time, a late sync): not before the order's
    #: previous change nor in the future (422 out_of_order); history, analytics and retention use it.
    at: EpochMs | None = None


class DriverStageChange(msgspec.Struct):
    """The driver marks one of its stops: picked up (`shipped`), `delivered` or `failed_attempt`; a return's
    pickup `returned` (collected from the customer)."""

    stage: Literal["shipped", "delivered", "failed_attempt", "returned"]
    note: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    #: Who took the parcel (with `delivered`): the customer sees it as proof of delivery.
    recipient: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class ProofRecipient(msgspec.Struct):
    """Proof of delivery without a photo: who took the parcel."""

    recipient: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class PageView(msgspec.Struct):
    """The tracking page's own beacon when the customer leaves it: seconds it was visible, and the device."""

    seconds: Annotated[float, msgspec.Meta(ge=0, le=86_400)]
    #: `phone` for a phone-sized screen (coarse pointer, narrow viewport), `desktop` otherwise.
    device: Literal["phone", "desktop"]


class RateDelivery(msgspec.Struct):
    """The customer's rating (1 to 5 stars) of a delivered order, with an optional comment."""

    rating: Annotated[int, msgspec.Meta(ge=1, le=5)]
    comment: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class Subscribe(msgspec.Struct):
    """Opt in (true) or out (false) of updates by email / SMS; a channel left out keeps its current choice."""

    email: bool | msgspec.UnsetType = msgspec.UNSET
    sms: bool | msgspec.UnsetType = msgspec.UNSET


class CreateDispatcher(msgspec.Struct):
    """A dispatcher account: signs in to `/dispatch` by name and password instead of the store key."""

    name: Ident
    password: Annotated[str, msgspec.Meta(min_length=10, max_length=200)]


class Eta(msgspec.Struct):
    eta_s: int
    eta_at: int
    remaining_m: int


class Viewport(msgspec.Struct, tag="viewport", tag_field="type"):
    """A dispatcher narrows its updates to a box: [min_lon, min_lat, max_lon, max_lat]."""

    bbox: tuple[float, float, float, float]

    def __post_init__(self) -> None:
        min_lon, min_lat, max_lon, max_lat = self.bbox
        try:
            _check_lat_lon(min_lat, min_lon, 90)
            _check_lat_lon(max_lat, max_lon, 90)
        except ValueError as exc:
            raise ValueError(f"bbox: {exc}") from None
        if min_lat > max_lat or min_lon > max_lon:
            raise ValueError("bbox must be [min_lon, min_lat, max_lon, max_lat]")


# --- the store's settings page: its customer messages previewed and sent as a test ---------------

#: What a notification is about: a stage id of the store's machine, `arriving`, `delayed` or `return_<status>`.
NoticeEvent = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        description="a stage id of the store's machine (`shipped`, a custom stage...), `arriving`, `delayed` or"
        " `return_<status>` (`return_approved`...)",
    ),
]
# The HTML standard's valid email address (what a browser's type=email input accepts), and a phone number as
# orders take it.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z"
)
_PHONE = re.compile(r"^\+?[0-9 ()./-]{4,31}\Z")


class NotificationPreview(msgspec.Struct):
    """A customer message as it would read, with wording of the language not saved yet (checked like settings)."""

    lang: Lang
    event: NoticeEvent
    texts: Texts = {}

    def __post_init__(self) -> None:
        for key, text in self.texts.items():
            try:
                check_text(key, text)
            except ValueError as exc:
                raise ValueError(f"texts.{exc}") from None


class NotificationTest(msgspec.Struct):
    """Send one customer message now, marked as a test, to the store's own address or phone."""

    channel: Literal["email", "sms"]
    to: Annotated[str, msgspec.Meta(min_length=1, max_length=254, description="an email address or a phone number")]
    lang: Lang
    event: NoticeEvent

    def __post_init__(self) -> None:
        if self.channel == "email" and not _EMAIL.match(self.to):
            raise ValueError("to: not an email address")
        if self.channel == "sms" and not (_PHONE.match(self.to) and sum(c.isdigit() for c in self.to) >= 4):
            raise ValueError("to: not a phone number")


class NotificationWords(msgspec.Struct):
    """A customer message: the email's subject and plain-text body, and the SMS."""

    subject: str
    text: str
    sms: str


class NotificationSent(msgspec.Struct):
    """The test message was handed to the store's SMTP server or SMS provider, which accepted it."""

    sent: bool
    channel: Literal["email", "sms"]
    to: str


_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


def describe(err: msgspec.ValidationError | msgspec.DecodeError) -> str:
    """msgspec's message as a sentence naming the field: ``lat: Expected `float`, got `str` ``."""
    text = str(err)
    match = _PATH.search(text)
    text = _PATH.sub("", text).replace("`", "")
    if match and match.group(1) and not text.startswith(match.group(1).split(".")[-1]):
        return f"{match.group(1)}: {text}"
    return text
