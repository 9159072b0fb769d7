"""Websocket handshakes go straight to their endpoints, past the HTTP middleware stack.

GZip, the exception middleware and the router do nothing for a websocket, yet each keeps a
coroutine frame alive for the socket's whole life, and Starlette wraps every `send` in a closure.
A customer socket stays open for the minutes the tracking page is open and a process holds tens
of thousands of them, so those frames are memory per connection and the wrapper is CPU per
message. HTTP requests (and any websocket path no endpoint matches) take the full stack.

What an endpoint raises is answered here (see `failsafe.SocketFailsafe`), in the frame that
exists anyway, rather than by uvicorn: a 500 and a traceback per handshake.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Match, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from livemap import metrics
from livemap.web.failsafe import SocketFailsafe

#: The scope key that names a socket's audience (its route's name: driver, customer, dispatcher).
KIND = "livemap.kind"


class DirectSockets:
    """ASGI wrapper around the livemap app: its websocket routes, dispatched directly."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self._routes = [r for r in app.routes if isinstance(r, WebSocketRoute)]
        self.failsafe = SocketFailsafe()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            for route in self._routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)  # path_params, as the router would set them
                    scope["app"] = self.app  # services(ws) reads app.state
                    scope[KIND] = route.name
                    ws = WebSocket(scope, receive, send)
                    open_sockets = metrics.SOCKETS.labels(route.name)
                    open_sockets.inc()
                    try:
                        await route.endpoint(ws)
                    except Exception as exc:
                        await self.failsafe(ws, exc)
                    finally:
                        open_sockets.dec()
                    return
        await self.app(scope, receive, send)
