"""uvicorn's httptools protocol with deadlines for silent and slow clients.

uvicorn bounds only the wait between two requests of a kept-alive connection (`timeout_keep_alive`,
armed after a first response, and reset by any byte that arrives). A connection that never sends
anything, request headers sent a byte at a time (slowloris) or a body trickled in (R.U.D.Y.) hold a
socket and a file, and for a body an endpoint's task, for as long as the client likes; a few hundred
of them fill a process's file table. uvicorn has no option for it (encode/uvicorn#157, #1192; a
`--timeout-request-start` was proposed in #1685 and closed unmerged). This subclass adds the two
deadlines nginx (`client_header_timeout`, `client_body_timeout`) and Apache's mod_reqtimeout have:

- headers: complete within `header_timeout` seconds of the connection's opening, and on a kept-alive
  connection of the first byte of each next request (between requests, the keep-alive timeout);
- body: no gap over `body_timeout` between two of its parts, and past a first `body_timeout` at least
  `body_min_rate` bytes a second on average (mod_reqtimeout's `MinRate`): a byte a second is cut, a
  photo over a slow phone link is not.

Past either the connection is closed, after a 408 when a request was under way and nothing of an
answer was sent; an endpoint reading the body sees a disconnect. Time the server itself does not read
(its buffer full while the endpoint is busy, or a `100 Continue` not yet sent) is not counted.

A websocket's deadline ends with its upgrade request's headers: the upgraded connection belongs to
the websocket protocol, which this never touches (customers keep their sockets open while the page
is). No per-message work is added there, and on a kept-alive HTTP connection a request whose headers
arrive in one piece arms no timer at all.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

log = logging.getLogger("livemap.http")

_REASONS = {408: b"request timed out\n", 503: b"server restarting: send again\n"}


class TimedHttpProtocol(HttpToolsProtocol):
    """uvicorn's `httptools` protocol with header and body deadlines (see the module doc).

    The class attributes are the defaults; `with_limits` makes a subclass with a deployment's values,
    for `uvicorn.Config(http=...)` (uvicorn builds one protocol per connection from the class).
    """

    header_timeout = 10.0
    body_timeout = 10.0
    body_min_rate = 500.0

    @classmethod
    def with_limits(cls, header_timeout: float, body_timeout: float, body_min_rate: float) -> type[TimedHttpProtocol]:
        """This protocol with these limits (seconds, seconds, bytes per second; a min rate of 0 checks gaps only)."""
        limits = {"header_timeout": header_timeout, "body_timeout": body_timeout, "body_min_rate": body_min_rate}
        return type(cls.__name__, (cls,), limits)

    # Per connection: these exist on every HTTP connection, so they are plain attributes, no objects.
    _header_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _shutdown_timer: asyncio.TimerHandle | None = None
    #: Bytes that arrive belong to the next request's headers (from the connection's opening, and
    #: again once a request's message is complete).
    _awaiting_headers = True
    #: Some of the next request arrived (the parser began a message): a timeout answers it with 408.
    _request_begun = False
    #: A request's headers are complete and its body is not.
    _reading_body = False
    #: A request's message ended in the data being parsed.
    _completed = False
    _body_start = 0.0
    _body_last = 0.0
    _body_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._completed = False
        super().data_received(data)
        # Armed after parsing, so a request that arrived whole costs no timer; the parse took no time,
        # so a deadline armed now starts with the next request's first byte. That is a byte of a begun
        # request, or one that began none (the parser skips blank lines: a client sending only those
        # would otherwise hold the connection, each byte resetting uvicorn's keep-alive timeout).
        if (
            self._header_timer is None
            and self._awaiting_headers
            and (self._request_begun or not self._completed)
            and not self.transport.is_closing()
        ):
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)
        if self._body_timer is None and self._reading_body and not self.transport.is_closing():
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_check)

    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        # The transport is the websocket protocol's now: nothing of this one may be armed or kept alive.
        self._awaiting_headers = self._reading_body = False
        self._cancel_timers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_begun = True

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._awaiting_headers = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if self.parser.should_upgrade() and self._should_upgrade():
            return  # a websocket: no body, and the connection is the websocket protocol's from here
        self._reading_body = True
        self._body_start = self._body_last = self.loop.time()
        self._body_bytes = 0

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._body_bytes += len(body)
        self._body_last = self.loop.time()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._completed = True
        self._reading_body = False
        self._awaiting_headers = True
        self._request_begun = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def shutdown(self) -> None:
        super().shutdown()
        # uvicorn lets a request under way finish, and at `timeout_graceful_shutdown` cancels its task
        # (logged as an "Exception in ASGI application" with a traceback, answered 500). A client still
        # sending its body then is cut by the same deadline here, just before: it gets a 503 (send
        # again, to a process that is not stopping) and the endpoint sees a disconnect and returns.
        deadline = self.config.timeout_graceful_shutdown
        if self._reading_body and deadline is not None and not self.transport.is_closing():
            self._shutdown_timer = self.loop.call_later(deadline, self._shutdown_late)

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._body_timer, self._shutdown_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = self._shutdown_timer = None

    def _ours(self) -> bool:
        """Whether the connection is still this protocol's (not upgraded, not closing)."""
        return not self.transport.is_closing() and self.transport.get_protocol() is self

    def _not_reading(self) -> bool:
        """Whether the server, not the client, is why nothing arrives: reading paused (the endpoint has
        not taken what is buffered, or a pipelined request waits) or a `100 Continue` not yet sent."""
        return self.flow.read_paused or (self.cycle is not None and self.cycle.waiting_for_100_continue)

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self._ours() or not self._awaiting_headers:
            return
        if self._not_reading() or (self.cycle is not None and not self.cycle.response_complete):
            # Bytes of a next request while this one is still answered: its deadline starts after.
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)
            return
        log.debug("%s - request headers not complete within %.1f s: closing", self._peer(), self.header_timeout)
        # A connection that sent nothing asked nothing: closed without an answer, as the keep-alive
        # timeout closes one (a browser's preconnected socket must not read a 408 as its next answer).
        self._time_out(answer=self._request_begun)

    def _body_check(self) -> None:
        self._body_timer = None
        if not self._ours() or not self._reading_body:
            return
        now = self.loop.time()
        if self._not_reading():
            # Nothing can arrive while the server does not read: the client's clock starts again after.
            self._body_start = self._body_last = now
            self._body_bytes = 0
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_check)
            return
        deadline = self._body_last + self.body_timeout
        if self.body_min_rate > 0:
            deadline = min(deadline, self._body_start + self.body_timeout + self._body_bytes / self.body_min_rate)
        if now < deadline:
            self._body_timer = self.loop.call_later(deadline - now, self._body_check)
            return
        took = now - self._body_start
        log.debug("%s - request body too slow (%d bytes in %.1f s): closing", self._peer(), self._body_bytes, took)
        self._cut_body(408)

    def _shutdown_late(self) -> None:
        self._shutdown_timer = None
        if self._ours() and self._reading_body:
            self._cut_body(503)

    def _cut_body(self, status: int) -> None:
        """End a request whose body is still arriving: `status` if nothing was answered yet, then close."""
        answer = not self.cycle.response_started
        if answer and self.access_log:  # the line any answer gets (uvicorn's own format, which takes these five)
            scope = self.cycle.scope
            args = (get_client_addr(scope), scope["method"], get_path_with_query_string(scope), scope["http_version"])
            self.access_logger.info('%s - "%s %s HTTP/%s" %d', *args, status)
        self._time_out(answer, status)

    def _time_out(self, answer: bool, status: int = 408) -> None:
        if answer:
            text = _REASONS[status]
            head = [STATUS_LINE[status]]
            head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
            head.append(b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\n")
            head.append(b"content-length: %d\r\n\r\n" % len(text))
            self.transport.write(b"".join(head) + text)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # What connection_lost will do, now: the endpoint's receive() returns a disconnect and its
            # send() writes nothing, even if it runs before the transport reports the close.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "?"
