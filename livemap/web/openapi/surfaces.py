"""The OpenAPI table's other surfaces: health, metrics, this document, pages, sockets, tracker apps, shop
webhooks, dispatchers, the store's notification preview and test (operations.py has the REST API of stores,
drivers and orders)."""

from __future__ import annotations

from typing import Any

from livemap.domain import events as ev
from livemap.domain import messages as m
from livemap.domain import responses as r
from livemap.web.openapi.op import TRACKING, Op

SURFACES: list[Op] = [
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
        (*TRACKING, ("lang", "query", "page language")),
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
        params=(*TRACKING, ("since", "query", "replay events after this offset")),
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
        "/api/store/notifications/preview",
        "A customer message as the store's settings word it, for a sample order (Ana Silva, order 1001): `event` a"
        " stage id of the store's machine, `arriving`, `delayed` or `return_<status>`; `texts` unsaved wording of"
        " `lang` over the saved (checked like `notifications.texts`: 422 `invalid_field`); 422 `unknown_event`"
        " (with `known`); nothing is sent",
        "store",
        m.NotificationPreview,
        {200: m.NotificationWords},
    ),
    Op(
        "post",
        "/api/store/notifications/test",
        "Send that message now, subject and SMS marked `[Test] `, to `to` through the store's own SMTP server or SMS"
        " provider (not the outbox; internal destinations refused as for the worker): 409 `channel_not_configured`"
        " (email without host/from, SMS without url), 422 a bad address or event, 429 `rate_limited` past 5 a"
        " minute (`Retry-After`), 502 `send_failed` with the server's or provider's answer",
        "store",
        m.NotificationTest,
        {200: m.NotificationSent},
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
        "get",
        "/embed.js",
        "The tracking widget for a store's own site: `<script src=.../embed.js data-store=ID>` frames the lookup"
        " form and tracking page (`?embed=1`), which only the store's `embed.origins` may frame",
        None,
        None,
        {200: str},
        media="text/javascript",
    ),
    Op(
        "get",
        "/dispatch/analytics",
        "The store's analytics as charts (HTML; signed in, else 303 to /dispatch); draws GET /api/analytics",
        None,
        None,
        {200: str, 303: str},
        (("lang", "query", "page language"), ("from", "query", "first day"), ("to", "query", "last day")),
        media="text/html",
    ),
    Op(
        "get",
        "/dispatch/returns",
        "The store's returns (HTML; signed in, else 303 to /dispatch): filter by status, move each on",
        None,
        None,
        {200: str, 303: str},
        media="text/html",
    ),
    Op(
        "get",
        "/dispatch/orders",
        "Every order of the store (HTML; signed in, else 303 to /dispatch): filter, search, assign each",
        None,
        None,
        {200: str, 303: str},
        media="text/html",
    ),
    Op(
        "get",
        "/dispatch/settings",
        "The store's settings (HTML; signed in with the store key, else 303 to /dispatch; a dispatcher "
        "account gets 403): branding with a live preview, custom stages, notifications, shop integrations, "
        "drivers with their sign-in QR code, dispatcher accounts",
        None,
        None,
        {200: str, 303: str, 403: str},
        media="text/html",
    ),
    Op(
        "get",
        "/dispatch/settings/preview",
        "The tracking page of a sample order in the store's branding, overridden by the query's unsaved "
        "`name`, `logo_url`, `primary_color`, `accent_color`, `template` (HTML; framed by the settings page)",
        None,
        None,
        {200: str, 303: str, 403: str},
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
