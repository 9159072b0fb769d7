"""CSV exports of a store's orders and returns: the period's rows with stage (or step) times, on time, ETA error
and rating (or driver and days after delivery); a spreadsheet formula in a cell stays text; 10,000 orders and
2,000 returns stream with the server's memory flat."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import zoneinfo
from pathlib import Path

import httpx
from test_returns import DAY, _ask, _delivered, _step

from conftest import DEST, RedisTarget, Server, Shop, new_shop, now_ms
from livemap.storage.connection import open_db
from livemap.storage.keys import Keys

TZ = "America/Asuncion"
HOUR = 3600_000


def _local(ms: int) -> str:
    """An epoch-ms time as the exports write it: in the store's zone, to the second."""
    return dt.datetime.fromtimestamp(ms / 1000, zoneinfo.ZoneInfo(TZ)).isoformat(timespec="seconds")


async def _csv(shop: Shop, query: str = "", path: str = "/api/orders.csv") -> list[dict[str, str]]:
    r = await shop.get(path + query)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
    assert "attachment" in r.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(r.text)))


async def test_the_periods_orders_with_their_times_promise_and_rating(shop: Shop, http: httpx.AsyncClient) -> None:
    r = await http.patch(shop.server.url + "/api/store", json={"timezone": TZ}, headers=shop.auth)
    assert r.status_code == 200
    placed = now_ms() - 5 * HOUR
    order = await shop.order("x1", placed_at=placed, promised_by=placed + 4 * HOUR,
                             customer={"name": "=HYPERLINK(\"http://evil\")", "email": "e@example.com"})  # fmt: skip
    for stage, hours in (("processing", 1), ("shipped", 2), ("delivered", 3), ("completed", 4)):
        r = await shop.post("/api/orders/x1/stage", {"stage": stage, "at": placed + hours * HOUR})
        assert r.status_code == 200, r.text
    track = f"{shop.server.url}/api/track/{order['tracking_id']}"
    r = await http.post(track + "/feedback", params={"t": order["tracking_token"]}, json={"rating": 4, "comment": "ok"})
    assert r.status_code == 200
    await shop.order("old", placed_at=placed - 40 * 24 * HOUR)  # before the default 30 days
    other = await new_shop(http, shop.server)
    await other.order("theirs")
    rows = await _csv(shop)
    assert [row["order_id"] for row in rows] == ["x1"], "the period's orders of this store only"
    row, tz = rows[0], zoneinfo.ZoneInfo(TZ)
    assert row["placed_at"] == row["received_at"] == _local(placed)
    assert (row["shipped_at"], row["delivered_at"]) == (_local(placed + 2 * HOUR), _local(placed + 3 * HOUR))
    assert (row["stage"], row["on_time"], row["failed_attempts"]) == ("completed", "yes", "0")
    assert (row["rating"], row["comment"], row["cancelled_at"]) == ("4", "ok", "")
    assert row["customer"] == '\'=HYPERLINK("http://evil")', "a formula is kept as text"
    assert "eta_error_10min_s" in row
    old_day = dt.datetime.fromtimestamp((placed - 40 * 24 * HOUR) / 1000, tz).date()
    assert [r["order_id"] for r in await _csv(shop, f"?from={old_day}&to={old_day}")] == ["old"]
    assert (await http.get(shop.server.url + "/api/orders.csv")).status_code == 401
    r = await shop.get("/api/orders.csv?from=yesterday")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_query"


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


async def test_ten_thousand_orders_stream_with_flat_memory(server: Server, http: httpx.AsyncClient) -> None:
    shop = await new_shop(http, server)
    for part in range(5):
        body = [{"id": f"o{part}-{i}", "customer": {"name": f"Customer {i}", "email": f"c{i}@example.com"},
                 "destination": {"lat": DEST[0], "lon": DEST[1]}} for i in range(2000)]  # fmt: skip
        r = await http.post(server.url + "/api/orders:bulk", json=body, headers=shop.auth, timeout=120)
        assert r.json()["created"] == 2000, r.text[:300]
    pid, rows, chunks = server.proc.pid, 0, 0
    before = peak = _rss_kb(pid)
    async with http.stream("GET", server.url + "/api/orders.csv", headers=shop.auth, timeout=120) as r:
        assert r.status_code == 200 and "content-length" not in r.headers, "streamed, not built whole"
        async for chunk in r.aiter_text():
            rows, chunks = rows + chunk.count("\n"), chunks + 1
            peak = max(peak, _rss_kb(pid))
            await asyncio.sleep(0.01)  # a slow reader: the server must not read ahead of it
    print(f"export: {rows - 1:,} orders in {chunks} chunks; server RSS {before / 1024:.1f} MB, peak"
          f" +{(peak - before) / 1024:.1f} MB")  # fmt: skip
    assert rows == 10_001
    assert peak - before < 8 * 1024, "the server's memory stays flat (the CSV alone is ~1.8 MB)"


