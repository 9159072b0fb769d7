"""Records as stored: an order's hash decoded, who a credential belongs to, the storage layer's errors.

Pure: the repositories in `livemap.storage` build these from Redis replies; every layer reads them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import msgspec

from livemap.domain import security
from livemap.domain.events import RouteSource
from livemap.domain.messages import Customer
from livemap.domain.responses import Feedback, HistoryEntry, Subscriptions
from livemap.domain.stages import FINAL


class NotFound(LookupError):
    """The store has no such order or driver (or the caller may not see it)."""


class Conflict(Exception):
    """The id already exists in this store."""


class NotDelivered(Exception):
    """Only a delivered order can be rated."""

    def __init__(self, stage: str) -> None:
        super().__init__(f"the order is {stage}; it can be rated once it has been delivered")
        self.stage = stage


class OutOfOrder(Exception):
    """A change said to have happened before the order's previous one, or in the future."""

    def __init__(self, at: int, previous: int, now: int) -> None:
        where = f"before the order's previous change ({previous})" if at < previous else f"in the future (now {now})"
        super().__init__(f"at ({at}) is {where}: a change is dated between the two")
        self.at, self.previous = at, previous


class NoContact(Exception):
    """The customer opted in to a channel the order has no contact for (no phone for SMS)."""

    def __init__(self, channel: str) -> None:
        what = "phone number" if channel == "sms" else "email address"
        super().__init__(f"the order has no {what}, so updates by {channel} cannot be sent")
        self.channel = channel


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a credential belongs to: a store (API key) or one of its drivers (driver token)."""

    kind: str  # "store" | "driver"
    store_id: str
    driver_id: str = ""


@dataclass(slots=True)
class Order:
    """An order as stored: the raw hash plus decoded fields."""

    raw: dict[str, str]

    def __getitem__(self, field: str) -> str:
        return self.raw.get(field, "")

    @property
    def tracking_id(self) -> str:
        return self["tid"]

    @property
    def token_digest(self) -> str:
        """The digest the customer's `t` is checked against (of the plain `token` orders stored before sealing)."""
        legacy = self["token"]
        return self["token_digest"] or (security.digest(legacy) if legacy else "")

    @property
    def stage(self) -> str:
        return self["stage"]

    @property
    def driver(self) -> str:
        return self["driver"]

    @property
    def live(self) -> bool:
        return self["live"] == "1"

    @property
    def on_return_leg(self) -> bool:
        """A driver is on the way to collect the order's return (a live leg of its own, after delivery)."""
        return self["return_leg"] == "1"

    def stays_on_leg(self, stage: str) -> bool:
        """Whether a change to `stage` keeps the order on its return's pickup leg: a driver collecting a return stays
        on it through a reassignment (the stage stays the delivered one); a stage change ends it."""
        return self.on_return_leg and stage == self.stage

    @property
    def route_source(self) -> RouteSource:
        """Where the order's route came from (orders stored before the field: a store's route has more than
        the two points of a straight line)."""
        source = self["route_source"]
        if source in ("store", "router", "straight_line"):
            return cast(RouteSource, source)
        route = self.json_field("route")
        return "store" if route and len(route) > 2 else "straight_line"

    @property
    def route_version(self) -> int:
        """Bumped each time the router replaces the route (sessions restart the leg's progress on it)."""
        return int(self["route_v"] or 0)

    def json_field(self, field: str) -> Any:
        value = self[field]
        return msgspec.json.decode(value) if value else None

    def optional_int(self, field: str) -> int | None:
        value = self[field]
        return int(float(value)) if value else None

    @property
    def customer(self) -> Customer:
        return msgspec.json.decode(self["customer"], type=Customer)

    @property
    def feedback(self) -> Feedback | None:
        value = self["feedback"]
        return msgspec.json.decode(value, type=Feedback) if value else None

    @property
    def subscriptions(self) -> Subscriptions:
        return Subscriptions(email=self["notify_email"] == "1", sms=self["notify_sms"] == "1")


def text(value: bytes | str) -> str:
    """A Redis reply as text (the client returns bytes; redis-py's types also allow str)."""
    return value.decode() if isinstance(value, bytes) else value


def decode_history(items: Sequence[bytes | str]) -> list[HistoryEntry]:
    """The order's history list as read from Redis."""
    return [msgspec.json.decode(item, type=HistoryEntry) for item in items]


def decode_hash(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}


def is_done(order: Order) -> bool:
    """Whether `order` is over: in a final stage, and no driver on the way to collect its return."""
    return order.stage in FINAL and not order.on_return_leg


def is_stop_of(order: Order, did: str) -> bool:
    """Whether `order` belongs in driver `did`'s run: assigned to it and not done."""
    return order.driver == did and not is_done(order)


def is_active(order: Order) -> bool:
    """Whether `order` belongs in the dispatcher's list: not done, and live or assigned."""
    return not is_done(order) and (order.live or bool(order.driver))
