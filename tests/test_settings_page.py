"""The settings page (`/dispatch/settings`) in Chromium: a store is set up end to end in the browser by its owner
(signed in with the store key): branding with its live preview, a custom stage, email settings with a test
send, the wording of a message, a driver with a QR sign-in link the driver's phone opens, a dispatcher account.
The test itself makes no API call to set anything up: only clicks and typing; it reads the API afterwards to
check what the clicks stored."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import httpx
import pytest
import trustme
import zxingcpp
from PIL import Image
from playwright.async_api import Browser, BrowserContext, Page

from conftest import (
    ARTIFACTS,
    DESKTOP,
    PHONE,
    RedisTarget,
    Server,
    Shop,
    new_shop,
    server_env,
    skip_without_chromium,
    wait,
)
from receivers import SmtpReceiver, served_by

skip_without_chromium()


async def signed_in(browser: Browser, server: Server, form: dict[str, str], viewport: dict[str, int]) -> BrowserContext:
    """A browser context signed in to the dashboard with `form` (the key, or an account's store/name/password)."""
    context = await browser.new_context(viewport=viewport)
    await context.route("**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url else route.abort())
    page = await context.new_page()
    await page.goto(f"{server.url}/dispatch")
    if "key" in form:
        await page.fill("#dp-key", form["key"])
        await page.click("#dp-key-form button")
    else:
        for field, value in form.items():
            await page.fill(f"#dp-{field}", value)
        await page.click("#dp-account-form button")
    await page.wait_for_selector("#dp-conn")
    await page.close()
    return context


async def settings(context: BrowserContext, server: Server, lang: str = "en") -> Page:
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{server.url}/dispatch/settings?lang={lang}")
    await page.locator("#st-status:empty").wait_for(state="attached", timeout=wait(10) * 1000)
    assert not errors, errors
    return page


async def test_the_settings_page_on_a_phone_and_a_desktop(browser: Browser, shop: Shop, server: Server) -> None:
    """Every section renders in each language, with no script error; screenshots for a look."""
    for viewport, size in ((PHONE, "phone"), (DESKTOP, "desktop")):
        context = await signed_in(browser, server, {"key": shop.key}, viewport)
        for lang in ("en", "es", "pt-BR"):
            page = await settings(context, server, lang)
            for section in ("brand", "stages", "notify", "shops", "drivers", "desks"):
                assert await page.locator(f"#st-{section} h2").is_visible()
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{lang} {size}: the page is {width} px wide"
            await page.screenshot(path=str(ARTIFACTS / f"settings-{lang}-{size}.png"), full_page=True)
            await page.close()
        await context.close()


async def test_a_dispatcher_account_is_told_settings_are_the_owners(
    browser: Browser, http: httpx.AsyncClient, server: Server
) -> None:
    shop = await new_shop(http, server)
    r = await shop.post("/api/dispatchers", {"name": "desk", "password": "0123456789ab"})
    assert r.status_code == 201, r.text
    context = await signed_in(browser, server, {"store": shop.id, "name": "desk", "password": "0123456789ab"}, DESKTOP)
    page = await context.new_page()
    response = await page.goto(f"{server.url}/dispatch/settings?lang=es")
    assert response is not None and response.status == 403
    assert "clave de la tienda" in await page.locator(".dp-error").inner_text()
    await page.screenshot(path=str(ARTIFACTS / "settings-account-403.png"))
    await page.click("main a")  # the way back
    assert page.url.startswith(f"{server.url}/dispatch?lang=es")
    preview = await page.goto(f"{server.url}/dispatch/settings/preview")
    assert preview is not None and preview.status == 403
    await page.goto(f"{server.url}/dispatch")
    assert await page.locator('a[href^="/dispatch/settings"]').count() == 0, "no settings link for an account"
    await context.close()


# --- the store set up end to end ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def smtp(ca: trustme.CA) -> Iterator[SmtpReceiver]:
    context = served_by(ca)
    receiver = SmtpReceiver(context, {"mailer": "smtp-pass-123"})
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def owner_server(
    redis_target: RedisTarget, ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server that trusts the test CA: the test send speaks STARTTLS to the SMTP receiver right away."""
    data = tmp_path_factory.mktemp("owner")
    ca.cert_pem.write_to_path(str(data / "ca.pem"))
    srv = Server(server_env(redis_target, data, SSL_CERT_FILE=str(data / "ca.pem")), "O")
    yield srv
    srv.stop()


async def saved(page: Page, form: str) -> None:
    """Submit `form` and wait for its result line to say it worked."""
    await page.click(f"#{form} button[type=submit]")
    result = page.locator(f"#{form} .st-result")
    await result.filter(has_not_text=re.compile(r"^$")).wait_for(timeout=wait(10) * 1000)
    assert "st-bad" not in (await result.get_attribute("class") or ""), await result.inner_text()


async def brand_the_store(page: Page) -> None:
    """Name, colour and layout: the preview follows before saving."""
    await page.fill("#st-brand-form [name=name]", "Tienda Sol")
    await page.fill("#st-brand-form [name=timezone]", "America/Asuncion")
    await page.fill("#st-brand-form [name=primary_color]", "#7b1fa2")
    await page.check("#st-brand-form [name=template][value=bold]")
    preview = page.frame_locator("#st-preview")
    await preview.locator("body.tpl-bold").wait_for(timeout=wait(10) * 1000)
    assert "Tienda Sol" in await preview.locator("body").inner_text(), "the unsaved name is in the preview"
    await saved(page, "st-brand-form")


async def add_a_stage(page: Page) -> None:
    form = "#st-stage-form"
    await page.fill(f"{form} [name=id]", "packed")
    await page.select_option(f"{form} [name=after]", "processing")
    await page.fill(f"{form} [name=label_en]", "Packed")
    await page.fill(f"{form} [name=label_es]", "Empacado")
    await saved(page, "st-stage-form")
    await page.locator("#st-stage-list li", has_text="Packed").wait_for(timeout=wait(10) * 1000)


async def set_up_email(page: Page, smtp: SmtpReceiver) -> None:
    """The SMTP server, shipped by email, a wording of its own in Spanish, and a test send that arrives."""
    form = "#st-email-form"
    await page.fill(f"{form} [name=host]", "127.0.0.1")
    await page.fill(f"{form} [name=port]", str(smtp.port))
    await page.fill(f"{form} [name=username]", "mailer")
    await page.fill(f"{form} [name=password]", "smtp-pass-123")
    await page.fill(f"{form} [name=from]", "Tienda Sol <envios@tienda.example>")
    await saved(page, "st-email-form")
    await page.check("#st-events-form [name='shipped:email']")
    await saved(page, "st-events-form")
    await page.select_option("#st-texts-form [name=lang]", "es")
    await page.select_option("#st-texts-form [name=event]", "shipped")
    await page.fill("#st-texts-form [name=line]", "¡{name}, tu pedido {number} de {store} ya salió!")
    subject = page.locator("#st-texts-preview .st-mail-text")
    await subject.filter(has_text="¡Ana Silva, tu pedido 1001 de Tienda Sol ya salió!").wait_for(
        timeout=wait(10) * 1000
    )
    await saved(page, "st-texts-form")
    await page.fill("#st-test-form [name=to]", "owner@tienda.example")
    await saved(page, "st-test-form")
    (mail,) = await smtp.wait_for("owner@tienda.example", 1)
    assert "ya salió" in mail.text(), mail.text()


async def add_a_driver(page: Page, browser: Browser) -> None:
    """A driver, whose QR code (decoded from the screen) opens the driver app signed in on a phone."""
    await page.fill("#st-driver-form [name=name]", "Dana")
    await saved(page, "st-driver-form")
    qr = page.locator("#st-signin-qr img")
    await qr.wait_for(timeout=wait(10) * 1000)
    link = await page.input_value("#st-signin-url")
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(await qr.screenshot())))
    assert [code.text for code in decoded] == [link], "the QR code on screen is the sign-in link"
    await page.locator("#st-driver-list li", has_text="Dana").wait_for(timeout=wait(10) * 1000)
    phone = await browser.new_context(viewport=PHONE)
    app = await phone.new_page()
    await app.goto(link)
    await app.locator("#dr-name", has_text="Dana").wait_for(timeout=wait(10) * 1000)
    await app.screenshot(path=str(ARTIFACTS / "settings-driver-signed-in.png"))
    await phone.close()


async def test_a_store_is_set_up_end_to_end_in_the_browser(
    browser: Browser, http: httpx.AsyncClient, owner_server: Server, smtp: SmtpReceiver
) -> None:
    shop = await new_shop(http, owner_server)
    context = await signed_in(browser, owner_server, {"key": shop.key}, DESKTOP)
    dashboard = await context.new_page()
    await dashboard.goto(f"{owner_server.url}/dispatch")
    await dashboard.click('a[href^="/dispatch/settings"]')
    await dashboard.locator("#st-status:empty").wait_for(state="attached", timeout=wait(10) * 1000)
    page = dashboard
    await brand_the_store(page)
    await add_a_stage(page)
    await set_up_email(page, smtp)
    await add_a_driver(page, browser)
    await page.fill("#st-desk-form [name=name]", "desk1")
    await page.fill("#st-desk-form [name=password]", "desk-password-1")
    await saved(page, "st-desk-form")
    await page.locator("#st-desk-list li", has_text="desk1").wait_for(timeout=wait(10) * 1000)
    await page.screenshot(path=str(ARTIFACTS / "settings-set-up.png"), full_page=True)
    await context.close()

    # What the clicks stored, read back with the key.
    store = (await shop.get("/api/store")).json()
    assert store["name"] == "Tienda Sol" and store["timezone"] == "America/Asuncion"
    assert store["branding"]["primary_color"] == "#7b1fa2" and store["branding"]["template"] == "bold"
    assert store["stages"]["custom"] == [
        {"id": "packed", "after": "processing", "live": False, "labels": {"en": "Packed", "es": "Empacado"}}
    ]
    notifications = store["notifications"]
    assert notifications["events"] == {"shipped": ["email"]}
    assert notifications["email"]["host"] == "127.0.0.1" and notifications["email"]["password"] == "********"
    assert notifications["texts"] == {"es": {"shipped": "¡{name}, tu pedido {number} de {store} ya salió!"}}
    drivers = (await shop.get("/api/drivers")).json()["drivers"]
    assert [d["name"] for d in drivers] == ["Dana"]
    assert [d["name"] for d in (await shop.get("/api/dispatchers")).json()["dispatchers"]] == ["desk1"]