async def test_the_periods_returns_with_their_steps_driver_and_days(shop: Shop, http: httpx.AsyncClient) -> None:
    """Each return asked for in the period (the store's days), oldest first, with each step's time in the store's
    zone, the collecting driver and the days since delivery; none of another store's; a formula in a note is text."""
    r = await http.patch(shop.server.url + "/api/store", json={"timezone": TZ}, headers=shop.auth)
    assert r.status_code == 200
    await shop.driver("collector")
    asked = await _ask(shop, await _delivered(shop, "W1", now_ms() - 2 * DAY), "Damaged", '=HYPERLINK("http://evil")')
    assert asked.status_code == 201, asked.text
    for status, extra in (("approved", {}), ("pickup", {"driver_id": "collector"}), ("received", {}),
                          ("refunded", {"note": "Refunded in full"})):  # fmt: skip
        last = await _step(shop, "W1", status, **extra)
        assert last.status_code == 200, last.text
    assert (await _ask(shop, await _delivered(shop, "W2"))).status_code == 201
    assert (await _step(shop, "W2", "rejected", note="-worn, not ours")).status_code == 200
    await _delivered(shop, "W3")  # delivered, never returned
    other = await new_shop(http, shop.server)
    assert (await _ask(other, await _delivered(other, "W9"))).status_code == 201
    rows = await _csv(shop, path="/api/returns.csv")
    assert [(row["order_id"], row["status"]) for row in rows] == [("W1", "refunded"), ("W2", "rejected")]
    walked, at = rows[0], {step["status"]: step["at"] for step in last.json()["steps"]}
    assert walked["requested_at"] == _local(asked.json()["requested_at"])
    steps = ("approved", "pickup", "received", "refunded")
    assert [walked[f"{s}_at"] for s in steps] == [_local(at[s]) for s in steps]
    assert walked["rejected_at"] == walked["dropoff_at"] == ""
    assert (walked["driver_id"], walked["customer"], walked["days_after_delivery"]) == ("collector", "Ana", "2.0")
    assert (walked["reason"], walked["last_note"]) == ("Damaged", "Refunded in full")
    assert walked["note"] == '\'=HYPERLINK("http://evil")', "a formula is kept as text"
    assert (rows[1]["last_note"], rows[1]["approved_at"], rows[1]["driver_id"]) == ("'-worn, not ours", "", "")
    assert rows[1]["rejected_at"] and rows[1]["days_after_delivery"] == "0.0"
    day = dt.date.fromisoformat(walked["requested_at"][:10])
    r = await shop.get(f"/api/returns.csv?from={day}&to={day}")
    assert r.headers["content-disposition"] == f'attachment; filename="returns-{day}-{day}.csv"'
    assert r.headers["cache-control"] == "no-store"
    assert [row["order_id"] for row in csv.DictReader(io.StringIO(r.text))] == ["W1", "W2"]
    for outside in (day - dt.timedelta(days=1), day + dt.timedelta(days=1)):
        r = await shop.get(f"/api/returns.csv?from={outside}&to={outside}")
        assert r.status_code == 200 and r.text.splitlines() == [r.text.splitlines()[0]], "the header alone"
        assert r.text.startswith("order_id,tracking_id,status,reason,note,requested_at,approved_at,")
    assert (await http.get(shop.server.url + "/api/returns.csv")).status_code == 401
    for query in ("from=yesterday", f"from={day}&to={day - dt.timedelta(days=1)}", f"from={day.replace(year=2001)}"):
        r = await shop.get(f"/api/returns.csv?{query}")
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_query", query


async def test_two_thousand_returns_stream_page_by_page_with_flat_memory(
    server: Server, http: httpx.AsyncClient, redis_target: RedisTarget
) -> None:
    """2,000 returns, hundreds asked for in the same millisecond across the pages' edges, are each exported once,
    streamed with the server's memory flat."""
    shop = await new_shop(http, server)
    body = [{"id": f"r{i}", "customer": {"name": f"Customer {i}"}, "destination": {"lat": DEST[0], "lon": DEST[1]}}
            for i in range(2000)]  # fmt: skip
    r = await http.post(server.url + "/api/orders:bulk", json=body, headers=shop.auth, timeout=120)
    assert r.json()["created"] == 2000, r.text[:300]
    gate = asyncio.Semaphore(32)

    async def returned(item: dict[str, str]) -> None:
        async with gate:
            assert (await shop.stage(item["id"], "delivered")).status_code == 200
            token = httpx.URL(item["tracking_url"]).params["t"]
            order = {"tracking_id": item["tracking_id"], "tracking_token": token}
            assert (await _ask(shop, order)).status_code == 201

    items = r.json()["items"]
    await asyncio.gather(*(returned(item) for item in items))
    # As if asked for in one millisecond 700 at a time: the pages (500 each) end in the middle of a millisecond.
    db, since = await open_db(redis_target.url), now_ms() - 60_000
    try:
        index = Keys(redis_target.prefix).store_returns(shop.id)
        await db.client.zadd(index, {item["tracking_id"]: since + i // 700 for i, item in enumerate(items)})
    finally:
        await db.client.aclose()
    pid, text = server.proc.pid, ""
    before = peak = _rss_kb(pid)
    async with http.stream("GET", server.url + "/api/returns.csv", headers=shop.auth, timeout=120) as r:
        assert r.status_code == 200 and "content-length" not in r.headers, "streamed, not built whole"
        async for chunk in r.aiter_text():
            text += chunk
            peak = max(peak, _rss_kb(pid))
            await asyncio.sleep(0.01)  # a slow reader: the server must not read ahead of it
    ids = [row["order_id"] for row in csv.DictReader(io.StringIO(text))]
    print(f"export: {len(ids):,} returns, {len(text) / 1024:.0f} KB; server RSS {before / 1024:.1f} MB, peak"
          f" +{(peak - before) / 1024:.1f} MB")  # fmt: skip
    assert len(ids) == 2000 and set(ids) == {f"r{i}" for i in range(2000)}, "each return once, none skipped"
    assert peak - before < 4 * 1024, "the server's memory stays flat"
