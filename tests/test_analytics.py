"""Analytics: a month of orders sent through the public API (with their own times, as a shop's import
sends them) gives the figures the test computes on its own from what it sent."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import random
import statistics
import zoneinfo
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from conftest import DEST, ORIGIN, Server, Shop, customer_socket, driver_socket, fix, new_shop, now_ms

TZ = "America/Asuncion"
DAYS = 30
MIN = 60_000


@dataclass
class Truth:
    """What the test sent, and the figures it computes from it."""

    orders_by_day: Counter[str] = field(default_factory=Counter)
    delivered_by_day: Counter[str] = field(default_factory=Counter)
    customers: set[str] = field(default_factory=set)
    stage_s: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    promised: int = 0
    on_time: int = 0
    first_attempt: int = 0
    failed: int = 0
    cancelled: int = 0
    returned: int = 0
    ratings: list[int] = field(default_factory=list)


def _day(at: int) -> str:
    return dt.datetime.fromtimestamp(at / 1000, zoneinfo.ZoneInfo(TZ)).date().isoformat()


def _lower_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def _close(got: float, want: float) -> bool:
    """Within the histograms' resolution (buckets 5% apart, read at their middle) and the reply's rounding."""
    return abs(got - want) <= 0.026 * want + 0.1


async def _stage(shop: Shop, oid: str, stage: str, at: int) -> dict[str, Any]:
    r = await shop.post(f"/api/orders/{oid}/stage", {"stage": stage, "at": at})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _one_order(shop: Shop, rng: random.Random, oid: str, placed: int, truth: Truth) -> dict[str, Any]:
    """One order's life, each step dated; its truth recorded as it goes."""
    who = rng.randrange(45)
    customer = {"name": f"Customer {who}", "email": f"c{who}@example.com"} if who < 40 else {
        "name": f"Customer {who}", "phone": f"+595 981 {who:06d}"}  # fmt: skip
    truth.customers.add(f"c{who}")
    promised = placed + 4 * 3600_000 if rng.random() < 0.8 else None
    where = {"destination": {"lat": DEST[0], "lon": DEST[1]}, "origin": {"lat": ORIGIN[0], "lon": ORIGIN[1]}}
    body = {"id": oid, "customer": customer, "placed_at": placed, "promised_by": promised, **where}
    r = await shop.post("/api/orders", {k: v for k, v in body.items() if v is not None})
    assert r.status_code == 201, r.text
    truth.orders_by_day[_day(placed)] += 1
    at, stage = placed, "received"

    async def step(to: str, seconds: float) -> dict[str, Any]:
        nonlocal at, stage
        truth.stage_s[stage].append(round(seconds * 1000) / 1000)
        at += round(seconds * 1000)
        stage = to
        return await _stage(shop, oid, to, at)

    if rng.random() < 0.1:
        truth.cancelled += 1
        return await step("cancelled", rng.uniform(60, 1800))
    await step("processing", rng.uniform(600, 3600))
    await step("shipped", rng.uniform(1200, 7200))
    if failed := rng.random() < 0.2:
        truth.failed += 1
        await step("failed_attempt", rng.uniform(900, 2400))
        await step("shipped", rng.uniform(600, 1800))
    await step("delivered", rng.uniform(900, 3600))
    truth.delivered_by_day[_day(at)] += 1
    truth.first_attempt += not failed
    if promised:
        truth.promised += 1
        truth.on_time += at <= promised
    if rng.random() < 0.1:
        truth.returned += 1
        return await step("returned", rng.uniform(3600, 86400))
    return await step("completed", rng.uniform(60, 600))


