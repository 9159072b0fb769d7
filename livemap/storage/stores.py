"""Stores: creating one (its id and API key) and its settings document, secrets sealed at rest."""

from __future__ import annotations

from typing import Any

import msgspec
import redis.asyncio as aioredis

from livemap.domain import security
from livemap.domain.clock import now_ms
from livemap.domain.records import NotFound, Principal
from livemap.domain.storesettings import StoreSettings, map_secrets, masked, merge_patch
from livemap.storage.base import RepositoryBase, json_encoder
from livemap.storage.db import Batch


class StoreRecords(RepositoryBase):
    """A store's record and settings."""

    async def create_store(self, name: str) -> tuple[str, str]:
        """A new store; returns (store id, API key). The key is shown once: only its digest is kept."""
        sid, api_key = security.new_id("st_", 9), security.new_token("lmk")
        settings = StoreSettings(name=name)
        cred_key, cred_value = self._credential(api_key, Principal("store", sid))

        def store(b: Batch) -> None:
            b.pipe.hset(self.keys.store(sid), mapping={"settings": json_encoder.encode(settings), "created": now_ms()})
            b.pipe.sadd(self.keys.stores(), sid)

        # The key last: it never opens a store that is not all there.
        await self.db.run(store, lambda b: b.pipe.set(cred_key, cred_value))
        return sid, api_key

    async def replace_store_key(self, sid: str, old_key: str) -> str:
        """A new API key for store `sid` in place of `old_key`, which is refused from now on by every
        process (keys are looked up in Redis on every request)."""
        api_key = security.new_token("lmk")
        cred_key, cred_value = self._credential(api_key, Principal("store", sid))
        old = self.keys.credential(security.digest(old_key))
        # The new key first: there is never a moment with neither.
        await self.db.run(lambda b: b.pipe.set(cred_key, cred_value), lambda b: b.pipe.delete(old))
        return api_key

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
                    pipe.hset(key, "settings", json_encoder.encode(sealed))
                    await pipe.execute()
                    break
                except aioredis.WatchError:
                    continue
        return masked(msgspec.to_builtins(updated))

    async def driver_exists(self, sid: str, did: str) -> bool:
        """Whether store `sid` has driver `did` (orders read it before an assignment)."""
        return bool(await self.redis.hexists(self.keys.store_drivers(sid), did))
