"""The dashboard's orders page (`/dispatch/orders`) in Chromium: an order imported from Shopify, with no driver,
is found in the list and assigned from it; once the driver picks it up the customer's page shows the driver."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, BrowserContext, Page
from test_integrations import SHOPIFY_SECRET, fixture, shopify_deliver

from conftest import (
    ARTIFACTS,
    DESKTOP,
    PHONE,
    Server,
    Shop,
    driver_socket,
    now_ms,
    open_page,
    png,
    skip_without_chromium,
    wait,
)

skip_without_chromium()


async def _signed_in(browser: Browser, server: Server, shop: Shop, viewport: dict[str, int]) -> BrowserContext:
    context = await browser.new_context(viewport=viewport)
    await context.route("**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url else route.abort())
    page = await context.new_page()
    await page.goto(f"{server.url}/dispatch")
    await page.fill("#dp-key", shop.key)
    await page.click("#dp-key-form button")
    await page.wait_for_selector("#dp-conn")
    await page.close()
    return context


async def _orders(context: BrowserContext, server: Server, query: str) -> Page:
    page = await context.new_page()
    await page.goto(f"{server.url}/dispatch/orders?{query}")
    await page.locator("#or-status:empty").wait_for(state="attached", timeout=wait(10) * 1000)
    return page


async def test_an_imported_order_is_assigned_from_the_list(browser: Browser, shop: Shop, server: Server) -> None:
    r = await shop.http.patch(f"{server.url}/api/store", headers=shop.auth,
                              json={"integrations": {"shopify": {"secret": SHOPIFY_SECRET}}})  # fmt: skip
    assert r.status_code == 200, r.text
    assert (await shopify_deliver(shop, fixture("shopify/order.json"), "orders/create")).status_code == 200
    await shop.order("own-1")
    token = await shop.driver("d1")
    (imported,) = (await shop.get("/api/orders?show=imported")).json()["orders"]
    oid = imported["order_id"]
    context = await _signed_in(browser, server, shop, DESKTOP)
    page = await _orders(context, server, "lang=pt-BR")
    assert await page.locator(".or-card").count() == 2
    await page.select_option("#or-show", "unassigned")
    await page.select_option("#or-show", "imported")
    card = page.locator(f'.or-card[data-order="{oid}"]')
    await page.locator('.or-card[data-order="own-1"]').wait_for(state="detached", timeout=wait(10) * 1000)
    assert await page.locator(".or-card").count() == 1 and await card.count() == 1, "only the shop's order"
    assert "De Shopify" in await card.inner_text() and "Sem entregador" in await card.inner_text()
    await page.screenshot(path=str(ARTIFACTS / "orders-desktop.png"), full_page=True)
    assert await card.locator("select").input_value() == "", "an order without a driver preselects none"
    await card.locator("select").select_option("d1")
    await card.locator("button", has_text="Atribuir").click()
    await page.locator(f'.or-card[data-order="{oid}"] .rt-result', has_text="Atribuído a Driver d1").wait_for(
        timeout=wait(10) * 1000
    )
    view = (await shop.get(f"/api/orders/{oid}")).json()
    assert view["driver_id"] == "d1"
    await card.locator("summary").click()
    await page.locator(f'.or-card[data-order="{oid}"] .rt-steps li').first.wait_for(timeout=wait(10) * 1000)
    await context.close()

    # The driver picks it up; the customer's page shows the driver coming.
    r = await shop.http.post(f"{server.url}/api/driver/stops/{view['tracking_id']}/stage",
                             headers={"Authorization": f"Bearer {token}"}, json={"stage": "shipped"})  # fmt: skip
    assert r.status_code == 200 and r.json()["live"], r.text
    customer = await open_page(browser, view["tracking_url"], PHONE)
    driver = await driver_socket(server, token)
    lat, lon = view["destination"]["lat"], view["destination"]["lon"]
    await driver.send({"lat": lat + 0.01, "lon": lon + 0.01, "ts": now_ms(), "speed": 8.0, "accuracy": 5.0})
    await driver.recv_type("ack")
    await customer.locator(".lm-driver").wait_for(timeout=wait(10) * 1000)
    await asyncio.gather(customer.close(), driver.close())


async def test_the_orders_page_in_spanish_on_a_phone(browser: Browser, shop: Shop, server: Server) -> None:
    for i, late in ((1, False), (2, True)):
        await shop.order(f"E{i}", promised_by=now_ms() - 3_600_000 if late else now_ms() + 3_600_000)
    context = await _signed_in(browser, server, shop, PHONE)
    page = await _orders(context, server, "lang=es")
    assert await page.locator("#or-show option").first.inner_text() == "Abiertos"
    late = page.locator('.or-card[data-order="E2"]')
    assert "Atrasado" in await late.inner_text() and "Asignar" in await late.inner_text()
    assert "Atrasado" not in await page.locator('.or-card[data-order="E1"]').inner_text()
    await page.fill("#or-q", "e1")
    await page.locator(".or-card").nth(1).wait_for(state="detached", timeout=wait(10) * 1000)
    assert await page.locator(".or-card").count() == 1
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "nothing sticks out"
    await page.fill("#or-q", "")
    await page.locator(".or-card").nth(1).wait_for(timeout=wait(10) * 1000)
    await page.screenshot(path=str(ARTIFACTS / "orders-phone-es.png"), full_page=True)
    assert await page.get_attribute('a[href^="/dispatch/returns"]', "href") == "/dispatch/returns?lang=es"
    await context.close()


async def test_a_delivered_orders_card_shows_its_proof(browser: Browser, shop: Shop, server: Server) -> None:
    order = await shop.live_order("PF1", "d1")
    url = f"{server.url}/api/driver/stops/{order['tracking_id']}"
    driver = {"Authorization": f"Bearer {shop.drivers['d1']}"}
    sent = await shop.http.post(f"{url}/proof", content=png(120, 80), headers=driver | {"Content-Type": "image/png"})
    assert sent.status_code == 200
    r = await shop.http.post(f"{url}/stage", headers=driver, json={"stage": "delivered", "recipient": "Porteiro"})
    assert r.status_code == 200
    context = await _signed_in(browser, server, shop, PHONE)
    page = await _orders(context, server, "lang=pt-BR")
    card = page.locator('.or-card[data-order="PF1"]')
    await card.locator("summary").click()
    await card.get_by_text("Recebido por Porteiro").wait_for(timeout=wait(10) * 1000)
    img = card.locator(".rt-photo img")
    for _ in range(int(wait(10) / 0.1)):  # read through the session cookie
        if await img.evaluate("i => i.complete && i.naturalWidth") == 120:
            break
        await asyncio.sleep(0.1)
    assert await img.evaluate("i => i.naturalWidth") == 120
    await page.screenshot(path=str(ARTIFACTS / "orders-proof-phone.png"), full_page=True)
    await context.close()
