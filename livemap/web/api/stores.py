"""`/api/stores` (admin) and `/api/store`: a store is created, and reads and patches its settings."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livemap.domain.messages import CreateStore, describe
from livemap.domain.responses import StoreCreated
from livemap.domain.storesettings import MAX_PATCH_DEPTH, too_deep
from livemap.services import services
from livemap.web import auth, bodies, sessions
from livemap.web.destinations import vet_patch
from livemap.web.errors import ApiError, json_response


async def create_store(request: Request) -> Response:
    auth.require_admin(request)
    body = await bodies.json(request, CreateStore)
    sid, api_key = await services(request).repo.create_store(body.name)
    return json_response(StoreCreated(sid, body.name, api_key), 201)


@sessions.allows_owner
async def get_store(request: Request) -> Response:
    principal = await auth.require(request, "store")
    settings = await services(request).repo.settings_view(principal.store_id)
    return json_response({"id": principal.store_id, **settings})


@sessions.allows_owner
async def patch_store(request: Request) -> Response:
    principal = await auth.require(request, "store")
    patch = await bodies.json(request, dict[str, Any])
    if too_deep(patch):
        raise ApiError(422, "invalid_field", f"settings nest at most {MAX_PATCH_DEPTH} levels deep")
    await vet_patch(patch, services(request).outbound)
    try:
        settings = await services(request).repo.patch_settings(principal.store_id, patch)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "invalid_field", describe(exc)) from None
    return json_response({"id": principal.store_id, **settings})


async def replace_key(request: Request) -> Response:
    """A new API key; the one this request was made with is refused from now on."""
    principal = await auth.require(request, "store")  # the key itself: not a route dispatcher sessions may use
    repo = services(request).repo
    api_key = await repo.replace_store_key(principal.store_id, auth.credential(request))
    name = (await repo.settings(principal.store_id)).name
    return json_response(StoreCreated(principal.store_id, name, api_key))


routes = [
    Route("/api/stores", create_store, methods=["POST"]),
    Route("/api/store", get_store, methods=["GET"]),
    Route("/api/store", patch_store, methods=["PATCH"]),
    Route("/api/store/key", replace_key, methods=["POST"]),
]
