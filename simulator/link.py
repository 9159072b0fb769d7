"""One driver's websocket to livemap: buffered fixes, one message in flight, reconnect with backoff.

A phone keeps recording while its connection is down and sends the backlog when it comes back;
the link does the same. Fixes wait in a bounded buffer; whatever has accumulated while the
previous message awaited its reply goes out as one batch, so the server sees at most one
message in flight per driver and a slow server gets fewer, larger messages instead of a flood.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .driver import Fix
from .stats import Stats

log = logging.getLogger(__name__)

_Wire = dict[str, object]


class _Rejected(msgspec.Struct):
    index: int
    code: str = ""


class _Reply(msgspec.Struct):
    """An ack or error reply; other server pushes decode too and are told apart by ``type``."""

    type: str
    seq: int | None = None
    accepted: int = 0
    ignored: int = 0
    rejected: list[_Rejected] = []
    code: str = ""
    message: str = ""


_decode_reply = msgspec.json.Decoder(_Reply).decode
_encode = msgspec.json.Encoder().encode


#: Error codes that refuse a message for now, not for good, and how long to wait before sending again.
_TRY_LATER = {"rate_limited": 0.1, "unavailable": 1.0}


class _Lost(Exception):
    """The connection stopped answering or closed under us."""


def driver_socket_url(base_url: str) -> str:
    """``ws(s)://host/ws/driver`` for an ``http(s)://host`` server URL."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws/driver", "", ""))


