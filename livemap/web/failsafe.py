"""The last line of defence: an exception no endpoint turned into an answer becomes a typed 500.

The caller gets `{"error": {"code": "internal_error", "message": ..., "error_id": ...}}` and no
traceback; the log gets the traceback under the same id and a running count, so a report quoting
the id finds its line, and a count that moves shows a defect to fix.

A websocket endpoint's exception gets the same (`SocketFailsafe`). When storage is away, a request
or a handshake gets a 503 `unavailable` instead (the client retries) and the log a warning at most
every `_UNAVAILABLE_REPORT_S` seconds, not a traceback per request (an outage brings thousands).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time

from redis import exceptions as redis_errors
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from uvicorn.protocols.utils import ClientDisconnected

from livemap.web.errors import ApiError, error_response

log = logging.getLogger("livemap.errors")

#: Websocket close codes (RFC 6455 registry): "try again later" and "internal error".
_CLOSE_TRY_AGAIN, _CLOSE_INTERNAL = 1013, 1011
#: Least time between two warnings about sockets refused because storage is away.
_UNAVAILABLE_REPORT_S = 10.0
#: What storage being away (down, restarting, failing over, full) raises: not a defect of ours, so a
#: 503, not a 500. TimeoutError also covers the hub's bounded wait for its pub/sub connection. Any
#: other Redis error (WRONGTYPE, a script's error) is a defect: a 500 with an id.
_UNAVAILABLE = (
    redis_errors.ConnectionError,  # BusyLoadingError (an AOF replaying) and MaxConnectionsError among them
    redis_errors.TimeoutError,
    redis_errors.ClusterError,  # CLUSTERDOWN, MASTERDOWN
    redis_errors.TryAgainError,
    redis_errors.ReadOnlyError,  # a failover's old primary
    redis_errors.OutOfMemoryError,
    redis_errors.SlotNotCoveredError,
    redis_errors.RedisClusterUnreachableError,
    ConnectionError,
    TimeoutError,
)


class _Outages:
    """Counts what was refused because storage was away; logs it at most every `_UNAVAILABLE_REPORT_S`."""

    def __init__(self, what: str) -> None:
        self.what = what  # "request(s) answered 503"...
        #: Refused since start.
        self.count = 0
        self._reported_at = float("-inf")
        self._unreported = 0

    def note(self, where: str, exc: Exception) -> None:
        self.count += 1
        self._unreported += 1
        now = time.monotonic()
        if now - self._reported_at < _UNAVAILABLE_REPORT_S:
            return
        log.warning(
            "storage unavailable (%s: %s): %d %s since the last report, the last on %s",
            type(exc).__name__,  # redis-py's repr of its errors names their category only
            exc,
            self._unreported,
            self.what,
            where,
        )
        self._reported_at, self._unreported = now, 0


class CatchAll:
    """ASGI middleware: turns any unhandled exception of an HTTP request into a logged, typed 500
    (a 503 `unavailable` when storage is away)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        #: Unhandled errors since start (each logged with its id and this count).
        self.count = 0
        self.outages = _Outages("request(s) answered 503")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except _UNAVAILABLE as exc:
            self.outages.note(f"{scope['method']} {scope['path']}", exc)  # the path only: no query, no credential
            if not started:
                err = ApiError(503, "unavailable", "storage is unavailable; try again shortly")
                await error_response(err)(scope, receive, send)
        except Exception:
            self.count += 1
            error_id = secrets.token_hex(6)
            # The path only: a query string may carry a credential.
            log.exception("internal error %s (#%d) on %s %s", error_id, self.count, scope["method"], scope["path"])
            if started:  # part of the answer is out: uvicorn closes the connection, the client sees it cut
                return
            message = f"unexpected error; quote {error_id} when reporting it"
            await error_response(ApiError(500, "internal_error", message, error_id=error_id))(scope, receive, send)


class SocketFailsafe:
    """Turns an exception out of a websocket endpoint into an answer: before the socket is accepted
    an HTTP 503 (storage away) or a typed 500, after it a close with 1013 or 1011."""

    def __init__(self) -> None:
        #: Unexpected errors since start (each logged with its id and this count).
        self.count = 0
        #: Sockets refused or closed because storage was away.
        self.outages = _Outages("websocket(s) refused with 503 or closed with 1013")

    async def __call__(self, ws: WebSocket, exc: Exception) -> None:
        if isinstance(exc, WebSocketDisconnect | ClientDisconnected):
            return  # the client left: nobody to answer, nothing wrong
        path = ws.scope["path"]  # the path only: a query string may carry a credential
        if isinstance(exc, _UNAVAILABLE):
            self.outages.note(path, exc)
            err = ApiError(503, "unavailable", "storage is unavailable; try again shortly")
            await _answer(ws, err, _CLOSE_TRY_AGAIN, "storage is unavailable: reconnect")
            return
        self.count += 1
        error_id = secrets.token_hex(6)
        log.error("internal error %s (#%d) on websocket %s", error_id, self.count, path, exc_info=exc)
        message = f"unexpected error; quote {error_id} when reporting it"
        err = ApiError(500, "internal_error", message, error_id=error_id)
        await _answer(ws, err, _CLOSE_INTERNAL, f"unexpected error {error_id}")


async def _answer(ws: WebSocket, err: ApiError, code: int, reason: str) -> None:
    # The client may be gone, or part of an answer out: then there is nothing more to say.
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        if ws.application_state is WebSocketState.CONNECTING:
            if "websocket.http.response" in ws.scope.get("extensions", {}):
                await ws.send_denial_response(error_response(err))
            else:  # a server without the denial extension: a close before accept (uvicorn would make it a 403)
                await ws.close(code, reason)
        elif ws.application_state is WebSocketState.CONNECTED:
            await ws.close(code, reason)
