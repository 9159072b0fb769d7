"""CSV export of a store's orders: the period's rows with stage times, on time, ETA error and rating; a
spreadsheet formula in a customer's name stays text; 10,000 orders stream with the server's memory flat."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import zoneinfo
from pathlib import Path

import httpx

from conftest import DEST, Server, Shop, new_shop, now_ms

TZ = "America/Asuncion"
HOUR = 3600_000


async def _csv(shop: Shop, query: str = "") -> list[dict[str, str]]:
    r = await shop.get(f"/api/orders.csv{query}")
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
    at = lambda ms: dt.datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="seconds")  # noqa: E731
    assert row["placed_at"] == row["received_at"] == at(placed)
    assert (row["shipped_at"], row["delivered_at"]) == (at(placed + 2 * HOUR), at(placed + 3 * HOUR))
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
