"""A return's pickup on the customer's open tracking page (no reload): the step arrives live, then the collecting
driver's marker and the pickup's ETA; the driver's app offers "Collected", which ends it on the customer's page."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, Page
from test_return_pickup import _awaiting_pickup

from conftest import ARTIFACTS, PHONE, Server, Shop, driver_socket, fix, now_ms, open_page, skip_without_chromium, wait

skip_without_chromium()


async def _text_until(page: Page, selector: str, wanted: str) -> str:
    """The element's text once it contains `wanted` (polled: the page's CSP forbids wait_for_function)."""
    text = ""
    for _ in range(int(wait(10) / 0.1)):
        text = await page.inner_text(selector)
        if wanted in text:
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"{selector} never showed {wanted!r}; last: {text!r}")


async def test_the_customer_follows_the_pickup_live(browser: Browser, shop: Shop, server: Server) -> None:
    order = await _awaiting_pickup(shop, "PP1")
    page = await open_page(browser, order["tracking_url"] + "&lang=pt-BR", PHONE)
    await _text_until(page, "#lm-return-is", "aprovada")
    assert await page.locator(".lm-driver").count() == 0
    collector = await driver_socket(server, shop.drivers["collector"])
    assert (
        await shop.post("/api/orders/PP1/return", {"status": "pickup", "driver_id": "collector"})
    ).status_code == 200
    await _text_until(page, "#lm-return-is", "um entregador vai buscá-la")
    await _text_until(page, "#lm-eta", "a caminho para buscar sua devolução")
    t0 = now_ms() - 30_000
    for i in range(3):
        await collector.send(fix(0.4 + 0.1 * i, t0 + i * 10_000, seq=i))
        await collector.recv_type("ack")
    await page.locator(".lm-driver").wait_for(timeout=wait(10) * 1000)
    await _text_until(page, "#lm-eta", "Buscamos sua devolução em")
    await asyncio.sleep(1)  # the map fits driver and door in an animation
    await page.screenshot(path=str(ARTIFACTS / "return-pickup-phone.png"), full_page=True)

    app = await open_page(browser, f"{server.url}/driver?lang=es#token={shop.drivers['collector']}", PHONE)
    button = app.locator('.dr-act[data-action="returned"]')
    await button.wait_for(timeout=wait(10) * 1000)
    assert await button.inner_text() == "Retirado"
    assert await app.inner_text(".dr-badge") == "Retiro de devolución"
    await app.screenshot(path=str(ARTIFACTS / "return-pickup-driver-phone.png"), full_page=True)
    await button.click()
    await _text_until(page, "#lm-return-is", "recebida pela loja")
    await page.locator(".lm-driver").wait_for(state="detached", timeout=wait(10) * 1000)
    assert (await shop.get("/api/orders/PP1")).json()["stage"] == "returned"
    await asyncio.gather(app.close(), page.close(), collector.close())
