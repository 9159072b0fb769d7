"""Every endpoint, declared once with its request and response types (the msgspec types the server uses).

The REST API of stores, drivers and orders is here; health, pages, sockets, tracker apps, shop
webhooks and dispatchers are in surfaces.py. A test checks that the app's routes and this table
agree, so the document cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

from livemap.domain import analytics as an
from livemap.domain import messages as m
from livemap.domain import responses as r
from livemap.domain import returns as rt
from livemap.domain.storesettings import StoreSettings
from livemap.integrations import shopify, woocommerce
from livemap.integrations.common import IntegrationResult
from livemap.web.openapi.op import ORDER_ID, PERIOD, TRACKING, Op
from livemap.web.openapi.surfaces import SURFACES

OPERATIONS: list[Op] = [
    Op("post", "/api/stores", "Create a store", "admin", m.CreateStore, {201: r.StoreCreated}),
    Op("get", "/api/store", "Read the store's settings (secrets masked)", "store", None, {200: StoreSettings}),
    Op(
        "patch",
        "/api/store",
        "Merge-patch the store's settings (RFC 7396); an internal webhook/SMS/SMTP destination: 422 outbound_refused",
        "store",
        dict[str, Any],
        {200: StoreSettings},
    ),
    Op(
        "post",
        "/api/store/key",
        "Replace the store's API key (with the key itself): the old key is refused at once, by every process",
        "store",
        None,
        {200: r.StoreCreated},
    ),
    Op("get", "/api/drivers", "The store's drivers, devices, newest fixes", "store", None, {200: r.DriverList}),
    Op(
        "post", "/api/drivers", "Create a driver (token, sign-in link)", "store", m.CreateDriver, {201: r.DriverCreated}
    ),
    Op(
        "post",
        "/api/drivers/{driver_id}/token",
        "Replace a driver's token: the old one is refused at once and its open sockets close (code 4401)",
        "store",
        None,
        {200: r.DriverCreated},
        (("driver_id", "path", "the driver's id"),),
    ),
    Op(
        "put",
        "/api/drivers:bulk",
        "Create up to 5,000 drivers in one call (a JSON array of driver bodies); each item answered on its own:"
        " created (with its token), duplicate (the id exists, unchanged) or invalid (the field named)",
        "store",
        list[m.CreateDriver],
        {200: r.BulkReply},
    ),
    Op(
        "post",
        "/api/orders:bulk",
        "Create up to 5,000 orders in one call (a JSON array of order bodies); each item answered on its own:"
        " created (with its tracking link), duplicate (the id exists, unchanged) or invalid (the field named)."
        " Safe to send again after a failure: what was created comes back duplicate",
        "store",
        list[m.CreateOrder],
        {200: r.BulkReply},
    ),
    Op(
        "get",
        "/api/drivers/{driver_id}",
        "A driver's newest position and fix counts",
        "store",
        None,
        {200: r.DriverStatus},
        (("driver_id", "path", "the driver's id"),),
    ),
    Op(
        "get",
        "/api/drivers/{driver_id}/stops",
        "The driver's stops in delivery order, with ETAs",
        "store",
        None,
        {200: r.Stops},
        (("driver_id", "path", "the driver's id"),),
    ),
    Op(
        "put",
        "/api/drivers/{driver_id}/stops",
        "Re-order the driver's stops (ETAs are recomputed)",
        "store",
        m.StopOrder,
        {200: r.Stops},
        (("driver_id", "path", "the driver's id"),),
    ),
    Op(
        "get",
        "/api/drivers/{driver_id}/devices",
        "The tracker apps' device ids registered for the driver",
        "store",
        None,
        {200: m.Devices},
        (("driver_id", "path", "the driver's id"),),
    ),
    Op(
        "put",
        "/api/drivers/{driver_id}/devices",
        "Register the device ids (OsmAnd id, OwnTracks user or user/device, GPSLogger %AID) that send as this driver",
        "store",
        m.Devices,
        {200: m.Devices},
        (("driver_id", "path", "the driver's id"),),
    ),
    Op("post", "/api/orders", "Create an order (stage `received`)", "store", m.CreateOrder, {201: r.OrderView}),
    Op(
        "get",
        "/api/orders/{order_id}",
        "Read an order with its history and ETA",
        "store",
        None,
        {200: r.OrderView},
        ORDER_ID,
    ),
    Op(
        "post",
        "/api/orders/{order_id}/assign",
        "Assign or reassign the order's driver",
        "store",
        m.Assign,
        {200: r.OrderView},
        ORDER_ID,
    ),
    Op(
        "post",
        "/api/orders/{order_id}/stage",
        "Move the order to a stage (409 names the allowed ones)",
        "store",
        m.StageChange,
        {200: r.OrderView},
        ORDER_ID,
    ),
    Op(
        "get",
        "/api/track/{tracking_id}",
        "The customer snapshot (same as the socket's first message)",
        None,
        None,
        {200: r.Snapshot},
        TRACKING,
    ),
    Op(
        "post",
        "/api/track/{tracking_id}/feedback",
        "The customer rates the delivery, 1-5 (replaces an earlier rating; 409 `not_delivered` before delivery)",
        None,
        m.RateDelivery,
        {200: r.Feedback},
        TRACKING,
    ),
    Op(
        "post",
        "/api/track/{tracking_id}/views",
        "The tracking page's beacon as the customer leaves it: seconds visible and the kind of device (no cookie);"
        " counted into the store's analytics",
        None,
        m.PageView,
        {204: None},
        TRACKING,
    ),
    Op(
        "get",
        "/api/analytics",
        "The store's figures over a period of its days: orders, unique customers, purchase frequency, on-time %,"
        " time in each stage, attempts, ratings, returns, tracking page views, ETA truthfulness 30/10/3 min before"
        " arrival, and the period day by day (422 `invalid_query` for a bad period or another time zone)",
        "store",
        None,
        {200: an.Analytics},
        (*PERIOD, ("tz", "query", "the store's time zone (its days are what is kept); another zone is refused")),
    ),
    Op(
        "post",
        "/api/track/{tracking_id}/return",
        "The customer asks to return the delivered order, with one of the store's reasons: 201; 409 `not_delivered`,"
        " `return_window_closed` (with `closed_at`) or `return_exists`; 422 `unknown_reason` (with `known`)",
        None,
        rt.StartReturn,
        {201: r.ReturnView},
        TRACKING,
    ),
    Op(
        "put",
        "/api/track/{tracking_id}/return/photo",
        "The customer's photo of what they return, as the raw body (`Content-Type` image/jpeg, image/png or"
        " image/webp, at most 2 MiB, checked by its first bytes: 413, 415, 422 `invalid_image`), until the store"
        " answers: 204; 409 `no_return` or `return_answered` (with `current`); a new photo replaces the old",
        None,
        None,
        {204: None},
        TRACKING,
    ),
    Op(
        "get",
        "/api/orders/{order_id}/return/photo",
        "The photo the customer sent with the order's return (image/jpeg, image/png or image/webp); 404 `no_photo`",
        "store",
        None,
        {200: bytes},
        ORDER_ID,
        media="image/*",
    ),
    Op(
        "post",
        "/api/orders/{order_id}/return",
        "Move the order's return on: approved / rejected, pickup (with `driver_id`: the order is live again for"
        " that driver, followed like a delivery) / dropoff, received (ends the pickup), refunded; the customer is"
        " told (outbox, and live on the tracking socket); 409 `illegal_return_step` (with `allowed`) or"
        " `driver_required`",
        "store",
        rt.ReturnChange,
        {200: r.ReturnView},
        ORDER_ID,
    ),
    Op(
        "get",
        "/api/orders/{order_id}/proof/photo",
        "The delivery photo the driver took (image/jpeg, image/png or image/webp); 404 `no_proof`",
        "store",
        None,
        {200: bytes},
        ORDER_ID,
        media="image/*",
    ),
    Op(
        "get",
        "/api/orders",
        "The store's orders, newest placed first, a page at a time (the dashboard's list); `next` is the cursor of"
        " the page after; a filter that keeps few orders may answer fewer than `limit` with a `next` (5,000 orders"
        " read per request at most)",
        "store",
        None,
        {200: r.OrderList},
        (
            ("show", "query", "`all` (default), `open`, `unassigned`, `live`, `late`, `imported` or `finished`"),
            ("q", "query", "text to find in the order id, customer name, email or phone, address, tracking number"),
            *PERIOD,
            ("cursor", "query", "`next` of the previous page"),
            ("limit", "query", "at most this many, 1-200 (default 50)"),
        ),
    ),
    Op(
        "get",
        "/api/returns",
        "The store's returns, newest first (at most 500), each with the steps it may take next",
        "store",
        None,
        {200: r.ReturnList},
        (
            ("status", "query", "one status, `open` (not rejected or refunded) or `closed`"),
            ("limit", "query", "at most this many, 1-500 (default 100)"),
        ),
    ),
    Op(
        "get",
        "/api/orders.csv",
        "The orders placed in a period as CSV, streamed: ids, source, times of each stage, failed attempts, on time,"
        " ETA error 30/10/3 min before arrival (seconds, late positive), rating and comment (422 `invalid_query`)",
        "store",
        None,
        {200: str},
        PERIOD,
        media="text/csv",
    ),
    Op(
        "get",
        "/api/returns.csv",
        "The returns asked for in a period as CSV, streamed: ids, status, reason, note, request time, each step's"
        " first time, pickup driver, days after delivery, customer, last note (422 `invalid_query`)",
        "store",
        None,
        {200: str},
        PERIOD,
        media="text/csv",
    ),
    Op(
        "post",
        "/api/track/{tracking_id}/subscriptions",
        "The customer opts in to / out of updates by email and SMS (409 `no_email` / `no_phone` without that contact)",
        None,
        m.Subscribe,
        {200: r.Subscriptions},
        TRACKING,
    ),
    Op(
        "get",
        "/api/track/{tracking_id}/proof",
        "Proof of delivery (recipient name, whether there is a photo): 409 `not_delivered` before delivery,"
        " 404 `no_proof` without one",
        None,
        None,
        {200: r.Proof},
        TRACKING,
    ),
    Op(
        "get",
        "/api/track/{tracking_id}/proof/photo",
        "The delivery photo (image/jpeg, image/png or image/webp); 409 `not_delivered` before delivery",
        None,
        None,
        {200: bytes},
        TRACKING,
        media="image/*",
    ),
    Op(
        "get",
        "/api/driver",
        "The driver's own run: name and stops in delivery order",
        "driver",
        None,
        {200: r.DriverRun},
    ),
    Op(
        "post",
        "/api/driver/stops/{tracking_id}/stage",
        "The driver marks its stop picked up (`shipped`), `delivered` (optional `recipient`) or `failed_attempt`;"
        " a return's pickup stop (`return_leg`) takes `returned` only (collected: the return is received);"
        " 404 unless the order is assigned to this driver; 409 `illegal_transition` with `allowed`",
        "driver",
        m.DriverStageChange,
        {200: r.DriverStop},
        (("tracking_id", "path", "the order's tracking id"),),
    ),
    Op(
        "post",
        "/api/driver/stops/{tracking_id}/proof",
        "Proof of delivery for the driver's stop: a photo as the raw body (`Content-Type` image/jpeg, image/png or"
        " image/webp, at most 2 MiB, checked by its first bytes: 413, 415, 422 `invalid_image`) or JSON"
        " `{recipient}`; a new photo replaces the old",
        "driver",
        m.ProofRecipient,
        {200: r.Proof},
        (("tracking_id", "path", "the order's tracking id"),),
    ),
    Op(
        "get",
        "/driver",
        "The driver app (HTML): sign in with the driver token (or `/driver#token=...`), shift, GPS, stops",
        None,
        None,
        {200: str},
        (("lang", "query", "page language"),),
        media="text/html",
    ),
    Op(
        "post",
        "/integrations/woocommerce/{store}",
        "WooCommerce webhook delivery (`order.created` / `order.updated`; signed with the store's"
        " integrations.woocommerce.secret) or its creation ping (form body `webhook_id=N`, unsigned): 200 with what"
        " was done; 401 `bad_signature`, 409 `not_configured` (no secret), 404 unknown store",
        None,
        woocommerce.WcOrder,
        {200: IntegrationResult},
        (
            ("store", "path", "the store's id"),
            ("X-WC-Webhook-Topic", "header", "order.created, order.updated (other topics are acknowledged, ignored)"),
            ("X-WC-Webhook-Signature", "header", "base64 HMAC-SHA256 of the raw body with the webhook secret"),
        ),
    ),
    Op(
        "post",
        "/integrations/shopify/{store}",
        "Shopify webhook delivery (orders/create, orders/updated, orders/paid, orders/fulfilled, orders/cancelled,"
        " fulfillments/create, fulfillments/update; signed with integrations.shopify.secret): the body is the order,"
        " or for fulfillments/* the fulfillment; 200 with what was done; 401 `bad_signature`, 409 `not_configured`,"
        " 404 unknown store",
        None,
        shopify.ShopifyOrder,
        {200: IntegrationResult},
        (
            ("store", "path", "the store's id"),
            ("X-Shopify-Topic", "header", "the webhook topic (others are acknowledged, ignored)"),
            ("X-Shopify-Hmac-Sha256", "header", "base64 HMAC-SHA256 of the raw body with the app's secret"),
        ),
    ),
    *SURFACES,
]
