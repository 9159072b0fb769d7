"""A lean websocket client for the load generator: websockets' Sans-I/O protocol on an asyncio Protocol.

On a two-core machine the load generator shares the CPU with the server it measures, so every
microsecond it spends per message is taken from the server. websockets' asyncio client costs a
task, a queue and several awaits per message; here a received message is one callback, run
straight from the transport's ``data_received``, and a sent one is one ``transport.write``. The
protocol (framing, masking, handshake, pings, closing) is still websockets' own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

#: A received message's payload, as websockets' frames carry it (msgspec decodes any of these).
Data = bytes | bytearray | memoryview
OnMessage = Callable[[Data], None]


class WsClient(asyncio.Protocol):
    """One client connection: ``await WsClient.connect(url, on_message)``; `closed` resolves to the
    server's close code (None when the connection just dropped)."""

    def __init__(self, url: str, on_message: OnMessage) -> None:
        loop = asyncio.get_running_loop()
        self.on_message = on_message
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[int | None] = loop.create_future()
        # No extensions: per-message deflate stays off, as livemap and the peers' clients run.
        self._ws = ClientProtocol(parse_uri(url), max_size=None)
        self._transport: asyncio.Transport | None = None
        self._parts: list[Data] = []  # a fragmented message, until its last frame

    @classmethod
    async def connect(cls, url: str, on_message: OnMessage, timeout_s: float = 60.0) -> WsClient:
        uri = parse_uri(url)
        loop = asyncio.get_running_loop()
        client = cls(url, on_message)
        try:
            async with asyncio.timeout(timeout_s):
                await loop.create_connection(lambda: client, uri.host, uri.port)
                await client.opened
        except BaseException:
            client.abort()
            raise
        return client

    def send_text(self, data: bytes) -> None:
        """Send `data` (UTF-8 JSON) as one text frame."""
        self._ws.send_text(data)
        self._flush()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _flush(self) -> None:
        assert self._transport is not None
        for chunk in self._ws.data_to_send():
            if chunk:
                self._transport.write(chunk)
            else:  # the protocol is done with the connection (closing handshake finished)
                self._transport.close()

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._ws.send_request(self._ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        self._ws.receive_data(data)
        for event in self._ws.events_received():
            if isinstance(event, Frame):
                self._frame(event)
            elif isinstance(event, Response) and not self.opened.done():
                exc = self._ws.handshake_exc
                if exc is None:
                    self.opened.set_result(None)
                else:
                    self.opened.set_exception(exc)
        self._flush()  # pongs, the closing handshake

    def _frame(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            if frame.fin and not self._parts:
                self.on_message(frame.data)
                return
            self._parts.append(frame.data)
            if frame.fin:
                message, self._parts = b"".join(self._parts), []
                self.on_message(message)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            rcvd = self._ws.close_rcvd
            self.closed.set_result(None if rcvd is None else rcvd.code)
