"""`/api/track/{tracking_id}`: the customer's snapshot, rating, opt-ins and the page's view beacon (tracking token)."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livemap.domain.messages import PageView, RateDelivery, Subscribe
from livemap.services import services
from livemap.web import auth, bodies
from livemap.web import presenters as views
from livemap.web.errors import NOSNIFF, json_response


async def track_snapshot(request: Request) -> Response:
    tid = request.path_params["tracking_id"]
    await auth.authorize_tracking(request, tid)
    svc = services(request)
    snapshot = await views.customer_snapshot(svc.repo, tid, svc.settings)
    return Response(
        msgspec.json.encode(snapshot), media_type="application/json", headers={"Cache-Control": "no-store", **NOSNIFF}
    )


async def rate_delivery(request: Request) -> Response:
    """`POST /api/track/{tracking_id}/feedback`: the customer rates a delivered order (a new rating replaces it)."""
    tid = request.path_params["tracking_id"]
    await auth.authorize_tracking(request, tid)
    body = await bodies.json(request, RateDelivery)
    feedback = await services(request).repo.rate(tid, body.rating, body.comment)
    return json_response(feedback)


async def subscribe(request: Request) -> Response:
    """`POST /api/track/{tracking_id}/subscriptions`: the customer opts in to or out of updates per channel."""
    tid = request.path_params["tracking_id"]
    await auth.authorize_tracking(request, tid)
    body = await bodies.json(request, Subscribe)
    subscriptions = await services(request).repo.subscribe(tid, body)
    return json_response(subscriptions)


async def page_view(request: Request) -> Response:
    """`POST /api/track/{tracking_id}/views`: the tracking page counts one view as it is left (no cookie)."""
    tid = request.path_params["tracking_id"]
    await auth.authorize_tracking(request, tid)
    body = await bodies.json(request, PageView)
    repo = services(request).repo
    sid = (await repo.order(tid))["store"]
    await repo.count_view(sid, (await repo.settings(sid)).timezone, tid, body.seconds, body.device)
    return Response(status_code=204)


routes = [
    Route("/api/track/{tracking_id}", track_snapshot, methods=["GET"]),
    Route("/api/track/{tracking_id}/feedback", rate_delivery, methods=["POST"]),
    Route("/api/track/{tracking_id}/subscriptions", subscribe, methods=["POST"]),
    Route("/api/track/{tracking_id}/views", page_view, methods=["POST"]),
]
