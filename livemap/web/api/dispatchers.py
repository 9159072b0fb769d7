"""`/api/dispatchers`: the store creates, lists and removes its dispatcher accounts with its key."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livemap.domain.messages import CreateDispatcher
from livemap.domain.responses import Dispatchers
from livemap.services import services
from livemap.storage import accounts
from livemap.web import auth, bodies, sessions
from livemap.web.errors import json_response


@sessions.allows_owner
async def create_dispatcher(request: Request) -> Response:
    principal = await auth.require(request, "store")
    body = await bodies.json(request, CreateDispatcher)
    created = await accounts.create(services(request).repo, principal.store_id, body.name, body.password)
    return json_response(created, 201)


@sessions.allows_owner
async def list_dispatchers(request: Request) -> Response:
    principal = await auth.require(request, "store")
    return json_response(Dispatchers(await accounts.all_of(services(request).repo, principal.store_id)))


@sessions.allows_owner
async def delete_dispatcher(request: Request) -> Response:
    """Remove an account: its signed-in sessions end at their next request."""
    principal = await auth.require(request, "store")
    removed = await accounts.remove(services(request).repo, principal.store_id, request.path_params["name"])
    return json_response(removed)


routes = [
    Route("/api/dispatchers", create_dispatcher, methods=["POST"]),
    Route("/api/dispatchers", list_dispatchers, methods=["GET"]),
    Route("/api/dispatchers/{name}", delete_dispatcher, methods=["DELETE"]),
]
