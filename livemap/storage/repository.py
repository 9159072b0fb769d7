"""The Redis data layer for stores, drivers and orders (everything but the per-fix hot path).

An order's hash is the truth about it; the store's active set and each driver's run are indexes
in other Redis Cluster slots, kept so that a reader may find an order there that no longer belongs
(readers check the order) but never misses one that does: a change adds the order to the indexes
it joins before its order script commits, and removes it from those it leaves after.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import msgspec
import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from livemap.domain import security
from livemap.domain.clock import now_ms
from livemap.domain.geometry import cumulative_lengths
from livemap.domain.messages import Consents, Customer, NewOrder, StageEvent, Subscribe
from livemap.domain.responses import Feedback, HistoryEntry, Subscriptions
from livemap.domain.stages import FINAL, Stage, StageMachine
from livemap.domain.storesettings import StoreSettings, map_secrets, masked, merge_patch
from livemap.storage.db import STEPS, Batch, Db
from livemap.storage.keys import Keys
from livemap.storage.secretbox import SecretBox

_json = msgspec.json.Encoder()
_StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]
_CAS_RETRIES = 5
#: Outbox entries kept (approximately).
OUTBOX_MAXLEN = 100_000
_ORDER_UPDATE, _EMIT = STEPS["order_update"], STEPS["emit"]


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


class NotFound(LookupError):
    """The store has no such order or driver (or the caller may not see it)."""


class Conflict(Exception):
    """The id already exists in this store."""


class NotDelivered(Exception):
    """Only a delivered order can be rated."""

    def __init__(self, stage: str) -> None:
        super().__init__(f"the order is {stage}; it can be rated once it has been delivered")
        self.stage = stage


class NoContact(Exception):
    """The customer opted in to a channel the order has no contact for (no phone for SMS)."""

    def __init__(self, channel: str) -> None:
        what = "phone number" if channel == "sms" else "email address"
        super().__init__(f"the order has no {what}, so updates by {channel} cannot be sent")
        self.channel = channel


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a credential belongs to: a store (API key) or one of its drivers (driver token)."""

    kind: str  # "store" | "driver"
    store_id: str
    driver_id: str = ""


@dataclass(slots=True)
class Order:
    """An order as stored: the raw hash plus decoded fields."""

    raw: dict[str, str]

    def __getitem__(self, field: str) -> str:
        return self.raw.get(field, "")

    @property
    def tracking_id(self) -> str:
        return self["tid"]

    @property
    def token_digest(self) -> str:
        """The digest the customer's `t` is checked against (of the plain `token` orders stored before sealing)."""
        legacy = self["token"]
        return self["token_digest"] or (security.digest(legacy) if legacy else "")

    @property
    def stage(self) -> str:
        return self["stage"]

    @property
    def driver(self) -> str:
        return self["driver"]

    @property
    def live(self) -> bool:
        return self["live"] == "1"

    def json_field(self, field: str) -> Any:
        value = self[field]
        return msgspec.json.decode(value) if value else None

    def optional_int(self, field: str) -> int | None:
        value = self[field]
        return int(float(value)) if value else None

    @property
    def customer(self) -> Customer:
        return msgspec.json.decode(self["customer"], type=Customer)

    @property
    def feedback(self) -> Feedback | None:
        value = self["feedback"]
        return msgspec.json.decode(value, type=Feedback) if value else None

    @property
    def subscriptions(self) -> Subscriptions:
        return Subscriptions(email=self["notify_email"] == "1", sms=self["notify_sms"] == "1")


def text(value: bytes | str) -> str:
    """A Redis reply as text (the client returns bytes; redis-py's types also allow str)."""
    return value.decode() if isinstance(value, bytes) else value


def decode_history(items: Sequence[bytes | str]) -> list[HistoryEntry]:
    """The order's history list as read from Redis."""
    return [msgspec.json.decode(item, type=HistoryEntry) for item in items]


def decode_hash(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}


def is_stop_of(order: Order, did: str) -> bool:
    """Whether `order` belongs in driver `did`'s run: assigned to it and not final."""
    return order.driver == did and order.stage not in FINAL


