"""Helpers shared by the websocket endpoints: refusing a handshake, reading a client, forwarding a subscription."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket, WebSocketDisconnect

from livemap import metrics
from livemap.realtime.mailbox import Subscription
from livemap.realtime.wsprotocol import Sender, frame, sender_of, text_frame
from livemap.web.errors import ApiError, error_response
from livemap.web.wsdirect import KIND

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


def _written_now(sender: Sender | None, messages: list[str]) -> bool:
    """Whether `messages` went out at once, framed, in one write (see `Sender.write_now`)."""
    return sender is not None and sender.write_now(b"".join(map(text_frame, messages)))


async def send_texts(ws: WebSocket, messages: list[str]) -> None:
    """Send `messages` in order: in one write when the socket takes them now (a dispatcher's second of
    locations is one system call, not thousands), else one by one as the socket drains."""
    if _written_now(sender_of(ws), messages):
        return
    for message in messages:
        await ws.send_text(message)


async def send_json(ws: WebSocket, payload: bytes, lock: asyncio.Lock) -> None:
    """Send one encoded JSON message: written at once when the socket takes it and no sender holding
    `lock` is waiting on it, else through ASGI under `lock`."""
    sender = sender_of(ws)
    if sender is not None and not lock.locked() and sender.write_now(frame(payload)):
        return
    async with lock:
        await ws.send_text(payload.decode())


class Forwarder:
    """Sends a subscription's messages to its socket, in order: written at once, from the hub's
    delivery, while the socket takes them without waiting (no task at all); else from a task that
    exists only while there is something to send. An idle socket (most customers, most of the time)
    costs no task.

    Start it once the socket may receive live messages (after a snapshot and replay); what arrived
    before is sent first. A dropped (slow) subscriber's socket is closed with 1013.
    """

    __slots__ = ("_keep", "_sender", "_sub", "_task", "_ws")

    def __init__(self, ws: WebSocket, sub: Subscription, keep: Callable[[str], bool] | None = None) -> None:
        self._ws, self._sub, self._keep = ws, sub, keep
        self._sender = sender_of(ws)
        self._task: asyncio.Task[None] | None = None
        sub.on_ready = self._wake
        self._wake()

    async def aclose(self) -> None:
        self._sub.on_ready = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError, OSError):
                await self._task

    def _wake(self) -> None:
        if self._task is not None or not (self._sub.dropped or self._sub.pending):
            return
        batch: list[str] = []
        if not self._sub.dropped:
            batch = self._kept(self._sub.take())
            if not batch or _written_now(self._sender, batch):
                return
        self._task = asyncio.create_task(self._send(batch))
        self._task.add_done_callback(self._sent)

    def _kept(self, batch: list[str]) -> list[str]:
        return batch if self._keep is None else [data for data in batch if self._keep(data)]

    async def _send(self, batch: list[str]) -> None:
        while batch:
            for data in batch:
                await self._ws.send_text(data)
            batch = self._kept(self._sub.take())
        if self._sub.dropped:
            self._sub.on_ready = None  # closed once; nothing more to send
            metrics.SLOW_CLOSES.labels(self._ws.scope.get(KIND, "unknown")).inc()
            await self._ws.close(CLOSE_SLOW_CONSUMER, "slow consumer: reconnect with since")

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._task = None
        if not task.cancelled() and task.exception() is not None:
            # The client went away mid-send: the socket's reader sees the disconnect and ends it.
            self._sub.on_ready = None
            return
        if self._sub.pending and not self._sub.dropped:  # arrived while the last send finished
            self._wake()
