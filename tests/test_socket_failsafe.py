"""An unexpected error in a websocket endpoint: a typed 500 (or a 1011 close) with an id, logged once."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import RedisTarget, Server, Shop, connect, sync_client
from livemap.domain import security
from livemap.storage.keys import Keys


async def test_an_unexpected_error_before_accept_is_a_typed_500_with_an_id(
    shop: Shop, server: Server, redis_target: RedisTarget
) -> None:
    """A handshake that fails on something no endpoint expects (a credential Redis holds in a shape it
    never wrote) is refused with a JSON 500 carrying an error id; the log has the traceback under that
    id, and no uvicorn traceback."""
    token = await shop.driver("f1")
    with sync_client(redis_target.url) as admin:
        admin.set(Keys(redis_target.prefix).credential(security.digest(token)), "not a principal")
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{server.ws_url}/ws/driver?token={token}")
    response = refused.value.response
    assert response.status_code == 500 and response.headers["content-type"] == "application/json"
    error = json.loads(response.body)["error"]
    assert error["code"] == "internal_error" and error["error_id"] in error["message"]
    logged = await asyncio.to_thread(server.wait_for_output, f"internal error {error['error_id']}", 5)
    assert "on websocket /ws/driver" in logged.splitlines()[0] and "ValueError" in logged
    assert "Exception in ASGI application" not in "".join(server.output)


async def test_an_unexpected_error_after_accept_closes_with_1011_and_an_id(
    shop: Shop, server: Server, redis_target: RedisTarget
) -> None:
    """A driver socket that fails after the handshake (Redis answers WRONGTYPE for its driver) is closed
    with 1011 and the error id as the reason; the log has the traceback under that id."""
    token = await shop.driver("f2")
    with sync_client(redis_target.url) as admin:
        key = Keys(redis_target.prefix).driver(shop.id, "f2")
        admin.delete(key)
        admin.set(key, "not a hash")
    sock = await connect(f"{server.ws_url}/ws/driver?token={token}")
    with pytest.raises(ConnectionClosed) as closed:
        await sock.recv()
    rcvd = closed.value.rcvd
    assert rcvd is not None and rcvd.code == 1011 and rcvd.reason.startswith("unexpected error ")
    error_id = rcvd.reason.split()[-1]
    logged = await asyncio.to_thread(server.wait_for_output, f"internal error {error_id}", 5)
    assert "WRONGTYPE" in logged
    assert "Exception in ASGI application" not in "".join(server.output)
