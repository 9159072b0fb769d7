"""`GET /api/orders`: the store's orders newest first, filtered and searched, a page at a time (store key or a
dispatcher's session): the dashboard's list, where unassigned and imported orders are found and assigned."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livemap.domain import analytics as an
from livemap.domain import orderlist as ol
from livemap.domain.clock import now_ms
from livemap.domain.records import Order
from livemap.domain.responses import OrderList, OrderRow
from livemap.services import services
from livemap.web import auth, sessions
from livemap.web.errors import ApiError, json_response

#: All of time, when no period is asked for.
_FOREVER = (0, 2**53)


def _row(order: Order, query: ol.Query) -> OrderRow:
    return OrderRow(
        order_id=order["id"], tracking_id=order.tracking_id, stage=order.stage, live=order.live,
        driver_id=order.driver or None, customer=order.customer.name if order["customer"] else None,
        address=order["address"] or None, placed_at=int(order["created"] or 0),
        promised_by=order.optional_int("promised_by"), eta_at=order.optional_int("eta_at"),
        source=order["source"] or None, late=query.is_late(order), return_leg=order.on_return_leg,
    )  # fmt: skip


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(422, "invalid_query", f"{name} must be a whole number from {low} to {high}")
    return value


@sessions.allows_session
async def list_orders(request: Request) -> Response:
    principal = await auth.require(request, "store")
    svc, q = services(request), request.query_params
    settings = await svc.repo.settings(principal.store_id)
    try:
        show = ol.Show(q.get("show") or "all")
        cursor = ol.decode_cursor(q["cursor"]) if q.get("cursor") else None
        bounds = _FOREVER
        if q.get("from") or q.get("to"):
            today = dt.datetime.now(zoneinfo.ZoneInfo(settings.timezone)).date()
            bounds = an.Period.parse(q.get("from"), q.get("to"), today).bounds_ms(settings.timezone)
    except ValueError as exc:
        shows = ", ".join(ol.Show)
        raise ApiError(422, "invalid_query", f"{exc} (show: one of {shows}; from/to: YYYY-MM-DD)") from None
    limit = _int(request, "limit", 50, 1, 200)
    search = (q.get("q") or "").strip().lower()[:200]
    grace = int(svc.settings.delay_grace_s * 1000)
    query = ol.Query(show, search, frozenset(settings.machine().delivered), now_ms(), grace)
    found, after = await svc.repo.list_orders(principal.store_id, query.keeps, limit, *bounds, cursor)
    rows = [_row(order, query) for order in found]
    return json_response(OrderList(rows, ol.encode_cursor(after) if after else None))


routes = [Route("/api/orders", list_orders, methods=["GET"])]
