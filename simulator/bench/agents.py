"""The load generator's sockets: drivers sending fixes, customers and dispatchers receiving them.

Every timestamp is ``time.time()`` in this process, so a customer's latency is measured on the
same clock its driver sent with. A fix's ``ts`` is its scheduled send time (fan-out) or now
(ingest), strictly increasing per driver, and its position follows the driver's route at
`SPEED_MPS` of fix time. Received messages are handled in the socket's callback, counted only
once a `Run` has armed the socket.
"""

from __future__ import annotations

import abc
import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import quote

import msgspec

from .fleet import SPEED_MPS, DriverSpec, Walker
from .hist import Histogram
from .protocol import Run
from .wsclient import Data, WsClient

T = TypeVar("T")

#: The close code livemap gives a customer or dispatcher socket that fell behind (slow consumer).
SLOW_CONSUMER = 1013
_FIRST_MESSAGE_TIMEOUT_S = 60.0

_encode = msgspec.json.Encoder().encode


class _Fix(msgspec.Struct):
    lat: float
    lon: float
    ts: int
    speed: float
    seq: int


class _Reply(msgspec.Struct):
    """A driver socket's reply (`ack` / `error`) or push (`stops`): only what the bench reads."""

    type: str = ""
    seq: int | None = None
    ignored: int = 0
    code: str = ""


class _Event(msgspec.Struct):
    """A customer or dispatcher message: `snapshot`, `location` (with the fix `ts`), other events."""

    type: str = ""
    ts: int | None = None
    driver_id: str | None = None


_reply = msgspec.json.Decoder(_Reply)
_event = msgspec.json.Decoder(_Event)


def ws_base(url: str) -> str:
    """``http://host:port`` -> ``ws://host:port``."""
    return "ws" + url.removeprefix("http")


async def connect_all(
    openers: Sequence[Callable[[], Awaitable[T]]], concurrency: int
) -> tuple[list[T | None], list[str]]:
    """Run `openers` with at most `concurrency` in flight; a failure is counted, never fatal."""
    gate = asyncio.Semaphore(concurrency)
    errors: list[str] = []

    async def one(opener: Callable[[], Awaitable[T]]) -> T | None:
        async with gate:
            try:
                return await opener()
            except Exception as exc:  # refused, timed out, a handshake answered 4xx/5xx, a bad first message
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                return None

    return list(await asyncio.gather(*(one(o) for o in openers))), errors


@dataclass
class IngestTally:
    acked: int = 0
    ignored: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    active: set[int] = field(default_factory=set)
    rtt: Histogram = field(default_factory=Histogram)
    disconnects: int = 0


@dataclass
class FanoutTally:
    sent: int = 0
    acked: int = 0
    ack_errors: Counter[str] = field(default_factory=Counter)
    latency: Histogram = field(default_factory=Histogram)
    ack_latency: Histogram = field(default_factory=Histogram)
    send_lag: Histogram = field(default_factory=Histogram)
    dispatch_received: int = 0
    dispatch_latency: Histogram = field(default_factory=Histogram)


class _Watcher(abc.ABC):
    """A socket whose first message must be a snapshot; then locations go to `on_location` once armed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: WsClient | None = None
        self._armed: tuple[Run, FanoutTally] | None = None
        self._first: asyncio.Future[str] | None = None

    async def _open(self) -> None:
        self._first = asyncio.get_running_loop().create_future()
        self.ws = await WsClient.connect(self.url, self._message)
        try:
            first = await asyncio.wait_for(self._first, _FIRST_MESSAGE_TIMEOUT_S)
            if first != "snapshot":
                raise ValueError(f"first message is {first!r}, not a snapshot")
        except BaseException:
            self.ws.abort()
            raise

    def _message(self, data: Data) -> None:
        event = _event.decode(data)
        if self._first is not None and not self._first.done():
            self._first.set_result(event.type)
        elif self._armed is not None and event.type == "location" and event.ts is not None:
            self.on_location(event.ts, event.driver_id, *self._armed, time.time())

    @abc.abstractmethod
    def on_location(self, ts: int, driver_id: str | None, run: Run, tally: FanoutTally, now: float) -> None:
        """A `location` message for a fix of time `ts` arrived at `now`."""

    def arm(self, run: Run, tally: FanoutTally) -> None:
        self._armed = (run, tally)

    @property
    def close_code(self) -> int | None:
        """The server's close code once it closed the socket (0: dropped without one); None while open."""
        if self.ws is None or not self.ws.closed.done():
            return None
        return self.ws.closed.result() or 0

    @property
    def slow(self) -> bool:
        return self.close_code == SLOW_CONSUMER