def is_active(order: Order) -> bool:
    """Whether `order` belongs in the dispatcher's list: not final, and live or assigned."""
    return order.stage not in FINAL and (order.live or bool(order.driver))


class Store:
    """All reads and writes of stores, drivers and orders."""

    def __init__(self, db: Db, keys: Keys, *, stream_maxlen: int, box: SecretBox) -> None:
        self.db = db
        self.redis = db.client
        self.keys = keys
        self.stream_maxlen = stream_maxlen
        #: Seals the secrets stored in settings and orders (see secretbox).
        self.box = box

    # --- credentials -----------------------------------------------------------------------------

    def tracking_token(self, order: Order) -> str:
        """The customer's `t` of `order`, for the links livemap hands out."""
        return self.box.open(order["token_sealed"]) if order["token_sealed"] else order["token"]

    async def principal(self, token: str) -> Principal | None:
        """The store or driver a token belongs to, or None."""
        if not token:
            return None
        value = await self.redis.get(self.keys.credential(security.digest(token)))
        if value is None:
            return None
        kind, store_id, driver_id = text(value).split("\x1f")
        return Principal(kind, store_id, driver_id)

    def _credential(self, token: str, principal: Principal) -> tuple[str, str]:
        return self.keys.credential(security.digest(token)), "\x1f".join(
            (principal.kind, principal.store_id, principal.driver_id)
        )

    # --- stores ----------------------------------------------------------------------------------

    async def create_store(self, name: str) -> tuple[str, str]:
        """A new store; returns (store id, API key). The key is shown once: only its digest is kept."""
        sid, api_key = security.new_id("st_", 9), security.new_token("lmk")
        settings = StoreSettings(name=name)
        cred_key, cred_value = self._credential(api_key, Principal("store", sid))

        def store(b: Batch) -> None:
            b.pipe.hset(self.keys.store(sid), mapping={"settings": _json.encode(settings), "created": now_ms()})
            b.pipe.sadd(self.keys.stores(), sid)

        # The key last: it never opens a store that is not all there.
        await self.db.run(store, lambda b: b.pipe.set(cred_key, cred_value))
        return sid, api_key

    async def settings(self, sid: str) -> StoreSettings:
        raw = await self.redis.hget(self.keys.store(sid), "settings")
        if raw is None:
            raise NotFound(f"store {sid} not found")
        return msgspec.convert(map_secrets(msgspec.json.decode(raw), self.box.open), StoreSettings)

    async def settings_view(self, sid: str) -> Any:
        """Settings as the store reads them back: secrets masked."""
        return masked(msgspec.to_builtins(await self.settings(sid)))

    async def patch_settings(self, sid: str, patch: dict[str, Any]) -> Any:
        """Merge `patch` into the settings, validate the result, store it; raises ValidationError."""
        key = self.keys.store(sid)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:  # optimistic lock: two concurrent PATCHes must not lose each other's fields
                try:
                    await pipe.watch(key)
                    current = msgspec.to_builtins(await self.settings(sid))
                    updated = msgspec.convert(merge_patch(current, patch), StoreSettings)
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves multi() unannotated
                    sealed = map_secrets(msgspec.to_builtins(updated), self.box.seal)
                    pipe.hset(key, "settings", _json.encode(sealed))
                    await pipe.execute()
                    break
                except aioredis.WatchError:
                    continue
        return masked(msgspec.to_builtins(updated))

    # --- drivers ---------------------------------------------------------------------------------

    async def create_driver(self, sid: str, name: str, did: str | None, vehicle: str = "car") -> tuple[str, str]:
        """A new driver of store `sid`; returns (driver id, token). Raises Conflict on a taken id."""
        did = did or security.new_id("drv_", 6)
        token = security.new_token("lmd")
        if not await self.redis.hsetnx(self.keys.store_drivers(sid), did, name):
            raise Conflict(f"driver {did} already exists")
        cred_key, cred_value = self._credential(token, Principal("driver", sid, did))
        driver: dict[FieldT, EncodableT] = {"name": name, "vehicle": vehicle, "created": now_ms()}
        await self.db.run(
            lambda b: b.pipe.hset(self.keys.driver(sid, did), mapping=driver),
            lambda b: b.pipe.set(cred_key, cred_value),  # the token last, like a store's key
        )
        return did, token

    async def driver_exists(self, sid: str, did: str) -> bool:
        return bool(await self.redis.hexists(self.keys.store_drivers(sid), did))

    async def driver(self, sid: str, did: str) -> dict[str, str]:
        return decode_hash(await self.redis.hgetall(self.keys.driver(sid, did)))

    async def devices(self, sid: str, did: str) -> list[str]:
        """The device ids (tracker apps) the store registered for this driver."""
        raw = await self.redis.hget(self.keys.driver(sid, did), "devices")
        return list(msgspec.json.decode(raw)) if raw else []

    async def set_devices(self, sid: str, did: str, devices: list[str]) -> None:
        await self.redis.hset(self.keys.driver(sid, did), "devices", _json.encode(sorted(set(devices))))

    async def set_device_attributes(self, sid: str, did: str, attributes: bytes) -> None:
        """What the driver's tracker app last said beyond the fix (altitude, charging, activity...)."""
        await self.redis.hset(self.keys.driver(sid, did), "attributes", attributes)

    # --- orders ----------------------------------------------------------------------------------

    async def create_order(self, sid: str, body: NewOrder, extra: Mapping[str, EncodableT] | None = None) -> Order:
        """A new order in stage `received`. Raises Conflict when the store already has its id.

        Without a destination (a shop's address that could not be geocoded) the order gets no ETA
        until it has one. `extra` adds fields to the order's hash (an integration's bookkeeping).
        """
        oid = str(body.id)
        tid, token = security.new_id("", 12), security.new_tracking_token()
        subscribed = self._subscribed(await self.settings(sid), body)
        if not await self.redis.hsetnx(self.keys.store_orders(sid), oid, tid):
            raise Conflict(f"order {oid} already exists")
        points: list[tuple[float, float]] | None = None
        if body.route:
            points = [(lat, lon) for lat, lon in body.route]
        elif body.origin and body.destination:
            points = [(body.origin.lat, body.origin.lon), (body.destination.lat, body.destination.lon)]
        fields: dict[FieldT, EncodableT] = {
            "store": sid,
            "id": oid,
            "tid": tid,
            # The token is checked by its digest and given back (links, the API) from its sealed copy.
            "token_digest": security.digest(token),
            "token_sealed": self.box.seal(token),
            "stage": Stage.RECEIVED,
            "live": "0",
            "driver": "",
            "created": now_ms(),
            "customer": _json.encode(body.customer),
            "destination": _json.encode([body.destination.lat, body.destination.lon]) if body.destination else "",
            "address": body.address or "",
            "tracking_number": body.tracking_number or "",
            "carrier": body.carrier or "",
            "promised_by": body.promised_by or "",
            "origin": _json.encode([body.origin.lat, body.origin.lon]) if body.origin else "",
            "locale": body.locale or "",
            "notify_email": int(subscribed["email"]),
            "notify_sms": int(subscribed["sms"]),
        }
        for name, value in (extra or {}).items():
            fields[name] = value
        if points:
            # Geodesic lengths are computed once here, never per fix (geopy is slow per segment):
            # off the event loop, since a long route can take a while.
            cum = await asyncio.to_thread(cumulative_lengths, points)
            fields |= {"route": _json.encode(points), "cum": _json.encode(cum)}
        at = now_ms()
        event = StageEvent(stage=Stage.RECEIVED, at=at, live=False, note=None)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.order(tid), mapping=fields)
            pipe.rpush(self.keys.order_history(tid), _json.encode(HistoryEntry(Stage.RECEIVED, at)))
            pipe.xadd(
                self.keys.order_events(tid),
                {"data": _json.encode(event)},
                maxlen=self.stream_maxlen,
                approximate=True,
            )
            await pipe.execute()
        return Order({str(k): text(v) if isinstance(v, bytes) else str(v) for k, v in fields.items()})

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

    async def change_stage(self, sid: str, oid: str, stage: str, note: str | None) -> Order:
        """Move an order to `stage`; raises UnknownStage / IllegalTransition from the store's machine."""
        machine = (await self.settings(sid)).machine()
        tid = await self.tracking_id(sid, oid)
        for _ in range(_CAS_RETRIES):
            order = await self.order(tid)
            machine.check(order.stage, stage)
            if await self._update(order, machine, stage=stage, driver=order.driver, note=note):
                return await self.order(tid)
        raise RuntimeError(f"order {oid} kept changing; try again")

    async def assign(self, sid: str, oid: str, did: str) -> Order:
        """Give order `oid` to driver `did` (a reassignment moves it off the previous driver)."""
        if not await self.driver_exists(sid, did):
            raise NotFound(f"driver {did} not found")
        machine = (await self.settings(sid)).machine()
        tid = await self.tracking_id(sid, oid)
        for _ in range(_CAS_RETRIES):
            order = await self.order(tid)
            if order.stage in FINAL:
                raise ValueError(f"order {oid} is {order.stage}; a final order cannot be assigned")
            if await self._update(order, machine, stage=order.stage, driver=did, note=None):
                return await self.order(tid)
        raise RuntimeError(f"order {oid} kept changing; try again")

    async def _update(self, order: Order, machine: StageMachine, *, stage: str, driver: str, note: str | None) -> bool:
        """Apply a stage/driver change if the order is still as read; False when it changed meanwhile.

        Three steps, each in its own slot(s): the indexes the order joins and the change's outbox entry,
        then the order script (compare-and-set, history, event, customer's channel), then the indexes it
        leaves and the dispatchers' and drivers' channels. A crash between them leaves an index with an
        order too many, never one too few, and an outbox entry whose event never came (the worker drops it).
        """
        k, sid, tid = self.keys, order["store"], order.tracking_id
        live = bool(driver) and machine.is_live(stage)
        final = stage in FINAL
        active = not final and (live or bool(driver))
        at = now_ms()
        token = self.new_notice() if stage != order.stage else ""  # every stage change but the first is notifiable
        args, dispatch = self._update_args(order, stage, driver, note, live, at, token)

        def join(b: Batch) -> None:
            if active:
                b.pipe.sadd(k.store_active(sid), tid)
            if driver and not final:
                # NX: a stop keeps its place in the driver's run; a new one joins at the end.
                b.pipe.zadd(k.driver_orders(sid, driver), {tid: at}, nx=True)
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

    def _update_args(
        self, order: Order, stage: str, driver: str, note: str | None, live: bool, at: int, token: str
    ) -> tuple[OrderUpdateArgs, bytes]:
        """The order script's arguments for a change of `order`, and the dispatchers' copy of its event."""
        tid = order.tracking_id
        stage_changed = stage != order.stage
        customer = StageEvent(stage=stage, at=at, note=note, live=live) if stage_changed else None
        ids = {"order_id": order["id"], "tracking_id": tid, "driver_id": driver or None}
        dispatch = _json.encode(StageEvent(stage=stage, at=at, note=note, live=live, **ids))
        args = OrderUpdateArgs(
            expected_stage=order.stage,
            expected_driver=order.driver,
            stage=stage,
            driver=driver,
            live=int(live),
            stream_maxlen=self.stream_maxlen,
            history=_json.encode(HistoryEntry(stage, at, note)) if stage_changed else b"",
            customer_event=_json.encode(customer) if customer else _json.encode({"type": "assigned", "live": live}),
            publish_command=self.db.publish_command,
            order_channel=self.keys.order_channel(tid),
            notice=token,
        )
        return args, dispatch

    async def _settle_indexes(
        self, sid: str, tid: str, drivers: set[str], state: tuple[bool, bool, str], notify: Callable[[Batch], None]
    ) -> None:
        """Make the indexes match the order's committed state; read it back and repeat if it moved on meanwhile.

        A concurrent change may have added the order to an index this one removes it from (its own
        additions came before its commit, possibly before our removal): the read-back sees that change
        and puts the order back, so no index is left missing an order that belongs in it.
        """
        for attempt in range(_CAS_RETRIES):
            settle = functools.partial(self._queue_indexes, sid=sid, tid=tid, drivers=frozenset(drivers), state=state)
            await self.db.run(settle, *([notify] if attempt == 0 else []))
            order = await self.order(tid)
            now = (is_active(order), order.stage in FINAL, order.driver)
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

    async def rate(self, tid: str, rating: int, comment: str | None) -> Feedback:
        """Keep the customer's rating of order `tid`, replacing an earlier one; NotDelivered before delivery."""
        order = await self.order(tid)
        if order.stage not in (await self.settings(order["store"])).machine().delivered:
            raise NotDelivered(order.stage)
        # Not atomic with the stage read, and it need not be: an order never goes back before
        # delivery, so a rating sent while it was delivered rates that delivery even if the order
        # is marked returned a moment later.
        feedback = Feedback(rating=rating, comment=(comment or "").strip() or None, at=now_ms())
        await self.redis.hset(self.keys.order(tid), "feedback", _json.encode(feedback))
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

    async def stops(self, sid: str, did: str) -> list[Order]:
        """The driver's orders (assigned, not final) in the order it will deliver them."""
        tids = await self.redis.zrange(self.keys.driver_orders(sid, did), 0, -1)
        return [o for o in await self.orders([text(t) for t in cast(list[bytes], tids)]) if is_stop_of(o, did)]

    async def reorder_stops(self, sid: str, did: str, order_ids: list[str]) -> list[Order]:
        """Set the driver's delivery order; `order_ids` must be exactly its current stops."""
        k = self.keys
        key = k.driver_orders(sid, did)
        wanted = [await self.tracking_id(sid, oid) for oid in order_ids]
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                listed = [text(t) for t in cast(list[bytes], await pipe.zrange(key, 0, -1))]
                current = {o.tracking_id for o in await self.orders(listed) if is_stop_of(o, did)}
                if current != set(wanted) or len(wanted) != len(current):
                    raise ValueError("the list must name each of the driver's current stops exactly once")
                pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves multi() unannotated
                stale = set(listed) - current  # left behind by an interrupted change (see _update)
                if stale:
                    pipe.zrem(key, *stale)
                if wanted:  # no stops: nothing to order (ZADD refuses an empty mapping)
                    pipe.zadd(key, {tid: i for i, tid in enumerate(wanted, start=1)})
                await pipe.execute()
            except aioredis.WatchError:
                raise ValueError("the driver's stops changed meanwhile; read them again") from None
        # The driver's session reloads its run and recomputes every stop's ETA.
        await self.db.publish(k.driver_channel(sid, did), '{"type":"orders"}')
        return await self.stops(sid, did)

    def emit(self, b: Batch, tid: str, did: str, body: bytes) -> None:
        """Queue: append `body` to the order's stream and publish it, if the order is still live for driver `did`."""
        k = self.keys
        args: list[EncodableT] = [did, self.stream_maxlen, b.publish_command, k.order_channel(tid), body]
        b.script(_EMIT, [k.order(tid), k.order_events(tid)], args)

    # --- notifications and channels --------------------------------------------------------------

    @staticmethod
    def new_notice() -> str:
        """A token tying a notifiable event to the outbox entry that announces it."""
        return secrets.token_hex(8)

    def announce(self, b: Batch, sid: str, tid: str, dispatch: bytes, token: str) -> None:
        """Queue the outbox entry of a notifiable event of order `tid`; its event must carry `token`."""
        entry: dict[FieldT, EncodableT] = {"store": sid, "tracking_id": tid, "data": dispatch, "notice": token}
        b.pipe.xadd(self.keys.outbox(), entry, maxlen=OUTBOX_MAXLEN, approximate=True)

    async def has_notice(self, tid: str, token: str) -> bool:
        """Whether order `tid` stored the event that `token` announces."""
        return bool(await self.redis.sismember(self.keys.order_notices(tid), token))

    async def publish_all(self, channel: str, messages: Sequence[EncodableT]) -> None:
        def queue(b: Batch) -> None:
            for message in messages:
                b.publish(channel, message)

        await self.db.run(queue)

    async def events_after(self, tid: str, offset: str) -> list[tuple[str, str]]:
        """Stored events with an id greater than `offset`: (offset, JSON without the offset)."""
        entries = await self.redis.xrange(self.keys.order_events(tid), min=f"({offset}", max="+")
        return [(text(eid), text(f[b"data"])) for eid, f in cast(_StreamEntries, entries)]
