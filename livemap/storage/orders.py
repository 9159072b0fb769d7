"""Orders: creation, stage changes and assignment (compare-and-set), ratings and opt-ins.

A change adds the order to the indexes it joins before its order script commits, and removes it
from those it leaves after: an index may hold an order too many for a moment, never one too few.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from typing import NamedTuple

import msgspec
from redis.typing import EncodableT, FieldT

from livemap.domain import security
from livemap.domain.analytics import customer_identity
from livemap.domain.clock import now_ms
from livemap.domain.events import RouteEvent, ShopWriteBackEvent, StageEvent, merge_json
from livemap.domain.geometry import cumulative_lengths
from livemap.domain.messages import MAX_FUTURE_MS, Consents, NewOrder, Subscribe
from livemap.domain.records import (
    Conflict,
    NoContact,
    NotDelivered,
    NotFound,
    Order,
    OutOfOrder,
    decode_hash,
    decode_history,
    is_active,
    is_done,
    text,
)
from livemap.domain.responses import Feedback, HistoryEntry, Subscriptions
from livemap.domain.returns import HISTORY_PREFIX as RETURN_STEP
from livemap.domain.stages import FINAL, Stage, StageMachine
from livemap.domain.storesettings import StoreSettings
from livemap.domain.streetpace import RoadPieces
from livemap.storage.analytics import AnalyticsRecords
from livemap.storage.base import json_encoder
from livemap.storage.db import STEPS, Batch

CAS_RETRIES = 5
_ORDER_UPDATE, _ORDER_ROUTE = STEPS["order_update"], STEPS["order_route"]


class OrderUpdateArgs(NamedTuple):
    """The ARGV of order_update.lua, in its order (the script's header names them the same way)."""

    expected_stage: str
    expected_driver: str  # '' = none
    stage: str
    driver: str
    live: int  # 0/1
    stream_maxlen: int
    history: bytes  # history entry json; b'' when the stage is unchanged
    customer_event: bytes  # json
    publish_command: str
    order_channel: str
    notice: str  # token of the outbox entry announcing the change; '' = none


class OrderRecords(AnalyticsRecords):
    """Orders; they read their store's settings (stage machine, notification defaults) and count into its days."""

    async def create_order(
        self, sid: str, body: NewOrder, extra: Mapping[str, EncodableT] | None = None, *, writeback: bool = False
    ) -> Order:
        """A new order in stage `received`. Raises Conflict when the store already has its id.

        Without a destination (a shop's address that could not be geocoded) the order gets no ETA
        until it has one. `extra` adds fields to the order's hash (an integration's bookkeeping).
        `writeback`: announce a ShopWriteBackEvent in the outbox, as a stage change announces its event.
        """
        oid = str(body.id)
        tid, token = security.new_id("", 12), security.new_tracking_token()
        settings = await self.settings(sid)
        subscribed = self._subscribed(settings, body)
        if not await self.redis.hsetnx(self.keys.store_orders(sid), oid, tid):
            raise Conflict(f"order {oid} already exists")
        fields = self._new_order_fields(sid, tid, token, body, subscribed)
        fields.update(extra or {})
        fields |= await _route_fields(body)
        at = int(fields["created"])
        event = StageEvent(stage=Stage.RECEIVED, at=at, live=False, note=None)
        notice = self.new_notice() if writeback else ""
        if notice:  # the entry first, the order's token with the order: see notify.outbox
            announced = json_encoder.encode(ShopWriteBackEvent(order_id=oid, tracking_id=tid))
            await self.db.run(lambda b: self.announce(b, sid, tid, announced, notice))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.order(tid), mapping=fields)
            if notice:
                pipe.sadd(self.keys.order_notices(tid), notice)
            pipe.rpush(self.keys.order_history(tid), json_encoder.encode(HistoryEntry(Stage.RECEIVED, at)))
            pipe.xadd(
                self.keys.order_events(tid),
                {"data": json_encoder.encode(event)},
                maxlen=self.stream_maxlen,
                approximate=True,
            )
            await pipe.execute()
        await self.redis.zadd(self.keys.store_placed(sid), {tid: at})
        who = body.customer
        await self.count_order(sid, settings.timezone, at, customer_identity(who.email, who.phone, who.name))
        return Order({str(k): text(v) if isinstance(v, bytes) else str(v) for k, v in fields.items()})

    def _new_order_fields(
        self, sid: str, tid: str, token: str, body: NewOrder, subscribed: dict[str, bool]
    ) -> dict[FieldT, EncodableT]:
        """The new order's hash, route aside."""
        return {
            "store": sid,
            "id": str(body.id),
            "tid": tid,
            # The token is checked by its digest and given back (links, the API) from its sealed copy.
            "token_digest": security.digest(token),
            "token_sealed": self.box.seal(token),
            "stage": Stage.RECEIVED,
            "live": "0",
            "driver": "",
            "created": body.placed_at or now_ms(),
            "customer": json_encoder.encode(body.customer),
            "destination": json_encoder.encode([body.destination.lat, body.destination.lon])
            if body.destination
            else "",
            "address": body.address or "",
            "tracking_number": body.tracking_number or "",
            "carrier": body.carrier or "",
            "promised_by": body.promised_by or "",
            "origin": json_encoder.encode([body.origin.lat, body.origin.lon]) if body.origin else "",
            "locale": body.locale or "",
            "notify_email": int(subscribed["email"]),
            "notify_sms": int(subscribed["sms"]),
            "route_source": "store" if body.route else "straight_line",
        }

    @staticmethod
    def _subscribed(settings: StoreSettings, body: NewOrder) -> dict[str, bool]:
        """Whether the new order's customer gets email / SMS: the order's own choice, else the store's default.

        Decided once, at creation: a store that changes its default changes it for new orders only.
        """
        given = body.subscriptions or Consents()
        email = settings.subscribed_by_default("email") if given.email is None else given.email
        sms = settings.subscribed_by_default("sms") if given.sms is None else given.sms
        return {"email": email and bool(body.customer.email), "sms": sms and bool(body.customer.phone)}

    async def set_order_fields(self, tid: str, fields: Mapping[str, EncodableT]) -> None:
        """Overwrite plain fields of order `tid` (contact, address, destination: not its stage or driver)."""
        if fields:
            await self.redis.hset(self.keys.order(tid), mapping={name: value for name, value in fields.items()})

    async def tracking_id(self, sid: str, oid: str) -> str:
        tid = await self.redis.hget(self.keys.store_orders(sid), oid)
        if tid is None:
            raise NotFound(f"order {oid} not found")
        return text(tid)

    async def order(self, tid: str) -> Order:
        raw = await self.redis.hgetall(self.keys.order(tid))
        if not raw:
            raise NotFound("order not found")
        return Order(decode_hash(raw))

    async def orders(self, tids: list[str]) -> list[Order]:
        """Several orders in one round trip, skipping any that vanished."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for tid in tids:
                pipe.hgetall(self.keys.order(tid))
            raws = await pipe.execute()
        return [Order(decode_hash(raw)) for raw in raws if raw]

    async def history(self, tid: str) -> list[HistoryEntry]:
        """The order's stage changes, oldest first, never trimmed."""
        return decode_history(await self.redis.lrange(self.keys.order_history(tid), 0, -1))

    async def store_order(self, sid: str, oid: str) -> Order:
        """Order `oid` of store `sid`."""
        return await self.order(await self.tracking_id(sid, oid))

    async def change_stage(self, sid: str, oid: str, stage: str, note: str | None, at: int | None = None) -> Order:
        """Move an order to `stage` (at `at`, default now); raises UnknownStage / IllegalTransition from the
        store's machine, OutOfOrder when `at` is before the order's previous change or in the future."""
        settings = await self.settings(sid)
        machine = settings.machine()
        tid = await self.tracking_id(sid, oid)
        for _ in range(CAS_RETRIES):
            order = await self.order(tid)
            machine.check(order.stage, stage)
            entered = await self._entered(tid)
            moment, now = now_ms() if at is None else at, now_ms()
            if not entered <= moment <= now + MAX_FUTURE_MS:
                raise OutOfOrder(moment, entered, now)
            if await self._update(order, machine, stage=stage, driver=order.driver, note=note, at=moment):
                await self.count_stage(order, settings.timezone, stage, moment, entered)
                return await self.order(tid)
        raise RuntimeError(f"order {oid} kept changing; try again")

    async def _entered(self, tid: str) -> int:
        """When order `tid` entered its stage: its newest stage change (a return's steps are not stages)."""
        recent = decode_history(await self.redis.lrange(self.keys.order_history(tid), -50, -1))
        return next(h.at for h in reversed(recent) if not h.stage.startswith(RETURN_STEP))

    async def assign(self, sid: str, oid: str, did: str) -> Order:
        """Give order `oid` to driver `did` (a reassignment moves it off the previous driver)."""
        if not await self.driver_exists(sid, did):
            raise NotFound(f"driver {did} not found")
        machine = (await self.settings(sid)).machine()
        tid = await self.tracking_id(sid, oid)
        for _ in range(CAS_RETRIES):
            order = await self.order(tid)
            if is_done(order):
                raise ValueError(f"order {oid} is {order.stage}; a final order cannot be assigned")
            if await self._update(order, machine, stage=order.stage, driver=did, note=None, at=now_ms()):
                return await self.order(tid)
        raise RuntimeError(f"order {oid} kept changing; try again")

    async def _update(self, order: Order, machine: StageMachine, *, stage: str, driver: str, note: str | None,
                      at: int) -> bool:  # fmt: skip
        """Apply a stage/driver change if the order is still as read; False when it changed meanwhile.

        Three steps, each in its own slot(s): the indexes the order joins (retired ones too) and the
        change's outbox entry, then the order script (compare-and-set, history, event, customer's channel),
        then the indexes it leaves and the dispatchers' and drivers' channels. A crash between them leaves
        an index with an order too many, never one too few, and an outbox entry whose event never came."""
        k, sid, tid = self.keys, order["store"], order.tracking_id
        final, live = _after_change(order, machine, stage, driver)
        active = not final and (live or bool(driver))
        token = self.new_notice() if stage != order.stage else ""  # every stage change is notifiable
        dispatch, history, customer_body = _change_bodies(order, stage, driver, note, live, at)
        args = OrderUpdateArgs(
            expected_stage=order.stage, expected_driver=order.driver, stage=stage, driver=driver, live=int(live),
            stream_maxlen=self.stream_maxlen, history=history, customer_event=customer_body,
            publish_command=self.db.publish_command, order_channel=k.order_channel(tid), notice=token,
        )  # fmt: skip

        def join(b: Batch) -> None:
            if active:
                b.pipe.sadd(k.store_active(sid), tid)
            if driver and not final:
                # NX: a stop keeps its place in the driver's run; a new one joins at the end.
                b.pipe.zadd(k.driver_orders(sid, driver), {tid: at}, nx=True)
            if final:  # retention counts from here (the sweep checks that the order really is final)
                b.pipe.zadd(k.store_retired(sid), {tid: at})
            if token:
                self.announce(b, sid, tid, dispatch, token)

        def commit(b: Batch) -> None:
            keys = [k.order(tid), k.order_events(tid), k.order_history(tid), k.order_notices(tid)]
            b.script(_ORDER_UPDATE, keys, args)

        replies = await self.db.run(join, commit)
        offset = replies[-1]
        if offset is None:
            if token:  # the announcement of a change that did not happen: the worker would drop it anyway
                await self.redis.xdel(k.outbox(), replies[-2])
            return False
        head = b'{"offset":"' + offset + b'",'

        def notify(b: Batch) -> None:
            b.publish(k.store_channel(sid), head + dispatch[1:])
            # The drivers' sessions reload their stops (and whether to send locations to this order).
            for who in {order.driver, driver} - {""}:
                b.publish(k.driver_channel(sid, who), '{"type":"orders"}')

        await self._settle_indexes(sid, tid, {order.driver, driver} - {""}, (active, final, driver), notify)
        return True

    async def _settle_indexes(
        self, sid: str, tid: str, drivers: set[str], state: tuple[bool, bool, str], notify: Callable[[Batch], None]
    ) -> None:
        """Make the indexes match the order's committed state; read it back and repeat if it moved on meanwhile.

        A concurrent change may have added the order to an index this one removes it from (its own
        additions came before its commit, possibly before our removal): the read-back sees that change
        and puts the order back, so no index is left missing an order that belongs in it.
        """
        for attempt in range(CAS_RETRIES):
            settle = functools.partial(self._queue_indexes, sid=sid, tid=tid, drivers=frozenset(drivers), state=state)
            await self.db.run(settle, *([notify] if attempt == 0 else []))
            order = await self.order(tid)
            now = (is_active(order), is_done(order), order.driver)
            if now == state:
                return
            state = now
            drivers |= {order.driver} - {""}

    def _queue_indexes(
        self, b: Batch, *, sid: str, tid: str, drivers: frozenset[str], state: tuple[bool, bool, str]
    ) -> None:
        k = self.keys
        active, final, current = state
        if active:
            b.pipe.sadd(k.store_active(sid), tid)
        else:
            b.pipe.srem(k.store_active(sid), tid)
        for did in drivers:
            if did == current and not final:
                b.pipe.zadd(k.driver_orders(sid, did), {tid: now_ms()}, nx=True)
            else:
                b.pipe.zrem(k.driver_orders(sid, did), tid)

    async def set_leg_route(
        self, sid: str, oid: str, tid: str, did: str, cum: list[float], event: RouteEvent, pieces: RoadPieces | None
    ) -> int | None:
        """Store `event`'s road route as the active leg's, tell its customer, dispatchers and driver sessions.

        Only while the order is still live for driver `did` (the route was computed for its position);
        returns the route's new version, or None when the order moved on meanwhile.
        """
        k = self.keys
        body = json_encoder.encode(event)
        args: list[EncodableT] = [did, self.stream_maxlen, self.db.publish_command, k.order_channel(tid)]
        args += [json_encoder.encode(event.points), json_encoder.encode(cum), event.source, body]
        args.append("" if pieces is None else json_encoder.encode(pieces))
        reply = (await self.db.run(lambda b: b.script(_ORDER_ROUTE, [k.order(tid), k.order_events(tid)], args)))[-1]
        if not reply:
            return None
        offset, version = reply
        ids = json_encoder.encode({"order_id": oid, "tracking_id": tid, "driver_id": did})
        dispatch = b'{"offset":"' + offset + b'",' + merge_json(ids, body)[1:]

        def notify(b: Batch) -> None:
            b.publish(k.store_channel(sid), dispatch)
            b.publish(k.driver_channel(sid, did), '{"type":"orders"}')  # sessions reload the leg's route

        await self.db.run(notify)
        return int(version)

    async def rate(self, tid: str, rating: int, comment: str | None) -> Feedback:
        """Keep the customer's rating of order `tid`, replacing an earlier one; NotDelivered before delivery."""
        order = await self.order(tid)
        settings = await self.settings(order["store"])
        if order.stage not in settings.machine().delivered:
            raise NotDelivered(order.stage)
        # Not atomic with the stage read, and it need not be: an order never goes back before
        # delivery, so a rating sent while it was delivered rates that delivery even if the order
        # is marked returned a moment later.
        feedback = Feedback(rating=rating, comment=(comment or "").strip() or None, at=now_ms())
        await self.redis.hset(self.keys.order(tid), "feedback", json_encoder.encode(feedback))
        old = msgspec.json.decode(order["feedback"], type=Feedback) if order["feedback"] else None
        await self.count_rating(order["store"], settings.timezone, old, feedback, order["id"])
        return feedback

    async def subscribe(self, tid: str, choice: Subscribe) -> Subscriptions:
        """Record the customer's opt-ins and opt-outs; NoContact when the order lacks that channel's contact."""
        order = await self.order(tid)
        customer = order.customer
        changes: dict[FieldT, EncodableT] = {}
        for channel, wanted, contact in (("email", choice.email, customer.email), ("sms", choice.sms, customer.phone)):
            if wanted is msgspec.UNSET:
                continue
            if wanted and not contact:
                raise NoContact(channel)
            changes[f"notify_{channel}"] = int(wanted)
        if changes:
            # One hash field per channel, written without reading: two tabs changing different
            # channels at the same moment cannot undo each other's choice.
            await self.redis.hset(self.keys.order(tid), mapping=changes)
        return (await self.order(tid)).subscriptions


