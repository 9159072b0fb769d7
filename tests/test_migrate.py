"""`livemap migrate`: a Redis in key layout 1 is refused at start, upgraded in place (idempotently), then served."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, SECRET_KEY, RedisTarget, Server, new_shop, server_env
from livemap.storage.connection import open_db
from livemap.storage.keys import Keys
from livemap.storage.layout import _move
from livemap.storage.repository import Repository
from livemap.storage.secretbox import SecretBox


async def _make_layout_1(url: str, prefix: str, sid: str, did: str) -> None:
    """Today's data moved back to layout 1's names: store keys `P:store:SID...`, one global `lastfix`."""
    db = await open_db(url)
    try:
        client, k = db.client, Keys(prefix)
        for new, old in (
            (k.store(sid), f"{prefix}:store:{sid}"),
            (k.store_orders(sid), f"{prefix}:store:{sid}:orders"),
            (k.store_drivers(sid), f"{prefix}:store:{sid}:drivers"),
            (k.store_active(sid), f"{prefix}:store:{sid}:active"),
        ):
            await _move(client, new, old)
        await client.delete(k.layout(), k.stores(), k.store_lastfix(sid))
        await client.zadd(f"{prefix}:lastfix", {f"{sid}\x1f{did}": 1_700_000_000_000})
        await client.xadd(f"{prefix}:outbox", {"store": sid, "data": "{}"})
    finally:
        await client.aclose()


def _migrate(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "livemap", "migrate"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_layout_1_is_refused_then_migrated_in_place_and_served(
    http: httpx.AsyncClient, redis_target: RedisTarget, tmp_path: Path
) -> None:
    prefix = f"{redis_target.prefix}:mig{secrets.token_hex(3)}"
    env = server_env(redis_target, tmp_path / "a", LIVEMAP_KEY_PREFIX=prefix)
    first = Server(env, "layout-2")
    try:
        shop = await new_shop(http, first)
        await shop.live_order("M-1", "md")
    finally:
        first.stop()
    await _make_layout_1(redis_target.url, prefix, shop.id, "md")

    with pytest.raises(RuntimeError) as refused:
        Server(env, "refused")
    assert "livemap migrate" in str(refused.value) and "layout 1" in str(refused.value)

    said = _migrate(env)
    assert "now at key layout 2" in said and "store keys: 4" in said, said
    assert "drivers' last fix times: 1" in said and "undelivered layout-1 notifications dropped: 1" in said
    assert "already at key layout 2; nothing to do" in _migrate(env)

    db = await open_db(redis_target.url)
    try:
        k = Keys(prefix)
        assert await db.client.sismember(k.stores(), shop.id)
        assert await db.client.zscore(k.store_lastfix(shop.id), "md") == 1_700_000_000_000
        assert not await db.client.exists(f"{prefix}:lastfix")
        assert await db.client.get(k.layout()) == b"2"
        repo = Repository(db, k, stream_maxlen=10, box=SecretBox([SECRET_KEY]))
        assert (await repo.store_order(shop.id, "M-1")).driver == "md"
    finally:
        await db.client.aclose()
    # And livemap serves it: the store's key, its settings and its order as before.
    served = Server(env, "migrated")
    try:
        store = await http.get(served.url + "/api/store", headers=shop.auth)
        assert store.status_code == 200 and store.json()["name"] == "Test shop"
        order = await http.get(served.url + "/api/orders/M-1", headers=shop.auth)
        assert order.status_code == 200 and order.json()["driver_id"] == "md"
    finally:
        served.stop()
