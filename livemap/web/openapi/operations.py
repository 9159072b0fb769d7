"""Every endpoint, declared once with its request and response types (the msgspec types the server uses).

A test checks that the app's routes and this table agree, so the document cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from livemap.domain import events as ev
from livemap.domain import messages as m
from livemap.domain import responses as r
from livemap.domain.storesettings import StoreSettings
from livemap.integrations import shopify, woocommerce
from livemap.integrations.common import IntegrationResult


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    summary: str
    auth: str | None  # security scheme name
    body: Any = None
    responses: dict[int, Any] = field(default_factory=dict)
    params: tuple[tuple[str, str, str], ...] = ()  # (name, in, description)
    websocket: tuple[Any, Any] | None = None  # (client -> server, server -> client) message types
    media: str = "application/json"


_ORDER_ID = (("order_id", "path", "the store's own order id"),)
_TRACKING = (("tracking_id", "path", "the order's public tracking id"), ("t", "query", "the tracking token"))

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
    Op("post", "/api/drivers", "Create a driver", "store", m.CreateDriver, {201: r.DriverCreated}),
    Op(
        "post",
        "/api/drivers/{driver_id}/token",
        "Replace a driver's token: the old one is refused at once and its open sockets close (code 4001)",
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
        _ORDER_ID,
    ),
    Op(
        "post",
        "/api/orders/{order_id}/assign",
        "Assign or reassign the order's driver",
        "store",
        m.Assign,
        {200: r.OrderView},
        _ORDER_ID,
    ),
    Op(
        "post",
        "/api/orders/{order_id}/stage",
        "Move the order to a stage (409 names the allowed ones)",
        "store",
        m.StageChange,
        {200: r.OrderView},
        _ORDER_ID,
    ),
    Op(
        "get",
        "/api/track/{tracking_id}",
        "The customer snapshot (same as the socket's first message)",
        None,
        None,
        {200: r.Snapshot},
        _TRACKING,
    ),
    Op(
        "post",
        "/api/track/{tracking_id}/feedback",
        "The customer rates the delivery, 1-5 (replaces an earlier rating; 409 `not_delivered` before delivery)",
        None,
        m.RateDelivery,
        {200: r.Feedback},
        _TRACKING,
    ),
    Op(
        "post",
        "/api/track/{tracking_id}/subscriptions",
        "The customer opts in to / out of updates by email and SMS (409 `no_email` / `no_phone` without that contact)",
        None,
        m.Subscribe,
        {200: r.Subscriptions},
        _TRACKING,
    ),
    Op(
        "get",
        "/api/track/{tracking_id}/proof",
        "Proof of delivery (recipient name, whether there is a photo): 409 `not_delivered` before delivery,"
        " 404 `no_proof` without one",
        None,
        None,
        {200: r.Proof},
        _TRACKING,
    ),
    Op(
        "get",
        "/api/track/{tracking_id}/proof/photo",
        "The delivery photo (image/jpeg, image/png or image/webp); 409 `not_delivered` before delivery",
        None,
        None,
        {200: bytes},
        _TRACKING,
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
    Op("get", "/healthz", "The process (and its embedded Redis) is up", None, None, {200: r.Health, 503: r.Health}),
    Op("get", "/readyz", "Redis is reachable (503 when not)", None, None, {200: r.Health, 503: r.Health}),
    Op(
        "get",
        "/metrics",
        "This process's counters in Prometheus's text format (README, Monitoring)",
        "metrics",
        None,
        {200: str},
        media="text/plain",
    ),
    Op("get", "/openapi.json", "This document", None, None, {200: dict[str, Any]}),
    *(
        Op(
            method,
            "/unsubscribe/{tracking_id}/{channel}",
            summary,
            None,
            None,
            {200: str, 404: str},
            (
                ("tracking_id", "path", "the order's public tracking id"),
                ("channel", "path", "`email` or `sms`"),
                ("sig", "query", "the link's signature (every email and SMS carries its link)"),
                ("lang", "query", "page language"),
            ),
            media="text/html",
        )
        for method, summary in (
            ("get", "The unsubscribe link of an email or SMS: a page asking to confirm (HTML)"),
            ("post", "Unsubscribe the order's customer from that channel (RFC 8058 one-click; HTML)"),
        )
    ),
    Op(
        "get",
        "/track/{tracking_id}",
        "The customer's live tracking page (HTML; `?lang=en|es|pt-BR`)",
        None,
        None,
        {200: str, 404: str},
        (*_TRACKING, ("lang", "query", "page language")),
        media="text/html",
    ),
    Op(
        "get",
        "/track",
        "Find an order by number and email (HTML form)",
        None,
        None,
        {200: str},
        (("store", "query", "the store's id"),),
        media="text/html",
    ),
    Op(
        "post",
        "/track",
        "Submit the lookup form (form body `number`, `contact`): 303 to the tracking page, or one generic error",
        None,
        None,
        {303: str, 200: str, 429: str},
        (("store", "query", "the store's id"),),
        media="text/html",
    ),
    *(
        Op(
            method,
            path,
            f"{app}: a tracker app posts positions (driver token as `?token=`, Basic password or bearer);"
            " unknown device 400 (404 for the JSON form)",
            "driver",
            None,
            {200: str, 400: r.ErrorBody, 401: r.ErrorBody, 404: r.ErrorBody},
            (("token", "query", "the driver's token"),),
            media="text/plain",
        )
        for method, path, app in (
            ("get", "/ingest/osmand", "Traccar Client / OsmAnd protocol, query form"),
            ("post", "/ingest/osmand", "Traccar Client / OsmAnd protocol, form body or JSON"),
            ("get", "/ingest/gpslogger", "GPSLogger custom URL (OsmAnd names, speed in m/s)"),
            ("post", "/ingest/gpslogger", "GPSLogger custom URL as a form body"),
        )
    ),
    Op(
        "post",
        "/ingest/owntracks",
        "OwnTracks HTTP mode: `_type: location` stored, other types ignored; replies `[]`",
        "driver",
        None,
        {200: list[Any], 400: r.ErrorBody, 401: r.ErrorBody},
        (("token", "query", "the driver's token (or the Basic password)"),),
    ),
    Op(
        "get",
        "/ws/driver",
        "Websocket: a driver's device sends fixes (`?token=` driver token)",
        "driver",
        websocket=(m.Fix | list[m.Fix], m.Ack | m.Error | r.StopsPush),
    ),
    Op(
        "get",
        "/ws/track/{tracking_id}",
        "Websocket: a customer's live view (`?t=`, optional `&since=OFFSET`)",
        None,
        params=(*_TRACKING, ("since", "query", "replay events after this offset")),
        websocket=(None, r.Snapshot | ev.LocationEvent | ev.StageEvent | ev.RouteEvent),
    ),
    Op(
        "get",
        "/ws/dispatch",
        "Websocket: the store's live dispatch view (`?token=` store key, or the dispatch page's session cookie)",
        "store",
        websocket=(
            m.Viewport,
            r.DispatchSnapshot | ev.DriverLocationEvent | ev.StageEvent | ev.DispatchEtaEvent | ev.RouteEvent,
        ),
    ),
    Op(
        "post",
        "/api/dispatchers",
        "Create a dispatcher account (signs in to /dispatch by name and password; 409 on a taken name)",
        "store",
        m.CreateDispatcher,
        {201: r.Dispatcher},
    ),
    Op("get", "/api/dispatchers", "The store's dispatcher accounts", "store", None, {200: r.Dispatchers}),
    Op(
        "delete",
        "/api/dispatchers/{name}",
        "Remove a dispatcher account; its sessions end",
        "store",
        None,
        {200: r.Dispatcher},
        (("name", "path", "the account's name"),),
    ),
    Op(
        "get",
        "/dispatch",
        "The dispatcher dashboard (HTML) when signed in, else its sign-in form",
        None,
        None,
        {200: str},
        (("store", "query", "pre-fills the store id of the account sign-in"),),
        media="text/html",
    ),
    Op(
        "post",
        "/dispatch",
        "Sign in (form body `key`, or `store` + `name` + `password`): 303 to /dispatch with a session cookie",
        None,
        None,
        {303: str, 401: str, 403: str, 429: str},
        media="text/html",
    ),
    Op(
        "post",
        "/dispatch/signout",
        "Sign out (form body `csrf`: the page's CSRF token): the session ends, 303 to /dispatch",
        None,
        None,
        {303: str},
        media="text/html",
    ),
]
