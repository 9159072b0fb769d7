"""livemap as a protocol of the peers' load generator, so livemap is measured by the peers' own loadgen.

Not imported by the simulator: the bench copies this file next to a temporary copy of the peers'
``loadgen.py`` (as ``livemap_proto.py``), which then runs it in the peers' virtualenv with its aiohttp
session; hence stdlib only. ``LIVEMAP_BENCH_FLEET`` names a JSON file with the fleet the harness
created: order ``o<i>`` of the peers' loadgen is driver i's live order.

Like the peers' `WsProto`: `driver` / `send` (returns once answered) / `send_nowait` (answers
matched in order) / `customer`. Each fix is moved onto the driver's route at its `ts`, and its
`ts` kept strictly increasing per driver (livemap ignores a fix not newer than the last); in
fan-out, also in a new second each time (livemap sends a customer at most one location per
second of fix time). The customer's `sent_at` is looked up by (order, ts) in this process.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import os
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

_TEXT = 0x1  # aiohttp.WSMsgType.TEXT
_SPEED_MPS = 9.0


class _Driver:
    def __init__(self, ws: Any, order: str) -> None:
        self.ws, self.order = ws, order
        self.pending: deque[Callable[..., Any]] = deque()
        self.reader: asyncio.Task[None] | None = None


class LivemapProto:
    server_count = None  # ack-paced: the rate is the acks the loadgen counts

    def __init__(self, url: str, http: Any) -> None:
        self.base = url.rstrip("/")
        self.ws_base = "ws" + self.base.removeprefix("http")
        self.http, self.disconnects = http, 0
        with open(os.environ["LIVEMAP_BENCH_FLEET"]) as f:
            self.fleet = {f"o{i}": d for i, d in enumerate(json.load(f)["drivers"])}
        self.last_ts: dict[str, int] = {}
        self.origin_ms: dict[str, int] = {}
        self.sent_at: dict[tuple[str, int], float] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def _at(self, order: str, ts: int) -> tuple[float, float]:
        """Where the driver is on its route at fix time `ts` (lat/lon interpolated between vertices)."""
        d = self.fleet[order]
        route, cum = d["route"], d["cum"]
        metres = min(_SPEED_MPS * (ts - self.origin_ms.setdefault(order, ts)) / 1000, cum[-1])
        i = max(1, min(bisect.bisect_left(cum, metres), len(cum) - 1))
        f = (metres - cum[i - 1]) / ((cum[i] - cum[i - 1]) or 1.0)
        (a_lat, a_lon), (b_lat, b_lon) = route[i - 1], route[i]
        return a_lat + (b_lat - a_lat) * f, a_lon + (b_lon - a_lon) * f

    def _rewrite(self, order: str, fix: dict[str, Any], new_second: bool) -> str:
        last = self.last_ts.get(order, 0)
        ts = max(fix["ts"], (last // 1000 + 1) * 1000 if new_second else last + 1)
        self.last_ts[order] = ts
        self.sent_at[(order, ts)] = fix["sent_at"]
        fix["lat"], fix["lon"] = self._at(order, ts)
        fix["ts"] = ts
        return json.dumps(fix)

    async def _connect(self, url: str) -> Any:
        ws = await self.http.ws_connect(url, compress=0, max_msg_size=0)
        msg = await ws.receive()  # the driver's stops, or the customer's snapshot
        if msg.type != _TEXT:
            raise ConnectionError(f"no first message from {url.split('?')[0]}: {msg.type}")
        return ws

    async def driver(self, order: str) -> _Driver:
        url = f"{self.ws_base}/ws/driver?token={quote(self.fleet[order]['token'])}"
        return _Driver(await self._connect(url), order)

    async def _reply(self, c: _Driver) -> dict[str, Any]:
        while True:  # skip pushes (stops) until the answer to a fix
            msg = await c.ws.receive()
            if msg.type != _TEXT:
                self.disconnects += 1
                raise ConnectionError(f"driver socket closed: {msg.type}")
            reply: dict[str, Any] = json.loads(msg.data)
            if reply.get("type") in ("ack", "error"):
                return reply

    async def send(self, c: _Driver, fix: dict[str, Any]) -> None:
        await c.ws.send_str(self._rewrite(c.order, fix, new_second=False))
        await self._reply(c)

    async def send_nowait(self, c: _Driver, fix: dict[str, Any], on_ack: Callable[..., Any]) -> None:
        if c.reader is None:
            c.reader = asyncio.create_task(self._read_acks(c))
        c.pending.append(on_ack)
        await c.ws.send_str(self._rewrite(c.order, fix, new_second=True))

    async def _read_acks(self, c: _Driver) -> None:
        while True:
            await self._reply(c)
            c.pending.popleft()()

    async def customer(self, order: str, on_location: Callable[[dict[str, Any]], Any]) -> Any:
        d = self.fleet[order]
        url = f"{self.ws_base}/ws/track/{quote(d['tracking_id'])}?t={quote(d['tracking_token'])}"
        ws = await self._connect(url)
        task = asyncio.create_task(self._watch(ws, order, on_location))
        self.tasks.add(task)
        return ws

    async def _watch(self, ws: Any, order: str, on_location: Callable[[dict[str, Any]], Any]) -> None:
        async for msg in ws:
            if msg.type != _TEXT:
                continue
            event = json.loads(msg.data)
            if event.get("type") == "location":
                sent_at = self.sent_at.get((order, event["ts"]))
                if sent_at is not None:
                    on_location({"sent_at": sent_at})
        self.disconnects += 1  # the server closed it (a slow consumer gets 1013)
