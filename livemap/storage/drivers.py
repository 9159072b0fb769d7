"""Drivers: creating one (its id and token), its tracker devices, and its run of stops."""

from __future__ import annotations

from typing import cast

import msgspec
import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from livemap.domain import security
from livemap.domain.clock import now_ms
from livemap.domain.records import Conflict, Order, Principal, decode_hash, is_stop_of, text
from livemap.domain.responses import DriverRow
from livemap.storage.base import json_encoder
from livemap.storage.orders import OrderRecords


class DriverRecords(OrderRecords):
    """Drivers; a driver's run is a list of its store's orders."""

    async def create_driver(self, sid: str, name: str, did: str | None, vehicle: str = "car") -> tuple[str, str]:
        """A new driver of store `sid`; returns (driver id, token). Raises Conflict on a taken id."""
        did = did or security.new_id("drv_", 6)
        token = security.new_token("lmd")
        if not await self.redis.hsetnx(self.keys.store_drivers(sid), did, name):
            raise Conflict(f"driver {did} already exists")
        cred_key, cred_value = self._credential(token, Principal("driver", sid, did))
        # `cred`: the token's digest, so that replacing the token can revoke this one.
        driver: dict[FieldT, EncodableT] = {
            "name": name,
            "vehicle": vehicle,
            "created": now_ms(),
            "cred": security.digest(token),
        }
        await self.db.run(
            lambda b: b.pipe.hset(self.keys.driver(sid, did), mapping=driver),
            lambda b: b.pipe.set(cred_key, cred_value),  # the token last, like a store's key
        )
        return did, token

    async def replace_driver_token(self, sid: str, did: str) -> str:
        """A new token for driver `did`: the old one is refused from now on, by every process (credentials
        are looked up in Redis on every handshake and request), and its open sockets are told to close."""
        token = security.new_token("lmd")
        cred_key, cred_value = self._credential(token, Principal("driver", sid, did))
        old = await self._driver_credentials(sid, did)
        driver_key = self.keys.driver(sid, did)
        await self.db.run(
            lambda b: b.pipe.set(cred_key, cred_value),
            *(lambda b, k=k: b.pipe.delete(k) for k in old),
            lambda b: b.pipe.hset(driver_key, "cred", security.digest(token)),
        )
        revoked = json_encoder.encode({"type": "token_replaced", "keep": security.digest(token)})
        await self.db.publish(self.keys.driver_channel(sid, did), revoked)
        return token

    async def _driver_credentials(self, sid: str, did: str) -> list[str]:
        """The credential keys of driver `did`'s tokens."""
        recorded = await self.redis.hget(self.keys.driver(sid, did), "cred")
        if recorded:
            return [self.keys.credential(text(recorded))]
        # A driver created before digests were recorded: find its credential once (the new one is recorded).
        wanted = "\x1f".join(("driver", sid, did))
        found = []
        async for key in self.redis.scan_iter(match=self.keys.credential("*"), count=1000):
            if text(await self.redis.get(key) or b"") == wanted:
                found.append(text(key))
        return found

    async def driver_names(self, sid: str) -> dict[str, str]:
        """The store's drivers: id -> name."""
        return decode_hash(await self.redis.hgetall(self.keys.store_drivers(sid)))

    async def driver_list(self, sid: str) -> list[DriverRow]:
        """The store's drivers by name, then id, each with its vehicle, devices and newest fix time: two round
        trips whatever their number (the directory, then every driver's hash in one pipeline)."""
        names = await self.driver_names(sid)
        dids = sorted(names, key=lambda did: (names[did], did))
        async with self.redis.pipeline(transaction=False) as pipe:
            for did in dids:
                pipe.hmget(self.keys.driver(sid, did), ["vehicle", "devices", "ts"])
            rows = await pipe.execute() if dids else []
        out = []
        for did, (vehicle, devices, ts) in zip(dids, rows, strict=True):
            out.append(
                DriverRow(
                    id=did,
                    name=names[did],
                    vehicle=text(vehicle) if vehicle else None,
                    devices=list(msgspec.json.decode(devices)) if devices else [],
                    last_seen=int(ts) if ts else None,
                )
            )
        return out

    async def driver(self, sid: str, did: str) -> dict[str, str]:
        return decode_hash(await self.redis.hgetall(self.keys.driver(sid, did)))

    async def devices(self, sid: str, did: str) -> list[str]:
        """The device ids (tracker apps) the store registered for this driver."""
        raw = await self.redis.hget(self.keys.driver(sid, did), "devices")
        return list(msgspec.json.decode(raw)) if raw else []

    async def set_devices(self, sid: str, did: str, devices: list[str]) -> None:
        await self.redis.hset(self.keys.driver(sid, did), "devices", json_encoder.encode(sorted(set(devices))))

    async def set_device_attributes(self, sid: str, did: str, attributes: bytes) -> None:
        """What the driver's tracker app last said beyond the fix (altitude, charging, activity...)."""
        await self.redis.hset(self.keys.driver(sid, did), "attributes", attributes)

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
