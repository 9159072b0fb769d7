"""Who is calling: admin token, store API key (or a dispatcher's session), driver token, customer tracking token."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from livemap.domain import security
from livemap.domain.records import NotFound, Principal
from livemap.services import services
from livemap.web import sessions
from livemap.web.errors import ApiError, not_found, unauthorized


def credential(conn: HTTPConnection, query_param: str = "token") -> str:
    """The bearer credential: `Authorization: Bearer X`, else the query parameter (websockets)."""
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return conn.query_params.get(query_param, "")


def require_admin(conn: HTTPConnection) -> None:
    expected = services(conn).settings.admin_token
    if not security.same_secret(credential(conn), str(expected)):
        raise unauthorized("admin token required")


def require_metrics(conn: HTTPConnection) -> None:
    """The metrics token (LIVEMAP_METRICS_TOKEN), or the admin token when none is set."""
    settings = services(conn).settings
    expected = str(settings.metrics_token) or str(settings.admin_token)
    if not security.same_secret(credential(conn), expected):
        raise unauthorized("metrics token required (LIVEMAP_METRICS_TOKEN, else the admin token)")


async def require(conn: HTTPConnection, kind: str) -> Principal:
    """The store (or driver) the credential belongs to; 401 without one, 403 for the other kind.

    Without a credential, a dispatcher's session cookie stands for its store (see `sessions`).
    """
    token = credential(conn)
    if not token and kind == "store":
        return await sessions.principal(conn)
    principal = await services(conn).repo.principal(token)
    if principal is None:
        raise unauthorized()
    if principal.kind != kind:
        raise ApiError(403, "forbidden", f"this endpoint needs a {kind} credential")
    return principal


async def authorize_tracking(request_or_ws: HTTPConnection, tid: str) -> None:
    """Raise unless `t` (query) or a bearer header is this order's tracking token."""
    token = credential(request_or_ws, "t")
    if not token:
        raise ApiError(401, "unauthorized", "tracking token `t` required")
    try:
        order = await services(request_or_ws).repo.order(tid)
    except NotFound:
        order = None
    # The same answer for an unknown order and a wrong token: a link either works or it does not.
    if order is None or not security.matches(token, order.token_digest):
        raise not_found("no order matches this tracking link")
