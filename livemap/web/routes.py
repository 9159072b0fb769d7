"""Every URL the server answers: the REST API per audience, tracker apps, shops, pages and sockets."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from livemap import integrations
from livemap.trackers import endpoints as trackers
from livemap.web.api import (
    analytics,
    bulk,
    customers,
    dispatchers,
    drivers,
    export,
    fleet,
    health,
    monitoring,
    notifications,
    orderlist,
    orders,
    returns,
    stores,
)
from livemap.web.openapi.document import openapi
from livemap.web.pages.analytics import analytics_page
from livemap.web.pages.dispatch import dispatch_page, sign_out
from livemap.web.pages.driver import driver_page
from livemap.web.pages.embed import embed_js
from livemap.web.pages.layout import STATIC_DIR
from livemap.web.pages.lookup import lookup_form
from livemap.web.pages.orders import orders_page
from livemap.web.pages.preview import preview_page
from livemap.web.pages.returns import returns_page
from livemap.web.pages.settings import settings_page
from livemap.web.pages.tracking import tracking_page
from livemap.web.pages.unsubscribe import unsubscribe_page
from livemap.web.sockets.customer import track_socket
from livemap.web.sockets.dispatcher import dispatch_socket
from livemap.web.sockets.driver import driver_socket


def all_routes() -> list[BaseRoute]:
    return [
        *stores.routes,
        *notifications.routes,
        *fleet.routes,
        *orders.routes,
        *orderlist.routes,
        *customers.routes,
        *analytics.routes,
        *export.routes,
        *returns.routes,
        *bulk.routes,
        *health.routes,
        *monitoring.routes,
        *trackers.routes,
        *dispatchers.routes,
        *drivers.routes,
        *integrations.routes,
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/embed.js", embed_js, methods=["GET"]),
        Route("/track", lookup_form, methods=["GET", "POST"]),
        Route("/track/{tracking_id}", tracking_page, methods=["GET"]),
        Route("/dispatch", dispatch_page, methods=["GET", "POST"]),
        Route("/dispatch/signout", sign_out, methods=["POST"]),
        Route("/dispatch/analytics", analytics_page, methods=["GET"]),
        Route("/dispatch/returns", returns_page, methods=["GET"]),
        Route("/dispatch/orders", orders_page, methods=["GET"]),
        Route("/dispatch/settings", settings_page, methods=["GET"]),
        Route("/dispatch/settings/preview", preview_page, methods=["GET"]),
        Route("/driver", driver_page, methods=["GET"]),
        Route("/unsubscribe/{tracking_id}/{channel}", unsubscribe_page, methods=["GET", "POST"]),
        # Leaflet and the pages' own JS/CSS: served by us, never from a CDN.
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        # Named by audience: `/metrics` counts sockets (and slow-consumer closes) by these names.
        WebSocketRoute("/ws/driver", driver_socket, name="driver"),
        WebSocketRoute("/ws/track/{tracking_id}", track_socket, name="customer"),
        WebSocketRoute("/ws/dispatch", dispatch_socket, name="dispatcher"),
    ]
