"""Returns on the tracking page: after delivery the customer asks for one (the store's reasons, a note) and
then sees where it stands; before delivery, or with the store's own returns page, the form is not there."""

from __future__ import annotations

import asyncio
import datetime as dt

from playwright.async_api import Browser

from conftest import ARTIFACTS, DESKTOP, PHONE, Server, Shop, open_page, png, skip_without_chromium, wait

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
    photo = {"name": "box.png", "mimeType": "image/png", "buffer": png(2400, 1800)}
    await page.set_input_files("#lm-return-photo", files=[photo])  # type: ignore[list-item]
    await page.click("#lm-return-form button")
    await page.wait_for_selector("#lm-return-is", state="visible", timeout=wait(10) * 1000)
    assert "solicitada" in await page.inner_text("#lm-return-is")
    assert await page.is_hidden("#lm-return-form")
    for _ in range(int(wait(10) / 0.1)):  # the photo goes after the return
        sent = await shop.get("/api/orders/RP1/return/photo")
        if sent.status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert sent.status_code == 200 and sent.content[:3] == b"\xff\xd8\xff", "shrunk to a JPEG by the page"
    assert await page.is_hidden("#lm-return-photo-failed")
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
    sent = await shop.http.put(f"{url}/photo", params={"t": order["tracking_token"]}, content=png(300, 200),
                               headers={"Content-Type": "image/png"})  # fmt: skip
    assert sent.status_code == 204
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
    img = card.locator(".rt-photo img")
    await img.wait_for(timeout=wait(10) * 1000)
    for _ in range(int(wait(10) / 0.1)):  # loaded through the session cookie
        if await img.evaluate("i => i.complete && i.naturalWidth") == 300:
            break
        await asyncio.sleep(0.1)
    assert await img.evaluate("i => i.naturalWidth") == 300
    shots = {"requested": True}
    for status, done in (("approved", "approved"), ("dropoff", "dropoff"), ("received", "received"),
                         ("refunded", "refunded")):  # fmt: skip
        if status == "received":
            await card.locator("input").fill("Arrived in good shape")
        await card.locator(f'button[data-status="{status}"]').click()
        await page.locator(f'.rt-card[data-order="RP2"][data-status="{done}"]').wait_for(timeout=wait(10) * 1000)
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


async def _returns(shop: Shop, server: Server, steps: dict[str, list[dict[str, str]]]) -> None:
    """Delivered orders, each with a return asked for and then moved on by `steps` (through the API)."""
    for n, (oid, moves) in enumerate(steps.items()):
        order = await shop.order(oid)
        for stage in ("processing", "shipped", "delivered"):
            assert (await shop.stage(oid, stage)).status_code == 200
        url = f"{server.url}/api/track/{order['tracking_id']}/return"
        body = {"reason": ("Damaged", "Wrong item")[n % 2], "note": None}
        assert (await shop.http.post(url, params={"t": order["tracking_token"]}, json=body)).status_code == 201
        for move in moves:
            assert (await shop.post(f"/api/orders/{oid}/return", move)).status_code == 200


async def test_the_returns_page_speaks_spanish_and_portuguese(browser: Browser, shop: Shop, server: Server) -> None:
    await shop.driver("D1")
    collect = [{"status": "approved"}, {"status": "pickup", "driver_id": "D1"}]
    await _returns(shop, server, {"RL1": [], "RL2": [{"status": "approved"}], "RL3": collect})
    context = await browser.new_context(viewport=PHONE, locale="en-US")
    await context.route("**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url else route.abort())
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{server.url}/dispatch")
    await page.fill("#dp-key", shop.key)
    await page.click("#dp-key-form button")
    await page.wait_for_selector("#dp-conn")
    expected = {
        "es": ("Devoluciones", "Abiertas", "Solicitada", ("Aprobar", "Rechazar"), "Enviar un repartidor"),
        "pt-BR": ("Devoluções", "Abertas", "Solicitada", ("Aprovar", "Recusar"), "Enviar um entregador"),
    }
    for lang, (title, first_option, requested, decide, pickup) in expected.items():
        await page.goto(f"{server.url}/dispatch/analytics?lang={lang}")
        await page.click(f'.an-nav a[href="/dispatch/returns?lang={lang}"]')  # the language goes along
        await page.locator(".rt-card").nth(2).wait_for(timeout=wait(10) * 1000)
        assert title in await page.inner_text(".dp-title")
        assert await page.get_attribute("html", "lang") == lang
        assert (await page.locator("#rt-status option").all_inner_texts())[0] == first_option
        card = page.locator('.rt-card[data-order="RL1"]')
        assert await card.locator(".rt-state").inner_text() == requested
        assert await card.locator("button").all_inner_texts() == list(decide)
        assert await page.locator('.rt-card[data-order="RL2"] button[data-status="pickup"]').inner_text() == pickup
        assert await page.get_attribute(".an-nav a:last-child", "href") == f"/dispatch/analytics?lang={lang}"
    # The CSV button: the last 90 days up to the store's today (UTC here: the store's default zone).
    today = dt.datetime.now(dt.UTC).date()
    start = today - dt.timedelta(days=89)
    assert await page.get_attribute("#rt-export", "href") == f"/api/returns.csv?from={start}&to={today}"
    # Moving a return on still works in another language: RL1 approved, in Portuguese.
    await page.locator('.rt-card[data-order="RL1"] button[data-status="approved"]').click()
    moved = page.locator('.rt-card[data-order="RL1"][data-status="approved"]')
    await moved.wait_for(timeout=wait(10) * 1000)
    assert await moved.locator(".rt-state").inner_text() == "Aprovada"
    assert (await moved.locator("li").all_inner_texts())[1].startswith("Aprovada · ")
    # Neither ?lang= nor a language of ours from the browser: the store's locale.
    r = await shop.http.patch(f"{server.url}/api/store", json={"locale": "es"}, headers=shop.auth)
    assert r.status_code == 200, r.text
    german = await browser.new_context(viewport=PHONE, locale="de-DE")
    await german.add_cookies(await context.cookies())  # the same session
    page = await german.new_page()
    await page.goto(f"{server.url}/dispatch/returns")
    await page.locator(".rt-card").first.wait_for(timeout=wait(10) * 1000)
    assert await page.inner_text("#rt-status option:first-child") == "Abiertas"
    assert errors == [], errors
    await german.close()
    await context.close()
