"""`GET /api/analytics`: the store's figures over a period of its own days (store key or a dispatcher's session)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livemap.domain import analytics as an
from livemap.services import services
from livemap.web import auth, sessions
from livemap.web.errors import ApiError, json_response


@sessions.allows_session
async def get_analytics(request: Request) -> Response:
    principal = await auth.require(request, "store")
    repo, query = services(request).repo, request.query_params
    settings = await repo.settings(principal.store_id)
    tz = settings.timezone
    if query.get("tz", tz) != tz:  # the days were counted in the store's zone; another zone's days are not kept
        raise ApiError(422, "invalid_query", f"analytics are kept by the store's days: ask with tz={tz} or without tz")
    try:
        period = an.Period.parse(query.get("from"), query.get("to"), dt.datetime.now(zoneinfo.ZoneInfo(tz)).date())
    except ValueError as exc:
        raise ApiError(422, "invalid_query", str(exc)) from None
    totals = await repo.day_totals(principal.store_id, period, tz)
    machine = settings.machine()
    return json_response(an.summarize(totals, period, tz, machine.known))


routes = [Route("/api/analytics", get_analytics, methods=["GET"])]
