"""uvicorn's websocket protocol (websockets' sans-I/O one), lighter per connection.

A process holds tens of thousands of idle customer sockets, so what each one keeps is what the
process costs. uvicorn's protocol gives every connection an `asyncio.Queue` (four deques, ~3 KB
before any message arrives), an `asyncio.Event` (one more deque) and keeps the handshake's request
and response, with their headers, for the socket's whole life (~2 KB). This subclass swaps in a
receive queue and a writable flag that allocate only while someone waits, and drops the handshake
once it is answered. Everything else (framing, keep-alive pings, closing) is uvicorn's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


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

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and getattr(self, "request", None) is not None:
            # Answered (accepted or refused): the handshake's headers are never read again.
            self.request = self.response = None  # type: ignore[assignment]  # uvicorn types them as always set