class Driver:
    """One driver socket (``/ws/driver?token=``) and the fixes it sent."""

    def __init__(self, spec: DriverSpec, base_url: str) -> None:
        self.spec = spec
        self.url = f"{ws_base(base_url)}/ws/driver?token={quote(spec.token)}"
        self.walker = Walker(spec.route)
        self.ws: WsClient | None = None
        #: fan-out: send time of each fix by its ts, for the customers' and dispatchers' latency.
        self.sent: dict[int, float] = {}
        #: fan-out: fixes sent in the window that start a new second of fix time.
        self.owed = 0
        self._waiter: asyncio.Future[_Reply] | None = None  # ingest: the answer to the fix in flight
        self._pending: dict[int, tuple[float, bool]] = {}  # fan-out: seq -> (send time, in the window)
        self._tally: FanoutTally | None = None

    async def open(self) -> Driver:
        self.ws = await WsClient.connect(self.url, self._message)
        self.ws.closed.add_done_callback(self._lost)
        return self

    @property
    def dropped(self) -> bool:
        return self.ws is not None and self.ws.closed.done()

    def _message(self, data: Data) -> None:
        reply = _reply.decode(data)
        if reply.type not in ("ack", "error"):  # a push (the driver's stops), not an answer
            return
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(reply)
        elif self._tally is not None and reply.seq is not None:
            self._answered(reply, self._tally)

    def _lost(self, _: asyncio.Future[int | None]) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("the server closed the driver socket"))

    def _fix(self, ts: int, seq: int, origin_ms: int) -> bytes:
        lat, lon = self.walker.at(SPEED_MPS * (ts - origin_ms) / 1000)
        return _encode(_Fix(lat, lon, ts, SPEED_MPS, seq))

    async def ingest(self, run: Run, tally: IngestTally) -> None:
        """Closed loop: each fix is sent when the previous one is answered, until the window ends."""
        assert self.ws is not None
        loop = asyncio.get_running_loop()
        origin, last, seq = int(run.start * 1000), 0, 0
        while (now := time.time()) < run.t1:
            last, seq = max(last + 1, int(now * 1000)), seq + 1
            self._waiter = loop.create_future()
            try:
                self.ws.send_text(self._fix(last, seq, origin))
                reply = await self._waiter
            except Exception:  # closed under us (the send raises once the protocol knows)
                tally.disconnects += 1
                return
            done = time.time()
            if run.t0 <= done < run.t1:
                if reply.type == "ack":
                    tally.acked += 1
                    tally.ignored += reply.ignored
                    tally.active.add(self.spec.index)
                    tally.rtt.add(done - now)
                else:
                    tally.errors[reply.code] += 1

    async def send_on_schedule(self, run: Run, hz: float, phase: float, tally: FanoutTally) -> None:
        """Fan-out: one fix per 1/hz seconds at this driver's phase; ts = the scheduled time.

        Answers are matched by seq as they come (`_answered`), not waited for.
        """
        assert self.ws is not None
        self._tally = tally
        period = 1.0 / hz
        k = math.ceil(run.start / period - phase)
        origin, seq, last_second = int(run.start * 1000), 0, -1
        while (due := (k + phase) * period) < run.t1:
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.dropped:
                return
            ts, seq, k = round(due * 1000), seq + 1, k + 1
            payload = self._fix(ts, seq, origin)
            sent = time.time()
            in_window = run.t0 <= sent < run.t1
            self.sent[ts] = sent
            self._pending[seq] = (sent, in_window)
            if in_window:
                tally.sent += 1
                tally.send_lag.add(sent - due)
                self.owed += ts // 1000 != last_second
            last_second = ts // 1000
            self.ws.send_text(payload)

    def _answered(self, reply: _Reply, tally: FanoutTally) -> None:
        assert reply.seq is not None
        got = self._pending.pop(reply.seq, None)
        if got is None or not got[1]:
            return
        if reply.type == "ack":
            tally.acked += 1
            tally.ack_latency.add(time.time() - got[0])
        else:
            tally.ack_errors[reply.code] += 1


class Customer(_Watcher):
    """One customer socket (``/ws/track/{tracking_id}?t=``), watching one driver's order."""

    def __init__(self, spec: DriverSpec, base_url: str, driver: Driver | None = None) -> None:
        super().__init__(f"{ws_base(base_url)}/ws/track/{quote(spec.tracking_id)}?t={quote(spec.tracking_token)}")
        self.driver = driver
        self.received = 0

    async def open(self) -> Customer:
        await self._open()
        return self

    def on_location(self, ts: int, driver_id: str | None, run: Run, tally: FanoutTally, now: float) -> None:
        at = None if self.driver is None else self.driver.sent.get(ts)
        if at is not None and run.t0 <= at < run.t1:
            self.received += 1
            tally.latency.add(now - at)


class Dispatcher(_Watcher):
    """One dispatcher socket (``/ws/dispatch?token=STORE_KEY``): every driver's location, coalesced."""

    def __init__(self, base_url: str, store_key: str, own: dict[str, Driver]) -> None:
        super().__init__(f"{ws_base(base_url)}/ws/dispatch?token={quote(store_key)}")
        self.own = own

    async def open(self) -> Dispatcher:
        await self._open()
        return self

    def on_location(self, ts: int, driver_id: str | None, run: Run, tally: FanoutTally, now: float) -> None:
        if not run.t0 <= ts / 1000 < run.t1:
            return
        tally.dispatch_received += 1
        driver = self.own.get(driver_id or "")
        at = None if driver is None else driver.sent.get(ts)
        if at is not None:
            tally.dispatch_latency.add(now - at)
