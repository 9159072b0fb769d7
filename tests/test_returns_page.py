"""Returns on the tracking page: after delivery the customer asks for one (the store's reasons, a note) and
then sees where it stands; before delivery, or with the store's own returns page, the form is not there."""

from __future__ import annotations

from playwright.async_api import Browser

from conftest import ARTIFACTS, DESKTOP, PHONE, Shop, open_page, skip_without_chromium, wait

skip_without_chromium()


async def test_the_customer_asks_for_a_return_and_sees_it_move_on(browser: Browser, shop: Shop) -> None:
    order = await shop.order("RP1")
    page = await open_page(browser, order["tracking_url"] + "&lang=es", PHONE)
    assert await page.is_hidden("#lm-returns"), "nothing to return before delivery"
    await page.close()
    for stage in ("processing", "shipped", "delivered"):
        assert (await shop.stage("RP1", stage)).status_code == 200
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page = await open_page(browser, order["tracking_url"] + "&lang=es", viewport)
        await page.wait_for_selector("#lm-return-form", state="visible", timeout=wait(10) * 1000)
        assert "Puedes pedir la devolución hasta el" in await page.inner_text("#lm-return-until")
        await page.screenshot(path=str(ARTIFACTS / f"return-form-{name}.png"), full_page=True)
        await page.close()
    page = await open_page(browser, order["tracking_url"] + "&lang=es", PHONE)
    await page.wait_for_selector("#lm-return-form", state="visible", timeout=wait(10) * 1000)
    await page.select_option("#lm-return-reason", "Wrong item")
    await page.fill("#lm-return-note", "Pedí talle M")
    await page.click("#lm-return-form button")
    await page.wait_for_selector("#lm-return-is", state="visible", timeout=wait(10) * 1000)
    assert "solicitada" in await page.inner_text("#lm-return-is")
    assert await page.is_hidden("#lm-return-form")
    (listed,) = (await shop.get("/api/returns")).json()["returns"]
    assert (listed["order_id"], listed["reason"], listed["note"]) == ("RP1", "Wrong item", "Pedí talle M")
    assert (await shop.post("/api/orders/RP1/return", {"status": "approved"})).status_code == 200
    await page.reload()
    await page.wait_for_selector("#lm-return-is", state="visible", timeout=wait(10) * 1000)
    assert "aprobada" in await page.inner_text("#lm-return-is")
    await page.screenshot(path=str(ARTIFACTS / "return-approved-phone.png"), full_page=True)
    await page.close()
