"""`POST /api/orders:bulk` and `PUT /api/drivers:bulk`: a fleet set up in one call, each item answered on its own.

An item is `created`, `duplicate` (its id exists: nothing changed) or `invalid` (the field named, as a
single create would say); one bad item never fails the others. Items are created a few at a time,
in any order, answered in the order sent. A call that fails as a whole (Redis away: 503) may have
created some: sending it again is safe, those come back `duplicate`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livemap.domain.messages import CreateDriver, CreateOrder, describe
from livemap.domain.records import Conflict
from livemap.domain.responses import BulkItem, BulkReply, ErrorDetail
from livemap.services import services
from livemap.tasks import first_error
from livemap.web import auth, bodies
from livemap.web.errors import ApiError, json_response

T = TypeVar("T")

#: Most items in one call, and the body's byte limit: 5,000 orders with routes fit.
MAX_ITEMS = 5000
BULK_LIMIT = 16 * 1024 * 1024
#: Items in flight at once: enough to keep Redis busy, few enough to leave the event loop to the live path.
_CONCURRENCY = 32


async def create_orders(request: Request) -> Response:
    principal = await auth.require(request, "store")
    repo, base_url = services(request).repo, services(request).base_url(request)

    async def create(index: int, body: CreateOrder) -> BulkItem:
        order = await repo.create_order(principal.store_id, body)
        tid = order.tracking_id
        url = f"{base_url}/track/{tid}?t={repo.tracking_token(order)}"
        return BulkItem(index, "created", id=str(body.id), tracking_id=tid, tracking_url=url)

    return json_response(await _each(await _items(request, CreateOrder), create, _order_id))


async def put_drivers(request: Request) -> Response:
    principal = await auth.require(request, "store")
    repo = services(request).repo

    async def create(index: int, body: CreateDriver) -> BulkItem:
        did, token = await repo.create_driver(principal.store_id, body.name, body.id, body.vehicle)
        return BulkItem(index, "created", id=did, token=token)

    return json_response(await _each(await _items(request, CreateDriver), create, lambda body: body.id))


def _order_id(body: CreateOrder) -> str:
    return str(body.id)


async def _items(request: Request, kind: type[T]) -> list[T | ErrorDetail]:
    """Each item of the JSON array, validated on its own: the item, or what is wrong with it."""
    raw = bodies.decode(await bodies.read(request, BULK_LIMIT), list[msgspec.Raw])
    if len(raw) > MAX_ITEMS:
        raise ApiError(422, "too_many_items", f"{len(raw)} items in one call; the limit is {MAX_ITEMS}")
    items: list[T | ErrorDetail] = []
    for item in raw:
        try:
            items.append(msgspec.json.decode(item, type=kind))
        except msgspec.ValidationError as exc:
            items.append(ErrorDetail("invalid_field", describe(exc)))
    return items


async def _each(
    items: list[T | ErrorDetail], create: Callable[[int, T], Awaitable[BulkItem]], id_of: Callable[[T], str | None]
) -> BulkReply:
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def one(index: int, item: T | ErrorDetail) -> BulkItem:
        if isinstance(item, ErrorDetail):
            return BulkItem(index, "invalid", error=item)
        async with gate:
            try:
                return await create(index, item)
            except Conflict as exc:
                return BulkItem(index, "duplicate", id=id_of(item), error=ErrorDetail("conflict", str(exc)))

    # A TaskGroup: when Redis fails one item, the items still running stop and the call fails with
    # that item's error, answered as a single request's would be (503 `unavailable`).
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(i, item)) for i, item in enumerate(items)]
    except ExceptionGroup as failed:
        raise first_error(failed) from None
    answers = [t.result() for t in tasks]
    count = {status: sum(a.status == status for a in answers) for status in ("created", "duplicate", "invalid")}
    return BulkReply(count["created"], count["duplicate"], count["invalid"], answers)


routes = [
    Route("/api/orders:bulk", create_orders, methods=["POST"]),
    Route("/api/drivers:bulk", put_drivers, methods=["PUT"]),
]
