"""Faults with real processes: a server killed with SIGKILL while a driver streams loses nothing it acknowledged,
and its customers, reconnecting with `since`, get every location once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import websockets

from conftest import RedisTarget, Server, customer_socket, driver_socket, fix, new_shop, now_ms, server_env, wait


async def test_a_killed_server_loses_no_acknowledged_fix(
    http: httpx.AsyncClient, redis_target: RedisTarget, server_b: Server, tmp_path: Path
) -> None:
    # No rate limit in the way: the driver sends as fast as the acks come.
    env = server_env(redis_target, tmp_path / "doomed", LIVEMAP_DRIVER_MSGS_PER_S="100000")
    doomed = Server(env, "doomed")
    try:
        shop = await new_shop(http, doomed)
        order = await shop.live_order("F1", "fd1")
        watcher = await customer_socket(server_b, order)  # another process: the kill does not touch it
        first = await watcher.recv_type("snapshot")
        driver = await driver_socket(doomed, shop.drivers["fd1"])
        acked: list[int] = []
        sent: list[int] = []
        enough = asyncio.Event()
        t0 = now_ms() - 3_600_000  # a second of fix time apart: customers get at most a location a second

        async def stream() -> None:
            # One fix a message, each acknowledged before the next: what a phone app does.
            for i in range(10_000):
                ts = t0 + i * 1000
                sent.append(ts)
                await driver.send(json.dumps(fix(0.1 + i * 0.00005, ts, seq=i)))
                reply = await driver.recv_type("ack", timeout=10)
                if reply["accepted"] == 1:
                    acked.append(ts)
                if len(acked) == 150:
                    enough.set()

        streaming = asyncio.create_task(stream())
        await asyncio.wait_for(enough.wait(), wait(30))
        doomed.proc.kill()  # SIGKILL: no shutdown, no flush, mid-stream
        with pytest.raises(websockets.ConnectionClosed):
            await streaming
        # The device keeps what was not acknowledged and sends it again, here to the surviving process.
        unacked = [ts for ts in sent if ts not in set(acked)]
        assert len(unacked) <= 1
        again = await driver_socket(server_b, shop.drivers["fd1"])
        for ts in unacked:
            await again.send(json.dumps(fix(0.2, ts)))
            reply = await again.recv_type("ack")
            # Stored now, or already stored by the killed server before it could answer (then ignored): once.
            assert reply["accepted"] + reply["ignored"] == 1, reply
        await again.close()
        # Every fix sent is stored once: the live watcher got each once; a replay from the start, the same.
        live: list[int] = []
        while len(live) < len(sent):
            live.append((await watcher.recv_type("location", timeout=10))["ts"])
        await watcher.nothing_within(0.5)
        replay = await customer_socket(server_b, order, since=first["offset"])
        await replay.recv_type("snapshot")
        replayed = [(await replay.recv_type("location"))["ts"] for _ in range(len(live))]
        await replay.nothing_within(0.5)
        assert set(acked) <= set(live), "an acknowledged fix was lost"
        assert live == sent == replayed, "duplicates or gaps after the kill"
        counts = (await shop.http.get(f"{server_b.url}/api/drivers/fd1", headers=shop.auth)).json()["fixes"]
        assert counts["accepted"] == len(sent), counts  # each fix stored once, whichever process took it
        await watcher.close()
        await replay.close()
    finally:
        doomed.stop()