async def _seed(shop: Shop, rng: random.Random, today: dt.date) -> tuple[Truth, list[dict[str, Any]]]:
    """A month before today, 4 to 12 orders a day placed between 08:00 and 14:00 in the store's zone."""
    truth, jobs = Truth(), []
    for back in range(DAYS, 0, -1):
        day = today - dt.timedelta(days=back)
        for n in range(rng.randrange(4, 13)):
            morning = dt.datetime.combine(day, dt.time(8), zoneinfo.ZoneInfo(TZ)).timestamp() * 1000
            jobs.append((f"{day:%m%d}-{n}", int(morning + rng.uniform(0, 6 * 3600_000))))
    gate = asyncio.Semaphore(16)

    async def run(oid: str, placed: int) -> dict[str, Any]:
        async with gate:
            return await _one_order(shop, random.Random(oid), oid, placed, truth)

    orders = await asyncio.gather(*(run(oid, placed) for oid, placed in jobs))
    return truth, list(orders)


async def _rate_and_view(shop: Shop, rng: random.Random, orders: list[dict[str, Any]], truth: Truth) -> list[float]:
    """Customers rate half of the delivered orders and look at a third of them (views: seconds on the page)."""
    seconds: list[float] = []
    for order in orders:
        tracking = f"{shop.server.url}/api/track/{order['tracking_id']}"
        t = {"t": order["tracking_token"]}
        if order["stage"] == "completed" and rng.random() < 0.5:
            truth.ratings.append(rng.randint(1, 5))
            body = {"rating": truth.ratings[-1], "comment": f"ok {order['id']}" if rng.random() < 0.3 else None}
            assert (await shop.http.post(tracking + "/feedback", params=t, json=body)).status_code == 200
        if rng.random() < 0.33:
            for _ in range(rng.randint(1, 4)):
                seconds.append(round(rng.uniform(5, 600), 1))
                view = {"seconds": seconds[-1], "device": "phone" if rng.random() < 0.75 else "desktop"}
                assert (await shop.http.post(tracking + "/views", params=t, json=view)).status_code == 204
    return seconds


async def test_a_month_of_orders_gives_the_figures_computed_from_them(http: httpx.AsyncClient, server: Server) -> None:
    shop = await new_shop(http, server)
    assert (await http.patch(server.url + "/api/store", json={"timezone": TZ}, headers=shop.auth)).status_code == 200
    today = dt.datetime.now(zoneinfo.ZoneInfo(TZ)).date()
    rng = random.Random(22)
    truth, orders = await _seed(shop, rng, today)
    seconds = await _rate_and_view(shop, rng, orders, truth)
    first = today - dt.timedelta(days=DAYS)
    r = await shop.get(f"/api/analytics?from={first}&to={today}")
    assert r.status_code == 200, r.text
    got = r.json()
    orders_n = sum(truth.orders_by_day.values())
    print(f"analytics: {orders_n} orders, {len(truth.customers)} customers, {sum(truth.delivered_by_day.values())}"
          f" delivered, {sum(len(v) for v in truth.stage_s.values())} stage changes; reply {got['purchase_frequency']}"
          f" orders per customer")  # fmt: skip
    assert (got["from"], got["to"], got["tz"]) == (first.isoformat(), today.isoformat(), TZ)
    assert got["orders"] == orders_n and got["cancelled"] == truth.cancelled
    assert abs(got["unique_customers"] - len(truth.customers)) <= 0.02 * len(truth.customers)
    assert abs(got["purchase_frequency"] - orders_n / len(truth.customers)) <= 0.02 * orders_n / len(truth.customers)
    assert got["on_time"] == {"promised": truth.promised, "on_time": truth.on_time,
                              "share": round(truth.on_time / truth.promised, 4)}  # fmt: skip
    delivered = sum(truth.delivered_by_day.values())
    assert got["attempts"] == {"delivered": delivered, "first_attempt": truth.first_attempt,
                               "first_attempt_share": round(truth.first_attempt / delivered, 4),
                               "failed_attempts": truth.failed}  # fmt: skip
    assert got["returns"] == {"returned": truth.returned, "rate": round(truth.returned / delivered, 4)}
    times = {s["stage"]: s["time"] for s in got["stages"]}
    assert set(times) == set(truth.stage_s), "every stage left is timed, in the store's pipeline order"
    for stage, values in truth.stage_s.items():
        assert times[stage]["n"] == len(values), stage
        assert _close(times[stage]["median_s"], statistics.median_low(values)), (stage, times[stage], values)
        assert _close(times[stage]["p90_s"], _lower_quantile(values, 0.9)), (stage, times[stage])
    stars = Counter(truth.ratings)
    assert got["ratings"]["distribution"] == {str(r): stars[r] for r in range(1, 6)}
    assert got["ratings"]["average"] == round(statistics.mean(truth.ratings), 2)
    latest = got["ratings"]["latest"]
    assert 0 < len(latest) <= 20 and all(c["comment"].startswith("ok ") for c in latest)
    views = got["views"]
    assert views["views"] == len(seconds) == views["phone"] + views["desktop"]
    assert _close(views["time_on_page"]["median_s"], statistics.median_low(seconds))
    daily = got["daily"]
    assert daily["days"][0] == first.isoformat() and daily["days"][-1] == today.isoformat()
    assert daily["orders"] == [truth.orders_by_day[d] for d in daily["days"]]
    assert daily["delivered"] == [truth.delivered_by_day[d] for d in daily["days"]]


