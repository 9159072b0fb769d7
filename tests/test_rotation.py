"""Replacing a store's API key and a driver's token: the old one refused at once by every process,
sockets opened with it closed, and neither token ever in a log line."""

from __future__ import annotations

import json

import httpx
import pytest
import websockets

from conftest import RedisTarget, Server, Shop, connect, driver_socket, fix, new_shop, now_ms, sync_client
from livemap.storage.keys import Keys


async def test_a_replaced_store_key_is_refused_at_once_by_every_process(
    http: httpx.AsyncClient, server: Server, server_b: Server
) -> None:
    shop = await new_shop(http, server)
    old = shop.key
    r = await http.post(server.url + "/api/store/key", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 200, r.text
    new = r.json()["api_key"]
    assert new != old and new.startswith("lmk_") and r.json()["id"] == shop.id
    for srv in (server, server_b):
        refused = await http.get(srv.url + "/api/store", headers={"Authorization": f"Bearer {old}"})
        assert refused.status_code == 401, refused.text
        ok = await http.get(srv.url + "/api/store", headers={"Authorization": f"Bearer {new}"})
        assert ok.status_code == 200 and ok.json()["id"] == shop.id
    assert (await http.post(server.url + "/api/store/key")).status_code == 401
    assert old not in "".join(server.output) and new not in "".join(server.output)


async def _refused(server: Server, token: str) -> None:
    with pytest.raises(websockets.InvalidStatus) as denied:
        await connect(f"{server.ws_url}/ws/driver?token={token}")
    assert denied.value.response.status_code == 401


async def test_a_replaced_driver_token_closes_its_sockets_and_is_refused(shop: Shop, server_b: Server) -> None:
    old = await shop.driver("rot1")
    a = await driver_socket(shop.server, old)
    b = await driver_socket(server_b, old)  # another process: it hears of the change through Redis
    r = await shop.post("/api/drivers/rot1/token", {})
    assert r.status_code == 200, r.text
    new = r.json()["token"]
    assert r.json()["id"] == "rot1" and new != old
    for sock in (a, b):
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await sock.recv(timeout=5)
        assert sock.conn.close_code == 4401
    await _refused(shop.server, old)
    await _refused(server_b, old)
    tracker = await shop.http.post(f"{shop.server.url}/ingest/osmand?token={old}&id=rot1&lat=1&lon=1", content=b"")
    assert tracker.status_code == 401
    fresh = await driver_socket(shop.server, new)
    try:
        await fresh.send(json.dumps(fix(0.1, now_ms(), seq=1)))
        assert (await fresh.recv_type("ack"))["accepted"] == 1
    finally:
        await fresh.close()
    assert old not in "".join(shop.server.output) and new not in "".join(shop.server.output)
    assert (await shop.post("/api/drivers/nobody/token", {})).status_code == 404


async def test_a_driver_from_before_digests_were_recorded_is_revoked_too(shop: Shop, redis_target: RedisTarget) -> None:
    """Drivers created by an older livemap have no recorded digest: their credential is found by its value."""
    old = await shop.driver("rot2")
    with sync_client(redis_target.url) as rdb:
        rdb.hdel(Keys(redis_target.prefix).driver(shop.id, "rot2"), "cred")
    r = await shop.post("/api/drivers/rot2/token", {})
    assert r.status_code == 200, r.text
    await _refused(shop.server, old)
    sock = await driver_socket(shop.server, r.json()["token"])
    await sock.close()
