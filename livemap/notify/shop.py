"""Shop write-back: an order's tracking link written into the shop's own order, so the shop's emails carry it.

**WooCommerce** takes it as a customer note (REST API v3, `POST /wp-json/wc/v3/orders/{id}/notes`,
HTTP Basic with the store's consumer key and secret), which WooCommerce emails to the customer at once;
so it goes as soon as the order is created from WooCommerce's webhook.

**Shopify** keeps tracking links on fulfillments (Admin REST API), and a fulfillment tells the shop and
its customer that the goods have left. So the link goes when the order ships: the shop's own
fulfillments get it with `update_tracking` (number and carrier kept; Shopify emails a shipping update);
an order livemap shipped before the shop fulfilled it gets a fulfillment of its open fulfillment orders,
one per location, with the link (Shopify emails its shipping confirmation).

Neither platform takes an idempotency key, so every attempt first reads what the order already has and
skips what carries this order's link: a retry after a lost answer does not email the customer twice.
A failed request is a failed attempt, retried by the worker like a webhook.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import msgspec

from livemap.domain.storesettings import ShopifyWriteBack, WooCommerceWriteBack
from livemap.notify.base import DeliveryError, Notice, get_json, post
from livemap.notify.templates import shop_note

#: The Shopify Admin REST API version livemap speaks (Shopify supports each for a year at least).
SHOPIFY_API_VERSION = "2024-10"
#: Largest answer read from a shop (an order's notes or fulfillments; a big order is well under it).
MAX_ANSWER = 2 * 1024 * 1024
#: Shopify fulfillments that still stand (not cancelled, not failed): the ones a tracking link belongs on.
_STANDING = frozenset({"pending", "open", "success"})
#: Fulfillment orders with items still to fulfil.
_FULFILLABLE = frozenset({"open", "in_progress"})


class WcNote(msgspec.Struct):
    note: str = ""


class ShopifyFulfillment(msgspec.Struct):
    id: int
    status: str | None = None
    tracking_company: str | None = None
    tracking_number: str | None = None
    tracking_urls: list[str] = []


class ShopifyFulfillments(msgspec.Struct):
    fulfillments: list[ShopifyFulfillment]


class ShopifyFulfillmentOrder(msgspec.Struct):
    id: int
    status: str
    assigned_location_id: int | None = None


class ShopifyFulfillmentOrders(msgspec.Struct):
    fulfillment_orders: list[ShopifyFulfillmentOrder]


def _carries_link(text: str, notice: Notice) -> bool:
    """Whether a note or URL the shop holds is this order's tracking link (the shop may re-escape the rest)."""
    return f"/track/{notice.order.tracking_id}" in text


async def send(client: httpx.AsyncClient, notice: Notice) -> None:
    """Write the order's tracking link back to the shop it came from (its `source`)."""
    platform, integrations = notice.order["source"], notice.store.integrations
    config = integrations.write_back(platform)
    if isinstance(config, WooCommerceWriteBack):
        await _woocommerce(client, notice, config)
    elif isinstance(config, ShopifyWriteBack):
        await _shopify(client, notice, config)
    else:
        raise DeliveryError(f"integrations.{platform or '?'}.write_back is not set", permanent=True)


async def _woocommerce(client: httpx.AsyncClient, notice: Notice, config: WooCommerceWriteBack) -> None:
    notes = f"{config.url.rstrip('/')}/wp-json/wc/v3/orders/{quote(notice.order['ext_id'], safe='')}/notes"
    auth = (config.consumer_key, config.consumer_secret)
    found = await get_json(
        client, "WooCommerce", notes, list[WcNote], MAX_ANSWER, params={"type": "customer"}, auth=auth
    )
    if any(_carries_link(n.note, notice) for n in found):
        return
    body = {"note": shop_note(notice), "customer_note": True}
    await post(client, "WooCommerce", notes, json=body, auth=auth)


async def _shopify(client: httpx.AsyncClient, notice: Notice, config: ShopifyWriteBack) -> None:
    api = f"{config.url.rstrip('/')}/admin/api/{SHOPIFY_API_VERSION}"
    order = quote(notice.order["ext_id"], safe="")
    headers = {"X-Shopify-Access-Token": config.access_token}
    known = await get_json(
        client, "Shopify", f"{api}/orders/{order}/fulfillments.json", ShopifyFulfillments, MAX_ANSWER, headers=headers
    )
    standing = [f for f in known.fulfillments if f.status in _STANDING]
    if standing:  # the shop fulfilled the order itself: what it shipped gets the link, nothing more is fulfilled
        for fulfillment in standing:
            if not any(_carries_link(url, notice) for url in fulfillment.tracking_urls):
                await _update_tracking(client, api, headers, notice, fulfillment)
        return
    pending = await get_json(
        client,
        "Shopify",
        f"{api}/orders/{order}/fulfillment_orders.json",
        ShopifyFulfillmentOrders,
        MAX_ANSWER,
        headers=headers,
    )
    by_location: dict[int | None, list[int]] = {}
    for fulfillment_order in pending.fulfillment_orders:
        if fulfillment_order.status in _FULFILLABLE:
            by_location.setdefault(fulfillment_order.assigned_location_id, []).append(fulfillment_order.id)
    if not by_location:
        raise DeliveryError("Shopify: the order has no fulfillment and nothing left to fulfil", permanent=True)
    # One fulfillment may cover fulfillment orders of one location only. A retry after only some of these went
    # through finds those and stops: the rest is left to the shop rather than risk fulfilling what it held back.
    for ids in by_location.values():
        body = {
            "fulfillment": {
                "line_items_by_fulfillment_order": [{"fulfillment_order_id": i} for i in ids],
                "tracking_info": {"url": notice.tracking_url, "company": notice.store.name},
                "notify_customer": True,
            }
        }
        await post(client, "Shopify", f"{api}/fulfillments.json", json=body, headers=headers)


async def _update_tracking(
    client: httpx.AsyncClient, api: str, headers: dict[str, str], notice: Notice, fulfillment: ShopifyFulfillment
) -> None:
    """Set the link on a fulfillment, keeping its tracking number and carrier (the update replaces all three)."""
    tracking = {"url": notice.tracking_url, "company": fulfillment.tracking_company or notice.store.name}
    if fulfillment.tracking_number:
        tracking["number"] = fulfillment.tracking_number
    body = {"fulfillment": {"tracking_info": tracking, "notify_customer": True}}
    await post(
        client, "Shopify", f"{api}/fulfillments/{fulfillment.id}/update_tracking.json", json=body, headers=headers
    )
