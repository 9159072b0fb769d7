"""`/ws/driver`: a driver's device sends fixes; every message gets exactly one reply."""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
import redis.asyncio as aioredis
from starlette.websockets import WebSocket

from livemap import metrics
from livemap.domain import security
from livemap.domain.messages import MAX_SAFE_INT, Ack, Error, Fix, Rejected, describe
from livemap.domain.records import Order
from livemap.domain.responses import StopsPush
from livemap.domain.stages import StageMachine
from livemap.realtime.mailbox import Subscription
from livemap.services import Services, services
from livemap.tracking.positions import DriverSession
from livemap.web import auth
from livemap.web.errors import ApiError
from livemap.web.presenters import driver_stops
from livemap.web.sockets.common import CLOSE_SLOW_CONSUMER, deny, drain_client, run_until_disconnect, send_json

log = logging.getLogger("livemap.driver")

#: Close code when the token a socket was opened with was replaced (4400-4499: like HTTP 401, not retried).
CLOSE_TOKEN_REPLACED = 4401

_encode = msgspec.json.Encoder().encode
_decode_fast = msgspec.json.Decoder(Fix | list[Fix])
_decode_any = msgspec.json.Decoder()


def _stops(orders: list[Order], machine: StageMachine) -> bytes:
    """The driver's stops, pushed on connect and whenever the store changes them."""
    return _encode(StopsPush(driver_stops(orders, machine)))


def _seq_of(value: object) -> int | None:
    if isinstance(value, dict):
        seq = value.get("seq")
        valid = isinstance(seq, int) and not isinstance(seq, bool) and -MAX_SAFE_INT <= seq <= MAX_SAFE_INT
        return seq if valid else None
    if isinstance(value, list):  # a batch answers with its last seq
        return next((s for s in map(_seq_of, reversed(value)) if s is not None), None)
    return None