class DriverLink:
    """The socket of one driver: :meth:`push` fixes any time, :meth:`run` delivers them.

    ``label`` names the driver in logs; the token never appears there.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        stats: Stats,
        *,
        label: str,
        max_batch: int = 200,
        max_buffer: int = 10_000,
        reply_timeout_s: float = 30.0,
        max_backoff_s: float = 30.0,
        on_push: Callable[[str | bytes], None] | None = None,
    ) -> None:
        self._uri = f"{driver_socket_url(base_url)}?{urlencode({'token': token})}"
        self._stats = stats
        self.label = label
        # Servers bound message size; a batch this long stays far below any sane limit, and an
        # error reply to a batch halves it in case this server's limit is lower.
        self._max_batch = max_batch
        self._max_buffer = max_buffer
        self._reply_timeout_s = reply_timeout_s
        self._max_backoff_s = max_backoff_s
        self._buffer: deque[_Wire] = deque()
        self._inflight: list[_Wire] = []
        self._seq = 0
        self._wake = asyncio.Event()
        self.connected = False
        self._errors_logged = 0
        self._answered = False
        #: Server pushes other than replies (livemap's ``stops``) go to ``on_push`` as received.
        self._on_push = on_push
        #: Highest ``seq`` the server has answered for (stored, ignored or refused for good).
        self.settled_seq = 0
        self._settled = asyncio.Event()

    @property
    def pushed_seq(self) -> int:
        """``seq`` of the newest fix pushed (fixes are numbered 1, 2, ... in push order)."""
        return self._seq

    @property
    def backlog(self) -> int:
        """Fixes waiting to be sent or acknowledged."""
        return len(self._buffer) + len(self._inflight)

    def push(self, fix: Fix) -> None:
        """Queue a fix; if the backlog is full (a long outage), the oldest fix is dropped."""
        self._seq += 1
        self._buffer.append(fix.to_wire(self._seq))
        self._trim()
        self._wake.set()

    def _trim(self) -> None:
        while len(self._buffer) > self._max_buffer:
            self._buffer.popleft()
            self._stats.fixes_dropped += 1

    async def run(self) -> None:
        """Connect, deliver fixes, reconnect with jittered exponential backoff; runs until cancelled."""
        backoff = 0.5
        ever_connected = False
        while True:
            self._answered = False
            try:
                async with connect(
                    self._uri,
                    open_timeout=10,
                    close_timeout=2,
                    # Fixes are ~150 bytes: deflate would only cost the server a compressor per socket.
                    compression=None,
                    max_size=2**20,
                ) as ws:
                    if ever_connected:
                        self._stats.reconnects += 1
                        log.info("driver %s: reconnected; %d fixes to send", self.label, self.backlog)
                    ever_connected = True
                    self.connected = True
                    self._stats.sockets_open += 1
                    try:
                        await self._session(ws)
                    except asyncio.CancelledError:
                        # Leaving `async with` on an exception closes with 1011 (internal error); a
                        # simulator that is told to stop is a normal closure.
                        await ws.close(1000, "simulator stopping")
                        raise
                    finally:
                        self.connected = False
                        self._stats.sockets_open -= 1
            except InvalidStatus as exc:
                status = exc.response.status_code
                level = logging.WARNING if status in (401, 403) else logging.INFO
                log.log(level, "driver %s: server refused the socket (HTTP %s)", self.label, status)
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed, _Lost) as exc:
                log.info("driver %s: connection lost (%s); reconnecting", self.label, _describe(exc))
            if self._answered:
                # The connection worked before it broke: start over from a short delay.
                backoff = 0.5
            # Full jitter: after a server restart, N drivers must not all reconnect in the same instant.
            await asyncio.sleep(random.uniform(0.5, 1.0) * backoff)
            backoff = min(backoff * 2, self._max_backoff_s)

    async def _session(self, ws: ClientConnection) -> None:
        """Deliver fixes over one connection until it fails."""
        replies: asyncio.Queue[_Reply | None] = asyncio.Queue()
        reader = asyncio.create_task(self._read(ws, replies), name=f"read {self.label}")
        try:
            while True:
                while not self._buffer:
                    self._wake.clear()
                    await self._wake.wait()
                    if reader.done():
                        return
                batch = [self._buffer.popleft() for _ in range(min(len(self._buffer), self._max_batch))]
                self._inflight = batch
                await ws.send(_encode(batch[0] if len(batch) == 1 else batch), text=True)
                self._stats.messages_sent += 1
                self._stats.fixes_sent += len(batch)
                try:
                    reply = await asyncio.wait_for(replies.get(), self._reply_timeout_s)
                except TimeoutError:
                    self._stats.reply_timeouts += 1
                    raise _Lost(f"no reply in {self._reply_timeout_s:g} s") from None
                if reply is None:
                    raise _Lost("closed by the server")
                self._answered = True
                pause = self._settle(batch, reply)
                if pause:
                    await asyncio.sleep(pause)
        finally:
            reader.cancel()
            # asyncio.wait, not `await reader`: it never re-raises, so it cannot swallow our own cancellation.
            await asyncio.wait([reader])
            if self._inflight:
                # Not acknowledged: send again after reconnecting (the server ignores what it already has).
                self._buffer.extendleft(reversed(self._inflight))
                self._inflight = []
                self._trim()

    async def wait_settled(self, seq: int) -> None:
        """Wait until the server has answered for every fix up to ``seq`` (bound it with a timeout)."""
        while self.settled_seq < seq:
            self._settled.clear()
            await self._settled.wait()

    def _mark_settled(self, batch: list[_Wire]) -> None:
        seq = batch[-1].get("seq")
        if isinstance(seq, int) and seq > self.settled_seq:
            self.settled_seq = seq
            self._settled.set()

    def _settle(self, batch: list[_Wire], reply: _Reply) -> float:
        """Account for the reply to ``batch``; seconds to pause before sending again."""
        self._inflight = []
        if reply.type == "ack":
            self._mark_settled(batch)
            self._stats.fixes_accepted += reply.accepted
            self._stats.fixes_ignored += reply.ignored
            if reply.rejected:
                self._stats.fixes_rejected += len(reply.rejected)
                self._log_refusal("fixes rejected: " + ", ".join(r.code for r in reply.rejected[:5]))
            return 0.0
        if reply.code in _TRY_LATER:
            # Too fast for the server's per-socket rate, or its storage is briefly away: the same fixes
            # will do later. Meanwhile new fixes pile up behind them and go out as one batch.
            self._buffer.extendleft(reversed(batch))
            self._stats.fixes_deferred += len(batch)
            log.debug("driver %s: %s; sending again shortly", self.label, reply.code)
            return _TRY_LATER[reply.code]
        if len(batch) > 1 and self._max_batch > 1:
            # The batch as a whole was refused (too big for this server?): retry it in halves.
            self._max_batch = max(1, min(self._max_batch, len(batch)) // 2)
            self._buffer.extendleft(reversed(batch))
            self._log_refusal(f"batch of {len(batch)} refused ({reply.code}: {reply.message}); trying smaller")
            return 0.0
        # A refused fix would be refused again: count it and move on.
        self._mark_settled(batch)
        self._stats.fixes_rejected += len(batch)
        self._log_refusal(f"fix refused ({reply.code}: {reply.message})")
        return 0.0

    def _log_refusal(self, text: str) -> None:
        # A server that refuses one fix usually refuses them all: say so a few times, not every second.
        self._errors_logged += 1
        if self._errors_logged <= 3:
            log.warning("driver %s: %s", self.label, text)
        else:
            log.debug("driver %s: %s", self.label, text)

    async def _read(self, ws: ClientConnection, replies: asyncio.Queue[_Reply | None]) -> None:
        try:
            async for raw in ws:
                try:
                    reply = _decode_reply(raw)
                except msgspec.DecodeError:
                    continue
                if reply.type in ("ack", "error"):
                    replies.put_nowait(reply)
                elif self._on_push is not None:
                    self._on_push(raw)
        except ConnectionClosed:
            pass
        finally:
            replies.put_nowait(None)
            self._wake.set()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
