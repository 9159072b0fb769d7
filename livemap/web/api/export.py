"""`GET /api/orders.csv`: a store's orders of a period as CSV, streamed page by page (store key or session).

One row per order placed in the period (the store's days): its stages' times, whether it came by its
promised time, how far off the ETA its customer saw was, and its rating. Cells a spreadsheet would
run as a formula (a customer's name starting with `=`...) are quoted with a leading apostrophe.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo
from collections.abc import AsyncIterator

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from livemap.domain import analytics as an
from livemap.domain.messages import Customer
from livemap.domain.records import Order
from livemap.domain.responses import Feedback, HistoryEntry
from livemap.services import services
from livemap.storage.repository import Repository
from livemap.web import auth, sessions
from livemap.web.errors import ApiError

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA) else value


class _Columns:
    """The export's columns for one store (a time for each of its stages) and each order's row."""

    def __init__(self, stages: tuple[str, ...], tz: zoneinfo.ZoneInfo) -> None:
        self.stages, self.tz = stages, tz
        eta = [f"eta_error_{m}min_s" for m in an.ETA_HORIZONS]
        self.header = ["order_id", "tracking_id", "source", "placed_at", "stage", "driver_id", "customer",
                       "promised_by", *(f"{s}_at" for s in stages), "failed_attempts", "on_time", *eta,
                       "rating", "comment"]  # fmt: skip

    def time(self, ms: int | str) -> str:
        return dt.datetime.fromtimestamp(int(ms) / 1000, self.tz).isoformat(timespec="seconds") if ms else ""

    def row(self, order: Order, history: list[HistoryEntry]) -> list[str]:
        first: dict[str, int] = {}
        for entry in history:
            first.setdefault(entry.stage, entry.at)
        feedback = msgspec.json.decode(order["feedback"], type=Feedback) if order["feedback"] else None
        customer = msgspec.json.decode(order["customer"], type=Customer) if order["customer"] else None
        promised, delivered = int(order["promised_by"] or 0), first.get("delivered", 0)
        on_time = ("yes" if delivered <= promised else "no") if promised and delivered else ""
        cells = [order["id"], order.tracking_id, order["source"], self.time(order["created"]), order.stage,
                 order.driver, customer.name if customer else "", self.time(promised),
                 *(self.time(first.get(s, 0)) for s in self.stages), order["fails"] or "0", on_time,
                 *(order[f"eta_err{m}"] for m in an.ETA_HORIZONS),
                 str(feedback.rating) if feedback else "", (feedback.comment or "") if feedback else ""]  # fmt: skip
        return [_cell(c) for c in cells]


async def _lines(repo: Repository, sid: str, columns: _Columns, start_ms: int, end_ms: int) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns.header)
    async for page in repo.order_pages(sid):
        for order, history in page:
            if start_ms <= int(order["created"] or 0) < end_ms:
                writer.writerow(columns.row(order, history))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


@sessions.allows_session
async def orders_csv(request: Request) -> Response:
    principal = await auth.require(request, "store")
    repo = services(request).repo
    settings = await repo.settings(principal.store_id)
    tz = zoneinfo.ZoneInfo(settings.timezone)
    try:
        period = an.Period.parse(request.query_params.get("from"), request.query_params.get("to"),
                                 dt.datetime.now(tz).date())  # fmt: skip
    except ValueError as exc:
        raise ApiError(422, "invalid_query", str(exc)) from None
    start, end = period.bounds_ms(settings.timezone)
    columns = _Columns(settings.machine().known, tz)
    name = f"orders-{period.first}-{period.last}.csv"
    return StreamingResponse(
        _lines(repo, principal.store_id, columns, start, end),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


routes = [Route("/api/orders.csv", orders_csv, methods=["GET"])]