async def test_a_store_reads_only_its_own_figures(http: httpx.AsyncClient, server: Server, shop: Shop) -> None:
    await shop.order("mine")
    other = await new_shop(http, server)
    assert (await shop.get("/api/analytics")).json()["orders"] == 1
    assert (await other.get("/api/analytics")).json()["orders"] == 0
    assert (await http.get(server.url + "/api/analytics")).status_code == 401


@pytest.mark.parametrize(
    "query",
    ["from=2026-13-01", "from=2026-05-02&to=2026-05-01", "from=2024-01-01&to=2025-12-31", "tz=Europe/Paris"],
)
async def test_a_bad_period_is_a_typed_error(shop: Shop, query: str) -> None:
    r = await shop.get(f"/api/analytics?{query}")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_query", r.text


async def test_a_change_dated_out_of_order_is_refused_and_changes_nothing(shop: Shop) -> None:
    order = await shop.order("dated")
    received = order["history"][0]["at"]
    r = await shop.post("/api/orders/dated/stage", {"stage": "processing", "at": received - 1000})
    error = r.json()["error"]
    assert r.status_code == 422 and error["code"] == "out_of_order" and error["previous"] == received, r.text
    r = await shop.post("/api/orders/dated/stage", {"stage": "processing", "at": received + 3600_000 * 24})
    assert r.status_code == 422 and r.json()["error"]["code"] == "out_of_order", r.text
    assert (await shop.get("/api/orders/dated")).json()["stage"] == "received"


async def test_the_eta_a_customer_saw_before_arrival_is_scored(shop: Shop, server: Server) -> None:
    """A 36-minute trip (the driver's fixes sent as they were taken, 20 s apart): the analytics score the ETA the
    customer's socket showed 30, 10 and 3 minutes before the delivery, as the test reads it from that socket."""
    order = await shop.live_order("eta", "d1")
    customer = await customer_socket(server, order)
    await customer.recv_type("snapshot")
    driver = await driver_socket(server, shop.drivers["d1"])
    t0, n = now_ms() - 36 * MIN, 108
    for i in range(n):
        await driver.send(fix(0.98 * i / n, t0 + i * 20_000, seq=i, speed=1.7))
        assert (await driver.recv_type("ack"))["accepted"] == 1
        await asyncio.sleep(0.025)  # within the socket's 50 messages a second
    seen = [await customer.recv_type("location") for _ in range(n)]
    arrived = t0 + 36 * MIN
    assert (await _stage(shop, "eta", "delivered", arrived))["stage"] == "delivered"
    scores = {s["minutes_before"]: s["error"] for s in (await shop.get("/api/analytics")).json()["eta_truth"]}
    for minutes in (30, 10, 3):
        mark = arrived - minutes * MIN
        shown = [e["eta_at"] for e in seen if mark - 120_000 <= e["ts"] <= mark][-1]
        assert scores[minutes]["n"] == 1 and _close(scores[minutes]["median_s"], abs(shown - arrived) / 1000), (
            minutes, scores[minutes], shown - arrived)  # fmt: skip
    await driver.close()
    await customer.close()
