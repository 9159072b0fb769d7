"""Analytics in the browser: the tracking page counts its own views (phone vs desktop, no cookie); the
analytics page draws a store's period, in en, es and pt-BR, on a phone and a desktop."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser

from conftest import ARTIFACTS, DESKTOP, PHONE, Server, Shop, now_ms, open_page, skip_without_chromium, wait

DAY = 86_400_000

skip_without_chromium()


async def test_the_tracking_page_counts_its_views_phone_and_desktop_apart(browser: Browser, shop: Shop) -> None:
    order = await shop.order("viewed")
    for viewport, seconds in ((PHONE, 1.5), (PHONE, 0.5), (DESKTOP, 1.0)):
        page = await open_page(browser, order["tracking_url"], viewport)
        await page.wait_for_selector(".lm-header")
        await asyncio.sleep(seconds)
        assert await page.context.cookies() == [], "views are counted without a cookie"
        await page.goto("about:blank")  # the page is left: its beacon goes out (keepalive)
        await asyncio.sleep(0.3)  # before closing: the test's request router would cancel it, a browser would not
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


async def _seed(shop: Shop, days: int = 10) -> int:
    """A few orders a day over the last `days` days, each delivered and completed; some rated, some viewed."""
    assert (await shop.http.patch(shop.server.url + "/api/store", json={"timezone": "America/Asuncion"},
                                  headers=shop.auth)).status_code == 200  # fmt: skip
    start, count = now_ms() - days * DAY, 0
    for d in range(days):
        for n in range(d % 4 + 2):
            placed, oid = start + d * DAY + n * 3600_000, f"a{d}-{n}"
            who = {"name": f"Cliente {d * n % 7}", "email": f"cliente{d * n % 7}@example.com"}
            promised = placed + (3 if n % 3 else 1) * 3600_000
            order = await shop.order(oid, placed_at=placed, promised_by=promised, customer=who)
            at = placed
            for stage, minutes in (("processing", 20 + n), ("shipped", 45), ("delivered", 60 + 10 * n),
                                   ("completed", 5)):  # fmt: skip
                at += minutes * 60_000
                assert (await shop.post(f"/api/orders/{oid}/stage", {"stage": stage, "at": at})).status_code == 200
            track, t = f"{shop.server.url}/api/track/{order['tracking_id']}", {"t": order["tracking_token"]}
            if n % 2 == 0:
                body = {"rating": 5 - n % 3, "comment": f"Great, order {oid}" if n == 0 else None}
                assert (await shop.http.post(track + "/feedback", params=t, json=body)).status_code == 200
            view = {"seconds": 30 + 40 * n, "device": "phone" if n % 4 else "desktop"}
            assert (await shop.http.post(track + "/views", params=t, json=view)).status_code == 204
            count += 1
    return count


async def test_the_analytics_page_draws_the_period_in_each_language(
    browser: Browser, shop: Shop, server: Server
) -> None:
    orders = await _seed(shop)
    context = await browser.new_context(viewport=DESKTOP, locale="en-US")
    await context.route("**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url else route.abort())
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Errors of ours only: the dashboard's map tiles are refused offline (their own URLs), as they may be.
    ours = server.url
    page.on("console", lambda m: errors.append(f"{m.text} {m.location}") if m.type == "error" and
            m.location.get("url", ours).startswith(ours) else None)  # fmt: skip
    await page.goto(f"{server.url}/dispatch/analytics")
    assert page.url.endswith("/dispatch"), "not signed in: the sign-in form"
    await page.fill("#dp-key", shop.key)
    await page.click("#dp-key-form button")
    await page.wait_for_selector("#dp-conn")
    for lang, title in (("en", "Analytics"), ("es", "Estadísticas"), ("pt-BR", "Estatísticas")):
        for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            await page.set_viewport_size(viewport)
            await page.goto(f"{server.url}/dispatch/analytics?lang={lang}")
            await page.locator(".an-card").nth(9).wait_for(timeout=wait(10) * 1000)
            assert title in await page.inner_text(".dp-title")
            assert await page.inner_text(".an-card:first-child .an-value") == str(orders)
            drawn = await page.evaluate("Chart.getChart('an-daily').data.datasets[0].data.reduce((a, b) => a + b, 0)")
            assert drawn == orders, "the daily chart holds every order of the period"
            assert await page.evaluate("Chart.getChart('an-stages').data.labels.length") == 4
            assert "Great, order" in await page.inner_text("#an-comments")
            await page.wait_for_timeout(1200)  # Chart.js's entry animation
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / f"analytics-{lang}-{name}.png"), full_page=True)
    # A period picked on the page is asked for and drawn: the last 7 days hold fewer orders.
    await page.click("#an-presets button:first-child")
    shown = f"Number(document.querySelector('.an-card .an-value').textContent) < {orders}"
    for _ in range(int(wait(10) * 10)):  # polled: the page's CSP refuses wait_for_function's eval, as it should
        if await page.evaluate(shown):
            break
        await asyncio.sleep(0.1)
    assert await page.evaluate(shown)
    assert errors == [], errors
    await context.close()
