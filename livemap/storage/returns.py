"""Returns: the customer's request after delivery, the store's steps, the store's list (see domain/returns.py).

A return lives in its order's hash (`return`, JSON), each step also in the order's history and its
event stream (the customer's page follows it live); the store's `returns` index lists the orders that
have one. A step is written by return_step.lua with a compare-and-set on the order's return; its
outbox entry goes first, in the outbox's slot, and is dropped again when the step loses its race, as
stage changes do. A pickup makes the order live again for the collecting driver (`return_leg`): the
hot path follows that leg exactly like a delivery's; `received` ends it.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import msgspec

from livemap.domain import returns as rt
from livemap.domain.clock import now_ms
from livemap.domain.events import ReturnEvent, StageEvent
from livemap.domain.records import NotDelivered, NotFound, Order, decode_history, text
from livemap.domain.responses import HistoryEntry
from livemap.domain.stages import Stage
from livemap.storage.base import json_encoder
from livemap.storage.db import STEPS, Batch
from livemap.storage.drivers import DriverRecords

#: Returns one listing reads at most.
LIST_LIMIT = 500
_RETURN_STEP = STEPS["return_step"]


class ReturnStepArgs(NamedTuple):
    """The ARGV of return_step.lua, in its order (the script's header names them the same way)."""

    expected: bytes  # the return json as read; b'' = none
    record: bytes
    history: bytes
    notice: str
    leg: str  # 'start' | 'end' | ''
    driver_id: str
    stream_maxlen: int
    publish_command: str
    order_channel: str
    customer_event: bytes


class ReturnRecords(DriverRecords):
    """Starting, moving on and listing returns."""

    async def start_return(self, tid: str, body: rt.StartReturn) -> rt.ReturnRecord:
        """The customer asks to return order `tid`; ReturnRefused / NotDelivered say why not."""
        order = await self.order(tid)
        settings = await self.settings(order["store"])
        if order.stage not in settings.machine().delivered:
            raise NotDelivered(order.stage)
        if body.reason not in settings.returns.reasons:
            known = settings.returns.reasons
            raise rt.ReturnRefused("unknown_reason", f"reason must be one of: {', '.join(known)}", known=known)
        history = decode_history(await self.redis.lrange(self.keys.order_history(tid), 0, -1))
        closes, now = rt.window_closes(history, settings.returns.window_days), now_ms()
        if closes is None or now > closes:
            raise rt.ReturnRefused(
                "return_window_closed",
                f"returns are accepted for {settings.returns.window_days} days after delivery",
                closed_at=closes,
            )
        note = (body.note or "").strip() or None
        record = rt.ReturnRecord(
            rt.ReturnStatus.REQUESTED, body.reason, note, now, [rt.ReturnStep("requested", now, note)]
        )
        if not await self._write(order, None, record):
            raise rt.ReturnRefused("return_exists", "this order has a return already: its status is on the page")
        return record

    async def change_return(self, sid: str, oid: str, body: rt.ReturnChange) -> rt.ReturnRecord:
        """The store moves order `oid`'s return on; ReturnRefused for an illegal step, NotFound without one."""
        if body.status == rt.ReturnStatus.PICKUP and not (
            body.driver_id and await self.driver_exists(sid, body.driver_id)
        ):
            raise rt.ReturnRefused("driver_required", "a pickup needs the driver_id of one of the store's drivers")
        for _ in range(5):
            order = await self.store_order(sid, oid)
            current = self.return_of(order)
            if current is None:
                raise NotFound(f"order {oid} has no return")
            rt.check_step(current.status, body.status)
            note, at = (body.note or "").strip() or None, now_ms()
            record = msgspec.structs.replace(
                current,
                status=body.status,
                steps=[*current.steps, rt.ReturnStep(body.status, at, note)],
                driver_id=body.driver_id if body.status == rt.ReturnStatus.PICKUP else current.driver_id,
            )
            if await self._write(order, current, record):
                if body.status == rt.ReturnStatus.RECEIVED and order.stage != Stage.RETURNED:
                    # The parcel is back: the order is returned (final), as the store would mark it; the
                    # pickup leg's driver leaves it (indexes, sessions) with this change.
                    await self.change_stage(sid, oid, Stage.RETURNED, note)
                return record
        raise RuntimeError(f"the return of order {oid} kept changing; try again")

    @staticmethod
    def return_of(order: Order) -> rt.ReturnRecord | None:
        return msgspec.json.decode(order["return"], type=rt.ReturnRecord) if order["return"] else None

    async def _write(self, order: Order, expected: rt.ReturnRecord | None, record: rt.ReturnRecord) -> bool:
        """Store `record` if the order's return is still `expected`: its history entry, its customer event,
        the customer's notice, the pickup leg's start or end. False when it changed meanwhile."""
        k, sid, tid, step = self.keys, order["store"], order.tracking_id, record.steps[-1]
        leg = {"pickup": "start", "received": "end"}.get(step.status, "")
        live = step.status == rt.ReturnStatus.PICKUP or (order.on_return_leg and leg != "end")
        token = self.new_notice()
        notice = {"type": "return", "status": step.status, "order_id": order["id"], "tracking_id": tid,
                  "note": step.note, "at": step.at, "reason": record.reason}  # fmt: skip
        args = ReturnStepArgs(
            expected=json_encoder.encode(expected) if expected else b"", record=json_encoder.encode(record),
            history=json_encoder.encode(HistoryEntry(rt.HISTORY_PREFIX + step.status, step.at, step.note)),
            notice=token, leg=leg, driver_id=record.driver_id or "", stream_maxlen=self.stream_maxlen,
            publish_command=self.db.publish_command, order_channel=k.order_channel(tid),
            customer_event=json_encoder.encode(ReturnEvent(step.status, step.at, step.note, live)),
        )  # fmt: skip
        keys = [k.order(tid), k.order_events(tid), k.order_history(tid), k.order_notices(tid)]
        entry, offset = await self.db.run(
            lambda b: self.announce(b, sid, tid, json_encoder.encode(notice), token),
            lambda b: b.script(_RETURN_STEP, keys, args),
        )
        if offset is None:
            await self.redis.xdel(k.outbox(), entry)
            return False
        if expected is None:
            await self.redis.zadd(k.store_returns(sid), {tid: record.requested_at})
        if leg == "start":
            await self._leg_started(order, record.driver_id or "", step.at, offset)
        return True

    async def _leg_started(self, order: Order, did: str, at: int, offset: bytes) -> None:
        """The pickup leg is live: the collecting driver's run and the dispatchers' list take the order, and
        the drivers' sessions and the dispatchers hear of it."""
        k, sid, tid = self.keys, order["store"], order.tracking_id
        event = StageEvent(stage=order.stage, at=at, note=None, live=True, order_id=order["id"], tracking_id=tid,
                           driver_id=did, return_leg=True)  # fmt: skip
        dispatch = b'{"offset":"' + offset + b'",' + json_encoder.encode(event)[1:]

        def notify(b: Batch) -> None:
            b.publish(k.store_channel(sid), dispatch)
            for who in {order.driver, did} - {""}:
                b.publish(k.driver_channel(sid, who), '{"type":"orders"}')

        await self._settle_indexes(sid, tid, {order.driver, did} - {""}, (True, False, did), notify)

    async def list_returns(self, sid: str, status: str | None, limit: int) -> list[tuple[Order, rt.ReturnRecord]]:
        """The store's returns, newest request first; `status`: one status, `open` or `closed`."""
        tids = cast(list[bytes], await self.redis.zrevrange(self.keys.store_returns(sid), 0, LIST_LIMIT - 1))
        orders = await self.orders([text(t) for t in tids])
        out = [(o, r) for o in orders if (r := self.return_of(o)) is not None]
        if status == "open":
            out = [(o, r) for o, r in out if r.status not in rt.CLOSED]
        elif status == "closed":
            out = [(o, r) for o, r in out if r.status in rt.CLOSED]
        elif status:
            out = [(o, r) for o, r in out if r.status == status]
        return out[:limit]
