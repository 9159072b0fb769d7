"""Helpers shared by the websocket endpoints: refusing a handshake, pumping a subscription."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket, WebSocketDisconnect

from livemap.errors import ApiError, error_response
from livemap.hub import Subscription

#: Close code for a slow consumer: "try again later" (RFC 6455 registry), then replay with `since`.
CLOSE_SLOW_CONSUMER = 1013


async def deny(ws: WebSocket, err: ApiError) -> None:
    """Refuse the handshake with an HTTP status and the JSON error body (websocket denial response)."""
    await ws.send_denial_response(error_response(err))


async def run_until_disconnect(ws: WebSocket, *tasks: Awaitable[None]) -> None:
    """Run `tasks` until one ends (the client left, or a sender stopped); cancel the rest."""
    running = [asyncio.ensure_future(t) for t in tasks]
    try:
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            exc = task.exception()
            if exc is not None and not isinstance(exc, WebSocketDisconnect):
                raise exc
    finally:
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await task


async def drain_client(ws: WebSocket, on_message: Callable[[str | bytes], Awaitable[None]] | None = None) -> None:
    """Read the client's messages (text or binary) until it disconnects, handing each to `on_message`."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("text")
        if data is None:
            data = message.get("bytes")
        if on_message is not None and data is not None:
            await on_message(data)


async def pump(ws: WebSocket, sub: Subscription, keep: Callable[[str], bool] | None = None) -> None:
    """Send the subscription's messages to the socket; close with 1013 if it was dropped as slow."""
    while True:
        data = await sub.queue.get()
        if data is None:
            await ws.close(CLOSE_SLOW_CONSUMER, "slow consumer: reconnect with since")
            return
        if keep is None or keep(data):
            await ws.send_text(data)
