"""`make bench` step "analytics": a store's year of figures read back, and what a tracking page view
costs the server next to a driver's ping.

The year (100,000 orders at full scale, over 365 days) is counted into Redis by livemap's own code
(`AnalyticsRecords`, the calls the server makes per order, stage change, rating and view) straight
from this process: going through HTTP would take the bench most of an hour and measure nothing more.
The reads and the costs go through a real livemap server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import secrets
import statistics
import time
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import websockets

from livemap.domain.analytics import customer_identity
from livemap.domain.records import Order
from livemap.domain.responses import Feedback
from livemap.storage.connection import open_db
from livemap.storage.keys import Keys
from livemap.storage.repository import Repository
from livemap.storage.secretbox import SecretBox

if TYPE_CHECKING:
    from .measure import Bench, Servers

#: A year of a busy small shop, at full scale.
YEAR_ORDERS = 100_000
#: Reads timed (each of the year, then of the baseline).
READS = 40
#: Page views and pings whose server CPU is compared.
COSTED = 2_000
TZ = "America/Asuncion"
_DAY_MS = 86_400_000
_STAGES = (("received", "processing", 1800), ("processing", "shipped", 5400), ("shipped", "delivered", 2400))


async def analytics(bench: Bench) -> dict[str, Any]:
    """Fill a year, time `GET /api/analytics` over it next to `GET /api/store`, and cost a view next to a ping."""
    orders = max(2_000, int(YEAR_ORDERS * bench.options.scale))
    async with bench.livemap() as servers, httpx.AsyncClient(timeout=60) as http:
        url = servers.urls[0]
        r = await http.post(f"{url}/api/stores", json={"name": "analytics"}, headers=_bearer(servers.admin_token))
        sid, key = r.json()["id"], r.json()["api_key"]
        assert (await http.patch(f"{url}/api/store", json={"timezone": TZ}, headers=_bearer(key))).status_code == 200
        t = time.monotonic()
        await _fill_year(bench.redis.url, bench.prefix, sid, orders, bench.say)
        fill_s = time.monotonic() - t
        today = dt.datetime.now(zoneinfo.ZoneInfo(TZ)).date()
        year = f"/api/analytics?from={today - dt.timedelta(days=364)}&to={today}"
        check = (await http.get(url + year, headers=_bearer(key))).json()
        if check["orders"] != orders:
            raise RuntimeError(f"the year reads {check['orders']} orders of {orders} counted")
        read_ms = await _timed(http, url + year, key)
        base_ms = await _timed(http, url + "/api/store", key)
        view_us, ping_us = await _costs(servers, http, url, key)
    return {
        "orders": orders,
        "days": 365,
        "fill_s": round(fill_s, 1),
        "read_p50_ms": round(statistics.median(read_ms), 1),
        "read_p90_ms": round(statistics.quantiles(read_ms, n=10)[-1], 1),
        "baseline_p50_ms": round(statistics.median(base_ms), 2),
        "read_vs_baseline": round(statistics.median(read_ms) / statistics.median(base_ms), 1),
        "view_cpu_us": round(view_us),
        "ping_cpu_us": round(ping_us),
        "view_vs_ping": round(view_us / ping_us, 2),
    }


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _fill_year(redis_url: str, prefix: str, sid: str, orders: int, say: Callable[[str], None]) -> None:
    """`orders` orders' lives over the 365 days up to today, counted as the server counts them."""
    db = await open_db(redis_url)
    repo = Repository(db, Keys(prefix), stream_maxlen=50, box=SecretBox([secrets.token_hex(16)]))
    rng, gate, now = random.Random(7), asyncio.Semaphore(128), int(time.time() * 1000)

    async def life(i: int) -> None:
        placed = now - 364 * _DAY_MS + int(i / orders * 363 * _DAY_MS) + rng.randrange(3_600_000)
        who = rng.randrange(orders // 3)
        async with gate:
            await repo.count_order(sid, TZ, placed, customer_identity(f"c{who}@example.com", None, ""))
            promised = str(placed + 14_400_000)
            order, at = Order({"store": sid, "tid": f"t{i}", "id": str(i), "promised_by": promised}), placed
            for stage, to, mean_s in _STAGES:
                entered, at = at, at + int(rng.expovariate(1 / mean_s) * 1000)
                order.raw["stage"] = stage
                await repo.count_stage(order, TZ, to, at, entered)
            order.raw["stage"] = "delivered"
            await repo.count_stage(order, TZ, "completed", at + 300_000, at)
            if rng.random() < 0.3:
                rating = Feedback(rng.randint(1, 5), "fine" if rng.random() < 0.2 else None, at + 600_000)
                await repo.count_rating(sid, TZ, None, rating, str(i))
        if (i + 1) % 20_000 == 0:
            say(f"  counted {i + 1:,} of {orders:,} orders")

    await asyncio.gather(*(life(i) for i in range(orders)))
    await db.client.aclose()


async def _timed(http: httpx.AsyncClient, url: str, key: str) -> list[float]:
    """Milliseconds of READS sequential GETs (after one to warm up)."""
    await http.get(url, headers=_bearer(key))
    out = []
    for _ in range(READS):
        t = time.perf_counter()
        r = await http.get(url, headers=_bearer(key))
        out.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
    return out


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s


async def _costs(servers: Servers, http: httpx.AsyncClient, url: str, key: str) -> tuple[float, float]:
    """Server CPU (µs) per tracking page view and per driver ping, each to an order on its way (50 of them)."""
    pid, n = servers.pids[0], 50
    orders = [{"id": f"v{i}", "customer": {"name": "C"}, "destination": {"lat": -25.30, "lon": -57.60},
               "origin": {"lat": -25.28, "lon": -57.63}} for i in range(n)]  # fmt: skip
    made = (await http.post(f"{url}/api/orders:bulk", json=orders, headers=_bearer(key))).json()["items"]
    drivers = (await http.put(f"{url}/api/drivers:bulk", json=[{"id": f"d{i}", "name": "D"} for i in range(n)],
                              headers=_bearer(key))).json()["items"]  # fmt: skip
    for i in range(n):
        await http.post(f"{url}/api/orders/v{i}/assign", json={"driver_id": f"d{i}"}, headers=_bearer(key))
        await http.post(f"{url}/api/orders/v{i}/stage", json={"stage": "shipped"}, headers=_bearer(key))
    gate = asyncio.Semaphore(16)

    async def view(i: int) -> None:
        item = made[i % n]
        async with gate:
            token = httpx.URL(item["tracking_url"]).params["t"]
            r = await http.post(f"{url}/api/track/{item['tracking_id']}/views", params={"t": token},
                                json={"seconds": 42.0, "device": "phone"})  # fmt: skip
            r.raise_for_status()

    before = _cpu_s(pid)
    await asyncio.gather(*(view(i) for i in range(COSTED)))
    view_us = (_cpu_s(pid) - before) / COSTED * 1e6
    ws = url.replace("http", "ws", 1)

    async def pings(token: str) -> None:
        async with websockets.connect(f"{ws}/ws/driver?token={token}") as sock:
            await sock.recv()  # its stops
            start = int(time.time() * 1000) - COSTED // n * 1000
            for k in range(COSTED // n):
                fix = {"lat": -25.28 - 0.0004 * k, "lon": -57.63 + 0.0006 * k, "ts": start + k * 1000, "seq": k}
                await sock.send(json.dumps(fix))
                while json.loads(await sock.recv()).get("type") != "ack":
                    pass

    before = _cpu_s(pid)
    await asyncio.gather(*(pings(d["token"]) for d in drivers))
    ping_us = (_cpu_s(pid) - before) / COSTED * 1e6
    return view_us, ping_us
