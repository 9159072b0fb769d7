"""Returns on the tracking page: after delivery the customer asks for one (the store's reasons, a note) and
then sees where it stands; before delivery, or with the store's own returns page, the form is not there."""

from __future__ import annotations

from playwright.async_api import Browser

from conftest import ARTIFACTS, DESKTOP, PHONE, Server, Shop, open_page, skip_without_chromium, wait

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


async def test_the_store_walks_a_return_to_refunded_from_the_returns_page(
    browser: Browser, shop: Shop, server: Server
) -> None:
    order = await shop.order("RP2")
    for stage in ("processing", "shipped", "delivered"):
        assert (await shop.stage("RP2", stage)).status_code == 200
    url = f"{server.url}/api/track/{order['tracking_id']}/return"
    r = await shop.http.post(url, params={"t": order["tracking_token"]}, json={"reason": "Damaged", "note": "Torn"})
    assert r.status_code == 201
    context = await browser.new_context(viewport=DESKTOP)
    await context.route("**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url else route.abort())
    page = await context.new_page()
    await page.goto(f"{server.url}/dispatch/returns")
    await page.fill("#dp-key", shop.key)  # not signed in: the sign-in form first
    await page.click("#dp-key-form button")
    await page.wait_for_selector("#dp-conn")
    await page.goto(f"{server.url}/dispatch/returns")
    card = page.locator('.rt-card[data-order="RP2"]')
    await card.wait_for(timeout=wait(10) * 1000)
    assert "Torn" in await card.inner_text()
    shots = {"requested": True}
    for status, done in (("approved", "approved"), ("dropoff", "dropoff"), ("received", "received"),
                         ("refunded", "refunded")):  # fmt: skip
        if status == "received":
            await card.locator("input").fill("Arrived in good shape")
        await card.locator(f'button[data-status="{status}"]').click()
        await page.locator('.rt-card[data-order="RP2"] .rt-state', has_text=done).wait_for(timeout=wait(10) * 1000)
        card = page.locator('.rt-card[data-order="RP2"]')
        if status not in shots:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / f"returns-{status}-desktop.png"), full_page=True)
            shots[status] = True
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=str(ARTIFACTS / "returns-refunded-phone.png"), full_page=True)
    (listed,) = (await shop.get("/api/returns?status=closed")).json()["returns"]
    assert [s["status"] for s in listed["steps"]] == ["requested", "approved", "dropoff", "received", "refunded"]
    assert listed["steps"][3]["note"] == "Arrived in good shape"
    assert (await shop.get("/api/orders/RP2")).json()["stage"] == "returned"
    await context.close()
