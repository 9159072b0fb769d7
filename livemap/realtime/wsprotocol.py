"""uvicorn's websocket protocol (websockets' sans-I/O one), lighter per connection.

A process holds tens of thousands of idle customer sockets, so what each one keeps is what the
process costs. uvicorn's protocol gives every connection an `asyncio.Queue` (four deques, ~3 KB
before any message arrives), an `asyncio.Event` (one more deque) and keeps the handshake's request
and response, with their headers, for the socket's whole life (~2 KB). This subclass swaps in a
receive queue and a writable flag that allocate only while someone waits, and drops the handshake
once it is answered. Everything else (framing, keep-alive pings, closing) is uvicorn's.

It also offers the app a way past the ASGI `send` for the hot paths (see `write_now`): a message
that the socket can take at once is written at once, already framed, without a task, an ASGI
message dict and the three layers of checks each `send` goes through; the frame of a message
many customers get is built once. A process sends tens of thousands of messages a second, most
to sockets with nothing queued, so this is most of the cost of a send.
"""

from __future__ import annotations

import asyncio
import struct
from functools import lru_cache
from typing import Any, Protocol

from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

#: The ASGI extension (in the socket's scope) under which the protocol offers `write_now`.
SENDER = "livemap.sender"


class Sender(Protocol):
    def write_now(self, frames: bytes) -> bool: ...


def sender_of(ws: WebSocket) -> Sender | None:
    """The socket's direct writer, when the server is livemap's (`livemap serve`); else None."""
    sender: Sender | None = ws.scope.get("extensions", {}).get(SENDER)
    return sender


def frame(payload: bytes) -> bytes:
    """`payload` as one unmasked, final text frame (RFC 6455 5.2; a server never masks)."""
    size = len(payload)
    if size < 126:
        return b"\x81" + bytes((size,)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


@lru_cache(maxsize=1024)
def text_frame(message: str) -> bytes:
    """`message`'s frame, built once for all the sockets it goes to (the hub hands every subscriber
    of a channel the same str object, whose hash is cached: a hit costs an identity compare)."""
    return frame(message.encode())


class _Inbox:
    """The receive queue: what uvicorn's protocol uses of `asyncio.Queue` (put_nowait, get, empty).

    One consumer, the ASGI app's `receive` (ASGI forbids concurrent receives). uvicorn pauses
    reading while a message waits here, so it holds a few messages at most.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            if self._waiter is not None:
                raise RuntimeError("a websocket's messages were read by two receivers at once")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class _Flag:
    """The writable flag: what the protocol uses of `asyncio.Event` (set, clear, is_set, wait)."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        await waiter


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `websockets-sansio` protocol with less state per connection (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Duck-typed stand-ins: uvicorn only calls the methods these implement.
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.handshake_initiated and not self.handshake_complete:  # a scope for the app was made
            self.scope["extensions"][SENDER] = self  # type: ignore[assignment]  # ASGI types extension values as dicts

    def write_now(self, frames: bytes) -> bool:
        """Write complete frames (see `frame`) now if the socket takes them without waiting: open, not
        closing, its transport below the high-water mark. False (nothing written) otherwise: the caller
        then sends through ASGI, which waits. A caller must not mix the two for one stream of messages
        while an ASGI send of it is still waiting, or that one would go out after this."""
        if self.close_sent or self.disconnected or not self.writable.is_set() or self.conn.state is not State.OPEN:
            return False
        self.transport.write(frames)
        return True

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and getattr(self, "request", None) is not None:
            # Answered (accepted or refused): the handshake's headers are never read again.
            self.request = self.response = None  # type: ignore[assignment]  # uvicorn types them as always set
