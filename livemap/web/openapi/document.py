"""The OpenAPI 3.1 document, built from the operations table and served at `/openapi.json`."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from livemap.domain import responses as r
from livemap.web.errors import NOSNIFF
from livemap.web.openapi.op import Op
from livemap.web.openapi.operations import OPERATIONS

_REF = "#/components/schemas/{name}"
_SECURITY_SCHEMES = (
    ("admin", "LIVEMAP_ADMIN_TOKEN"),
    ("metrics", "LIVEMAP_METRICS_TOKEN (the admin token when unset)"),
    ("store", "a store's API key (`lmk_...`)"),
    ("driver", "a driver's token (`lmd_...`)"),
)


def build() -> dict[str, Any]:
    """The OpenAPI 3.1 document for this version of livemap."""
    types: list[Any] = [r.ErrorBody]
    for op in OPERATIONS:
        types += [t for t in (op.body, *op.responses.values()) if t is not None]
        if op.websocket:
            types += [t for t in op.websocket if t is not None]
    # One schema per type, in the order listed: each operation takes its references in that order.
    refs, components = msgspec.json.schema_components(types, ref_template=_REF)
    error_ref, ref_of = refs[0], iter(refs[1:])
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, ref_of, error_ref)
    return {
        "openapi": "3.1.0",
        "info": {"title": "livemap", "version": _version(), "description": "Real-time delivery tracking."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                name: {"type": "http", "scheme": "bearer", "description": text} for name, text in _SECURITY_SCHEMES
            },
        },
    }


def _operation(op: Op, ref_of: Iterator[dict[str, Any]], error_ref: dict[str, Any]) -> dict[str, Any]:
    """One operation's object; takes its schema references from `ref_of`, in the order `build` listed them."""
    body_ref = next(ref_of) if op.body is not None else None
    # A response typed None has no body (204): it took no schema.
    response_refs = {status: next(ref_of) if t is not None else None for status, t in op.responses.items()}
    doc: dict[str, Any] = {
        "summary": op.summary,
        "operationId": re.sub(r"\W+", "_", f"{op.method}{op.path}").strip("_"),
    }
    if op.auth:
        doc["security"] = [{op.auth: []}]
    if op.params:
        doc["parameters"] = [
            {"name": n, "in": where, "required": where == "path", "description": d, "schema": {"type": "string"}}
            for n, where, d in op.params
        ]
    if body_ref is not None:
        doc["requestBody"] = {"required": True, "content": _json(body_ref)}
    doc["responses"] = {
        str(status): {"description": "OK" if status < 300 else "see body", "content": _json(ref)}
        if ref is not None
        else {"description": "No Content"}
        for status, ref in response_refs.items()
    }
    doc["responses"]["default"] = {"description": "error", "content": _json(error_ref)}
    if op.websocket:
        sends = op.websocket[0]
        doc["responses"] = {
            "101": {"description": "switching to the websocket protocol"},
            "default": doc["responses"]["default"],
        }
        doc["x-websocket"] = {"client-sends": next(ref_of) if sends is not None else None, "server-sends": next(ref_of)}
    return doc


def _json(ref: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": ref}}


def _version() -> str:
    try:
        return version("livemap")
    except PackageNotFoundError:
        return "0+unknown"


@functools.cache
def _encoded() -> bytes:
    return msgspec.json.encode(build())  # built once: it never changes while the process runs


async def openapi(request: Request) -> Response:
    return Response(_encoded(), media_type="application/json", headers=NOSNIFF)