class _Connection:
    """One driver socket: decode, validate, store, reply; and push stop changes."""

    def __init__(self, ws: WebSocket, svc: Services, session: DriverSession, token_digest: str) -> None:
        self.ws, self.svc, self.session = ws, svc, session
        self.token_digest = token_digest  # which token opened it: a replaced one closes it
        self.driver = (session.store_id, session.driver_id)
        self.lock = asyncio.Lock()  # one reply at a time, and stop reloads never interleave an ingest

    async def send(self, payload: bytes) -> None:
        await self.ws.send_text(payload.decode())

    async def on_message(self, data: str | bytes) -> None:
        began = time.perf_counter()
        try:
            reply = await self.handle(data.encode() if isinstance(data, str) else data)
        except Exception:  # a bug must cost one reply, never the driver's connection
            log.exception("unexpected error handling a driver message")
            reply = Error("internal_error", "the server failed on this message; it was not stored")
        await send_json(self.ws, _encode(reply), self.lock)
        metrics.ACK_SECONDS.observe(time.perf_counter() - began)
        if isinstance(reply, Error):
            metrics.DRIVER_ERRORS.labels(reply.code).inc()
            if reply.code == "invalid_fix":
                metrics.FIXES_REJECTED.inc()
        elif reply.rejected:
            metrics.FIXES_REJECTED.inc(len(reply.rejected))

    async def handle(self, data: bytes) -> Ack | Error:
        settings = self.svc.settings
        if len(data) > settings.max_frame_bytes:
            return Error("frame_too_large", f"message is {len(data)} bytes; the limit is {settings.max_frame_bytes}")
        if not self.svc.driver_limits.allow(self.driver):  # shared with the driver's other sockets
            return Error("rate_limited", f"more than {settings.driver_msgs_per_s:g} messages a second; slow down")
        try:
            parsed = _decode_fast.decode(data)
        except msgspec.ValidationError as exc:  # a subclass of DecodeError: must come first
            return await self._judge_each(data, exc)
        except msgspec.DecodeError as exc:
            return Error("invalid_json", describe(exc))
        fixes = parsed if isinstance(parsed, list) else [parsed]
        seq = next((f.seq for f in reversed(fixes) if f.seq is not None), None)
        return await self._store(fixes, seq, [])

    async def _judge_each(self, data: bytes, exc: msgspec.ValidationError) -> Ack | Error:
        """Some fix is invalid: a single fix gets an error; a batch stores its good fixes, lists the bad."""
        try:
            raw = _decode_any.decode(data)
        except msgspec.DecodeError:  # valid JSON syntax, but not representable (1e999): judge as a whole
            return Error("invalid_fix", describe(exc))
        seq = _seq_of(raw)
        if not isinstance(raw, list):
            return Error("invalid_fix", describe(exc), seq)
        good: list[Fix] = []
        rejected: list[Rejected] = []
        for i, item in enumerate(raw):
            try:
                good.append(msgspec.convert(item, Fix))
            except msgspec.ValidationError as item_exc:
                rejected.append(Rejected(i, "invalid_fix", describe(item_exc)))
        return await self._store(good, seq, rejected)

    async def _store(self, fixes: list[Fix], seq: int | None, rejected: list[Rejected]) -> Ack | Error:
        if len(fixes) > self.svc.settings.max_batch:
            return Error(
                "batch_too_large", f"{len(fixes)} fixes in one batch; the limit is {self.svc.settings.max_batch}", seq
            )
        if not fixes:
            return Ack(seq=seq, accepted=0, ignored=0, rejected=rejected)
        try:
            async with self.lock:
                accepted, ignored = await asyncio.wait_for(
                    self.session.ingest(fixes), self.svc.settings.redis_timeout_s
                )
        except (aioredis.RedisError, TimeoutError) as exc:
            # Nothing was acknowledged, so the device keeps the fixes and sends them again.
            log.warning("storing fixes failed: %r", exc)
            return Error("unavailable", "storage is unavailable; send these fixes again", seq)
        return Ack(seq=seq, accepted=accepted, ignored=ignored, rejected=rejected)

    def _revokes(self, message: str) -> bool:
        if not message.startswith('{"type":"token_replaced"'):
            return False
        keep: object = _decode_any.decode(message).get("keep")
        return keep != self.token_digest

    async def machine(self) -> StageMachine:
        """The store's stage machine: which actions the driver's app offers per stop."""
        return (await self.svc.repo.settings(self.session.store_id)).machine()

    async def watch_stops(self, sub: Subscription) -> None:
        """Reload the driver's orders when the store assigns, reassigns or moves one of them; close the
        socket when the store replaced the token it was opened with."""
        while True:
            messages = await sub.get()
            if messages is None:  # dropped by the hub: changes may have been missed
                metrics.SLOW_CLOSES.labels("driver").inc()
                await self.ws.close(CLOSE_SLOW_CONSUMER, "stop updates were interrupted: reconnect")
                return
            if any(self._revokes(m) for m in messages):
                await self.ws.close(CLOSE_TOKEN_REPLACED, "this driver's token was replaced: sign in with the new one")
                return
            async with self.lock:
                orders = await self.session.load()
                await self.send(_stops(orders, await self.machine()))


async def driver_socket(ws: WebSocket) -> None:
    svc = services(ws)
    try:
        principal = await auth.require(ws, "driver")
    except ApiError as err:
        await deny(ws, err)
        return
    await ws.accept()
    session = svc.positions.session(principal.store_id, principal.driver_id)
    conn = _Connection(ws, svc, session, security.digest(auth.credential(ws)))
    # Subscribe before the first read: an order assigned in between would otherwise go unnoticed.
    async with svc.hub.subscribe(svc.repo.keys.driver_channel(principal.store_id, principal.driver_id)) as sub:
        await conn.send(_stops(await session.load(), await conn.machine()))
        await run_until_disconnect(ws, drain_client(ws, conn.on_message), conn.watch_stops(sub))
