"""A lean websocket client for the load generator, on picows (websocket framing in Cython).

On a two-core machine the load generator shares the CPU with the server it measures, so every
microsecond it spends per message is taken from the server. websockets' asyncio client costs a
task, a queue and several awaits per message; even its Sans-I/O protocol on a bare asyncio
Protocol spent ~15 us per received message parsing frames in Python (measured side by side:
19.5 vs 4.3 us per message, server and client in one process). picows parses a frame in C and
hands it to one callback; the payload is read in place (a memoryview valid during the call),
and a sent message is one ``transport.write``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

#: A received message's payload (msgspec decodes any of these; a memoryview is valid only during the call).
Data = bytes | bytearray | memoryview
OnMessage = Callable[[Data], None]


class WsClient(WSListener):
    """One client connection: ``await WsClient.connect(url, on_message)``; `closed` resolves to the
    server's close code (None when the connection just dropped)."""

    def __init__(self, on_message: OnMessage) -> None:
        self.on_message = on_message
        self.closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._transport: WSTransport | None = None
        self._close_code: int | None = None
        self._parts: list[bytes] = []  # a fragmented message, until its last frame

    @classmethod
    async def connect(cls, url: str, on_message: OnMessage, timeout_s: float = 60.0) -> WsClient:
        # No extensions: per-message deflate stays off, as livemap and the peers' clients run.
        async with asyncio.timeout(timeout_s):
            transport, client = await ws_connect(
                lambda: cls(on_message), url, websocket_handshake_timeout=timeout_s, max_frame_size=1 << 30
            )
        assert isinstance(client, WsClient)
        client._transport = transport
        return client

    def send_text(self, data: bytes) -> None:
        """Send `data` (UTF-8 JSON) as one text frame."""
        if self._transport is not None:
            self._transport.send(WSMsgType.TEXT, data)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.disconnect(graceful=False)

    # --- picows.WSListener --------------------------------------------------------------------

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY or kind is WSMsgType.CONTINUATION:
            if frame.fin and not self._parts:
                self.on_message(frame.get_payload_as_memoryview())
                return
            self._parts.append(frame.get_payload_as_bytes())
            if frame.fin:
                message, self._parts = b"".join(self._parts), []
                self.on_message(message)
        elif kind is WSMsgType.CLOSE:
            code = frame.get_close_code()  # a WSCloseCode: an IntEnum that also holds unlisted codes
            self._close_code = code.value
            transport.send_close(code)  # completes the closing handshake
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.closed.done():
            self.closed.set_result(self._close_code)