async def _route_fields(body: NewOrder) -> dict[FieldT, EncodableT]:
    """The route's points and cumulative lengths: the given route, else origin to destination, else none."""
    if body.route:
        points = [(lat, lon) for lat, lon in body.route]
    elif body.origin and body.destination:
        points = [(body.origin.lat, body.origin.lon), (body.destination.lat, body.destination.lon)]
    else:
        return {}
    # Geodesic lengths are computed once here, never per fix: off the event loop, since a long
    # route can take a while.
    cum = await asyncio.to_thread(cumulative_lengths, points)
    return {"route": json_encoder.encode(points), "cum": json_encoder.encode(cum)}


def _after_change(order: Order, machine: StageMachine, stage: str, driver: str) -> tuple[bool, bool]:
    """Whether `order` is final and live after a change to `stage` / `driver`."""
    leg = order.stays_on_leg(stage)
    return stage in FINAL and not leg, bool(driver) and (machine.is_live(stage) or leg)


def _change_bodies(
    order: Order, stage: str, driver: str, note: str | None, live: bool, at: int
) -> tuple[bytes, bytes, bytes]:
    """A change's messages: the dispatchers' event, the history entry (none without a new stage), the customer's."""
    dispatch = json_encoder.encode(
        StageEvent(stage=stage, at=at, note=note, live=live, order_id=order["id"], tracking_id=order.tracking_id,
                   driver_id=driver or None, return_leg=order.stays_on_leg(stage))
    )  # fmt: skip
    if stage == order.stage:  # an assignment only: the customer learns whether the driver is on the way
        return dispatch, b"", json_encoder.encode({"type": "assigned", "live": live})
    history = json_encoder.encode(HistoryEntry(stage, at, note))
    return dispatch, history, json_encoder.encode(StageEvent(stage=stage, at=at, note=note, live=live))
