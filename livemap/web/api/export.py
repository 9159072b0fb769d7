"""`GET /api/orders.csv` and `GET /api/returns.csv`: a store's orders, or its returns, of a period as CSV, streamed
page by page (store key or session).

Orders: one row per order placed in the period (the store's days): its stages' times, whether it came by its
promised time, how far off the ETA its customer saw was, and its rating. Returns: one row per return asked for in
the period: where it stands, the time of each step, the collecting driver, how long after delivery it was asked for.
Cells a spreadsheet would run as a formula (a customer's name starting with `=`...) are quoted with a leading
apostrophe.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import ClassVar, NamedTuple

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from livemap.domain import analytics as an
from livemap.domain import returns as rt
from livemap.domain.clock import DAY_MS
from livemap.domain.messages import Customer
from livemap.domain.records import Order
from livemap.domain.responses import Feedback, HistoryEntry
from livemap.domain.storesettings import StoreSettings
from livemap.services import services
from livemap.storage.repository import Repository
from livemap.web import auth, sessions
from livemap.web.errors import ApiError

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA) else value


def _firsts(moments: Iterable[tuple[str, int]]) -> dict[str, int]:
    """When each stage (or step) was first reached: an order may pass one twice (shipped again after a failed
    attempt), and the export says when it first got there."""
    first: dict[str, int] = {}
    for name, at in moments:
        first.setdefault(name, at)
    return first


def _customer_name(order: Order) -> str:
    return msgspec.json.decode(order["customer"], type=Customer).name if order["customer"] else ""


class _Zone:
    """Times as the store reads them: in its time zone, to the second."""

    def __init__(self, tz: zoneinfo.ZoneInfo) -> None:
        self.tz = tz

    def time(self, ms: int | str) -> str:
        return dt.datetime.fromtimestamp(int(ms) / 1000, self.tz).isoformat(timespec="seconds") if ms else ""


class _Columns(_Zone):
    """The orders export's columns for one store (a time for each of its stages) and each order's row."""

    def __init__(self, stages: tuple[str, ...], tz: zoneinfo.ZoneInfo) -> None:
        super().__init__(tz)
        self.stages = stages
        eta = [f"eta_error_{m}min_s" for m in an.ETA_HORIZONS]
        self.header = ["order_id", "tracking_id", "source", "placed_at", "stage", "driver_id", "customer",
                       "promised_by", *(f"{s}_at" for s in stages), "failed_attempts", "on_time", *eta,
                       "rating", "comment"]  # fmt: skip

    def row(self, order: Order, history: list[HistoryEntry]) -> list[str]:
        first = _firsts((entry.stage, entry.at) for entry in history)
        feedback = msgspec.json.decode(order["feedback"], type=Feedback) if order["feedback"] else None
        promised, delivered = int(order["promised_by"] or 0), first.get("delivered", 0)
        on_time = ("yes" if delivered <= promised else "no") if promised and delivered else ""
        cells = [order["id"], order.tracking_id, order["source"], self.time(order["created"]), order.stage,
                 order.driver, _customer_name(order), self.time(promised),
                 *(self.time(first.get(s, 0)) for s in self.stages), order["fails"] or "0", on_time,
                 *(order[f"eta_err{m}"] for m in an.ETA_HORIZONS),
                 str(feedback.rating) if feedback else "", (feedback.comment or "") if feedback else ""]  # fmt: skip
        return [_cell(c) for c in cells]


class _ReturnColumns(_Zone):
    """The returns export's columns (a time for each step after the request, in the workflow's order) and each
    return's row."""

    steps: ClassVar[tuple[str, ...]] = tuple(s.value for s in rt.ReturnStatus if s != rt.ReturnStatus.REQUESTED)
    header: ClassVar[tuple[str, ...]] = (
        "order_id", "tracking_id", "status", "reason", "note", "requested_at", *(f"{s}_at" for s in steps),
        "driver_id", "days_after_delivery", "customer", "last_note",
    )  # fmt: skip

    def row(self, order: Order, record: rt.ReturnRecord, history: list[HistoryEntry]) -> list[str]:
        reached = _firsts((step.status, step.at) for step in record.steps)
        delivered = _firsts((entry.stage, entry.at) for entry in history).get("delivered")
        days = f"{(record.requested_at - delivered) / DAY_MS:.1f}" if delivered else ""
        last_note = record.steps[-1].note if record.steps else None
        cells = [order["id"], order.tracking_id, record.status, record.reason, record.note or "",
                 self.time(record.requested_at), *(self.time(reached.get(s, 0)) for s in self.steps),
                 record.driver_id or "", days, _customer_name(order), last_note or ""]  # fmt: skip
        return [_cell(c) for c in cells]


class _Query(NamedTuple):
    """An export's request, checked: the store, its settings and zone, the period and its bounds in epoch ms."""

    repo: Repository
    sid: str
    settings: StoreSettings
    tz: zoneinfo.ZoneInfo
    period: an.Period
    start: int
    end: int


async def _query(request: Request) -> _Query:
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
    return _Query(repo, principal.store_id, settings, tz, period, start, end)


async def _lines(header: Sequence[str], pages: AsyncIterator[list[list[str]]]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    async for rows in pages:
        writer.writerows(rows)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # no page at all: the header alone
        yield buffer.getvalue()


def _download(kind: str, query: _Query, header: Sequence[str], pages: AsyncIterator[list[list[str]]]) -> Response:
    name = f"{kind}-{query.period.first}-{query.period.last}.csv"
    return StreamingResponse(
        _lines(header, pages),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@sessions.allows_session
async def orders_csv(request: Request) -> Response:
    q = await _query(request)
    columns = _Columns(q.settings.machine().known, q.tz)
    pages = ([columns.row(order, history) for order, history in page if q.start <= int(order["created"] or 0) < q.end]
             async for page in q.repo.order_pages(q.sid))  # fmt: skip
    return _download("orders", q, columns.header, pages)


@sessions.allows_session
async def returns_csv(request: Request) -> Response:
    q = await _query(request)
    columns = _ReturnColumns(q.tz)
    pages = ([columns.row(*found) for found in page] async for page in q.repo.return_pages(q.sid, q.start, q.end))
    return _download("returns", q, columns.header, pages)


routes = [
    Route("/api/orders.csv", orders_csv, methods=["GET"]),
    Route("/api/returns.csv", returns_csv, methods=["GET"]),
]
