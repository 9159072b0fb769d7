"""Dispatcher sessions: a cookie naming a session kept in Redis, with the session's CSRF token.

The cookie holds only an unguessable id (HttpOnly, SameSite=Strict, Secure over https). The session
itself lives in Redis under the id's digest: it expires there, signing out ends it on every
process, and it remembers what it was opened with (the store key's credential, or the account's
version), so revoking that ends it too. A request authenticated by the cookie must, when it
changes something, echo the session's CSRF token in `X-CSRF-Token`; a websocket handshake must
come from our own origin (a browser attaches cookies to websocket handshakes and checks nothing
else: the server has to). A session reaches only what the dashboard uses; one signed in with the store
key (the store's owner) also reaches the settings page's endpoints: store settings, drivers and their
sign-in links, dispatcher accounts. A named dispatcher account never does, and replacing the key
itself still needs the key.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.responses import Response

from livemap.domain import security
from livemap.domain.records import Principal, decode_hash
from livemap.services import services
from livemap.storage import accounts
from livemap.storage.repository import Repository
from livemap.web.errors import ApiError, unauthorized

COOKIE = "lm_dispatch"
CSRF_HEADER = "x-csrf-token"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MARK = "_livemap_dispatcher_session"
_OWNER_MARK = "_livemap_owner_session"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def allows_session(endpoint: Endpoint) -> Endpoint:
    """Marks an endpoint a dispatcher's session may call instead of the store key: the dashboard's
    socket and the order and driver endpoints behind its actions. A mark on the function itself,
    not a list of names, so moving or renaming an endpoint cannot lock the dashboard out."""
    setattr(endpoint, _MARK, True)
    return endpoint


def allows_owner(endpoint: Endpoint) -> Endpoint:
    """Marks an endpoint of the settings page: a session signed in with the store key may call it
    instead of the key; a dispatcher account's session may not (it runs deliveries, not the store)."""
    setattr(endpoint, _OWNER_MARK, True)
    return endpoint


def session_allowed(endpoint: object) -> bool:
    """Whether `endpoint` carries the `allows_session` mark."""
    return getattr(endpoint, _MARK, False) is True


def owner_allowed(endpoint: object) -> bool:
    """Whether `endpoint` carries the `allows_owner` mark."""
    return getattr(endpoint, _OWNER_MARK, False) is True


@dataclass(frozen=True, slots=True)
class Session:
    store_id: str
    account: str  # "" when signed in with the store key
    csrf: str

    @property
    def owner(self) -> bool:
        """Signed in with the store key: the store's owner, who may change its settings."""
        return not self.account

    def may_call(self, endpoint: object) -> bool:
        return session_allowed(endpoint) or (self.owner and owner_allowed(endpoint))


def _key(store: Repository, token: str) -> str:
    return store.keys.session(security.digest(token))


async def start(store: Repository, store_id: str, account: str, proof: str, ttl_s: float) -> str:
    """A new session; returns its cookie value. `proof` is the key's credential or the account's version."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    key = _key(store, token)
    async with store.redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"store": store_id, "account": account, "csrf": csrf, "proof": proof})
        pipe.expire(key, int(ttl_s))
        await pipe.execute()
    return token


async def load(store: Repository, token: str) -> Session | None:
    """The session `token` names, if it exists and what opened it is still valid."""
    if not token:
        return None
    raw = decode_hash(await store.redis.hgetall(_key(store, token)))
    if not raw:
        return None
    sid, account, proof = raw["store"], raw["account"], raw["proof"]
    if account:
        valid = hmac.compare_digest(proof, await accounts.current_version(store, sid, account) or "")
    else:
        valid = bool(await store.redis.exists(proof))  # the store key's credential
    return Session(sid, account, raw["csrf"]) if valid else None


async def end(store: Repository, token: str) -> None:
    if token:
        await store.redis.delete(_key(store, token))


def set_cookie(response: Response, conn: HTTPConnection, token: str, ttl_s: float) -> None:
    response.set_cookie(
        COOKIE, token, max_age=int(ttl_s), path="/", secure=_https(conn), httponly=True, samesite="strict"
    )


def clear_cookie(response: Response, conn: HTTPConnection) -> None:
    response.delete_cookie(COOKIE, path="/", secure=_https(conn), httponly=True, samesite="strict")


def _https(conn: HTTPConnection) -> bool:
    # uvicorn's proxy_headers turn a TLS-terminating proxy's X-Forwarded-Proto into the scheme.
    return conn.url.scheme in ("https", "wss") or services(conn).settings.public_url.startswith("https://")


def same_origin(conn: HTTPConnection) -> bool:
    """Whether the request's `Origin` is this server (its Host, or LIVEMAP_PUBLIC_URL)."""
    origin = urlsplit(conn.headers.get("origin", "")).netloc
    ours = {conn.headers.get("host", ""), urlsplit(services(conn).settings.public_url).netloc}
    return bool(origin) and origin in ours


async def principal(conn: HTTPConnection) -> Principal:
    """The store whose dispatcher's session cookie came with `conn`; 401 without one, 403 when not allowed."""
    session = await load(services(conn).repo, conn.cookies.get(COOKIE, ""))
    if session is None:
        raise unauthorized()
    if not session.may_call(conn.scope.get("endpoint")):
        raise ApiError(403, "key_required", "this endpoint needs the store's API key, not a dispatcher session")
    if conn.scope["type"] == "websocket":
        if not same_origin(conn):
            raise ApiError(403, "forbidden_origin", "a dispatcher session opens this socket only from its own site")
    elif conn.scope["method"] in _UNSAFE:
        given = conn.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(given.encode(), session.csrf.encode()):
            raise ApiError(403, "csrf_failed", f"send the page's CSRF token in {CSRF_HEADER}")
    return Principal("store", session.store_id)
