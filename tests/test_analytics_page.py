"""Analytics in the browser: the tracking page counts its own views (phone vs desktop, no cookie)."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser

from conftest import DESKTOP, PHONE, Shop, open_page, skip_without_chromium, wait

skip_without_chromium()


async def test_the_tracking_page_counts_its_views_phone_and_desktop_apart(browser: Browser, shop: Shop) -> None:
    order = await shop.order("viewed")
    for viewport, seconds in ((PHONE, 1.5), (PHONE, 0.5), (DESKTOP, 1.0)):
        page = await open_page(browser, order["tracking_url"], viewport)
        await page.wait_for_selector(".lm-header")
        await asyncio.sleep(seconds)
        assert await page.context.cookies() == [], "views are counted without a cookie"
        await page.goto("about:blank")  # the page is left: its beacon goes out (keepalive)
        await page.close()
    views: dict[str, object] = {}
    for _ in range(int(wait(20) * 10)):
        views = (await shop.get("/api/analytics")).json()["views"]
        if views["views"] == 3:
            break
        await asyncio.sleep(0.1)
    assert views["phone"] == 2 and views["desktop"] == 1, views
    assert views["orders_viewed"] == 1 and views["per_order"] == 3.0, views
    median = views["time_on_page"]["median_s"]  # type: ignore[index]
    assert 1.0 <= median < 1.0 + wait(3), views  # the 1.5, 0.5 and 1.0 s on screen (plus loading), middle one
