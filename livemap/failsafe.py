"""The last line of defence: an exception no endpoint turned into an answer becomes a typed 500.

The caller gets `{"error": {"code": "internal_error", "message": ..., "error_id": ...}}` and no
traceback; the log gets the traceback under the same id and a running count, so a report quoting
the id finds its line, and a count that moves shows a defect to fix.
"""

from __future__ import annotations

import logging
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livemap.errors import ApiError, error_response

log = logging.getLogger("livemap.errors")


class CatchAll:
    """ASGI middleware: turns any unhandled exception of an HTTP request into a logged, typed 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        #: Unhandled errors since start (each logged with its id and this count).
        self.count = 0

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
        except Exception:
            self.count += 1
            error_id = secrets.token_hex(6)
            # The path only: a query string may carry a credential.
            log.exception("internal error %s (#%d) on %s %s", error_id, self.count, scope["method"], scope["path"])
            if started:  # part of the answer is out: uvicorn closes the connection, the client sees it cut
                return
            message = f"unexpected error; quote {error_id} when reporting it"
            await error_response(ApiError(500, "internal_error", message, error_id=error_id))(scope, receive, send)
