"""Who hears about what, and when: the pure rules the worker applies to each event (no I/O)."""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo
from typing import Any, Literal

from livemap.domain.events import SHOP_WRITEBACK
from livemap.domain.i18n import LANGS, Lang
from livemap.domain.records import Order
from livemap.domain.stages import Stage
from livemap.domain.storesettings import Channel, QuietHours, StoreSettings
from livemap.settings import Settings

#: Where an event goes: the store's notification channels, and `shop`, the tracking link written back to the
#: order's shop (not a channel a store lists in `notifications.events`: its integration's `write_back` is).
Route = Channel | Literal["shop"]

CUSTOMER_CHANNELS: tuple[Route, ...] = ("email", "sms")
#: The event that writes an order's tracking link back to its shop, by platform (notify.shop says why).
WRITE_BACK_AT: dict[str, str] = {"woocommerce": SHOP_WRITEBACK, "shopify": Stage.SHIPPED}
#: Moments, not states: by the end of a night's quiet hours they are no longer true, so they are dropped, not held.
MOMENTARY = ("arriving", "delayed")


def event_key(data: dict[str, Any]) -> str:
    """What the store's `notifications.events` map is keyed by: the stage for a stage change, else the type."""
    if data.get("type") == "stage":
        return str(data.get("stage", ""))
    return str(data.get("type", ""))


def channels_for(store: StoreSettings, order: Order, key: str) -> list[Route]:
    """The channels the store configured for this event (`"*"` applies to every event), in a fixed order,
    then `shop` when the event is the one that writes the order's tracking link back to its shop."""
    events = store.notifications.events
    # A write-back is the shop's business only: no `"*"` turns it into a notification.
    wanted = set() if key == SHOP_WRITEBACK else {*events.get(key, ()), *events.get("*", ())}
    routes: list[Route] = [c for c in ("webhook", "email", "sms") if c in wanted]
    source = order["source"]
    if WRITE_BACK_AT.get(source) == key and store.integrations.write_back(source) is not None:
        routes.append("shop")
    return routes


def customer_reason_to_skip(order: Order, channel: Route, data: dict[str, Any]) -> str | None:
    """Why the customer gets nothing on `channel` (not opted in, no contact, nothing worth saying), or None."""
    subscriptions = order.subscriptions
    customer = order.customer
    if channel == "email" and not (subscriptions.email and customer.email):
        return "customer did not opt in to email"
    if channel == "sms" and not (subscriptions.sms and customer.phone):
        return "customer did not opt in to SMS"
    if data.get("type") == "delayed" and data.get("resolved"):
        return "a recovered delay is for the store, not the customer"
    return None


def language(order: Order, store: StoreSettings) -> Lang:
    """The order's own language when it has one, else the store's."""
    own = order["locale"]
    for lang in LANGS:
        if own == lang:
            return lang
    return store.locale


def tracking_url(base_url: str, order: Order, token: str, lang: Lang) -> str:
    """The customer's tracking page (`token`: the order's `t`), in the language the message is written in."""
    return f"{base_url.rstrip('/')}/track/{order.tracking_id}?t={token}&lang={lang}"


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def quiet_until(quiet: QuietHours | None, timezone: str, now_ms: int) -> int | None:
    """Epoch ms when the store's quiet hours end, if `now_ms` falls inside them (in the store's time zone)."""
    if quiet is None:
        return None
    start, end = _minutes(quiet.start), _minutes(quiet.end)
    if start == end:
        return None
    zone = zoneinfo.ZoneInfo(timezone)
    local = dt.datetime.fromtimestamp(now_ms / 1000, zone)
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    day = local.date() if minute < end else local.date() + dt.timedelta(days=1)
    until = dt.datetime.combine(day, dt.time(end // 60, end % 60), tzinfo=zone)
    return int(until.timestamp() * 1000)


def backoff_s(tries: int, settings: Settings) -> float:
    """Wait before try `tries + 1`: base x 2^(tries-1) plus up to 25% jitter (so each wait still grows), capped."""
    delay = settings.worker_backoff_base_s * 2.0 ** min(max(0, tries - 1), 60)
    return min(settings.worker_backoff_cap_s, delay * (1 + random.random() / 4))
