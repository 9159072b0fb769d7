"""The dispatcher dashboard in Spanish and Brazilian Portuguese, in headless Chromium against a real server:
`?lang=` from the sign-in form on, or the store's locale when the browser speaks none of ours."""

from __future__ import annotations

from playwright.async_api import Browser, BrowserContext, Page

from conftest import ARTIFACTS, DESKTOP, PHONE, Server, Shop, driver_socket, fix, now_ms, skip_without_chromium, wait

skip_without_chromium()

# What each language shows: the connection, the list's heading, a legend entry, a driver's status, the count of
# active deliveries, the detail card's driver line ("Paradas de" heads its stops in both).
WORDS = {
    "es": ("En vivo", "Entregas en curso", "Sin entrega", "en línea", "en curso", "Repartidor: "),
    "pt-BR": ("Ao vivo", "Entregas em andamento", "Sem entrega", "on-line", "em andamento", "Entregador: "),
}


async def _context(browser: Browser, locale: str) -> BrowserContext:
    context = await browser.new_context(viewport=DESKTOP, locale=locale)
    # Offline from everything but our server: map tiles are refused, the page must work without them.
    await context.route("**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url else route.abort())
    return context


async def _sign_in(page: Page, key: str) -> None:
    await page.fill("#dp-key", key)
    await page.click("#dp-key-form button")
    await page.wait_for_selector("#dp-conn[data-state=live]", timeout=wait(10) * 1000)


async def _shots(page: Page, name: str) -> None:
    """The page at desktop size, then at phone size, then back: to look at (tests/artifacts)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"dispatch-{name}-desktop.png"))
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=str(ARTIFACTS / f"dispatch-{name}-phone.png"), full_page=True)
    await page.set_viewport_size(DESKTOP)


async def _speaks(page: Page, lang: str, oid: str, did: str) -> None:
    """The header, legend, lists and the focused order's card are in `lang`; the nav links carry it."""
    live, heading, idle, online, active, driver_is = WORDS[lang]
    await page.wait_for_selector(f'#dp-drivers tr[data-driver="{did}"] .dp-st-online', timeout=wait(10) * 1000)
    assert await page.get_attribute("html", "lang") == lang
    assert await page.inner_text("#dp-conn") == live
    assert await page.inner_text("#dp-orders-h") == heading
    assert idle in await page.inner_text(".dp-legend")
    assert await page.inner_text(f'#dp-drivers tr[data-driver="{did}"] .dp-status') == online
    assert active in await page.inner_text("#dp-counts")
    for tab in ("orders", "analytics", "returns"):
        assert await page.locator(f'a.dp-nav[href="/dispatch/{tab}?lang={lang}"]').count() == 1
    await page.click(f'#dp-orders tr[data-order="{oid}"]')
    await page.wait_for_selector(f'#dp-stops li[data-stop="{oid}"]')
    assert await page.inner_text("#dp-detail-h") == f"Pedido {oid} · Enviado"  # the store's stage label
    assert f"{driver_is}Driver {did}" in await page.inner_text("#dp-detail-sub")
    assert await page.inner_text("#dp-stops-h") == f"Paradas de Driver {did}"


async def test_the_dashboard_speaks_spanish_and_portuguese(browser: Browser, shop: Shop, server: Server) -> None:
    """Signed in from `/dispatch?lang=es` (an English browser): Spanish throughout, and assigning and moving
    a stage work; `?lang=pt-BR` then shows it in Portuguese."""
    for oid, did in (("IE1", "dre"), ("IP1", "drp")):
        await shop.live_order(oid, did)
        sock = await driver_socket(server, shop.drivers[did])
        await sock.send(fix(0.4, now_ms(), battery=77))
        await sock.recv_type("ack")
        await sock.close()
    await shop.driver("spare")
    context = await _context(browser, "en-US")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{server.url}/dispatch?lang=es")
    assert await page.inner_text(".dp-signin h1") == "Despacho"
    await page.fill("#dp-key", "lmk_not-the-key")
    await page.click("#dp-key-form button")
    assert await page.inner_text(".dp-error") == "La clave, el nombre o la contraseña no son correctos."
    await _sign_in(page, shop.key)
    assert page.url == f"{server.url}/dispatch?lang=es"  # the language went through the sign-in
    await _speaks(page, "es", "IE1", "dre")
    await page.check('#dp-orders tr[data-order="IP1"] .dp-pick')
    assert await page.inner_text("#dp-bulk-count") == "1 seleccionados"
    assert await page.inner_text("#dp-bulk-clear") == "Limpiar"
    await _shots(page, "es")
    await page.click("#dp-bulk-clear")
    await page.select_option("#dp-assign-to", "spare")
    await page.click("#dp-assign-form button")
    await page.wait_for_selector("#dp-detail-result >> text=Asignado a Driver spare.")
    await page.select_option("#dp-stage-to", "delivered")
    await page.click("#dp-stage-form button")
    await page.wait_for_selector("#dp-detail-result >> text=Etapa cambiada.")
    order = (await shop.get("/api/orders/IE1")).json()
    assert (order["driver_id"], order["stage"]) == ("spare", "delivered")
    await page.wait_for_selector('#dp-orders tr[data-order="IE1"] >> text=Entregado')
    await page.goto(f"{server.url}/dispatch?lang=pt-BR")
    await _speaks(page, "pt-BR", "IP1", "drp")
    assert "Entregue" in await page.inner_text('#dp-orders tr[data-order="IE1"]')
    await _shots(page, "pt-BR")
    assert errors == [], errors
    await context.close()


async def test_without_lang_the_store_locale_decides(browser: Browser, shop: Shop, server: Server) -> None:
    """A German browser and no `?lang=`: the sign-in form (no store known yet) is English, the dashboard is in
    the store's locale."""
    r = await shop.http.patch(f"{server.url}/api/store", json={"locale": "pt-BR"}, headers=shop.auth)
    assert r.status_code == 200, r.text
    await shop.live_order("IL1", "drl")
    context = await _context(browser, "de-DE")
    page = await context.new_page()
    await page.goto(f"{server.url}/dispatch")
    assert await page.get_attribute("html", "lang") == "en"
    assert await page.inner_text("#dp-key-form button") == "Sign in with the key"
    await _sign_in(page, shop.key)
    assert page.url == f"{server.url}/dispatch"
    await page.wait_for_selector('#dp-orders tr[data-order="IL1"]', timeout=wait(10) * 1000)
    assert await page.get_attribute("html", "lang") == "pt-BR"
    assert await page.inner_text("#dp-orders-h") == "Entregas em andamento"
    assert "Enviado" in await page.inner_text('#dp-orders tr[data-order="IL1"]')
    assert await page.locator('a.dp-nav[href="/dispatch/orders?lang=pt-BR"]').count() == 1
    await context.close()
